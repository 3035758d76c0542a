"""A relay whose RELAY_BROKER_URL is a loopback server replaying the Pact Broker, and a target for its deliveries."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import free_port, make_settings
from workers.worker import RelayWorker, send_fresh

BROKER_TOKEN = "broker-token-never-shown"


@pytest.fixture
def broker_url(httpserver) -> str:
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


class _Worker(RelayWorker):
    """The relay's worker without RQ's command channel: against this Redis its pub/sub thread takes a minute to
    stop at the end of every burst (also in tests/conftest.py's drain), and these tests need no `rq` commands."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


@pytest.fixture
def drain(runtime):
    """Send what intake's feed holds, then run the jobs RQ holds (the broker reads) on a real worker, in burst."""

    def run() -> None:
        send_fresh(runtime)
        _Worker(runtime).work(burst=True, logging_level="WARNING")

    return run
