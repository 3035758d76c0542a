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
def settings(tmp_path, database_url, redis_url, broker_url):
    return make_settings(tmp_path, database_url, redis_url, broker_url=broker_url, broker_token=BROKER_TOKEN,
                         broker_timeout=0.5)


@pytest.fixture
def target():
    """Where the relay's deliveries go: a server of its own, so a stalled broker holds up nothing there."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.start()
    yield server
    server.clear()
    server.stop()
