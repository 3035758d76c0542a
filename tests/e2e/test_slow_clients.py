"""H2: slow clients do not take the relay down (default serve: 2 gunicorn workers x 4 threads)."""

import socket
import threading

import pytest
import requests

from benchmarks.slow_clients import measure
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e


def test_200_slow_clients_leave_health_intake_and_ui_answering(relay_factory):
    relay = relay_factory().start(web_workers=2, threads=4)
    results = measure(relay.url, clients=200, seconds=6)
    for name, times in results.items():
        assert times and None not in times, f"{name}: no answer within 10 s"
        assert max(times) < 1.0, f"{name}: answered after {max(times):.2f} s"
    assert set(results) == {"GET /healthz", "POST /events", "GET /ui/sign-in"}


class Dripper:
    """Sends `head`, then `body` one byte at a time (a byte about every 0.2 s), until the server answers or closes."""

    def __init__(self, port: int, head: bytes, body: bytes):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(head)
        self.body = body
        self.sent = 0
        self.closed = threading.Event()
        self.answer = b""
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        self.sock.settimeout(0.2)
        try:
            while True:
                if self.sent < len(self.body):
                    self.sock.sendall(self.body[self.sent:self.sent + 1])
                    self.sent += 1
                try:
                    data = self.sock.recv(4096)
                except TimeoutError:
                    continue
                self.answer += data
                if not data:
                    break
        except OSError:
            pass
        self.closed.set()
        self.sock.close()


def _head(path: str, *headers: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: relay.test\r\nContent-Type: application/json\r\n"
            + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


def _answered(method: str, url: str, **kwargs) -> bool:
    try:
        return requests.request(method, url, timeout=5, **kwargs).status_code < 500
    except requests.RequestException:
        return False


def test_streamed_bodies_never_hold_a_thread(relay_factory):
    """Issue 23 #1: chunked bodies (and bodies near the limit) dripped by more clients than there are threads."""
    relay = relay_factory(RELAY_REQUEST_READ_TIMEOUT="20").start(web_workers=1, threads=2)
    chunked = [Dripper(relay.port, _head(path, "Transfer-Encoding: chunked"), b"1\r\n{\r\n" * 1000)
               for path in ("/events", "/events", "/ui/sign-in", "/webhooks")]
    declared = [Dripper(relay.port, _head("/events", "Content-Length: 200000"), b"{" * 200000) for _ in range(4)]
    slow = chunked + declared
    wait_for(lambda: all(c.sent > 3 for c in slow), timeout=60, what="every slow client has started its body")
    # Eight slow bodies against two threads: every probe is still answered, before any slow client is cut.
    for method, path in (("GET", "/healthz"), ("POST", "/events"), ("GET", "/ui/sign-in")):
        wait_for(lambda m=method, p=path: _answered(m, relay.url + p, json={}), timeout=60, what=f"{method} {path}")
    assert not any(c.closed.is_set() for c in slow), [c.answer[:40] for c in slow if c.closed.is_set()]
    # At the read deadline each slow body is refused with a 408, not cut silently.
    for client in slow:
        assert client.closed.wait(90), "a slow client was never cut off"
        assert client.answer.startswith(b"HTTP/1.1 408"), client.answer[:80]
    assert "Traceback" not in relay.log.read_text()


def test_too_large_bodies_are_refused_at_once_on_every_route(relay_factory):
    """Issue 23 #1: a declared or streamed body over the limit is a 413 on any route, without reading it first."""
    relay = relay_factory(RELAY_REQUEST_READ_TIMEOUT="120").start(web_workers=1, threads=2)
    clients = [Dripper(relay.port, _head(path, f"Content-Length: {size}"), b"{" * 1000)
               for path in ("/events", "/webhooks", "/ui/sign-in", "/healthz", "/no-such-route")
               for size in (300 * 1024, 2_000_000)]
    big_chunk = b"%x\r\n" % (300 * 1024) + b"x" * 10
    clients += [Dripper(relay.port, _head(path, "Transfer-Encoding: chunked"), big_chunk)
                for path in ("/events", "/secrets")]
    for client in clients:
        assert client.closed.wait(60), "an oversized body was not refused"
        assert client.answer.startswith(b"HTTP/1.1 413"), client.answer[:80]
        # Refused from the head (or the chunk size) alone: the dripping client had sent only a few bytes of it.
        assert client.sent < len(client.body)
    assert b"larger than 256 KiB" in clients[0].answer
    assert requests.get(f"{relay.url}/healthz", timeout=30).status_code == 200
