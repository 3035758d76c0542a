"""A worker host's own scrape endpoint (RELAY_METRICS_PORT): the attempts it made, as Prometheus reads them."""

import os
import subprocess

import requests

from tests.conftest import TEST_KEYS, free_port, sample_event
from tests.e2e.conftest import BIN, ROOT, wait_for
from tests.reliability.tools import metric_value

EVENTS = ["contract_published", "contract_content_changed", "provider_verification_published"]


def test_a_worker_host_serves_its_attempt_counter_and_duration_histogram(api, httpserver, settings, tmp_path):
    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post("/webhooks", json={"events": [{"name": name} for name in EVENTS],
                                "request": {"method": "POST", "url": httpserver.url_for("/hook")}})
    for name in EVENTS:
        assert api.post("/events", json=sample_event(name)).status_code == 202
    port = free_port()
    env = {**os.environ, "RELAY_DATA_DIR": str(tmp_path / "worker-host"), "RELAY_DATABASE_URL": settings.database_url,
           "RELAY_REDIS_URL": settings.redis_url, "RELAY_ENCRYPTION_KEYS": TEST_KEYS[0],
           "RELAY_ALLOW_PRIVATE_NETWORKS": "true", "RELAY_METRICS_PORT": str(port), "RELAY_LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    worker = subprocess.Popen([BIN, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(httpserver.log) == len(EVENTS), timeout=60, what="three deliveries")

        def scraped():
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.RequestException:
                return None
            counted = metric_value(text, "pact_relay_delivery_attempts_total", integration="request",
                                   result="succeeded")
            return text if counted == len(EVENTS) else None

        text = wait_for(scraped, timeout=30, what="the worker's metrics")
        assert metric_value(text, "pact_relay_delivery_attempt_duration_seconds_count",
                            integration="request") == len(EVENTS)
        assert metric_value(text, "pact_relay_delivery_attempt_duration_seconds_bucket", integration="request",
                            le="+Inf") == len(EVENTS)
        assert "pact_relay_deliveries_due" not in text  # fleet-wide state is the web's /metrics alone
    finally:
        worker.terminate()
        worker.wait(30)


def test_a_taken_or_bad_metrics_port_is_one_line(settings, tmp_path):
    import socket

    from click.testing import CliRunner

    from relay.ops.cli import main

    env = {"RELAY_DATA_DIR": str(tmp_path / "w"), "RELAY_DATABASE_URL": settings.database_url,
           "RELAY_REDIS_URL": settings.redis_url, "RELAY_ENCRYPTION_KEYS": TEST_KEYS[0]}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["worker", "--burst"], env={**env, "RELAY_METRICS_PORT": str(port)})
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: RELAY_METRICS_PORT: cannot listen on 127.0.0.1:{port}: "
                                     "Address already in use")
    result = CliRunner().invoke(main, ["worker", "--burst"], env={**env, "RELAY_METRICS_PORT": "99999"})
    assert result.output.strip() == "Error: RELAY_METRICS_PORT: '99999' must be a port number from 1 to 65535"
