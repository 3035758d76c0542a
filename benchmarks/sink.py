"""The loopback sink: a tiny asyncio HTTP server that counts requests and records when each target arrived.

A path starting `/slow/<ms>/` is answered after that many milliseconds; one starting `/dead/` is never answered
(the connection stays open, as with a hung server). The sink counts requests in flight, overall and per target
path, so a benchmark can see the relay's concurrency and its per-target limit from the receiving side."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from urllib.parse import parse_qs, urlsplit

# Control paths live on the same port so the orchestrator needs no second channel.
CONTROL = "/_sink/"


class State:
    def __init__(self) -> None:
        self.reset()

    def reset(self, fail_ratio: float = 0.0, seed: int = 7) -> None:
        self.arrivals: list[tuple[float, str, int]] = []  # (monotonic time, request target, status answered)
        self.fail_ratio = fail_ratio
        self.random = random.Random(seed)
        self.inflight: dict[str, int] = {}
        self.total_inflight = 0
        self.max_inflight = 0
        self.max_per_target: dict[str, int] = {}

    def started(self, path: str) -> None:
        self.inflight[path] = self.inflight.get(path, 0) + 1
        self.total_inflight += 1
        self.max_inflight = max(self.max_inflight, self.total_inflight)
        self.max_per_target[path] = max(self.max_per_target.get(path, 0), self.inflight[path])

    def finished(self, path: str) -> None:
        self.inflight[path] -= 1
        self.total_inflight -= 1

    def answer(self, target: str) -> int:
        status = 503 if self.fail_ratio and self.random.random() < self.fail_ratio else 200
        self.arrivals.append((time.monotonic(), target, status))
        return status

    def control(self, target: str) -> bytes:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        action = parts.path[len(CONTROL):]
        if action == "reset":
            self.reset(float(query.get("fail", 0)), int(query.get("seed", 7)))
        elif action == "fail":
            self.fail_ratio = float(query.get("ratio", 0))
        elif action == "dump":
            with open(query["path"], "w") as fh:
                json.dump(self.arrivals, fh)
        ok = sum(1 for a in self.arrivals if a[2] < 300)
        return json.dumps({"count": len(self.arrivals), "ok": ok, "failed": len(self.arrivals) - ok,
                           "last": self.arrivals[-1][0] if self.arrivals else None,
                           "inflight": self.total_inflight, "max_inflight": self.max_inflight,
                           "max_inflight_per_target": max(self.max_per_target.values(), default=0)}).encode()


RESPONSES = {
    200: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok",
    503: b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nbusy",
}


class SinkProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and Content-Length bodies: all the relay and the loader ever send it."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.hung: list[str] = []

    def connection_lost(self, exc) -> None:
        for path in self.hung:  # the client gave up on a dead target
            self.state.finished(path)
        self.hung = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            target = head.split(" ", 2)[1]
            if target.startswith(CONTROL):
                body = self.state.control(target)
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                     + str(len(body)).encode() + b"\r\n\r\n" + body)
            else:
                self.respond(target)

    def respond(self, target: str) -> None:
        status = self.state.answer(target)
        path = target.split("?", 1)[0]
        parts = path.split("/")
        if parts[1:2] == ["dead"]:
            self.state.started(path)  # never answered: a hung target, until the client gives up
            self.hung.append(path)
            return
        delay = int(parts[2]) / 1000 if parts[1:2] == ["slow"] and len(parts) > 2 and parts[2].isdigit() else 0
        if not delay:
            self.transport.write(RESPONSES[status])
            return
        self.state.started(path)

        def done() -> None:
            self.state.finished(path)
            if not self.transport.is_closing():
                self.transport.write(RESPONSES[status])

        asyncio.get_running_loop().call_later(delay, done)


async def serve(port: int, ready_file: str | None) -> None:
    state = State()
    server = await asyncio.get_running_loop().create_server(lambda: SinkProtocol(state), "127.0.0.1", port,
                                                            backlog=1024)
    if ready_file:
        with open(ready_file, "w") as fh:
            fh.write(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.ready_file))


if __name__ == "__main__":
    main()
