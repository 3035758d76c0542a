"""Prometheus counters every process records into (multiprocess mode); relay.ops.metrics serves them."""

from __future__ import annotations

from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram

PREFIX = "pact_relay"
# Upper bounds in seconds: a webhook answers in milliseconds, a CI trigger in seconds, a hang hits the timeout.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)


class Instruments:
    """This process's counters; in multiprocess mode their values live in files every process can read."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(f"{PREFIX}_events_received", "POST /events requests by event name and outcome",
                              ["event_name", "outcome"], registry=self.registry)
        self.attempts = Counter(f"{PREFIX}_delivery_attempts", "Delivery attempts by integration and result",
                                ["integration", "result"], registry=self.registry)
        self.latency = Histogram(f"{PREFIX}_delivery_attempt_duration_seconds",
                                 "Time from render to the target's answer (or the error), per attempt",
                                 ["integration"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rate_limited = Counter(f"{PREFIX}_rate_limited_requests", "Requests answered 429 by the rate limiter",
                                    registry=self.registry)
        self.limiter_failed_open = Counter(f"{PREFIX}_rate_limiter_failed_open",
                                           "Requests let through unchecked because Redis was unavailable",
                                           registry=self.registry)


@cache
def instruments() -> Instruments:
    """Built on first use in each process (never at import: multiprocess mode writes files)."""
    return Instruments()


def event_received(event_name: str, outcome: str) -> None:
    instruments().events.labels(event_name=event_name, outcome=outcome).inc()


def attempt_recorded(integration: str, result: str, seconds: float) -> None:
    ins = instruments()
    ins.attempts.labels(integration=integration, result=result).inc()
    ins.latency.labels(integration=integration).observe(seconds)
