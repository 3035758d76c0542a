"""Starting and stopping what is measured: the relay as users run it, the bare stack, the sink, databases, RSS."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from relay.ops.serve import die_with_parent

ROOT = Path(__file__).resolve().parents[1]
# Fixed keys: a benchmark run must not write generated keys anywhere but its own data dir.
ENCRYPTION_KEY = "MpMLmDCCjBk0zXW-ZDRCt09wZJ2Zc7Vfaj0b-RDt5gA="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: dict[str, str] | None = None, root: Path = ROOT) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    # The checkout under test wins over any installed copy of the relay.
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def pact_relay(root: Path = ROOT) -> list[str]:
    """The relay's command; another checkout (`--checkout`) runs from its own virtualenv."""
    if root != ROOT:
        return [str(root / ".venv" / "bin" / "pact-relay")]
    script = Path(sys.executable).parent / "pact-relay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "relay.ops.cli"]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                resp.read()
                return
        except Exception:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode} before {url} answered") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer in {timeout}s") from None
            time.sleep(0.05)


def http_json(method: str, url: str, body=None, token: str | None = None, timeout: float = 30.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


class Processes:
    """Every child this run started, in its own process group, stopped by pid at the end."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        log.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 10.0) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


class Sink:
    """The loopback target in its own process."""

    def __init__(self, procs: Processes, run_dir: Path):
        ready = run_dir / f"sink-{time.monotonic_ns()}.port"
        self.proc = procs.start("sink", [sys.executable, "-m", "benchmarks.sink", "--ready-file", str(ready)],
                                child_env())
        deadline = time.monotonic() + 15
        while not ready.exists() or not ready.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the sink did not start")
            time.sleep(0.02)
        self.port = int(ready.read_text())
        self.base = f"http://127.0.0.1:{self.port}"

    def control(self, action: str, **query) -> dict:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return http_json("GET", f"{self.base}/_sink/{action}" + (f"?{qs}" if qs else ""))

    def stats(self) -> dict:
        return self.control("stats")

    def arrivals(self, path: Path) -> list[tuple[float, str, int]]:
        self.control("dump", path=str(path))
        return [tuple(a) for a in json.loads(path.read_text())]

    def wait_for(self, count: int, timeout: float, settle: float = 0.0) -> dict:
        """Poll until `count` successful arrivals (or the timeout); never asserts on time."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["ok"] >= count or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if settle:
            time.sleep(settle)
            stats = self.stats()
        return stats


@contextmanager
def database(kind: str, run_dir: Path, pg_admin_url: str, name: str):
    """A fresh, empty database for one scenario, dropped afterwards."""
    if kind == "sqlite":
        path = run_dir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    import psycopg

    db = f"pact_relay_bench_{name}_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield pg_admin_url.rsplit("/", 1)[0] + f"/{db}"
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@dataclass
class Relay:
    """The relay started the way users start it: `pact-relay web` and `pact-relay worker` with RELAY_* variables."""

    procs: Processes
    data_dir: Path
    database_url: str
    redis_url: str
    web_workers: int = 2
    threads: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    web: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    token: str = ""
    root: Path = ROOT

    @property
    def env(self) -> dict[str, str]:
        return child_env(root=self.root, extra={
            "RELAY_DATA_DIR": str(self.data_dir), "RELAY_DATABASE_URL": self.database_url,
            "RELAY_REDIS_URL": self.redis_url, "RELAY_SECRET_KEY": "bench-secret-key",
            "RELAY_ENCRYPTION_KEYS": ENCRYPTION_KEY, "RELAY_ALLOW_PRIVATE_NETWORKS": "true",
            # The run empties Redis between measurements; a short heartbeat lets the next workers see the
            # previous ones are gone instead of refusing an emptied fleet Redis (relay/ops/fleet.py).
            "RELAY_FLEET_HEARTBEAT": "0.5",
            # The default 6,000 requests a minute per token would refuse most of a 1,000 events/s run; the
            # limiter still counts every request (its Redis round trip stays in the figures), it never refuses.
            "RELAY_RATE_LIMIT": "100000000/60",
            **self.extra_env})

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        """Migrate and create the admin token with the CLI, as an operator would."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([*pact_relay(self.root), "db", "upgrade"], env=self.env, cwd=self.root, check=True,
                       capture_output=True)
        out = subprocess.run([*pact_relay(self.root), "tokens", "create", "--name", "bench", "--role", "admin"],
                             env=self.env, cwd=self.root, check=True, capture_output=True, text=True)
        self.token = out.stdout.strip().splitlines()[-1]

    def start_web(self) -> None:
        self.port = free_port()
        self.web = self.procs.start("relay-web", [*pact_relay(self.root), "web", "--port", str(self.port),
                                                  "--web-workers", str(self.web_workers), "--threads",
                                                  str(self.threads)], self.env, self.root)
        wait_http(f"{self.base}/healthz", proc=self.web)

    def start_workers(self, count: int) -> None:
        for _i in range(count):
            self.workers.append(self.procs.start(f"relay-worker-{len(self.workers) + 1}",
                                                 [*pact_relay(self.root), "worker"], self.env, self.root))
        wait_workers(self.redis_url, len(self.workers), self.workers)

    def stop_workers(self) -> None:
        for proc in self.workers:
            self.procs.stop(proc)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.web is not None:
            self.procs.stop(self.web)
            self.web = None

    def api(self, method: str, path: str, body=None):
        return http_json(method, self.base + path, body, self.token)


def wait_workers(redis_url: str, count: int, procs: list[subprocess.Popen], timeout: float = 60.0) -> None:
    """Until `count` RQ workers have registered in Redis (so start-up is not part of any measurement)."""
    from redis import Redis
    from rq import Worker

    redis = Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while Worker.count(connection=redis) < count:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not register")
        time.sleep(0.05)
    redis.close()


def bare_gunicorn_argv(port: int, redis_url: str, web_workers: int, threads: int) -> list[str]:
    """The relay's own gunicorn command line with only the application swapped."""
    from relay.ops.serve import gunicorn_argv

    argv = gunicorn_argv("127.0.0.1", port, web_workers, threads)
    argv[argv.index("app:create_app()")] = f"benchmarks.bare:create_app({redis_url!r})"
    return argv


def process_tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            for child in children:
                out += process_tree(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def memory(pid: int) -> dict[str, float]:
    """Current and peak resident set of one process, in MB (VmRSS, VmHWM from /proc)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    except FileNotFoundError:
        return {"rss_mb": 0.0, "peak_mb": 0.0}
    return {"rss_mb": round(values.get("VmRSS", 0.0), 1), "peak_mb": round(values.get("VmHWM", 0.0), 1)}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return ""


def flush_redis(url: str) -> None:
    from redis import Redis

    redis = Redis.from_url(url)
    redis.flushdb()
    redis.close()


def which_wrk() -> str | None:
    return shutil.which("wrk")
