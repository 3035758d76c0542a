"""End-to-end fixtures: `pact-relay serve` as a real process tree, and a recording HTTP sink."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

BIN = str(Path(sys.executable).with_name("pact-relay"))
# The console script would import the package from wherever it was installed (editable: another checkout);
# the process tree must run this checkout's code and migrations.
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")


class Sink:
    """A threaded HTTP server that records every request; `behaviour(n, request)` picks (status, delay).

    It counts requests in flight (overall and per path) and keeps the most seen at once: `most[""]`, `most[path]`.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.behaviour = lambda n, req: (200, 0)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a killed worker): nothing arrived
                    self.close_connection = True
                    return
                req = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body.decode(),
                       "client": self.client_address[0], "at": time.time()}
                with sink.lock:
                    sink.requests.append(req)
                    n = len(sink.requests)
                status, delay = sink.behaviour(n, req)
                keys = ("", self.path.split("?", 1)[0])
                with sink.lock:
                    for key in keys:
                        sink.now[key] = sink.now.get(key, 0) + 1
                        sink.most[key] = max(sink.most.get(key, 0), sink.now[key])
                try:
                    time.sleep(delay)
                finally:
                    with sink.lock:
                        for key in keys:
                            sink.now[key] -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


class Relay:
    """One `pact-relay serve` process tree on a free port."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "RELAY_DATA_DIR": str(data_dir), "RELAY_ALLOW_PRIVATE_NETWORKS": "true",
                    "RELAY_LEASE_SECONDS": "3", "RELAY_SWEEP_INTERVAL": "0.5", "RELAY_SWEEP_GRACE": "0.5",
                    "RELAY_RETRY_SCHEDULE": "1 1 1 1 1 1", "RELAY_LOG_LEVEL": "WARNING",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                    **extra_env}
        if "RELAY_REDIS_URL" not in extra_env:
            self.env.pop("RELAY_REDIS_URL", None)
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.token: str | None = None

    def start(self, workers: int = 2, web_workers: int = 1, threads: int = 4) -> Relay:
        self.proc = subprocess.Popen([BIN, "serve", "--port", str(self.port), "--workers", str(workers),
                                      "--web-workers", str(web_workers), "--threads", str(threads)],
                                     env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)  # a process group of its own, as in a terminal
        wait_for(self._ready, timeout=90, what=f"relay ready (log: {self.log})")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            return requests.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([BIN, *args], env=self.env, capture_output=True, text=True, input=input, timeout=60)

    def admin_token(self) -> str:
        if self.token is None:
            result = self.cli("tokens", "create", "--name", "e2e", "--role", "admin")
            assert result.returncode == 0, result.stderr
            self.token = result.stdout.strip()
        return self.token

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.admin_token()}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def descendants(self) -> list[int]:
        return descendants(self.proc.pid)

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def relay_factory(tmp_path):
    started: list[Relay] = []

    def make(data_dir: Path | None = None, **env) -> Relay:
        relay = Relay(data_dir or tmp_path / "data", env)
        started.append(relay)
        return relay

    yield make
    for relay in started:
        relay.stop()


@pytest.fixture
def fresh_pg_url():
    """An empty PostgreSQL database: `serve` must migrate it itself."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    name = f"relay_e2e_{os.getpid()}_{free_port()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The browser tests' fixtures: Debian's Chromium under Playwright, signed-in data, screenshots.
CHROMIUM = "/usr/bin/chromium"
EMAIL, PASSWORD = "ada@example.com", "correct horse battery staple"
# Set to a folder (e.g. docs/screenshots) to also keep the screenshots there.
KEEP = os.environ.get("UI_SCREENSHOTS_DIR")


@pytest.fixture
def shots(tmp_path):
    folder = tmp_path / "screenshots"
    folder.mkdir()

    def take(page, name: str, full_page: bool = True) -> None:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        if KEEP:
            Path(KEEP).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(KEEP) / path.name)

    take.folder = folder
    yield take
    print(f"\nscreenshots: {folder}")


@pytest.fixture
def served(relay_factory):
    relay = relay_factory().start()
    made = relay.cli("users", "create", EMAIL, "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    intake = relay.cli("tokens", "create", "--name", "broker", "--role", "intake")
    assert intake.returncode == 0, intake.stderr
    relay.intake = intake.stdout.strip()
    return relay


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())  # the "are you sure?" of delete and revoke
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Console errors, except the ones Chromium logs for pages deliberately answered 400/403.
        page.on("console", lambda msg: errors.append(msg.text)
                if msg.type == "error" and "Failed to load resource" not in msg.text else None)
        yield page
        context.close()
        browser.close()
        assert not errors, f"browser errors: {errors}"
