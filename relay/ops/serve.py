"""`pact-relay serve`: one supervisor for embedded Redis, gunicorn and the workers; clean stop on a signal."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import redis
from sqlalchemy.engine import make_url

from relay import db
from relay.config import Settings
from relay.ops import embedded_redis, fleet
from relay.runtime import Runtime, embedded_redis_url, redis_client

log = logging.getLogger("pact-relay")
PR_SET_PDEATHSIG = 1
RESTART_BACKOFF = (1, 2, 5, 10, 30)


def die_with_parent() -> None:
    """Children get SIGTERM if the supervisor dies, even by SIGKILL: no orphans."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0

    def start(self, env: dict[str, str]) -> None:
        # A session of its own: a terminal's Ctrl-C reaches only the supervisor, which stops the children
        # in order (web and workers first, Redis last) instead of all of them at once.
        self.proc = subprocess.Popen(self.argv, env=env, preexec_fn=die_with_parent, start_new_session=True)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)


def check_port(host: str, port: int) -> None:
    """Fail in one line when the address is taken, rather than restarting the web process forever."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
            probe.bind(address)
    except OSError as exc:
        raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                           "stop what uses it or choose another --port") from None


def gunicorn_argv(host: str, port: int, workers: int, threads: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", f"{host}:{port}", "--workers", str(workers),
            "--threads", str(threads), "--worker-class", "relay.ops.webserver.DeadlineWorker",
            "--logger-class", "relay.ops.logs.GunicornLogger", "--access-logfile", "-",
            "--graceful-timeout", "10", "--timeout", "60", "--no-control-socket"]


def run(settings: Settings, host: str, port: int, workers: int, web_workers: int, threads: int) -> int:
    check_port(host, port)
    settings.ensure_data_dir()
    settings = settings.with_generated_keys()
    env = dict(os.environ)
    env["RELAY_SECRET_KEY"] = settings.secret_key
    if not settings.generated_encryption_keys:  # generated: children read the same key file, and know it
        env["RELAY_ENCRYPTION_KEYS"] = ",".join(settings.encryption_keys)
    env["RELAY_DATA_DIR"] = str(settings.data_dir)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(settings))
    env.pop("RELAY_METRICS_PORT", None)  # the web's /metrics already shows every child's counters
    redis_proc = None
    if settings.redis_url:
        _check_redis(settings.redis_url)  # else every worker would fail and be restarted, forever
    else:
        redis_proc = embedded_redis.start(settings, preexec_fn=die_with_parent, own_session=True)
        env["RELAY_REDIS_URL"] = embedded_redis_url(settings)
        log.info("embedded Redis on %s (pid %d)", env["RELAY_REDIS_URL"], redis_proc.pid)
    db.upgrade(settings)
    log.info("database ready: %s", _safe_url(settings.database_url))
    _join_fleet(settings, env["RELAY_REDIS_URL"] if redis_proc else settings.redis_url, redis_proc)

    children = [Child("web", gunicorn_argv(host, port, web_workers, threads))]
    children += [Child(f"worker-{i + 1}", [sys.executable, "-m", "relay.ops.cli", "worker"]) for i in range(workers)]
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in children:
        child.start(env)
    log.info("Pact Relay listening on http://%s:%d (%d workers); Ctrl-C stops it", host, port, workers)
    redis_restarts, redis_started = 0, time.monotonic()
    try:
        while not stopping:
            if redis_proc is not None and redis_proc.poll() is not None and not stopping:
                # Supervised like the others: the database keeps what was accepted meanwhile, and the sweeper
                # re-enqueues it into the fresh server, so nothing waits for a manual restart.
                if time.monotonic() - redis_started > 60:
                    redis_restarts = 0
                delay = RESTART_BACKOFF[min(redis_restarts, len(RESTART_BACKOFF) - 1)]
                log.warning("embedded Redis exited with %s; restarting in %ds", redis_proc.returncode, delay)
                time.sleep(delay)
                redis_restarts += 1
                try:
                    redis_proc = embedded_redis.start(settings, preexec_fn=die_with_parent, own_session=True)
                    log.info("embedded Redis restarted (pid %d)", redis_proc.pid)
                except Exception as exc:  # noqa: BLE001 -- keep supervising; try again after the next delay
                    log.error("embedded Redis did not start: %s", exc)
                redis_started = time.monotonic()
            for child in children:
                if child.proc.poll() is not None and not stopping:
                    _restart(child, env)
            time.sleep(0.2)
    finally:
        _stop_all([c.proc for c in children if c.proc], redis_proc)
    return 0


def metrics_dir(settings: Settings) -> Path:
    """Where every child writes its counters; emptied at start, as prometheus_client requires."""
    path = settings.metrics_dir or settings.data_dir / "metrics"
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path


def _restart(child: Child, env: dict[str, str]) -> None:
    if time.monotonic() - child.started_at > 60:
        child.restarts = 0
    delay = RESTART_BACKOFF[min(child.restarts, len(RESTART_BACKOFF) - 1)]
    log.warning("%s exited with %s; restarting in %ds", child.name, child.proc.returncode, delay)
    time.sleep(delay)
    child.restarts += 1
    child.start(env)


def _stop_all(procs: list[subprocess.Popen], redis_proc: subprocess.Popen | None, grace: float = 15.0) -> None:
    log.info("stopping")
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if redis_proc is not None:
        redis_proc.terminate()
        try:
            redis_proc.wait(5)
        except subprocess.TimeoutExpired:
            redis_proc.kill()
            redis_proc.wait()
    log.info("stopped")


def _join_fleet(settings: Settings, redis_url: str, redis_proc: subprocess.Popen | None) -> None:
    """The fleet checks (relay.ops.fleet) before any child starts; a refusal stops the embedded Redis too."""
    runtime = Runtime(replace(settings, redis_url=redis_url))
    try:
        fleet.check(runtime, owned_redis=redis_proc is not None)
    except Exception:
        _stop_all([], redis_proc)
        raise
    finally:
        runtime.engine.dispose()
        runtime.redis.close()


def _check_redis(url: str) -> None:
    client = redis_client(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise RuntimeError(f"cannot reach Redis at {_safe_redis_url(url)}: {exc}") from None
    finally:
        client.close()


def _safe_redis_url(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
