"""The delivery job: lease the delivery, send once, record the attempt, schedule what comes next."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import lazyload

from relay import metrics
from relay.delivery import queue, retry
from relay.delivery.attempt import Outcome, attempt
from relay.models import Attempt, Delivery, Event, Webhook, utcnow
from relay.runtime import Runtime
from workers.worker import job_runtime

log = logging.getLogger(__name__)
OWNER_PREFIX = f"{socket.gethostname()}:{os.getpid()}"
ACTIVE = ("pending", "retrying")


def deliver(delivery_id: str) -> str:
    """RQ entry point; takes an id, never an object, so a job survives any restart."""
    return run_delivery(job_runtime(), delivery_id)


def _claim(session, runtime: Runtime, delivery_id: str) -> str | None:
    owner = f"{OWNER_PREFIX}:{uuid.uuid4().hex[:8]}"
    now = utcnow()
    claimed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status.in_(ACTIVE),
               Delivery.next_attempt_at <= now + timedelta(seconds=1),
               or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
        .values(lease_until=now + timedelta(seconds=runtime.settings.lease_seconds), lease_owner=owner)
    ).rowcount
    return owner if claimed else None


def claim(runtime: Runtime, delivery_id: str) -> str | None:
    """Take the lease on a due delivery; None when another worker holds it or it is not due."""
    with runtime.sessions.begin() as session:
        return _claim(session, runtime, delivery_id)


def run_delivery(runtime: Runtime, delivery_id: str) -> str:
    with runtime.sessions() as session:
        # Lease and load in one short transaction; none stays open during the send, so on SQLite the
        # write lock is never held across a network call and other workers and intake go on meanwhile.
        with session.begin():
            owner = _claim(session, runtime, delivery_id)
            if owner is None:
                return "skipped"
            delivery, variables, webhook = session.execute(
                select(Delivery, Event.variables, Webhook)
                .join(Event, Event.id == Delivery.event_id)
                .outerjoin(Webhook, Webhook.uuid == Delivery.webhook_uuid)
                .where(Delivery.id == delivery_id)
                .options(lazyload(Delivery.event), lazyload(Delivery.attempts))  # one query, not three
            ).one()
        number = delivery.attempts_made + 1
        kind = webhook.kind if webhook is not None else "deleted"
        if webhook is None:
            outcome = Outcome(ok=False, retryable=False, request=None, response=None,
                              error="the webhook was deleted before this delivery was sent", duration_ms=0)
        else:
            outcome = attempt(session, runtime, webhook, variables, delivery_id)
        status, delay = _next_state(runtime, outcome, number)
        now = utcnow()
        session.add(Attempt(delivery_id=delivery_id, number=number, at=now, duration_ms=outcome.duration_ms,
                            request=outcome.request, response=_response_log(outcome), error=outcome.error))
        recorded = session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
            .values(status=status, attempts_made=number, lease_until=None, lease_owner=None, updated_at=now,
                    last_error=outcome.error,
                    next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None)
        ).rowcount
        ids = {"delivery_id": delivery_id, "event_id": delivery.event_id, "webhook": delivery.webhook_uuid,
               "integration": kind, "attempt": number}
        if not recorded:
            # The lease expired mid-send and another worker took over; its record wins.
            session.rollback()
            metrics.attempt_recorded(kind, "lease-lost", outcome.duration_ms / 1000)
            log.warning("delivery %s attempt %s finished after its lease expired; not recorded", delivery_id, number,
                        extra=ids)
            return "lease-lost"
        session.commit()
    metrics.attempt_recorded(kind, status, outcome.duration_ms / 1000)
    log.info("delivery %s attempt %s: %s", delivery_id, number, status,
             extra={**ids, "status": status, "http_status": (outcome.response or {}).get("status"),
                    "duration_ms": outcome.duration_ms, "error": outcome.error, "retry_in": delay})
    if delay is not None:
        try:
            queue.enqueue_later(runtime.redis, runtime.settings.queue_name, delivery_id, number, delay,
                                runtime.settings.lease_seconds)
        except Exception as exc:  # the sweeper picks it up when due
            log.warning("could not schedule retry of %s: %s", delivery_id, type(exc).__name__,
                        extra={"delivery_id": delivery_id})
    return status


def _next_state(runtime: Runtime, outcome: Outcome, number: int) -> tuple[str, float | None]:
    if outcome.ok:
        return "succeeded", None
    if not outcome.retryable:
        return "failed", None
    delay = retry.next_delay(runtime.settings.retry_schedule, number, outcome.retry_after)
    return ("failed", None) if delay is None else ("retrying", delay)


def _response_log(outcome: Outcome) -> dict | None:
    if outcome.response is None and not outcome.notes:
        return None
    response = dict(outcome.response or {})
    if outcome.notes:
        response["note"] = "; ".join(outcome.notes)
    return response
