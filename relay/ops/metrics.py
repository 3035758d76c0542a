"""GET /metrics: every process's counters plus gauges read at scrape time from the database and Redis."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from relay.config import ConfigError, Settings
from relay.delivery import queue
from relay.metrics import PREFIX, instruments
from relay.models import Delivery, Event, TargetState, Webhook, utcnow
from relay.runtime import Runtime

log = logging.getLogger(__name__)


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
                paused = session.scalars(select(TargetState.webhook_uuid)
                                         .where(TargetState.paused_since.is_not(None))).all()
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
        paused_one = GaugeMetricFamily(f"{PREFIX}_webhook_paused",
                                       "1 for each webhook the circuit breaker paused (its deliveries wait)",
                                       labels=["webhook"])
        for uuid in paused:
            paused_one.add_metric([uuid], 1)
        out += [paused_one, GaugeMetricFamily(f"{PREFIX}_webhooks_paused", "Webhooks paused by the circuit breaker",
                                              value=len(paused))]
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
        name = self.runtime.settings.queue_name
        try:
            queued, scheduled = queue.depth(self.runtime.redis, name)
        except Exception as exc:
            log.warning("metrics: Redis unavailable: %s", type(exc).__name__)
            return 0.0
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Jobs waiting in Redis: queued now or scheduled for later",
                                  labels=["queue", "state"])
        depth.add_metric([name, "queued"], queued)
        depth.add_metric([name, "scheduled"], scheduled)
        out.append(depth)
        return 1.0


def render(runtime: Runtime) -> bytes:
    """The Prometheus text exposition of every process's counters plus the scrape-time state."""
    registry = counters(runtime.settings)
    registry.register(StateCollector(runtime))
    return generate_latest(registry)


def counters(settings: Settings) -> CollectorRegistry:
    """Every process's counters sharing PROMETHEUS_MULTIPROC_DIR, or this process's alone."""
    registry = CollectorRegistry(auto_describe=False)
    if settings.metrics_dir is not None and settings.metrics_dir.is_dir():
        MultiProcessCollector(registry, path=str(settings.metrics_dir))
    else:
        registry.register(_Local())
    return registry


def expose(settings: Settings) -> None:
    """A worker's own scrape endpoint (RELAY_METRICS_PORT): its counters only. The scrape-time state (deliveries,
    queue depth) stays on the web's /metrics: one fleet, one copy."""
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=counters(settings))
    except OSError as exc:
        raise ConfigError(f"RELAY_METRICS_PORT: cannot listen on {settings.metrics_host}:{settings.metrics_port}: "
                          f"{exc.strerror or exc}") from None
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)


class _Local:
    def collect(self):
        yield from instruments().registry.collect()

