"""One attempt of one delivery: lease, the checks before the send, send, record, and when to try again."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import lazyload

from relay import metrics
from relay.delivery import leases, limits, policies, retry
from relay.delivery.attempt import Outcome, attempt
from relay.models import Attempt, Delivery, Event, TargetState, Webhook
from relay.runtime import Runtime

log = logging.getLogger(__name__)
NOT_CLAIMED = "not-claimed"  # another worker holds it, it is not due, or it is already done
DEFERRED = "deferred"  # put off without spending an attempt (leases.defer)
LEASE_LOST = "lease-lost"
SUPERSEDED = "superseded"


def run_delivery(runtime: Runtime, delivery_id: str, claimed: leases.Claimed | None = None) -> str:
    """The per-delivery unit: one attempt, or a deferral that spends none. Returns the status it left.

    With `claimed`, the caller (the engine) already holds the lease and the target's and host's slots;
    without, this takes the lease and waits up to `slot_wait` for the slots itself (a worker without the
    engine, tests). Never raises for a failed send: the attempt's record says what happened."""
    if claimed is not None:
        return _run(runtime, claimed)
    with runtime.sessions() as session, session.begin():
        got = leases.claim(session, runtime.settings, [delivery_id])
    if not got:
        return NOT_CLAIMED
    claimed = got[0]
    if claimed.webhook is None:
        return _run(runtime, claimed)
    keys = runtime_keys(runtime, claimed)
    deadline = time.monotonic() + runtime.settings.slot_wait
    while not isinstance(slots := runtime.limits.try_acquire(keys, claimed.lease_seconds), limits.Slots):
        if time.monotonic() > deadline:
            with runtime.sessions() as session, session.begin():
                until = leases.db_now(session) + timedelta(seconds=1)
                leases.defer(session, delivery_id, until, "no free slot at its target or host", claimed.owner)
            return DEFERRED
        time.sleep(0.05)
    try:
        return _run(runtime, claimed)
    finally:
        runtime.limits.release(slots)


def runtime_keys(runtime: Runtime, claimed: leases.Claimed) -> limits.Keys:
    s = runtime.settings
    return limits.keys_for(claimed.webhook, s.target_concurrency, s.host_concurrency)


def _run(runtime: Runtime, claimed: leases.Claimed) -> str:
    delivery_id, owner = claimed.delivery_id, claimed.owner
    with runtime.sessions() as session:
        # Load in one short transaction; none stays open during the send, so on SQLite the write lock is never
        # held across a network call and other workers and intake go on meanwhile.
        with session.begin():
            delivery, variables, webhook, target = session.execute(
                select(Delivery, Event.variables, Webhook, TargetState)
                .join(Event, Event.id == Delivery.event_id)
                .outerjoin(Webhook, Webhook.uuid == Delivery.webhook_uuid)
                .outerjoin(TargetState, TargetState.webhook_uuid == Delivery.webhook_uuid)  # the breaker's state
                .where(Delivery.id == delivery_id)
                .options(lazyload(Delivery.event), lazyload(Delivery.attempts))  # one query, not three
            ).one()
            # The checks before the send: a paused target, a webhook's rateLimit, a newer status or event.
            decision = policies.SEND
            if webhook is not None:
                decision = policies.before(session, runtime, delivery, webhook, variables, target,
                                           leases.db_now(session))
                if decision.action != "send":
                    return _held_back(session, delivery, owner, decision, webhook.kind)
        number = delivery.attempts_made + 1
        kind = webhook.kind if webhook is not None else "deleted"
        if webhook is None:
            outcome = Outcome(ok=False, retryable=False, request=None, response=None,
                              error="the webhook was deleted before this delivery was sent", duration_ms=0)
        else:
            outcome = attempt(session, runtime, webhook, variables, delivery_id, holds=True)
            if outcome.held:  # a rate limit learnt from another send with this credential and host
                with session.begin():
                    until = leases.db_now(session) + timedelta(seconds=outcome.held)
                    decision = policies.Decision(
                        "wait", until=until, reason=f"waiting: rate limited by the target for {outcome.held:.0f} s")
                    return _held_back(session, delivery, owner, decision, kind)
        status, delay = _next_state(runtime, outcome, number)
        now = leases.db_now(session)
        session.add(Attempt(delivery_id=delivery_id, number=number, at=now, duration_ms=outcome.duration_ms,
                            request=outcome.request, response=_response_log(outcome), error=outcome.error))
        recorded = session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
            .values(status=status, attempts_made=number, lease_until=None, lease_owner=None, updated_at=now,
                    last_error=outcome.error, reason=outcome.skipped or None,
                    next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None)
        ).rowcount
        released = policies.after(session, runtime, delivery.webhook_uuid, decision, outcome, now) if recorded else []
        ids = {"delivery_id": delivery_id, "event_id": delivery.event_id, "webhook": delivery.webhook_uuid,
               "integration": kind, "attempt": number}
        if not recorded:
            # The lease was lost mid-send (it outlives the send's own timeouts, so only an outside hand takes
            # it); whoever holds it now records its own attempt.
            session.rollback()
            metrics.attempt_recorded(kind, LEASE_LOST, outcome.duration_ms / 1000)
            log.warning("delivery %s attempt %s finished after its lease was lost; not recorded", delivery_id,
                        number, extra=ids)
            return LEASE_LOST
        session.commit()
    if webhook is not None:
        policies.learn_limits(runtime, outcome)
    policies.enqueue_released(runtime, released)
    metrics.attempt_recorded(kind, status, outcome.duration_ms / 1000)
    log.info("delivery %s attempt %s: %s", delivery_id, number, status,
             extra={**ids, "status": status, "http_status": (outcome.response or {}).get("status"),
                    "duration_ms": outcome.duration_ms, "error": outcome.error, "retry_in": delay})
    # A retry is due at next_attempt_at in the database; every worker's sweeper queues it then, so no single
    # host (RQ's scheduler lock) stands between a retry and its time.
    return status


def _held_back(session, delivery: Delivery, owner: str, decision: policies.Decision, kind: str) -> str:
    """Not sent now: the delivery ends superseded, or waits without spending an attempt (inside a transaction)."""
    ids = {"delivery_id": delivery.id, "webhook": delivery.webhook_uuid, "integration": kind}
    if decision.action == "superseded":
        if not policies.settle(session, delivery.id, owner, decision, leases.db_now(session)):
            return LEASE_LOST
        metrics.attempt_recorded(kind, SUPERSEDED, 0)
        log.info("delivery %s superseded by %s", delivery.id, decision.successor,
                 extra={**ids, "status": SUPERSEDED, "superseded_by": decision.successor})
        return SUPERSEDED
    if not policies.defer(session, delivery.id, owner, decision):
        return LEASE_LOST
    return DEFERRED


def _next_state(runtime: Runtime, outcome: Outcome, number: int) -> tuple[str, float | None]:
    if outcome.skipped:
        return "skipped", None
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
