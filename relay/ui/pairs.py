"""Pairs for the dashboard: each consumer/provider's badge state with its newest delivery result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.models import Delivery, Event, PairStateRow
from relay.pairstate import PairState, status
from relay.pairstore import to_state

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


def last_deliveries(session: Session) -> dict[tuple[str, str], tuple[str, str, datetime]]:
    """The newest delivery per consumer/provider, in one pass over the deliveries."""
    ranked = (select(Event.consumer, Event.provider, Delivery.status, Delivery.id, Delivery.created_at,
                     func.row_number().over(partition_by=(Event.consumer, Event.provider),
                                            order_by=(Delivery.created_at.desc(), Delivery.id.desc())).label("n"))
              .join(Event, Delivery.event_id == Event.id).subquery())
    rows = session.execute(select(ranked.c.consumer, ranked.c.provider, ranked.c.status, ranked.c.id,
                                  ranked.c.created_at).where(ranked.c.n == 1))
    return {(c, p): (s, i, at) for c, p, s, i, at in rows}


def pairs(session: Session, text: str = "") -> list[Pair]:
    """Every pair's main row (any tag), failed first, then changed, unknown and verified; by name within."""
    c = PairStateRow
    rows = session.scalars(select(c).where(c.consumer_tag == "", c.provider_tag == ""))
    needle = text.strip().lower()
    states = [to_state(r) for r in rows]
    if needle:
        states = [s for s in states if needle in s.consumer.lower() or needle in s.provider.lower()
                  or needle in status(s)]
    last = last_deliveries(session) if states else {}
    out = [Pair(s, status(s), last.get((s.consumer, s.provider))) for s in states]
    out.sort(key=lambda p: (STATE_ORDER.get(p.status, 9), p.consumer.lower(), p.provider.lower()))
    return out


def pair_rows(session: Session, consumer: str, provider: str) -> list[PairState]:
    """All stored rows of one pair: the main row first, then per tag and matrix rows."""
    c = PairStateRow
    rows = session.scalars(select(c).where(c.consumer == consumer, c.provider == provider)
                           .order_by(c.consumer_tag, c.provider_tag))
    return [to_state(r) for r in rows]
