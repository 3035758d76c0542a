"""Pairs for the dashboard: each consumer/provider's badge state with its newest delivery result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.models import Delivery, PairStateRow
from relay.pairs.state import PairState, status
from relay.pairs.store import to_state

STATE_ORDER = {"failed": 0, "changed": 1, "unknown": 2, "verified": 3}


@dataclass
class Pair:
    state: PairState
    status: str
    last_delivery: tuple[str, str, datetime] | None  # (status, delivery id, when)

    @property
    def consumer(self) -> str:
        return self.state.consumer

    @property
    def provider(self) -> str:
        return self.state.provider


def last_deliveries(session: Session, ids: list[str]) -> dict[str, tuple[str, str, datetime]]:
    """The pairs' newest deliveries by id (kept on each pair's main row at intake and replay)."""
    found: dict[str, tuple[str, str, datetime]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Delivery.id, Delivery.status, Delivery.created_at)
                               .where(Delivery.id.in_(ids[start:start + 500])))
        found.update({i: (s, i, at) for i, s, at in rows})
    return found


def pairs(session: Session, text: str = "") -> list[Pair]:
    """Every pair's main row (any tag), failed first, then changed, unknown and verified; by name within."""
    c = PairStateRow
    rows = session.scalars(select(c).where(c.consumer_tag == "", c.provider_tag == ""))
    needle = text.strip().lower()
    found = [(to_state(r), r.last_delivery_id) for r in rows]
    if needle:
        found = [(s, d) for s, d in found if needle in s.consumer.lower() or needle in s.provider.lower()
                 or needle in status(s)]
    last = last_deliveries(session, [d for _, d in found if d])
    out = [Pair(s, status(s), last.get(d) if d else None) for s, d in found]
    out.sort(key=lambda p: (STATE_ORDER.get(p.status, 9), p.consumer.lower(), p.provider.lower()))
    return out


def pair_rows(session: Session, consumer: str, provider: str) -> list[PairState]:
    """All stored rows of one pair: the main row first, then per tag and matrix rows."""
    c = PairStateRow
    rows = session.scalars(select(c).where(c.consumer == consumer, c.provider == provider)
                           .order_by(c.consumer_tag, c.provider_tag))
    return [to_state(r) for r in rows]
