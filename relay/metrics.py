"""Prometheus metrics: counters from every process (multiprocess mode), state read from the database and Redis."""

from __future__ import annotations

import logging
from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from relay.models import Delivery, Event, Webhook, utcnow
from relay.runtime import Runtime

log = logging.getLogger(__name__)
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


class StateCollector:
    """Gauges computed at scrape time from the source of truth, so every web process reports the same."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def collect(self):
        families: list = []
        up = GaugeMetricFamily(f"{PREFIX}_up", "Whether the relay could read this dependency during the scrape",
                               labels=["component"])
        up.add_metric(["database"], self._database(families))
        up.add_metric(["redis"], self._redis(families))
        yield up
        yield from families

    def _database(self, out: list) -> float:
        now = utcnow()
        try:
            with self.runtime.sessions() as session:
                events = session.execute(select(Event.name, func.count()).group_by(Event.name)).all()
                deliveries = session.execute(
                    select(func.coalesce(Webhook.kind, "deleted"), Delivery.status, func.count())
                    .select_from(Delivery).outerjoin(Webhook, Webhook.uuid == Delivery.webhook_uuid)
                    .group_by(Webhook.kind, Delivery.status)).all()
                due = session.execute(
                    select(func.count(), func.min(Delivery.next_attempt_at))
                    .where(Delivery.status.in_(("pending", "retrying")), Delivery.next_attempt_at <= now)).one()
        except Exception as exc:
            log.warning("metrics: database unavailable: %s", type(exc).__name__)
            return 0.0
        stored = GaugeMetricFamily(f"{PREFIX}_events_stored", "Events in the database by name", labels=["event_name"])
        for name, count in events:
            stored.add_metric([name], count)
        by_status = GaugeMetricFamily(f"{PREFIX}_deliveries", "Deliveries in the database by integration and status",
                                      labels=["integration", "status"])
        for kind, status, count in deliveries:
            by_status.add_metric([kind, status], count)
        count, oldest = due
        oldest_age = (now - oldest).total_seconds() if oldest is not None else 0.0
        out += [stored, by_status,
                GaugeMetricFamily(f"{PREFIX}_deliveries_due", "Pending or retrying deliveries whose time has come",
                                  value=count),
                GaugeMetricFamily(f"{PREFIX}_oldest_due_delivery_age_seconds",
                                  "How long the longest-waiting due delivery has been due (0 when none)",
                                  value=max(0.0, oldest_age))]
        return 1.0

    def _redis(self, out: list) -> float:
        from relay.delivery.queue import queue

        name = self.runtime.settings.queue_name
        try:
            q = queue(self.runtime.redis, name)
            pipe = self.runtime.redis.pipeline()
            pipe.llen(q.key)
            pipe.zcard(q.scheduled_job_registry.key)
            queued, scheduled = pipe.execute()
        except Exception as exc:
            log.warning("metrics: Redis unavailable: %s", type(exc).__name__)
            return 0.0
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Jobs waiting in Redis: queued now or scheduled for later",
                                  labels=["queue", "state"])
        depth.add_metric([name, "queued"], queued)
        depth.add_metric([name, "scheduled"], scheduled)
        out.append(depth)
        return 1.0


def expose(settings) -> None:
    """A worker's own scrape endpoint (RELAY_METRICS_PORT): this process's counters, or every process's sharing its
    PROMETHEUS_MULTIPROC_DIR. Scrape-time state (deliveries, queue depth) stays on the web's /metrics: one fleet,
    one copy."""
    from prometheus_client import start_http_server

    from relay.config import ConfigError

    registry = CollectorRegistry(auto_describe=False)
    if settings.metrics_dir is not None and settings.metrics_dir.is_dir():
        MultiProcessCollector(registry, path=str(settings.metrics_dir))
    else:
        registry.register(_Local())
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"RELAY_METRICS_PORT: cannot listen on {settings.metrics_host}:{settings.metrics_port}: "
                          f"{exc.strerror or exc}") from None
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)


def render(runtime: Runtime) -> bytes:
    """The Prometheus text exposition of every process's counters plus the scrape-time state."""
    registry = CollectorRegistry(auto_describe=False)
    metrics_dir = runtime.settings.metrics_dir
    if metrics_dir is not None and metrics_dir.is_dir():
        MultiProcessCollector(registry, path=str(metrics_dir))
    else:
        registry.register(_Local())
    registry.register(StateCollector(runtime))
    return generate_latest(registry)


class _Local:
    def collect(self):
        yield from instruments().registry.collect()

