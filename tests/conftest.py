"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, the app, tokens and recording servers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import text

from relay.app import create_app
from relay.config import Settings
from relay.db import make_engine, upgrade
from relay.models import Base, utcnow
from relay.runtime import Runtime
from relay.security.tokens import create_token

FIXTURES = Path(__file__).parent / "fixtures"
EVENTS_DIR = FIXTURES / "pactbroker" / "events"
PG_ADMIN_URL = os.environ.get("RELAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RELAY_TEST_REDIS")  # unset: each test process runs a Redis server of its own
TEST_KEYS = ("MpMLmDCCjBk0zXW-ZDRCt09wZJ2Zc7Vfaj0b-RDt5gA=",)



def pytest_collection_modifyitems(items):
    """The tests that start process trees (marked e2e) run first: xdist hands out its first batch round robin, so
    they are shared between both workers at the start and the many quick tests fill in around them, instead of
    one worker finishing the long ones alone at the end. A stable sort keeps each module's own order."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("e2e") else 1)


def sample_event(name: str) -> dict[str, str]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def sample_events() -> list[str]:
    return sorted(p.stem for p in EVENTS_DIR.glob("*.json"))


def _worker_id(config) -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


@pytest.fixture(scope="session")
def worker_number(request) -> int:
    wid = _worker_id(request.config)
    return int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else 0


@pytest.fixture(scope="session")
def pg_database(worker_number):
    """A PostgreSQL database of this test process's own, migrated once."""
    name = f"relay_test_{worker_number}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings.from_env({}, database_url=url, secret_key="x", encryption_keys=TEST_KEYS)
    engine = make_engine(settings)
    upgrade(settings, engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    settings = Settings.from_env({}, database_url=f"sqlite:///{path}", secret_key="x", encryption_keys=TEST_KEYS)
    engine = make_engine(settings)
    upgrade(settings, engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        path = tmp_path / "relay.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    settings = Settings.from_env({}, database_url=url, secret_key="x", encryption_keys=TEST_KEYS)
    engine = make_engine(settings)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name != "audit_head")
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        conn.execute(text("UPDATE audit_head SET seq = 0, hash = :genesis"), {"genesis": "0" * 64})
    engine.dispose()
    return url


PUBLIC_ADDRESS = "93.184.216.34"
LOOPBACK_REFUSED = ("refused connection to 127.0.0.1: a loopback address "
                    "(set RELAY_ALLOW_PRIVATE_NETWORKS=true to allow)")


@pytest.fixture
def rebinding(monkeypatch) -> list[str]:
    """DNS rebinding: `rebind.test` answers a public address to the first lookup (the guard's pre-connect
    check) and 127.0.0.1 to every later one (the library's own, just before it connects). Returns the lookups."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        if host == "rebind.test":
            host = PUBLIC_ADDRESS if not lookups else "127.0.0.1"
            lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int, tmp_dir: Path) -> subprocess.Popen:
    """A real Redis (Valkey) server on 127.0.0.1:port, answering once this returns."""
    from relay.ops.embedded_redis import launch

    return launch(["--port", str(port), "--bind", "127.0.0.1"], tmp_dir, Redis(port=port, socket_connect_timeout=1),
                  timeout=20)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Redis for this test process alone: test runs sharing a machine must not take each other's jobs."""
    if REDIS_URL:
        yield REDIS_URL
        return
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(worker_number, redis_server):
    """A real Redis database of this test process's own, emptied for each test."""
    url = f"{redis_server}/{1 + worker_number % 15}"
    client = Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def make_settings(tmp_path: Path, database_url: str, redis_url: str, **overrides) -> Settings:
    env = {"RELAY_DATA_DIR": str(tmp_path / "data"), "RELAY_ALLOW_PRIVATE_NETWORKS": "true",
           "RELAY_RETRY_SCHEDULE": "10 60"}
    values = dict(database_url=database_url, redis_url=redis_url, secret_key="test-secret-key",
                  encryption_keys=TEST_KEYS)
    values.update(overrides)
    return Settings.from_env(env, **values)


@pytest.fixture
def settings(tmp_path, database_url, redis_url) -> Settings:
    return make_settings(tmp_path, database_url, redis_url)


@pytest.fixture
def runtime(settings):
    rt = Runtime(settings)
    yield rt
    rt.engine.dispose()
    rt.redis.close()


@pytest.fixture
def app(runtime):
    application = create_app(runtime=runtime)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    app.test_client_class = ClosingClient
    return app.test_client()


class ClosingClient(FlaskClient):
    """Closes every response as a WSGI server does, so work queued with call_on_close (enqueueing) runs."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def _token(runtime: Runtime, role: str) -> str:
    with runtime.sessions.begin() as session:
        _, value = create_token(session, f"test-{role}", role)
    return value


@pytest.fixture
def tokens(runtime) -> dict[str, str]:
    return {role: _token(runtime, role) for role in ("admin", "write", "read", "intake")}


@pytest.fixture
def api(client, tokens):
    """The test client with an admin token: api.post("/webhooks", json=...)."""

    class Api:
        def __init__(self, role="admin"):
            self.headers = {"Authorization": f"Bearer {tokens[role]}"}

        def as_role(self, role):
            return Api(role)

        def __getattr__(self, method):
            def call(path, **kwargs):
                headers = {**self.headers, **kwargs.pop("headers", {})}
                return getattr(client, method)(path, headers=headers, **kwargs)

            return call

    return Api()


@pytest.fixture
def drain(runtime):
    """Send what intake's feed holds, then run a real RQ worker in burst mode until the queue is empty."""
    from workers.worker import RelayWorker, send_fresh

    def run() -> None:
        send_fresh(runtime)
        RelayWorker(runtime).work(burst=True, logging_level="WARNING")

    return run


@pytest.fixture
def cli(settings):
    """Run `pact-relay ...` in-process against the test database: cli("tokens", "list", input=...)."""
    from click.testing import CliRunner

    from relay.ops.cli import main

    env = {"RELAY_DATABASE_URL": settings.database_url, "RELAY_REDIS_URL": settings.redis_url,
           "RELAY_SECRET_KEY": settings.secret_key, "RELAY_ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
           "RELAY_DATA_DIR": str(settings.data_dir)}

    def run(*args, input=None, keys=None, **extra_env):
        runner = CliRunner()
        environment = {**env, **extra_env}
        if keys is not None:
            environment["RELAY_ENCRYPTION_KEYS"] = keys
        return runner.invoke(main, list(args), input=input, env=environment, catch_exceptions=False)

    return run


@pytest.fixture
def make_user(runtime):
    """Create a web UI user directly: make_user("a@example.com", "admin", "a long password")."""
    from relay.security.users import create_user

    def make(email: str, role: str = "admin", password: str = "correct horse battery") -> str:
        with runtime.sessions.begin() as session:
            create_user(session, email, role, password)
        return password

    return make


SAMPLE_SHA = "5d445a4612743728dfd99ccd4210423c052bb9db"


def pact_event(name: str, sha: str = SAMPLE_SHA, n: int | None = None, **overrides: str) -> dict[str, str]:
    """A sample event rewritten for pact content `sha` and (for verifications) result number `n`."""
    variables = sample_event(name)
    variables["pactUrl"] = variables["pactUrl"].replace(SAMPLE_SHA, sha)
    if variables["verificationResultUrl"]:
        url = variables["verificationResultUrl"].replace(SAMPLE_SHA, sha)
        variables["verificationResultUrl"] = url.rsplit("/", 1)[0] + f"/{n if n is not None else 1}"
    variables.update(overrides)
    return variables


class Since:
    """Bounds on when the relay did something: from just before the action to the moment a check is made.

    A time the relay computed from that moment (a hold, a retry, a cool-down, a debounce window) is checked against
    these bounds shifted by the delay it promises, never against the clock when the assertion runs, so a slow or
    loaded machine cannot fail the check and a wrong delay still does.
    """

    def __init__(self) -> None:
        self.start = utcnow() - timedelta(seconds=1)  # times stored in SQLite may be cut to the second

    def later_by(self, at: str | datetime, seconds: float, most: float | None = None) -> bool:
        """`at` lies `seconds` (up to `most`, when given) after a moment between the start and now."""
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.start.tzinfo)
        low = self.start + timedelta(seconds=seconds)
        high = utcnow() + timedelta(seconds=seconds if most is None else most)
        assert low <= moment <= high, f"{moment} is not {seconds} s after a moment in [{self.start}, now]"
        return True
