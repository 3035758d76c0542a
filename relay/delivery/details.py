"""A failed verification's first send to a target that shows why waits, briefly, for the broker's answer."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select, update

import integrations
from relay.delivery import leases, queue
from relay.models import Delivery, Event
from relay.pairs import deploy, failures
from relay.runtime import Runtime

log = logging.getLogger(__name__)
FAILED = "provider_verification_failed"
WAITING = "waiting: the Pact Broker's answers about the event (why it failed, can I deploy), being read"


def hold_until(runtime: Runtime, claimed: leases.Claimed) -> datetime | None:
    """Until when (database time) the claimed delivery waits for the broker's answers about its event; None: now.

    A first attempt waits for why a failed verification failed (integrations that show it: `shows_failure`) and
    for can-i-deploy (GitHub webhooks with `can_i_deploy`). Only a first attempt waits, only once, and at most
    the broker timeout from the event's arrival (or from now, whichever is sooner): the read wakes it as soon as
    it is done (wake), a broker that is down answers at once, and after the bound the delivery goes out without
    the answers and says so. A read that was lost (Redis away at intake, its mark expired) is asked for again."""
    settings, variables, webhook = runtime.settings, claimed.variables, claimed.webhook
    if not settings.broker_url or claimed.attempts_made or webhook is None:
        return None
    url = variables.get("verificationResultUrl")
    wants_failure = bool(url) and variables.get("eventName") == FAILED and integrations.get(webhook.kind).shows_failure
    wants_deploy = (variables.get("eventName") in deploy.EVENTS and webhook.kind == "github"
                    and deploy.status_question(webhook.config, variables) is not None)
    if not (wants_failure or wants_deploy):
        return None
    with runtime.sessions() as session:
        row = session.execute(select(Delivery.reason, Event.received_at).join(Event, Event.id == Delivery.event_id)
                              .where(Delivery.id == claimed.delivery_id)).one_or_none()
        if row is None or row.reason == WAITING:
            return None
        pending = wants_failure and failures.one(session, url) is None
        now = leases.db_now(session)
    bound = timedelta(seconds=settings.broker_timeout)
    until = min(row.received_at + bound, now + bound)
    if until <= now:
        return None
    try:
        pending = pending or (wants_deploy and not queue.read_done(runtime.redis, claimed.event_id))
        if pending and not queue.explain_asked(runtime.redis, [claimed.event_id])[0]:
            log.info("event %s: the broker reads after it were never done; asking again", claimed.event_id,
                     extra={"event_id": claimed.event_id, "delivery_id": claimed.delivery_id})
            queue.enqueue_explain(runtime, claimed.event_id)
    except RedisError:
        return None  # no queue, no read: nothing to wait for
    return until if pending else None


def wake(runtime: Runtime, event_id: str) -> int:
    """The read of the event's verification result is done: its deliveries waiting for it are due now."""
    with runtime.sessions() as session, session.begin():
        now = leases.db_now(session)
        due = session.execute(
            update(Delivery).where(Delivery.event_id == event_id, Delivery.status.in_(leases.ACTIVE),
                                   Delivery.reason == WAITING, Delivery.lease_owner.is_(None),
                                   Delivery.next_attempt_at > now)
            .values(next_attempt_at=now).returning(Delivery.id, Delivery.attempts_made)).all()
    if due:
        try:
            queue.enqueue(runtime.redis, runtime.settings.queue_name, [tuple(r) for r in due],
                          leases.longest(runtime.settings))
        except Exception as exc:
            log.warning("%d deliveries waiting for verification details not queued (%s); the sweeper will send them",
                        len(due), type(exc).__name__)
    return len(due)


def lost_reads(runtime: Runtime, patience: float, window: float = 3600.0, limit: int = 200) -> int:
    """Ask again for the reads of recent failed verifications that have neither details nor a read under way
    (Redis away at intake, a worker killed mid-read); returns how many. For the sweeper."""
    if not runtime.settings.broker_url:
        return 0
    with runtime.sessions() as session:
        now = leases.db_now(session)
        rows = session.execute(
            select(Event.id, Event.variables).where(
                Event.name == FAILED, Event.received_at >= now - timedelta(seconds=window),
                Event.received_at <= now - timedelta(seconds=patience))
            .order_by(Event.received_at.desc()).limit(limit)).all()
        urls = {r.id: (r.variables or {}).get("verificationResultUrl") for r in rows}
        known = failures.read(session, [u for u in urls.values() if u])
    unread = [event_id for event_id, url in urls.items() if url and url not in known]
    asked = queue.explain_asked(runtime.redis, unread)
    lost = [event_id for event_id, marked in zip(unread, asked, strict=True) if not marked]
    for event_id in lost:
        queue.enqueue_explain(runtime, event_id)
    if lost:
        log.info("asked again for the verification details of %d failed verifications", len(lost))
    return len(lost)
