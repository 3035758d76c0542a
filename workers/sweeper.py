"""Queues every delivery that is due but not queued: retries, deferrals, Redis flushed, worker killed, enqueue failed.

Every worker runs it each `sweep_interval`; a short Redis lock makes one pass per interval across the fleet, and
whichever worker is alive takes the next one, so due work never waits on one host (RQ's scheduler lock did)."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete

from relay.delivery import details, leases, queue
from relay.intake.events import DEDUP_WINDOW
from relay.models import IdempotencyKey
from relay.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 1000
LOCK = "pact-relay:sweeper"


def sweep(runtime: Runtime) -> int:
    """One pass; returns how many deliveries were put on the queue. Due is decided on the database's clock."""
    settings = runtime.settings
    with runtime.sessions() as session:
        due = leases.due(session, settings.sweep_grace, BATCH)
    if not due:
        return 0
    lost = queue.not_waiting(runtime.redis, settings.queue_name, due)
    if lost:
        queue.enqueue(runtime.redis, settings.queue_name, lost, leases.longest(settings))
        log.info("sweeper queued %d due deliveries", len(lost))
    return len(lost)


def prune(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        cutoff = leases.db_now(session) - DEDUP_WINDOW
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))


def run_forever(runtime: Runtime, stop: threading.Event) -> None:
    """Sweep every interval; a Redis lock keeps to one sweeper per interval across processes."""
    interval = runtime.settings.sweep_interval
    passes = 0
    while not stop.wait(interval):
        try:
            if not runtime.redis.set(LOCK, "1", nx=True, px=int(interval * 1000 * 0.9)):
                continue
            sweep(runtime)
            if passes % 10 == 0:
                details.lost_reads(runtime, patience=max(runtime.settings.sweep_grace, 5.0))
            passes += 1
            if passes % 720 == 1:
                prune(runtime)
        except Exception as exc:  # Redis or the database away: try again next interval
            log.warning("sweep failed: %s: %s", type(exc).__name__, exc)


def start(runtime: Runtime) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, args=(runtime, stop), name="sweeper", daemon=True).start()
    return stop
