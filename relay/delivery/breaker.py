"""The circuit breaker: consecutive failures pause a target; a growing cool-down and one probe at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from relay.models import TargetState

THRESHOLD = 5  # consecutive failures that pause a target
REQUEST_FAILED = 500  # the target's own code failed on this request: neither a failure of the target nor health
FIRST_COOLDOWN = 30.0
MAX_COOLDOWN = 600.0
PAUSED_REASON = "target paused"  # the start of a waiting delivery's reason; resume releases those


@dataclass(frozen=True)
class Verdict:
    """What the breaker says about one send: go, go as the probe, or wait until `until`."""

    go: bool
    probe: bool = False
    until: datetime | None = None
    reason: str = ""


GO = Verdict(go=True)


def counts_as_failure(ok: bool, retryable: bool, status: int | None, internal: bool) -> bool:
    """Connection errors, timeouts and 5xx that say the target is down count. A 4xx, a rate limit or a bug of our
    own says nothing of the target; nor does a 500: the target answered, so what failed is the request, whose
    values any one sender chooses (issue 23 #15), and one sender must not pause a webhook others share."""
    if ok or not retryable or internal:
        return False
    return status is None or (status >= 500 and status != REQUEST_FAILED)


def shows_health(ok: bool, status: int | None, answered: bool) -> bool:
    """An answer that says the target is up and handled the request: a 2xx or a 4xx, never a 5xx."""
    return ok or (answered and status is not None and status < 500)


def next_cooldown(current: float) -> float:
    return FIRST_COOLDOWN if current <= 0 else min(MAX_COOLDOWN, current * 2)


def verdict(state: TargetState | None, now: datetime) -> Verdict:
    """Pure: may a send to this target go now? A paused target lets one probe through once its cool-down is over."""
    if state is None or state.paused_since is None:
        return GO
    reason = f"{PAUSED_REASON} after {state.failures} consecutive failures: {state.reason or 'unknown'}"
    if state.next_probe_at is not None and state.next_probe_at > now:
        return Verdict(go=False, until=state.next_probe_at, reason=reason)
    if state.probe_until is not None and state.probe_until > now:
        return Verdict(go=False, until=state.probe_until, reason=reason)  # another delivery is probing
    return Verdict(go=True, probe=True, reason=reason)


def check(session: Session, webhook_uuid: str, now: datetime, probe_seconds: float) -> Verdict:
    """The verdict for a send now; a probe takes the probe lease atomically, so only one goes at a time."""
    state = session.get(TargetState, webhook_uuid)
    decided = verdict(state, now)
    if not decided.probe:
        return decided
    taken = session.execute(
        update(TargetState)
        .where(TargetState.webhook_uuid == webhook_uuid, TargetState.paused_since.is_not(None),
               (TargetState.probe_until.is_(None)) | (TargetState.probe_until <= now))
        .values(probe_until=now + timedelta(seconds=probe_seconds), updated_at=now)
    ).rowcount
    if taken:
        return decided
    return Verdict(go=False, until=now + timedelta(seconds=probe_seconds), reason=decided.reason)


def _ensure_row(session: Session, webhook_uuid: str, now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(TargetState).values(webhook_uuid=webhook_uuid, failures=0, cooldown=0.0, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["webhook_uuid"]))


def record_failure(session: Session, webhook_uuid: str, now: datetime, error: str, probe: bool,
                   threshold: int = THRESHOLD) -> bool:
    """Count one failure; pause the target at the threshold, or lengthen the cool-down after a failed probe.

    Returns True when this failure paused the target (or kept it paused after a probe)."""
    _ensure_row(session, webhook_uuid, now)
    session.execute(update(TargetState).where(TargetState.webhook_uuid == webhook_uuid)
                    .values(failures=TargetState.failures + 1, reason=error[:500], updated_at=now))
    state = session.execute(select(TargetState).where(TargetState.webhook_uuid == webhook_uuid)
                            .execution_options(populate_existing=True)).scalar_one()
    if state.paused_since is None and state.failures >= threshold:
        cooldown = next_cooldown(0)
        return bool(session.execute(
            update(TargetState).where(TargetState.webhook_uuid == webhook_uuid, TargetState.paused_since.is_(None))
            .values(paused_since=now, cooldown=cooldown, next_probe_at=now + timedelta(seconds=cooldown),
                    probe_until=None)).rowcount)
    if state.paused_since is not None and probe:
        cooldown = next_cooldown(state.cooldown)
        session.execute(update(TargetState).where(TargetState.webhook_uuid == webhook_uuid)
                        .values(cooldown=cooldown, next_probe_at=now + timedelta(seconds=cooldown), probe_until=None))
        return True
    return False


def record_success(session: Session, webhook_uuid: str, now: datetime) -> bool:
    """Forget the failures; True when this success resumed a paused target."""
    was_paused = session.scalar(select(TargetState.paused_since).where(TargetState.webhook_uuid == webhook_uuid))
    resume(session, webhook_uuid, now)
    return was_paused is not None


def resume(session: Session, webhook_uuid: str, now: datetime) -> None:
    session.execute(update(TargetState).where(TargetState.webhook_uuid == webhook_uuid)
                    .values(failures=0, paused_since=None, next_probe_at=None, cooldown=0.0, probe_until=None,
                            updated_at=now))


def states(session: Session, uuids: list[str] | None = None) -> dict[str, TargetState]:
    query = select(TargetState)
    if uuids is not None:
        query = query.where(TargetState.webhook_uuid.in_(uuids))
    return {s.webhook_uuid: s for s in session.scalars(query)}


def paused_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TargetState)
                          .where(TargetState.paused_since.is_not(None))) or 0
