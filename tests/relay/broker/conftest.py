"""A relay whose RELAY_BROKER_URL is a loopback server replaying the Pact Broker, and a target for its deliveries."""

from __future__ import annotations

import socket

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import free_port, make_settings

BROKER_TOKEN = "broker-token-never-shown"


@pytest.fixture
def broker_url(request, httpserver) -> str:
    """The loopback broker; `@pytest.mark.parametrize("broker_url", ["down"], indirect=True)` gives a broker that
    refuses every connection: a port held bound but never listening, so no other server can take it meanwhile."""
    if getattr(request, "param", None) == "down":
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        request.addfinalizer(closed.close)
        return f"http://127.0.0.1:{closed.getsockname()[1]}"
    return httpserver.url_for("/").rstrip("/")


@pytest.fixture
def broker_timeout() -> float:
    """The broker's time limit and the bound of a first send's wait for its answers: short, for the bad answers;
    a test whose send must carry an answer parametrises it long, so a loaded machine never reaches it."""
    return 0.5


@pytest.fixture
def settings(tmp_path, database_url, redis_url, broker_url, broker_timeout):
    return make_settings(tmp_path, database_url, redis_url, broker_url=broker_url, broker_token=BROKER_TOKEN,
                         broker_timeout=broker_timeout)


@pytest.fixture
def target():
    """Where the relay's deliveries go: a server of its own, so a stalled broker holds up nothing there."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.start()
    yield server
    server.clear()
    server.stop()
