"""`python -m benchmarks.intake_cpu [--db sqlite|postgresql|both] [--events N] [--profile]`: CPU per intake request."""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
from rq import Queue

from benchmarks.scenarios import EVENT
from relay.app import create_app
from relay.config import Settings
from relay.db import upgrade
from relay.runtime import Runtime
from relay.security.tokens import create_token

SHA = "5d445a4612743728dfd99ccd4210423c052bb9db"
BASE = f"https://broker.example.com/pacts/provider/P/consumer/C/pact-version/{SHA}"
VERIFICATION = {
    **EVENT, "eventName": "provider_verification_succeeded", "providerVersionNumber": "@SEQ@",
    "providerVersionBranch": "main", "providerVersionTags": "test, prod",
    "verificationResultUrl": f"{BASE}/verification-results/@SEQ@", "githubVerificationStatus": "success",
}
# What the relay's own hot functions cost, as a share of the whole request (cumulative time).
WATCH = ("relay/security/tokens.py:*(authenticate)", "relay/security/ratelimit.py:*(check)",
         "relay/intake/events.py:*(receive)", "relay/pairs/store.py:*(record)",
         "relay/delivery/queue.py:*(enqueue_fresh)", "relay/web/api/events.py:*(receive)")


def bodies(kind: str, count: int, start: int) -> list[bytes]:
    """Unique bodies: scenario 1's publication, a verification with tags, or both alternating."""
    templates = {"published": [EVENT], "verification": [VERIFICATION], "mixed": [EVENT, VERIFICATION]}[kind]
    return [json.dumps(templates[i % len(templates)]).replace("@SEQ@", str(start + i)).encode()
            for i in range(count)]


def _server_cpu(conn: psycopg.Connection | None, database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving the benchmark database (same machine, /proc)."""
    if conn is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def run(db: str, kind: str, count: int, profile: bool, pg_admin_url: str, redis_url: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="intake-cpu-"))
    name = f"relay_intake_cpu_{os.getpid()}"
    admin = None
    if db == "postgresql":
        admin = psycopg.connect(pg_admin_url, autocommit=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{tmp / 'relay.db'}"
    queue = f"intake-cpu-{os.getpid()}"
    settings = Settings.from_env({"RELAY_DATA_DIR": str(tmp), "RELAY_ALLOW_PRIVATE_NETWORKS": "true"},
                                 database_url=url, redis_url=redis_url, secret_key="x", queue_name=queue,
                                 encryption_keys=("MpMLmDCCjBk0zXW-ZDRCt09wZJ2Zc7Vfaj0b-RDt5gA=",),
                                 rate_limit=100_000_000)  # counted as by default, never refused
    runtime = Runtime(settings)
    try:
        upgrade(runtime.settings, runtime.engine)
        with runtime.sessions.begin() as session:
            _, admin_token = create_token(session, "admin", "admin")
            _, intake_token = create_token(session, "intake", "intake")
        client = create_app(runtime=runtime).test_client()
        hook = {"description": "sink", "events": [{"name": EVENT["eventName"]}, {"name": VERIFICATION["eventName"]}],
                "request": {"method": "POST", "url": "http://127.0.0.1:9/hook", "body": "${pactbroker.eventName}"}}
        created = client.post("/webhooks", json=hook, headers={"Authorization": f"Bearer {admin_token}"})
        assert created.status_code == 201, created.data
        headers = {"Authorization": f"Bearer {intake_token}", "Content-Type": "application/json"}

        def post(batch: list[bytes]) -> None:
            for body in batch:
                response = client.post("/events", data=body, headers=headers)
                assert response.status_code == 202, response.data
                response.close()  # runs the after-response enqueue, as a WSGI server does

        post(bodies(kind, 200, 0))  # warm up: caches, pool, first-use imports
        batch = bodies(kind, count, 1000)
        server_before, cpu, wall = _server_cpu(admin, name), time.process_time(), time.perf_counter()
        post(batch)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        server = _server_cpu(admin, name) - server_before
        line = f"{db:10} {kind:12} {count} events: {cpu / count * 1000:.3f} ms CPU/event in the web process"
        if admin is not None:
            line += f", {server / count * 1000:.3f} ms in PostgreSQL"
        print(f"{line}; wall {wall / count * 1000:.3f} ms/event; load {os.getloadavg()[0]:.2f}", flush=True)
        if profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.runcall(post, bodies(kind, count, 10**6))
            stats = pstats.Stats(profiler, stream=io.StringIO())
            _report(stats)
    finally:
        Queue(queue, connection=runtime.redis).empty()
        runtime.redis.close()
        runtime.engine.dispose()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _report(stats: pstats.Stats) -> None:
    total = stats.total_tt
    print(f"  profile: {total:.2f} s CPU; share of the whole, cumulative:")
    for pattern in WATCH:
        path, func = pattern.split(":*(")
        func = func.rstrip(")")
        cum = sum(v[3] for (file, _, name), v in stats.stats.items() if file.endswith(path) and name == func)
        print(f"    {cum / total:6.1%}  {path}:{func}")
    stats.stream = out = io.StringIO()
    stats.sort_stats("tottime").print_stats(15)
    print("  top by own time:")
    for line in out.getvalue().splitlines():
        if line.strip() and line.lstrip()[0].isdigit():
            print("   ", line.strip())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.intake_cpu", description=__doc__)
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--kind", choices=("published", "verification", "mixed"), action="append")
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--profile", action="store_true", help="then profile as many more events with cProfile")
    p.add_argument("--pg-admin-url", default=os.environ.get("RELAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = p.parse_args(argv)
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        for kind in args.kind or ("published", "verification"):
            run(db, kind, args.events, args.profile, args.pg_admin_url, args.redis_url)


if __name__ == "__main__":
    main()
