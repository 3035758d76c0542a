"""Before a send: may it go now (breaker, rate limits, supersede, debounce)? After it: what the answer teaches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

import integrations
from integrations.base import DEBOUNCE, SUPERSEDE
from relay.delivery import breaker, details, leases, queue, ratelimits, supersede
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
    wait: float | None = None  # instead of `until`: seconds from now on the database's clock
    successor: str | None = None
    probe: bool = False
    target: TargetState | None = None


SEND = Decision("send")


def before_send(runtime: Runtime, claimed: leases.Claimed) -> Decision:
    """May the claimed delivery go now? Reads the database only for webhooks that take part in a check."""
    webhook = claimed.webhook
    target = claimed.target
    if (until := details.hold_until(runtime, claimed)) is not None:
        return Decision("wait", until=until, reason=details.WAITING, target=target)
    orders = (webhook.debounce and _debounces(webhook)) or _supersedes(webhook)
    paused = target is not None and target.paused_since is not None
    if not orders and not paused:
        if webhook.rate_limit and (wait := _pace(runtime, webhook)):
            return Decision("wait", until=None, wait=wait, reason=_pace_reason(webhook), target=target)
        return Decision("send", target=target)
    with runtime.sessions() as session, session.begin():
        return before(session, runtime, claimed, leases.db_now(session))


def before(session: Session, runtime: Runtime, claimed: leases.Claimed, now: datetime) -> Decision:
    """Supersede and debounce first (they send nothing), then the breaker and the webhook's rateLimit."""
    webhook, target = claimed.webhook, claimed.target
    choice = _debounce(session, claimed, now) or _supersede(session, runtime, claimed, now)
    if choice is not None and choice.successor is not None:
        return Decision("superseded", reason=choice.reason, successor=choice.successor.id)
    if choice is not None:
        return Decision("wait", until=choice.until or now + timedelta(seconds=POLL), reason=choice.reason)
    verdict = breaker.verdict(target, now)
    if verdict.probe:
        verdict = breaker.check(session, webhook.uuid, now, runtime.settings.lease_seconds)
    if not verdict.go:
        return Decision("wait", until=verdict.until, reason=verdict.reason, target=target)
    if webhook.rate_limit and (wait := _pace(runtime, webhook)):
        return Decision("wait", until=now + timedelta(seconds=wait), probe=verdict.probe, target=target,
                        reason=_pace_reason(webhook))
    return Decision("send", probe=verdict.probe, target=target)


def held(outcome: Outcome) -> Decision:
    """The send was held back by a rate limit learnt from another send with the same credential and host."""
    return Decision("wait", wait=outcome.held, reason=f"waiting: rate limited by the target for {outcome.held:.0f} s")


def _pace_reason(webhook: Webhook) -> str:
    return f"waiting: the webhook's rateLimit of {webhook.rate_limit:g} per second"


def _supersedes(webhook: Webhook) -> bool:
    """Only integrations whose newer send replaces an older one (commit statuses) take part in supersede."""
    return SUPERSEDE in integrations.get(webhook.kind).capabilities


def _debounces(webhook: Webhook) -> bool:
    return DEBOUNCE in integrations.get(webhook.kind).capabilities


def _pace(runtime: Runtime, webhook: Webhook) -> float | None:
    try:
        return ratelimits.pace(runtime.redis, webhook.uuid, webhook.rate_limit)
    except RedisError:
        return None  # Redis away: the queue is away too; never let a limit turn into a lost send


def _siblings(session: Session, claimed: leases.Claimed, where) -> list:
    """The webhook's other deliveries matching `where`, newest event first, with their event's time and variables."""
    return session.execute(
        select(Delivery.id, Event.received_at, Delivery.status, Delivery.lease_until, Delivery.updated_at,
               Event.variables)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.webhook_uuid == claimed.webhook_uuid, Delivery.id != claimed.delivery_id, where)
        .order_by(Event.received_at.desc()).limit(SIBLINGS)).all()


def _received(session: Session, claimed: leases.Claimed) -> datetime:
    """Newer means a newer event: a replay of an old event is still old news."""
    return session.scalar(select(Event.received_at).where(Event.id == claimed.event_id))


def _debounce(session: Session, claimed: leases.Claimed, now: datetime) -> supersede.Choice | None:
    webhook = claimed.webhook
    if not webhook.debounce or not _debounces(webhook):
        return None
    window = float(webhook.debounce)
    received = _received(session, claimed)
    rows = _siblings(session, claimed, and_(
        Delivery.status.in_((*ACTIVE, "superseded", "succeeded")),
        Event.received_at >= received - timedelta(seconds=window)))
    mine = supersede.burst_key(claimed.variables)
    group = [Sibling(r.id, r.received_at, r.status) for r in rows if supersede.burst_key(r.variables) == mine]
    choice = supersede.debounced(Sibling(claimed.delivery_id, received, "pending"), group, window, now)
    return None if choice is supersede.SEND else choice


def _supersede(session: Session, runtime: Runtime, claimed: leases.Claimed, now: datetime) -> supersede.Choice | None:
    webhook = claimed.webhook
    if not _supersedes(webhook):
        return None
    integration = integrations.get(webhook.kind)
    lookup = secret_lookup(session, runtime)

    def key(values: dict[str, str]):
        try:
            return integration.supersede_key(webhook.config, Renderer(values, lookup))
        except Exception:  # a template that cannot render now fails at send time, with its reason
            return None

    mine = key(claimed.variables)
    if mine is None:
        return None
    received = _received(session, claimed)
    recently = now - timedelta(seconds=supersede.STATUS_SPACING)
    rows = _siblings(session, claimed, or_(
        Delivery.status.in_(ACTIVE),
        and_(Delivery.status == "succeeded", or_(Event.received_at >= received, Delivery.updated_at >= recently))))
    siblings = [Sibling(r.id, r.received_at, r.status, key(r.variables),
                        leased=r.lease_until is not None and r.lease_until > now,
                        sent_at=r.updated_at if r.status == "succeeded" else None) for r in rows]
    choice = supersede.newest_status(Sibling(claimed.delivery_id, received, "pending", mine), siblings, now)
    return None if choice is supersede.SEND else choice


def settle(session: Session, delivery_id: str, owner: str, decision: Decision, now: datetime) -> bool:
    """End a superseded delivery, linked to its successor; False when the lease was lost meanwhile."""
    return bool(session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
        .values(status="superseded", superseded_by=decision.successor, reason=decision.reason, next_attempt_at=None,
                lease_until=None, lease_owner=None, updated_at=now)).rowcount)


def defer(session: Session, delivery_id: str, owner: str, decision: Decision) -> bool:
    """Wait until the decision's time without spending an attempt (leases.defer), saying why on the delivery."""
    until = decision.until or leases.db_now(session) + timedelta(seconds=decision.wait or 0)
    if not leases.defer(session, delivery_id, until, decision.reason, owner):
        return False
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(reason=decision.reason[:1000]))
    return True


def after_send(runtime: Runtime, claimed: leases.Claimed, decision: Decision, outcome: Outcome) -> None:
    """After the attempt was recorded: the breaker and the rate limits learn from the answer."""
    learn_limits(runtime, outcome)
    failed = breaker.counts_as_failure(outcome.ok, outcome.retryable, outcome.status, outcome.internal)
    answered = breaker.shows_health(outcome.ok, outcome.status, outcome.response is not None)
    known = decision.target is not None and (decision.target.failures or decision.target.paused_since)
    if not failed and not (answered and (known or decision.probe)):
        return  # the common case: a healthy target stays healthy, no write
    with runtime.sessions() as session, session.begin():
        released = after(session, runtime, claimed.webhook_uuid, decision, outcome, leases.db_now(session))
    enqueue_released(runtime, released)


def after(session: Session, runtime: Runtime, webhook_uuid: str, decision: Decision, outcome: Outcome,
          now: datetime) -> list[tuple[str, int]]:
    """The breaker learns; returns the deliveries a resumed target releases (the caller commits, then queues)."""
    if breaker.counts_as_failure(outcome.ok, outcome.retryable, outcome.status, outcome.internal):
        if breaker.record_failure(session, webhook_uuid, now, outcome.error or "", decision.probe,
                                  runtime.settings.breaker_failures):
            log.warning("target %s paused: %s", webhook_uuid, outcome.error, extra={"webhook": webhook_uuid})
        return []
    answered = breaker.shows_health(outcome.ok, outcome.status, outcome.response is not None)
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
