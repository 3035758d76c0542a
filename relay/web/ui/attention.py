"""What needs a person on the dashboard: paused webhooks, failing targets and stuck deliveries, each with its fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.models import Delivery, TargetState, Webhook, utcnow

STUCK_AFTER = timedelta(minutes=10)  # a delivery due this long ago and still not sent: no worker is taking it
FAILING = ("failed", "retrying")


@dataclass(frozen=True)
class Paused:
    webhook: Webhook
    since: datetime
    reason: str
    next_probe_at: datetime | None


@dataclass(frozen=True)
class Failing:
    webhook: Webhook
    delivery: Delivery


@dataclass(frozen=True)
class Attention:
    paused: list[Paused]
    failing: list[Failing]
    stuck: int
    oldest_stuck: datetime | None

    def __bool__(self) -> bool:
        return bool(self.paused or self.failing or self.stuck)


def attention(session: Session, now: datetime | None = None) -> Attention:
    now = now or utcnow()
    hooks = {h.uuid: h for h in session.scalars(select(Webhook).order_by(Webhook.description))}
    paused = [Paused(hooks[s.webhook_uuid], s.paused_since, f"{s.failures} consecutive failures; last: "
                     f"{s.reason or 'unknown'}", s.next_probe_at)
              for s in session.scalars(select(TargetState).where(TargetState.paused_since.is_not(None)))
              if s.webhook_uuid in hooks]
    skip = {p.webhook.uuid for p in paused}  # a paused webhook is said once, with Resume
    failing = []
    for uuid, hook in hooks.items():
        if uuid in skip or not hook.enabled:
            continue
        newest = session.scalars(select(Delivery).where(Delivery.webhook_uuid == uuid)
                                 .order_by(Delivery.created_at.desc()).limit(1)).first()
        if newest is not None and newest.status in FAILING and newest.attempts_made:
            failing.append(Failing(hook, newest))
    due = now - STUCK_AFTER
    stuck, oldest = session.execute(
        select(func.count(), func.min(Delivery.next_attempt_at))
        .where(Delivery.status.in_(("pending", "retrying")), Delivery.next_attempt_at < due,
               Delivery.webhook_uuid.not_in(skip) if skip else Delivery.id.is_not(None))).one()
    return Attention(paused, failing, stuck or 0, oldest)
