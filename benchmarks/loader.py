"""The load generator, run as its own process: closed-loop (N connections flat out) or open-loop (a steady rate)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from benchmarks.stats import percentiles


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.buffer = b""
        self.waiter: asyncio.Future | None = None
        self.transport = None
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length:]
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(int(head[9:12]))

    @property
    def usable(self) -> bool:
        return not self.lost.done() and not self.transport.is_closing()

    async def request(self, data: bytes, timeout: float = 60.0) -> int:
        if not self.usable:  # the server closed it while idle (keep-alive timeout)
            raise ConnectionError("closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await asyncio.wait_for(self.waiter, timeout)


class Requests:
    """Builds the bytes of request number `seq`: events get a unique body so none is de-duplicated."""

    def __init__(self, spec: dict):
        self.host = f"{spec['host']}:{spec['port']}"
        self.path = spec["path"]
        self.method = spec.get("method", "GET")
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items())
        self.body = spec.get("body")  # a string with "@SEQ@" where the sequence number goes
        self.run = spec.get("run", "r")

    def build(self, seq: int) -> bytes:
        head = f"{self.method} {self.path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}"
        if self.body is None:
            return (head + "\r\n").encode()
        body = self.body.replace("@SEQ@", f"{self.run}-{seq}").encode()
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def connect(spec: dict) -> Connection:
    _, conn = await asyncio.get_running_loop().create_connection(Connection, spec["host"], spec["port"])
    return conn


async def closed_loop(spec: dict, reqs: Requests) -> dict:
    """`concurrency` connections send back to back; counts only what completes after the warm-up."""
    concurrency, duration, warmup = spec["concurrency"], spec["duration"], spec.get("warmup", 0.5)
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration
    latencies: list[float] = []
    last_done = [measure_from]
    statuses: dict[int, int] = {}
    counter = iter(range(spec.get("count", 10**9)))

    async def one_connection():
        conn = await connect(spec)
        while True:
            if not conn.usable:
                conn = await connect(spec)
            sent = time.monotonic()
            seq = next(counter, None)
            if sent >= stop_at or seq is None:
                break
            try:
                status = await conn.request(reqs.build(seq))
            except (ConnectionError, TimeoutError):
                status = 0
            done = time.monotonic()
            if done >= measure_from and done < stop_at:
                latencies.append(done - sent)
                last_done[0] = max(last_done[0], done)
                statuses[status] = statuses.get(status, 0) + 1
        conn.transport.close()

    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    good = sum(n for s, n in statuses.items() if s in spec.get("expect", (200, 202)))
    elapsed = min(stop_at, last_done[0]) - measure_from
    return {"mode": "closed", "concurrency": concurrency, "duration": round(elapsed, 3), "statuses": statuses,
            "rps": good / elapsed if elapsed > 0 else 0.0, "latency_ms": percentiles([x * 1000 for x in latencies])}


async def open_loop(spec: dict, reqs: Requests) -> dict:
    """Request i leaves at start + i/rate whatever came back before (no coordinated omission)."""
    rate, count = spec["rate"], spec["count"]
    idle: list[Connection] = [await connect(spec) for _ in range(spec.get("connections", 4))]
    records: dict[int, tuple[float, float, int]] = {}
    tasks = []

    async def one(seq: int, due: float):
        status = 0
        for _ in range(3):
            conn = idle.pop() if idle else await connect(spec)
            try:
                status = await conn.request(reqs.build(seq))
            except (ConnectionError, TimeoutError):
                conn.transport.close()
                continue
            idle.append(conn)
            break
        records[seq] = (due, time.monotonic(), status)

    start = time.monotonic() + 0.05
    for seq in range(count):
        due = start + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(seq, due)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.transport.close()
    statuses: dict[int, int] = {}
    for _, _, status in records.values():
        statuses[status] = statuses.get(status, 0) + 1
    end = max(r[1] for r in records.values())
    return {"mode": "open", "rate": rate, "count": count, "statuses": statuses,
            "achieved_rps": count / (end - start) if end > start else 0.0,
            "latency_ms": percentiles([(done - due) * 1000 for due, done, _ in records.values()]),
            "responses": {reqs.run + "-" + str(seq): r[1] for seq, r in records.items()},
            "statuses_by_key": {reqs.run + "-" + str(seq): r[2] for seq, r in records.items()}}


def run(spec: dict) -> dict:
    reqs = Requests(spec)
    return asyncio.run(closed_loop(spec, reqs) if "concurrency" in spec else open_loop(spec, reqs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec", help="JSON file describing the load")
    parser.add_argument("out", help="where to write the JSON result")
    args = parser.parse_args()
    with open(args.spec) as fh:
        spec = json.load(fh)
    result = run(spec)
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
