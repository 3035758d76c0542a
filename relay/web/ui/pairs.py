"""Pairs for the dashboard: each consumer/provider's badge state with its newest delivery result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.models import Delivery, Event, PairStateRow
from relay.pairs.state import PairState, status
from relay.pairs.store import to_state

STATE_ORDER = {"failed": 0, "changed": 1, "unverified": 2, "unknown": 2, "verified": 3}
# Which of a pair's current deliveries (the newest per webhook) the dashboard shows: the worst one.
SEVERITY = {"failed": 0, "retrying": 1, "pending": 2, "skipped": 3, "superseded": 4, "succeeded": 5}
RECENT = 2000  # the newest deliveries looked at for each pair's per-webhook current ones


@dataclass
class Pair:
    state: PairState
    status: str
    last_delivery: tuple[str, str, datetime] | None  # (status, delivery id, when): the worst current one
    webhooks: int = 1  # how many webhooks' current deliveries last_delivery is the worst of

    @property
    def label(self) -> str:
        return label(self.state)

    @property
    def consumer(self) -> str:
        return self.state.consumer

    @property
    def provider(self) -> str:
        return self.state.provider


def label(state: PairState) -> str:
    """The state in words: a pact that was published but never verified is `unverified`, not `unknown`."""
    found = status(state)
    return "unverified" if found == "unknown" and (state.pact_sha or state.pact_at) else found


def last_deliveries(session: Session, ids: list[str]) -> dict[str, tuple[str, str, datetime]]:
    """The pairs' newest deliveries by id (kept on each pair's main row at intake and replay)."""
    found: dict[str, tuple[str, str, datetime]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Delivery.id, Delivery.status, Delivery.created_at)
                               .where(Delivery.id.in_(ids[start:start + 500])))
        found.update({i: (s, i, at) for i, s, at in rows})
    return found


def worst_current(session: Session) -> dict[tuple[str, str], tuple[tuple[str, str, datetime], int]]:
    """(consumer, provider) → (the worst of its newest delivery per webhook, how many webhooks), from the
    RECENT newest deliveries; a pair with none among them keeps its stored newest delivery."""
    newest: dict[tuple[str, str, str], tuple[str, str, datetime]] = {}
    rows = session.execute(select(Delivery.id, Delivery.status, Delivery.created_at, Delivery.webhook_uuid,
                                  Event.consumer, Event.provider)
                           .join(Event, Event.id == Delivery.event_id)
                           .order_by(Delivery.created_at.desc()).limit(RECENT))
    for delivery_id, state, at, webhook, consumer, provider in rows:
        newest.setdefault((consumer, provider, webhook), (state, delivery_id, at))
    by_pair: dict[tuple[str, str], list[tuple[str, str, datetime]]] = {}
    for (consumer, provider, _), current in newest.items():
        by_pair.setdefault((consumer, provider), []).append(current)
    return {pair: (min(found, key=lambda d: (SEVERITY.get(d[0], 0), -d[2].timestamp())), len(found))
            for pair, found in by_pair.items()}


def search_text(pair: Pair) -> str:
    """What a filter matches: the names and the state word, never a delivery status or an event name (a pair whose
    last event was provider_verification_failed is not "failed" unless its state is)."""
    return f"{pair.consumer} {pair.provider}".lower()


def matching(found: list[Pair], text: str) -> list[Pair]:
    """A state word picks that state exactly ("verified" is not "unverified"); other text, part of a name."""
    needle = text.strip().lower()
    if not needle:
        return found
    if needle in STATE_ORDER:
        return [p for p in found if p.label == needle]
    return [p for p in found if needle in search_text(p)]


def pairs(session: Session, text: str = "") -> list[Pair]:
    """Every pair's main row (any tag), failed first, then changed, unknown and verified; by name within."""
    c = PairStateRow
    rows = session.scalars(select(c).where(c.consumer_tag == "", c.provider_tag == ""))
    needle = text.strip().lower()
    found = [(to_state(r), r.last_delivery_id) for r in rows]
    last = last_deliveries(session, [d for _, d in found if d])
    worst = worst_current(session)
    out = []
    for s, d in found:
        current = worst.get((s.consumer, s.provider))
        out.append(Pair(s, status(s), current[0], current[1]) if current
                   else Pair(s, status(s), last.get(d) if d else None))
    out = matching(out, needle)
    out.sort(key=lambda p: (STATE_ORDER.get(p.status, 9), p.consumer.lower(), p.provider.lower()))
    return out


def pair_rows(session: Session, consumer: str, provider: str) -> list[PairState]:
    """All stored rows of one pair: the main row first, then per tag and matrix rows."""
    c = PairStateRow
    rows = session.scalars(select(c).where(c.consumer == consumer, c.provider == provider)
                           .order_by(c.consumer_tag, c.provider_tag))
    return [to_state(r) for r in rows]
