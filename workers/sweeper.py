"""Re-enqueues every delivery that is due but not queued: Redis flushed, worker killed, enqueue failed."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import delete, or_, select

from relay.delivery import queue
from relay.intake.events import DEDUP_WINDOW
from relay.models import Delivery, IdempotencyKey, utcnow
from relay.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 1000
LOCK = "pact-relay:sweeper"


def sweep(runtime: Runtime) -> int:
    """One pass; returns how many deliveries were put back on the queue."""
    settings = runtime.settings
    now = utcnow()
    with runtime.sessions() as session:
        due = session.execute(
            select(Delivery.id, Delivery.attempts_made)
            .where(Delivery.status.in_(("pending", "retrying")),
                   Delivery.next_attempt_at <= now - timedelta(seconds=settings.sweep_grace),
                   or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
            .order_by(Delivery.next_attempt_at).limit(BATCH)
        ).all()
    if not due:
        return 0
    lost = queue.not_waiting(runtime.redis, settings.queue_name, due)
    if lost:
        queue.enqueue(runtime.redis, settings.queue_name, lost, settings.lease_seconds)
        log.info("sweeper re-enqueued %d due deliveries", len(lost))
    return len(lost)


def prune(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - DEDUP_WINDOW))


def run_forever(runtime: Runtime, stop: threading.Event) -> None:
    """Sweep every interval; a Redis lock keeps to one sweeper per interval across processes."""
    interval = runtime.settings.sweep_interval
    passes = 0
    while not stop.wait(interval):
        try:
            if not runtime.redis.set(LOCK, "1", nx=True, px=int(interval * 1000 * 0.9)):
                continue
            sweep(runtime)
            passes += 1
            if passes % 720 == 1:
                prune(runtime)
        except Exception as exc:  # Redis or the database away: try again next interval
            log.warning("sweep failed: %s: %s", type(exc).__name__, exc)


def start(runtime: Runtime) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(runtime, stop), name="sweeper", daemon=True).start()
    return stop
