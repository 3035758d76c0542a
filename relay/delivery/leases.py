"""Per-delivery leases, due times and deferral, all on the database's clock: hosts' own clocks may differ."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session

from relay.config import Settings
from relay.delivery.attempt import DEFAULT_TIMEOUT
from relay.intake.webhooks import MAX_TIMEOUT
from relay.models import Delivery, Event, TargetState, Webhook

log = logging.getLogger(__name__)
ACTIVE = ("pending", "retrying")
# host:pid:boot — the boot part tells this process from an earlier one that had the same pid (a restarted
# container), so a restarted worker can give back what its dead predecessor held.
PROCESS = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
# An attempt makes at most this many requests (python-jenkins: crumb, then build), each within its timeouts.
REQUESTS_PER_ATTEMPT = 2



def db_now(session: Session) -> datetime:
    """The database server's time (UTC). SQLite is embedded: its clock is its host's, shared by its workers."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    raw = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.fromisoformat(raw).replace(tzinfo=UTC)


def lease_seconds(settings: Settings, webhook: Webhook | None) -> float:
    """A lease outlives the longest send the webhook may ask for, plus the wait for a slot and a margin.

    So a send still in progress is never taken over by another worker for a timeout of the relay's own making."""
    connect = (webhook.connect_timeout if webhook else None) or DEFAULT_TIMEOUT[0]
    read = (webhook.read_timeout if webhook else None) or DEFAULT_TIMEOUT[1]
    return settings.lease_seconds + settings.slot_wait + REQUESTS_PER_ATTEMPT * (connect + read)


def longest(settings: Settings) -> float:
    """The longest lease any webhook gets (timeouts at their 120 s maximum): RQ's job timeout exceeds it."""
    return lease_seconds(settings, Webhook(connect_timeout=MAX_TIMEOUT, read_timeout=MAX_TIMEOUT)) + 60


def new_owner() -> str:
    return f"{PROCESS}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claimed:
    """A delivery this process holds the lease on, with what its attempt needs: loaded with the lease, and
    unchanging while it is held (only the lease holder records an attempt)."""

    delivery_id: str
    owner: str
    webhook: Webhook | None  # None: deleted
    lease_seconds: float
    attempts_made: int
    event_id: str
    webhook_uuid: str
    variables: dict[str, Any]
    target: TargetState | None = None  # the circuit breaker's state of the webhook, if it ever failed


def claim(session: Session, settings: Settings, delivery_ids: Iterable[str]) -> list[Claimed]:
    """Lease every delivery of `delivery_ids` that is due and free, in one transaction the caller commits.

    Due and free are decided on the database's clock, in the UPDATE itself: of two workers racing for one
    delivery exactly one gets it, whatever their clocks say."""
    ids = list(dict.fromkeys(delivery_ids))
    if not ids:
        return []
    now = db_now(session)
    rows = session.execute(
        select(Delivery.id, Delivery.attempts_made, Delivery.event_id, Delivery.webhook_uuid, Event.variables,
               Webhook, TargetState)
        .join(Event, Event.id == Delivery.event_id)
        .outerjoin(Webhook, Webhook.uuid == Delivery.webhook_uuid)
        .outerjoin(TargetState, TargetState.webhook_uuid == Delivery.webhook_uuid)
        .where(Delivery.id.in_(ids), *_due_and_free(now))
    ).all()
    owner = new_owner()
    claimed = []
    by_length: dict[float, list] = {}
    for row in rows:
        by_length.setdefault(lease_seconds(settings, row.Webhook), []).append(row)
    for seconds, group in by_length.items():
        got = set(session.execute(
            update(Delivery).where(Delivery.id.in_([r.id for r in group]), *_due_and_free(now))
            .values(lease_until=now + timedelta(seconds=seconds), lease_owner=owner)
            .returning(Delivery.id)
        ).scalars())
        claimed += [Claimed(r.id, owner, r.Webhook, seconds, r.attempts_made, r.event_id, r.webhook_uuid,
                            r.variables, r.TargetState) for r in group if r.id in got]
    return claimed


def _due_and_free(now: datetime):
    return (Delivery.status.in_(ACTIVE), Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))


def defer(session: Session, delivery_id: str, until: datetime | None, reason: str, owner: str | None = None) -> bool:
    """Wait until `until` (database time; None: now) without spending an attempt, and give back the lease.

    The one way for any check before a send (a busy target or host, a paused target, a rate limit) to put a
    delivery off: the attempt count stays, the sweeper queues it again when due. With `owner`, only while
    that lease is still held. The caller commits. False when the delivery was no longer this owner's."""
    conditions = [Delivery.id == delivery_id, Delivery.status.in_(ACTIVE)]
    if owner is not None:
        conditions.append(Delivery.lease_owner == owner)
    values = {"lease_until": None, "lease_owner": None}
    values["next_attempt_at"] = until if until is not None else db_now(session)
    done = session.execute(update(Delivery).where(*conditions).values(**values)).rowcount == 1
    if done:
        log.info("delivery %s waits until %s: %s", delivery_id, values["next_attempt_at"].isoformat(), reason,
                 extra={"delivery_id": delivery_id, "reason": reason})
    return done


def release(session: Session, leases: Iterable[tuple[str, str]]) -> int:
    """Give back (delivery id, owner) leases untouched: due again at once, no attempt spent. Caller commits."""
    released = 0
    for delivery_id, owner in leases:
        released += session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
            .values(lease_until=None, lease_owner=None)).rowcount
    return released


def release_orphans(session: Session) -> int:
    """Leases held by earlier worker processes on this host that no longer run (a SIGKILL, a restart).

    Nothing of theirs is in flight any more, so their deliveries need not wait for the leases to expire."""
    host = PROCESS.split(":", 1)[0]
    rows = session.execute(
        select(Delivery.id, Delivery.lease_owner)
        .where(Delivery.lease_owner.like(f"{host}:%"), Delivery.lease_until.is_not(None))).all()
    dead = [(d, owner) for d, owner in rows if not owner.startswith(PROCESS + ":") and not _alive(owner)]
    return release(session, dead)


def _alive(owner: str) -> bool:
    parts = owner.split(":")
    if len(parts) < 4 or not (parts[1].isascii() and parts[1].isdigit()):
        return True  # not ours to judge; its lease will expire
    pid = int(parts[1])
    if pid == os.getpid():
        return False  # this pid, another boot: the process that held it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def due(session: Session, grace: float, limit: int) -> list[tuple[str, int]]:
    """(id, attempts made) of deliveries due now and free, oldest first; fresh ones only after `grace` seconds."""
    now = db_now(session)
    return session.execute(
        select(Delivery.id, Delivery.attempts_made)
        .where(*_due_and_free(now),
               # A delivery a check before its send put off (a paused target, a rate limit, debounce) has its
               # reason set and no queued job: it is due at its time, not `grace` later.
               or_(Delivery.attempts_made > 0, Delivery.reason.is_not(None),
                   Delivery.next_attempt_at <= now - timedelta(seconds=grace)))
        .order_by(Delivery.next_attempt_at).limit(limit)
    ).all()
