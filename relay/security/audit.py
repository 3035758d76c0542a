"""The append-only, hash-chained audit log: appending, verifying the chain, and reading it back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.models import AuditEntry, AuditHead, new_id, utcnow
from relay.redact import session_known_secrets

GENESIS = "0" * 64
HEAD_ID = 1
MAX_TEXT = 1000


@dataclass(frozen=True)
class Actor:
    """Who did it: a token (by name), a user (by email), the command line (by OS login) or nobody known."""

    type: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "name": self.name}


ANONYMOUS = Actor("anonymous", "")


@dataclass(frozen=True)
class Origin:
    """Where a request came from; empty for the command line."""

    method: str | None = None
    path: str | None = None
    source: str | None = None
    user_agent: str | None = None


def canonical(entry: AuditEntry) -> str:
    """The exact text an entry's hash covers: every column but the hash itself, as sorted compact JSON."""
    return json.dumps({
        "seq": entry.seq, "uuid": entry.uuid, "timestamp": entry.timestamp.isoformat(timespec="microseconds"),
        "type": entry.type, "actor_type": entry.actor_type, "actor_name": entry.actor_name,
        "method": entry.method, "path": entry.path, "source": entry.source, "user_agent": entry.user_agent,
        "payload": entry.payload, "prev_hash": entry.prev_hash,
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256((entry.prev_hash + canonical(entry)).encode()).hexdigest()


def _clip(value: str | None) -> str | None:
    return None if value is None else value[:MAX_TEXT]


def _lock_head(session: Session) -> AuditHead:
    # FOR UPDATE serializes appenders on PostgreSQL; SQLite transactions already hold the write lock (BEGIN IMMEDIATE).
    head = session.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    if head is None:
        if session.scalar(select(AuditEntry.seq).limit(1)) is not None:
            raise RuntimeError("the audit_head row is missing while the audit log has entries")
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def append(session: Session, type: str, actor: Actor, payload: dict[str, Any], origin: Origin = Origin(),
           now: datetime | None = None) -> AuditEntry:
    """Add one entry inside the caller's transaction; it is chained when that transaction commits."""
    head = _lock_head(session)
    known = session_known_secrets(session.info)
    text = known.text(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str))
    entry = AuditEntry(seq=head.seq + 1, uuid=new_id(), timestamp=(now or utcnow()), type=type,
                       actor_type=actor.type, actor_name=actor.name[:254], method=origin.method,
                       path=_clip(origin.path), source=_clip(origin.source), user_agent=_clip(origin.user_agent),
                       payload=text, prev_hash=head.hash)
    entry.hash = entry_hash(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head: str
    broken: AuditEntry | None = None
    reason: str = ""


def verify(session: Session, batch: int = 1000) -> Verdict:
    """Walk the chain from the first entry; the first entry whose links or content do not add up is named."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in _walk(session, batch):
        count += 1
        if entry.seq != expected_seq:
            return Verdict(False, count, prev, entry, f"sequence jumps from {expected_seq - 1} to {entry.seq} "
                                                      "(entries were removed)")
        if entry.prev_hash != prev:
            return Verdict(False, count, prev, entry, "it does not link to the entry before it")
        if entry_hash(entry) != entry.hash:
            return Verdict(False, count, prev, entry, "its content does not match its hash (it was changed)")
        prev, expected_seq = entry.hash, expected_seq + 1
    head = session.get(AuditHead, HEAD_ID)
    if head is not None and (head.seq, head.hash) != (expected_seq - 1, prev):
        return Verdict(False, count, prev, None, f"the chain ends at entry {expected_seq - 1} but the head "
                                                 f"records entry {head.seq} (entries were removed from the end)")
    return Verdict(True, count, prev)


def _walk(session: Session, batch: int) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.seq > after)
                                    .order_by(AuditEntry.seq).limit(batch)))
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


def to_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "uuid": entry.uuid,
        "timestamp": entry.timestamp.isoformat(),
        "type": entry.type,
        "actor": {"type": entry.actor_type, "name": entry.actor_name},
        "payload": json.loads(entry.payload),
        "request": {"method": entry.method, "path": entry.path, "source": entry.source,
                    "userAgent": entry.user_agent},
        "hash": entry.hash,
    }


def page(session: Session, limit: int, after_uuid: str | None = None, types: list[str] | None = None,
         actor: str | None = None, since: datetime | None = None, until: datetime | None = None
         ) -> tuple[list[AuditEntry], bool] | None:
    """Entries in chain order after `after_uuid`, filtered; None when that uuid is unknown."""
    query = select(AuditEntry).order_by(AuditEntry.seq).limit(limit + 1)
    if after_uuid:
        seq = session.scalar(select(AuditEntry.seq).where(AuditEntry.uuid == after_uuid))
        if seq is None:
            return None
        query = query.where(AuditEntry.seq > seq)
    if types:
        query = query.where(AuditEntry.type.in_(types))
    if actor:
        query = query.where(AuditEntry.actor_name == actor)
    if since:
        query = query.where(AuditEntry.timestamp >= since)
    if until:
        query = query.where(AuditEntry.timestamp < until)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit
