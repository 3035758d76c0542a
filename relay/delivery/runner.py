"""One attempt of one delivery: lease, the checks before the send, send, record, and when to try again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from relay import metrics
from relay.delivery import leases, limits, policies, retry
from relay.delivery.attempt import INTERNAL, Outcome, attempt, secret_lookup
from relay.models import Attempt, Delivery
from relay.runtime import Runtime
from relay.security.secrets import is_sealed
from relay.templating import Renderer

log = logging.getLogger(__name__)
NOT_CLAIMED = "not-claimed"  # another worker holds it, it is not due, or it is already done
DEFERRED = "deferred"  # put off without spending an attempt (leases.defer)
LEASE_LOST = "lease-lost"
SUPERSEDED = "superseded"


def run_delivery(runtime: Runtime, delivery_id: str, claimed: leases.Claimed | None = None,
                 record: Callable[[Record], bool] | None = None) -> str:
    """The per-delivery unit: one attempt, or a deferral that spends none. Returns the status it left.

    With `claimed`, the caller (the engine) already holds the lease and the target's and host's slots;
    without, this takes the lease and waits up to `slot_wait` for the slots itself (a worker without the
    engine, tests). `record` writes the attempt (the dispatcher's group commit); by default its own transaction.
    Never raises for a failed send: the attempt's record says what happened."""
    if claimed is not None:
        return _run(runtime, claimed, record)
    with runtime.sessions() as session, session.begin():
        got = leases.claim(session, runtime.settings, [delivery_id])
    if not got:
        return NOT_CLAIMED
    claimed = got[0]
    if claimed.webhook is None:
        return _run(runtime, claimed)
    keys = runtime_keys(runtime, claimed)
    deadline = time.monotonic() + runtime.settings.slot_wait
    while not isinstance(slots := limits.of(runtime).try_acquire(keys, claimed.lease_seconds), limits.Slots):
        if time.monotonic() > deadline:
            with runtime.sessions() as session, session.begin():
                until = leases.db_now(session) + timedelta(seconds=1)
                leases.defer(session, delivery_id, until, "no free slot at its target or host", claimed.owner)
            return DEFERRED
        time.sleep(0.05)
    try:
        return _run(runtime, claimed)
    finally:
        limits.of(runtime).release(slots)


def runtime_keys(runtime: Runtime, claimed: leases.Claimed) -> limits.Keys:
    s = runtime.settings
    return limits.keys_for(claimed.webhook, s.target_concurrency, s.host_concurrency, reveal=revealer(runtime))


def revealer(runtime: Runtime) -> Callable[[str], str]:
    """A secret field's plain value (a sealed literal, or a ${user.X} template), for an integration whose URL is
    a secret: its host is what per-host limits count. Only called for such integrations (Teams)."""
    def reveal(value: str) -> str:
        if is_sealed(value):
            return runtime.vault.unseal(value)
        with runtime.sessions() as session:
            return Renderer({}, secret_lookup(session, runtime))(value, "text")

    return reveal


@dataclass
class Record:
    """A finished attempt, to be written under the lease it was made with."""

    claimed: leases.Claimed
    number: int
    status: str
    delay: float | None
    outcome: Outcome


def write(session: Session, records: list[Record]) -> list[bool]:
    """Write attempts in the caller's transaction, each only while its lease is still held; False where it was
    lost (another worker records that delivery now). One call may carry many: a group commit."""
    now = leases.db_now(session)
    written = []
    for r in records:
        o = r.outcome
        recorded = session.execute(
            update(Delivery).where(Delivery.id == r.claimed.delivery_id, Delivery.lease_owner == r.claimed.owner)
            .values(status=r.status, attempts_made=r.number, lease_until=None, lease_owner=None, updated_at=now,
                    last_error=o.error, reason=o.skipped or None,
                    next_attempt_at=now + timedelta(seconds=r.delay) if r.delay is not None else None)
        ).rowcount == 1
        if recorded:
            session.add(Attempt(delivery_id=r.claimed.delivery_id, number=r.number, at=now, duration_ms=o.duration_ms,
                                request=o.request, response=_response_log(o), error=o.error))
        written.append(recorded)
    return written


def _write_one(runtime: Runtime, record: Record) -> bool:
    with runtime.sessions() as session, session.begin():
        return write(session, [record])[0]


def _run(runtime: Runtime, claimed: leases.Claimed, record: Callable[[Record], bool] | None = None) -> str:
    delivery_id, webhook = claimed.delivery_id, claimed.webhook
    number = claimed.attempts_made + 1
    kind = webhook.kind if webhook is not None else "deleted"
    if webhook is None:
        outcome = Outcome(ok=False, retryable=False, request=None, response=None,
                          error="the webhook was deleted before this delivery was sent", duration_ms=0)
    else:
        # The checks before the send (a paused target, a webhook's rateLimit, a newer status or event) end the
        # delivery or defer it, spending no attempt.
        try:
            decision = policies.before_send(runtime, claimed)
        except (RedisError, SQLAlchemyError):
            raise  # a dependency away: the lease expires and the delivery is tried again, spending nothing
        except Exception as exc:  # a bug of ours: fail this delivery, saying why, rather than re-lease it forever
            log.exception("delivery %s: the checks before its send failed", delivery_id)
            return _record(runtime, claimed, number, kind, record, None, Outcome(
                ok=False, retryable=False, request=None, response=None, duration_ms=0, internal=True,
                error=f"{INTERNAL}: {type(exc).__name__}: {exc}"))
        if decision.action != "send":
            return _held_back(runtime, claimed, decision)
        # No transaction stays open during the send (secret lookups end theirs), so on SQLite the write lock is
        # never held across a network call.
        with runtime.sessions() as session:
            outcome = attempt(session, runtime, webhook, claimed.variables, delivery_id, holds=True)
        if outcome.held:  # a rate limit learnt from another send with this credential and host
            return _held_back(runtime, claimed, policies.held(outcome))
    return _record(runtime, claimed, number, kind, record, decision if webhook is not None else None, outcome)


def _record(runtime: Runtime, claimed: leases.Claimed, number: int, kind: str,
            record: Callable[[Record], bool] | None, decision: policies.Decision | None, outcome: Outcome) -> str:
    delivery_id, webhook = claimed.delivery_id, claimed.webhook
    status, delay = _next_state(runtime, outcome, number)
    done = Record(claimed, number, status, delay, outcome)
    recorded = record(done) if record is not None else _write_one(runtime, done)
    ids = {"delivery_id": delivery_id, "event_id": claimed.event_id, "webhook": claimed.webhook_uuid,
           "integration": kind, "attempt": number}
    if not recorded:
        # The lease was lost mid-send (it outlives the send's own timeouts, so only an outside hand takes it);
        # whoever holds it now records its own attempt.
        metrics.attempt_recorded(kind, LEASE_LOST, outcome.duration_ms / 1000)
        log.warning("delivery %s attempt %s finished after its lease was lost; not recorded", delivery_id, number,
                    extra=ids)
        return LEASE_LOST
    if webhook is not None and decision is not None:  # what the answer teaches: the breaker, rate limits
        policies.after_send(runtime, claimed, decision, outcome)
    metrics.attempt_recorded(kind, status, outcome.duration_ms / 1000)
    log.info("delivery %s attempt %s: %s", delivery_id, number, status,
             extra={**ids, "status": status, "http_status": (outcome.response or {}).get("status"),
                    "duration_ms": outcome.duration_ms, "error": outcome.error, "retry_in": delay})
    # A retry is due at next_attempt_at in the database; every worker's sweeper queues it then, so no single
    # host (RQ's scheduler lock) stands between a retry and its time.
    return status


def _held_back(runtime: Runtime, claimed: leases.Claimed, decision: policies.Decision) -> str:
    """Not sent now: the delivery ends superseded, or waits without spending an attempt."""
    with runtime.sessions() as session, session.begin():
        if decision.action == "superseded":
            done = policies.settle(session, claimed.delivery_id, claimed.owner, decision, leases.db_now(session))
        else:
            done = policies.defer(session, claimed.delivery_id, claimed.owner, decision)
    if not done:
        return LEASE_LOST
    if decision.action == "superseded":
        metrics.attempt_recorded(claimed.webhook.kind, SUPERSEDED, 0)
        log.info("delivery %s superseded by %s", claimed.delivery_id, decision.successor,
                 extra={"delivery_id": claimed.delivery_id, "webhook": claimed.webhook_uuid, "status": SUPERSEDED,
                        "superseded_by": decision.successor})
        return SUPERSEDED
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
