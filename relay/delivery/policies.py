"""Before a send: may it go now (breaker, rate limits, supersede, debounce)? After it: what the answer teaches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

import integrations
from integrations.base import Integration
from relay.delivery import breaker, leases, queue, ratelimits, supersede
from relay.delivery.attempt import Outcome, secret_lookup
from relay.delivery.supersede import ACTIVE, Sibling
from relay.models import Delivery, Event, TargetState, Webhook
from relay.runtime import Runtime
from relay.templating import Renderer

log = logging.getLogger(__name__)
SIBLINGS = 500  # deliveries of one webhook looked at to supersede or debounce; a backlog beyond waits its turn
POLL = 0.5  # seconds to wait for an older status of the same commit that is being sent


@dataclass(frozen=True)
class Decision:
    """`send`, `wait` (until, reason) or `superseded` (successor, reason); `probe`: the send tests a paused target."""

    action: str
    until: datetime | None = None
    reason: str = ""
    successor: str | None = None
    probe: bool = False
    target: TargetState | None = None


SEND = Decision("send")


def before(session: Session, runtime: Runtime, delivery: Delivery, webhook: Webhook, variables: dict[str, str],
           target: TargetState | None, now: datetime) -> Decision:
    """Inside the claiming transaction: supersede and debounce first (they send nothing), then breaker and pace."""
    choice = _debounce(session, delivery, webhook, variables, now) or _supersede(session, runtime, delivery, webhook,
                                                                                variables, now)
    if choice is not None and choice.successor is not None:
        return Decision("superseded", reason=choice.reason, successor=choice.successor.id)
    if choice is not None:
        return Decision("wait", until=choice.until or now + timedelta(seconds=POLL), reason=choice.reason)
    verdict = breaker.verdict(target, now)
    if verdict.probe:
        verdict = breaker.check(session, webhook.uuid, now, runtime.settings.lease_seconds)
    if not verdict.go:
        return Decision("wait", until=verdict.until, reason=verdict.reason, target=target)
    if webhook.rate_limit:
        wait = _pace(runtime, webhook)
        if wait:
            return Decision("wait", until=now + timedelta(seconds=wait), probe=verdict.probe, target=target,
                            reason=f"waiting: the webhook's rateLimit of {webhook.rate_limit:g} per second")
    return Decision("send", probe=verdict.probe, target=target)


def _pace(runtime: Runtime, webhook: Webhook) -> float | None:
    try:
        return ratelimits.pace(runtime.redis, webhook.uuid, webhook.rate_limit)
    except RedisError:
        return None  # Redis away: the queue is away too; never let a limit turn into a lost send


def _siblings(session: Session, delivery: Delivery, where) -> list:
    """The webhook's other deliveries matching `where`, newest event first, with their event's time and variables."""
    return session.execute(
        select(Delivery.id, Event.received_at, Delivery.status, Delivery.lease_until, Delivery.updated_at,
               Event.variables)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.webhook_uuid == delivery.webhook_uuid, Delivery.id != delivery.id, where)
        .order_by(Event.received_at.desc()).limit(SIBLINGS)).all()


def _received(session: Session, delivery: Delivery) -> datetime:
    """Newer means a newer event: a replay of an old event is still old news."""
    return session.scalar(select(Event.received_at).where(Event.id == delivery.event_id))


def _debounce(session: Session, delivery: Delivery, webhook: Webhook, variables: dict[str, str],
              now: datetime) -> supersede.Choice | None:
    if not webhook.debounce or webhook.kind not in supersede.DEBOUNCE_KINDS:
        return None
    window = float(webhook.debounce)
    received = _received(session, delivery)
    rows = _siblings(session, delivery, and_(
        Delivery.status.in_((*ACTIVE, "superseded")), Event.received_at >= received - timedelta(seconds=window)))
    mine = supersede.burst_key(variables)
    group = [Sibling(r.id, r.received_at, r.status) for r in rows if supersede.burst_key(r.variables) == mine]
    choice = supersede.debounced(Sibling(delivery.id, received, delivery.status), group, window, now)
    return None if choice is supersede.SEND else choice


def _supersede(session: Session, runtime: Runtime, delivery: Delivery, webhook: Webhook, variables: dict[str, str],
               now: datetime) -> supersede.Choice | None:
    integration = integrations.get(webhook.kind)
    if type(integration).supersede_key is Integration.supersede_key:
        return None  # only integrations whose newer send replaces an older one take part
    lookup = secret_lookup(session, runtime)

    def key(values: dict[str, str]):
        try:
            return integration.supersede_key(webhook.config, Renderer(values, lookup))
        except Exception:  # a template that cannot render now fails at send time, with its reason
            return None

    mine = key(variables)
    if mine is None:
        return None
    received = _received(session, delivery)
    recently = now - timedelta(seconds=supersede.STATUS_SPACING)
    rows = _siblings(session, delivery, or_(
        Delivery.status.in_(ACTIVE),
        and_(Delivery.status == "succeeded", or_(Event.received_at >= received, Delivery.updated_at >= recently))))
    siblings = [Sibling(r.id, r.received_at, r.status, key(r.variables),
                        leased=r.lease_until is not None and r.lease_until > now,
                        sent_at=r.updated_at if r.status == "succeeded" else None) for r in rows]
    choice = supersede.newest_status(Sibling(delivery.id, received, delivery.status, mine), siblings, now)
    return None if choice is supersede.SEND else choice


def settle(session: Session, delivery_id: str, owner: str, decision: Decision, now: datetime) -> bool:
    """End a superseded delivery, linked to its successor; False when the lease was lost meanwhile."""
    return bool(session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
        .values(status="superseded", superseded_by=decision.successor, reason=decision.reason, next_attempt_at=None,
                lease_until=None, lease_owner=None, updated_at=now)).rowcount)


def defer(session: Session, delivery_id: str, owner: str, decision: Decision) -> bool:
    """Wait until the decision's time without spending an attempt (leases.defer), saying why on the delivery."""
    if not leases.defer(session, delivery_id, decision.until, decision.reason, owner):
        return False
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(reason=decision.reason[:1000]))
    return True


def after(session: Session, runtime: Runtime, webhook_uuid: str, decision: Decision, outcome: Outcome,
          now: datetime) -> list[tuple[str, int]]:
    """In the recording transaction: the breaker learns; returns the deliveries a resumed target releases."""
    if breaker.counts_as_failure(outcome.ok, outcome.retryable, outcome.status, outcome.internal):
        if breaker.record_failure(session, webhook_uuid, now, outcome.error or "", decision.probe,
                                  runtime.settings.breaker_failures):
            log.warning("target %s paused: %s", webhook_uuid, outcome.error, extra={"webhook": webhook_uuid})
        return []
    answered = outcome.ok or outcome.response is not None
    known = decision.target is not None and (decision.target.failures or decision.target.paused_since)
    if answered and (known or decision.probe) and breaker.record_success(session, webhook_uuid, now):
        log.info("target %s resumed after a successful probe", webhook_uuid, extra={"webhook": webhook_uuid})
        return release(session, webhook_uuid, now)
    return []


def release(session: Session, webhook_uuid: str, now: datetime) -> list[tuple[str, int]]:
    """Make the deliveries that waited for a paused target due now; returns (id, attempts made) to enqueue."""
    waiting = [(r.id, r.attempts_made) for r in session.execute(
        select(Delivery.id, Delivery.attempts_made).where(
            Delivery.webhook_uuid == webhook_uuid, Delivery.status.in_(ACTIVE),
            Delivery.reason.startswith(breaker.PAUSED_REASON, autoescape=True)))]
    if waiting:
        session.execute(update(Delivery).where(Delivery.id.in_([i for i, _ in waiting]))
                        .values(next_attempt_at=now, reason=None, updated_at=now))
    return waiting


def resume(session: Session, webhook_uuid: str, now: datetime) -> tuple[bool, list[tuple[str, int]]]:
    """Resume a target by hand: (whether it was paused, the waiting deliveries now due); the caller commits."""
    state = session.get(TargetState, webhook_uuid)
    was_paused = state is not None and state.paused_since is not None
    breaker.resume(session, webhook_uuid, now)
    return was_paused, release(session, webhook_uuid, now)


def learn_limits(runtime: Runtime, outcome: Outcome) -> float | None:
    """A rate limit in the answer holds back every send with the same credential and host, fleet-wide."""
    seconds = ratelimits.hold_seconds(outcome.status, (outcome.response or {}).get("headers"))
    if seconds and outcome.limit_key:
        try:
            ratelimits.hold(runtime.redis, outcome.limit_key, seconds)
        except RedisError as exc:
            log.warning("could not record a rate limit: %s", type(exc).__name__)
    return seconds


def enqueue_released(runtime: Runtime, released: list[tuple[str, int]]) -> None:
    """Queue what a resumed target released; if Redis is away the sweeper sends them when due."""
    if not released:
        return
    try:
        queue.enqueue(runtime.redis, runtime.settings.queue_name, released, runtime.settings.lease_seconds)
    except Exception as exc:
        log.warning("%d released deliveries not queued (%s); the sweeper will send them", len(released),
                    type(exc).__name__)
