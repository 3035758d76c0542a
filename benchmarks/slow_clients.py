"""`python -m benchmarks.slow_clients --url URL [--clients 200] [--seconds 15]`: slow clients against a relay.

Each client opens a connection and sends a request head one byte per second; meanwhile /healthz, POST /events
(without a token: a 401 is an answer) and the sign-in page are asked every 0.25 s. Prints the worst and median
answer time per probe and how many probes got no answer within 10 s.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from urllib.parse import urlsplit

import requests

HEAD = b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nUser-Agent: one-byte-per-second\r\nX-Pad: " + b"a" * 200


def drip(host: str, port: int, clients: int, stop: threading.Event) -> list[socket.socket]:
    """Open `clients` connections and send one byte of HEAD per second on each until `stop` is set."""
    socks = []
    for _ in range(clients):
        sock = socket.create_connection((host, port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(sock)

    def run() -> None:
        i = 0
        while not stop.is_set():
            for sock in socks:
                try:
                    sock.send(HEAD[i % len(HEAD):i % len(HEAD) + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(1.0)
        for sock in socks:
            sock.close()

    threading.Thread(target=run, daemon=True).start()
    return socks


def probe(url: str) -> dict[str, list[float | None]]:
    calls = {"GET /healthz": ("GET", "/healthz", None), "POST /events": ("POST", "/events", {"eventName": "test"}),
             "GET /ui/sign-in": ("GET", "/ui/sign-in", None)}
    out: dict[str, list[float | None]] = {}
    for name, (method, path, body) in calls.items():
        started = time.perf_counter()
        try:
            requests.request(method, url + path, json=body, timeout=10)
            out[name] = [time.perf_counter() - started]
        except requests.RequestException:
            out[name] = [None]
    return out


def measure(url: str, clients: int = 200, seconds: float = 15.0) -> dict[str, list[float | None]]:
    """Answer times of each probe while `clients` slow clients are connected (None: no answer within 10 s)."""
    parts = urlsplit(url)
    stop = threading.Event()
    drip(parts.hostname, parts.port or 80, clients, stop)
    results: dict[str, list[float | None]] = {}
    deadline = time.monotonic() + seconds
    try:
        time.sleep(2)  # every slow client has started its request
        while time.monotonic() < deadline:
            for name, times in probe(url).items():
                results.setdefault(name, []).extend(times)
            time.sleep(0.25)
    finally:
        stop.set()
    return results


def report(results: dict[str, list[float | None]]) -> str:
    lines = [f"{'probe':<18}{'answers':>8}{'no answer':>11}{'median s':>10}{'worst s':>9}"]
    for name, times in results.items():
        answered = [t for t in times if t is not None]
        median = f"{statistics.median(answered):.3f}" if answered else "—"
        worst = f"{max(answered):.3f}" if answered else "—"
        lines.append(f"{name:<18}{len(answered):>8}{len(times) - len(answered):>11}{median:>10}{worst:>9}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    print(f"{args.clients} slow clients for {args.seconds:.0f} s against {args.url}")
    print(report(measure(args.url, args.clients, args.seconds)))


if __name__ == "__main__":
    main()
