"""Against the real gunicorn: slow-loris clients are cut at the read deadline, oversized bodies refused."""

import socket
import threading
import time

import pytest
import requests

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e


class SlowClient:
    """Sends a request a byte at a time, forever, until the server closes the connection."""

    def __init__(self, port: int, head: bytes, trickle: bytes):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(head)
        self.trickle = trickle
        self.closed = threading.Event()
        self.answer = b""
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        self.sock.settimeout(0.3)
        try:
            while True:
                self.sock.sendall(self.trickle)
                try:
                    data = self.sock.recv(4096)
                except TimeoutError:
                    continue
                self.answer += data
                if not data or b"\r\n\r\n" in self.answer:
                    break
        except OSError:
            pass
        self.closed.set()
        self.sock.close()


def test_slow_clients_cannot_starve_the_web_server(relay_factory):
    relay = relay_factory(RELAY_REQUEST_READ_TIMEOUT="2").start(web_workers=1, threads=2)
    token = relay.admin_token()
    slow_headers = [SlowClient(relay.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X") for _ in range(4)]
    slow_bodies = [SlowClient(relay.port, b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          b"Authorization: Bearer " + token.encode() + b"\r\n"
                                          b"Content-Length: 100000\r\n\r\n", b"{") for _ in range(4)]
    # Twice as many slow clients as threads, still trickling: a normal request gets through anyway.
    wait_for(lambda: _healthy(relay), timeout=60, what="/healthz answered despite slow clients")
    for client in slow_headers + slow_bodies:
        assert client.closed.wait(60), "a slow client was never cut off"
    assert all(c.answer == b"" for c in slow_headers)  # cut at the deadline, quietly
    for client in slow_bodies:  # the body never arrived: 408 (or cut, if the deadline hit between reads)
        assert client.answer == b"" or client.answer.startswith(b"HTTP/1.1 408")
    assert any(c.answer.startswith(b"HTTP/1.1 408") for c in slow_bodies)
    assert relay.call("GET", "/deliveries").status_code == 200
    assert "Traceback" not in relay.log.read_text()


def _healthy(relay) -> bool:
    try:
        return requests.get(f"{relay.url}/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_oversized_bodies_are_refused_by_the_real_server(relay_factory):
    relay = relay_factory().start()
    headers = {"Authorization": f"Bearer {relay.admin_token()}", "Content-Type": "application/json"}

    def chunks():
        yield b'{"eventName": "contract_published", "buildUrl": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    chunked = requests.post(f"{relay.url}/events", data=chunks(), headers=headers, timeout=30)
    assert chunked.status_code == 413
    declared = requests.post(f"{relay.url}/events", data=b"{}", timeout=30,
                             headers={**headers, "Content-Length": str(50 * 1024 * 1024)})
    assert declared.status_code in (413, 400)
    start = time.monotonic()
    assert requests.get(f"{relay.url}/healthz", timeout=10).status_code == 200
    assert time.monotonic() - start < 10
    assert relay.call("GET", "/deliveries").json()["deliveries"] == []
