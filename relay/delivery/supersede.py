"""Supersede and debounce: which of several deliveries to one target still needs sending."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

ACTIVE = ("pending", "retrying")
DEBOUNCED = "debounced: a newer event for the same consumer, provider and branch starts this build"
SUPERSEDED = "superseded: a newer status for the same repository, commit and context is due"
# At most one status per repository, commit and context in this many seconds: a burst in between is carried by
# its newest, so a commit's status does not flicker through every intermediate state.
STATUS_SPACING = 2.0


@dataclass(frozen=True)
class Sibling:
    """A delivery of the same webhook, as much as the choice needs; `at` is when its event arrived."""

    id: str
    at: datetime
    status: str
    key: object = None
    leased: bool = False
    sent_at: datetime | None = None  # when a succeeded one was recorded

    @property
    def order(self) -> tuple[datetime, str]:
        return self.at, self.id


@dataclass(frozen=True)
class Choice:
    """`successor` set: end superseded by it; `until` set: wait; neither: send."""

    successor: Sibling | None = None
    until: datetime | None = None
    reason: str = ""


SEND = Choice()


def newest_status(me: Sibling, siblings: Iterable[Sibling], now: datetime) -> Choice:
    """GitHub statuses: a newer one for the same key that is due or already sent makes mine moot; an older
    one in flight makes mine wait, so the newest state is always the last one GitHub receives; and one sent
    less than STATUS_SPACING ago makes mine wait for the rest of the burst."""
    same = [s for s in siblings if s.id != me.id and s.key == me.key]
    newer = [s for s in same if s.order > me.order and s.status in (*ACTIVE, "succeeded")]
    if newer:
        return Choice(successor=max(newer, key=lambda s: s.order), reason=SUPERSEDED)
    older = [s for s in same if s.order < me.order]
    if any(s.leased and s.status in ACTIVE for s in older):
        return Choice(until=None, reason="waiting: an older status for the same commit is being sent")
    recent = [s.sent_at for s in older if s.status == "succeeded" and s.sent_at is not None]
    spaced = max(recent) + timedelta(seconds=STATUS_SPACING) if recent else None
    if spaced is not None and spaced > now:
        return Choice(until=spaced, reason=f"waiting: at most one status per commit and context "
                                           f"every {STATUS_SPACING:g} s")
    return SEND


def debounced(me: Sibling, group: Iterable[Sibling], window: float, now: datetime) -> Choice:
    """CI triggers: the burst of events within `window` seconds of its first starts one build, the newest.

    `group` holds the webhook's deliveries for the same consumer, provider and branch created within the
    window before mine: due ones and those already debounced (they still mark where the burst began)."""
    members = [s for s in group if s.id != me.id]
    # A newer one already sent counts as much as one waiting: the order workers take deliveries in is no order.
    newer = [s for s in members if s.order > me.order and s.status in (*ACTIVE, "succeeded")]
    if newer:
        return Choice(successor=max(newer, key=lambda s: s.order), reason=DEBOUNCED)
    start = min([me.at, *(s.at for s in members if s.status in (*ACTIVE, "superseded"))])
    until = start + timedelta(seconds=window)
    if until > now:
        return Choice(until=until, reason=f"waiting: debounce of {window:g} s collects a burst of events")
    return SEND


def burst_key(variables: Mapping[str, str]) -> tuple[str, str, str]:
    return (variables.get("consumerName", ""), variables.get("providerName", ""),
            variables.get("consumerVersionBranch", ""))
