"""H2: slow clients do not take the relay down (default serve: 2 gunicorn workers x 4 threads)."""

from benchmarks.slow_clients import measure


def test_200_slow_clients_leave_health_intake_and_ui_answering(relay_factory):
    relay = relay_factory().start(web_workers=2, threads=4)
    results = measure(relay.url, clients=200, seconds=6)
    for name, times in results.items():
        assert times and None not in times, f"{name}: no answer within 10 s"
        assert max(times) < 1.0, f"{name}: answered after {max(times):.2f} s"
    assert set(results) == {"GET /healthz", "POST /events", "GET /ui/sign-in"}
