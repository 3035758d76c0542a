"""Why a verification failed: the stored details of a failed verification result, read by every view of a pair."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay.models import VerificationDetailRow, utcnow

FOUND = "found"
UNAVAILABLE = "unavailable"
PENDING = "pending"  # asked for, not read yet (or never: no broker connection)


@dataclass(frozen=True)
class Failure:
    """The failing interactions of one verification result, or why they are not known."""

    url: str
    status: str
    reason: str = ""
    details: dict | None = None
    fetched_at: datetime | None = None

    @property
    def interactions(self) -> list[dict]:
        return list((self.details or {}).get("interactions") or [])

    @property
    def mismatch_count(self) -> int:
        return sum(len(i.get("mismatches") or []) for i in self.interactions)

    def to_dict(self, full: bool = True) -> dict:
        """JSON-ready; without `full`, the counts and no interactions."""
        details = self.details or {}
        doc = {"status": self.status, "reason": self.reason or None, "verifier": details.get("verifier"),
               "interactionCount": len(self.interactions), "mismatchCount": self.mismatch_count,
               "truncated": bool(details.get("truncated")),
               "fetchedAt": self.fetched_at.isoformat() if self.fetched_at else None}
        if full:
            doc["interactions"] = self.interactions
        return doc

    def first_mismatches(self, count: int) -> list[tuple[dict, dict]]:
        """The first `count` (interaction, mismatch) pairs, in the order the verifier reported them."""
        found = [(i, m) for i in self.interactions for m in i.get("mismatches") or []]
        return found[:count]


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "replace")).hexdigest()


def read(session: Session, urls: Iterable[str]) -> dict[str, Failure]:
    """The stored failures of these verification result URLs, by URL (absent: never read)."""
    keys = {url_key(u): u for u in set(urls) if u}
    if not keys:
        return {}
    rows = session.scalars(select(VerificationDetailRow).where(VerificationDetailRow.url_hash.in_(keys)))
    return {row.url: Failure(row.url, row.status, row.reason, row.details, row.fetched_at) for row in rows}


def one(session: Session, url: str) -> Failure | None:
    return read(session, [url]).get(url)


def save(session: Session, failure: Failure) -> None:
    """Keep what was read about one result (replacing an earlier read), in its own transaction."""
    values = {"url": failure.url, "status": failure.status, "reason": failure.reason[:1000],
              "details": failure.details, "fetched_at": failure.fetched_at or utcnow()}
    key = url_key(failure.url)
    with session.begin():
        row = session.get(VerificationDetailRow, key)
        if row is None:
            session.add(VerificationDetailRow(url_hash=key, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
    return None


def save_once(session: Session, failure: Failure) -> bool:
    """save(), where another worker storing the same result at the same moment is no error; False then."""
    try:
        save(session, failure)
    except IntegrityError:
        session.rollback()
        return False
    return True
