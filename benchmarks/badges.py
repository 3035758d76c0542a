"""Badge requests per second against a real gunicorn, next to a bare Flask app serving a constant SVG.

    python benchmarks/badges.py [--seconds 5] [--clients 4] [--postgres ADMIN_URL]

Both apps run under the same gunicorn settings as `pact-relay web` (relay.ops.serve.gunicorn_argv), one at a time,
while client processes keep one HTTP/1.1 connection each and GET as fast as they can.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVENTS = ROOT / "tests" / "fixtures" / "pactbroker" / "events"


def bare():
    """The comparison app for gunicorn (`benchmarks.badges:bare()`): one route, one constant SVG."""
    from flask import Flask, Response

    from relay.pairs.badges import render_badge

    svg = render_badge("matching service/animal profile service pact", "verified")
    app = Flask("bare")

    @app.get("/badge")
    def badge():
        return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "no-cache"})

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(target: str, env: dict[str, str], workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    from relay.ops.serve import gunicorn_argv

    port = free_port()
    argv = gunicorn_argv("127.0.0.1", port, workers, threads)
    argv[argv.index("app:create_app()")] = target
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn for {target} exited with {proc.returncode}") from None
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"gunicorn for {target} did not listen within 30 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _client(port: int, path: str, headers: dict, expect: int, seconds: float, start_at: float, out) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = []
    while time.time() < start_at:
        time.sleep(0.001)
    end = time.perf_counter() + seconds
    errors = 0
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status != expect:
            errors += 1
        latencies.append(time.perf_counter() - t0)
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    out.put((latencies, errors))


def load(port: int, path: str, headers: dict, expect: int, seconds: float, clients: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.0
    procs = [ctx.Process(target=_client, args=(port, path, headers, expect, seconds, start_at, out))
             for _ in range(clients)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    n = len(latencies)
    return {"requests": n, "rps": n / seconds, "errors": errors,
            "p50_ms": latencies[n // 2] * 1000 if n else 0.0, "p99_ms": latencies[int(n * 0.99)] * 1000 if n else 0.0}


def prepare(env: dict[str, str]) -> str:
    """Migrate the database and make an intake token; returns the token."""
    from relay import db
    from relay.config import Settings
    from relay.runtime import Runtime
    from relay.security.tokens import create_token

    runtime = Runtime(Settings.from_env(env))
    db.upgrade(runtime.settings, runtime.engine)
    with runtime.sessions.begin() as session:
        _, token = create_token(session, "benchmark", "intake")
    runtime.engine.dispose()
    return token


def feed(port: int, token: str) -> None:
    for name in ("contract_published", "provider_verification_succeeded"):
        status, _, body = request(port, "POST", "/events", (EVENTS / f"{name}.json").read_bytes(),
                                  {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        if status not in (200, 202):
            raise RuntimeError(f"POST /events answered {status}: {body[:200]!r}")


@contextmanager
def scratch_database(admin_url: str | None):
    if not admin_url:
        yield None
        return
    import psycopg

    name = f"relay_bench_badges_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4, help="client processes, one connection each")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgres", metavar="ADMIN_URL",
                        help="run on a scratch database created (and dropped) through this PostgreSQL URL; "
                             "default: a new SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp, scratch_database(args.postgres) as pg_url:
        env = {**os.environ, "RELAY_DATA_DIR": tmp, "RELAY_LOG_LEVEL": "WARNING",
               "RELAY_DATABASE_URL": pg_url or f"sqlite:///{tmp}/relay.db",
               "RELAY_REDIS_URL": os.environ.get("RELAY_REDIS_URL", "redis://127.0.0.1:6379/15")}
        env.pop("RELAY_PRIVATE_BADGES", None)
        token = prepare(env)
        from relay.config import Settings

        env["RELAY_SECRET_KEY"] = Settings.from_env(env).with_generated_keys().secret_key
        rows = []
        proc, port = start("benchmarks.badges:bare()", env, args.web_workers, args.threads)
        try:
            rows.append(("bare Flask, constant SVG", load(port, "/badge", {}, 200, args.seconds, args.clients)))
        finally:
            stop(proc)
        proc, port = start("app:create_app()", env, args.web_workers, args.threads)
        try:
            feed(port, token)
            path = "/pacts/provider/Animal%20Profile%20Service/consumer/Matching%20Service/latest/badge.svg"
            status, headers, body = request(port, "GET", path)
            if status != 200 or b">verified<" not in body:
                raise RuntimeError(f"badge answered {status}: {body[:200]!r}")
            rows.append(("relay badge, 200 (render cached)", load(port, path, {}, 200, args.seconds, args.clients)))
            rows.append(("relay badge, 304 If-None-Match", load(port, path, {"If-None-Match": headers["ETag"]}, 304,
                                                                 args.seconds, args.clients)))
            rows.append(("relay badge JSON twin", load(port, path, {"Accept": "application/json"}, 200,
                                                       args.seconds, args.clients)))
        finally:
            stop(proc)

    database = "postgresql" if args.postgres else "sqlite"
    print(f"gunicorn gthread, {args.web_workers} workers x {args.threads} threads; {args.clients} client processes, "
          f"{args.seconds:g} s each; {database}; {os.cpu_count()} CPUs shared by server and clients")
    print(f"{'':<36} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in rows:
        print(f"{name:<36} {r['requests']:>9} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['errors']:>7}")


if __name__ == "__main__":
    main()
