"""Fault-test tools: a TCP proxy that can cut the database, a target that resets connections, a retrying broker."""

from __future__ import annotations

import json
import selectors
import socket
import struct
import threading
import time
from collections import Counter

import requests

from tests.conftest import EVENTS_DIR


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = _free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            # close() alone does not wake a thread blocked in accept() on Linux: the socket would go on
            # accepting. shutdown() does, and _accept also re-checks under the lock.
            if self.listener is not None:
                try:
                    self.listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.listener.close()
                self.listener = None
            for conn in self.conns:
                _reset(conn)
            self.conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self.lock:
                if self.listener is not listener:  # cut while this connection was being set up
                    _reset(client)
                    _reset(upstream)
                    return
                self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        raise OSError("closed")
                    key.data.sendall(data)
        except (OSError, ValueError):
            for s in (a, b):
                _reset(s)
        finally:
            sel.close()


class ResetServer:
    """An HTTP target that resets the first `resets` connections, then answers 200 to each request."""

    def __init__(self, resets: int):
        self.resets = resets
        self.connections = 0
        self.served = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.resets:
                conn.recv(65536)
                _reset(conn)
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            self.served += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self.listener.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN, as a crashed peer or a cut network looks."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """Sends events as the Pact Broker would, retrying the same body on errors until it is accepted."""

    def __init__(self, relay, retry: bool = True):
        self.relay = relay
        self.retry = retry
        self.answers: Counter = Counter()  # status code (or exception name) -> count
        self.accepted: dict[str, str] = {}  # version -> event id
        self.unexpected: list[str] = []  # answers a broker would not retry; a test asserts there are none
        self.lock = threading.Lock()

    def body(self, version: str) -> bytes:
        event = json.loads((EVENTS_DIR / "contract_published.json").read_text())
        event["consumerVersionNumber"] = version
        return json.dumps(event).encode()

    def send(self, version: str, give_up_after: float = 120) -> int:
        body = self.body(version)
        headers = {"Authorization": f"Bearer {self.relay.admin_token()}", "Content-Type": "application/json"}
        deadline = time.monotonic() + give_up_after
        while True:
            try:
                resp = requests.post(f"{self.relay.url}/events", data=body, headers=headers, timeout=10)
                outcome = resp.status_code
            except requests.RequestException as exc:
                resp, outcome = None, type(exc).__name__
            with self.lock:
                self.answers[outcome] += 1
            if resp is not None and resp.status_code in (200, 202):
                with self.lock:
                    first = self.accepted.setdefault(version, resp.json()["event"])
                assert first == resp.json()["event"], "the same body was stored twice"
                return resp.status_code
            if not self.retry or time.monotonic() > deadline:
                return resp.status_code if resp is not None else 0
            if resp is not None and resp.status_code not in (429, 500, 502, 503, 504):
                with self.lock:
                    self.unexpected.append(f"{version}: HTTP {resp.status_code}: {resp.text[:300]}")
                return resp.status_code
            time.sleep(0.2)

    def send_many(self, versions: list[str], threads: int = 4, rate: float | None = None) -> threading.Thread:
        """Send in the background (version i not before start + i / rate when a rate is given); join() the thread."""
        start = time.monotonic()

        def send(chunk: list[tuple[int, str]]) -> None:
            for i, version in chunk:
                if rate:
                    time.sleep(max(0.0, start + i / rate - time.monotonic()))
                self.send(version)

        def run():
            indexed = list(enumerate(versions))
            workers = [threading.Thread(target=send, args=(indexed[i::threads],)) for i in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def signed_webhook(relay, url: str, **extra) -> dict:
    """A webhook that signs, so every arrival carries its delivery id (webhook-id)."""
    resp = relay.call("POST", "/webhooks", json={
        "description": "reliability", "events": [{"name": "contract_published"}], **extra,
        "request": {"method": "POST", "url": url, "sign": True, "headers": {"Content-Type": "application/json"},
                    "body": {"version": "${pactbroker.consumerVersionNumber}"}}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def deliveries(relay, status: str | None = None) -> list[dict]:
    out, path = [], "/deliveries?limit=500" + (f"&status={status}" if status else "")
    out = relay.call("GET", path).json()["deliveries"]
    return out


def arrivals(target) -> Counter:
    """How many times each delivery id reached the sink."""
    with target.lock:
        return Counter(r["headers"].get("webhook-id") for r in target.requests)


def versions_arrived(target) -> set[str]:
    with target.lock:
        return {json.loads(r["body"])["version"] for r in target.requests}


def metric_value(text: str, name: str, **labels) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
    return total
