"""A failed verification's first send to a target that shows why waits, briefly, for the broker's answer."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select, update

import integrations
from relay.delivery import leases, queue
from relay.models import Delivery, Event
from relay.pairs import failures
from relay.runtime import Runtime

log = logging.getLogger(__name__)
FAILED = "provider_verification_failed"
WAITING = "waiting: why the verification failed, being read from the Pact Broker"


def hold_until(runtime: Runtime, claimed: leases.Claimed) -> datetime | None:
    """Until when (database time) the claimed delivery waits for its event's verification details; None: send now.

    Only a first attempt waits, only once, and at most the broker timeout from the event's arrival (or from now,
    whichever is sooner): the read wakes it as soon as it is done (wake), a broker that is down answers at once,
    and after the bound the delivery goes out without the details and says so. A read that was lost (Redis away
    at intake, its mark expired) is asked for again here."""
    settings, variables = runtime.settings, claimed.variables
    url = variables.get("verificationResultUrl")
    if not (settings.broker_url and url and variables.get("eventName") == FAILED and claimed.attempts_made == 0
            and claimed.webhook is not None and integrations.get(claimed.webhook.kind).shows_failure):
        return None
    with runtime.sessions() as session:
        row = session.execute(select(Delivery.reason, Event.received_at).join(Event, Event.id == Delivery.event_id)
                              .where(Delivery.id == claimed.delivery_id)).one_or_none()
        if row is None or row.reason == WAITING or failures.one(session, url) is not None:
            return None
        now = leases.db_now(session)
    bound = timedelta(seconds=settings.broker_timeout)
    until = min(row.received_at + bound, now + bound)
    if until <= now:
        return None
    try:
        if not queue.explain_asked(runtime.redis, [claimed.event_id])[0]:
            log.info("event %s: its verification details were never read; asking again", claimed.event_id,
                     extra={"event_id": claimed.event_id, "delivery_id": claimed.delivery_id})
            queue.enqueue_explain(runtime, claimed.event_id)
    except RedisError:
        return None  # no queue, no read: nothing to wait for
    return until


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
