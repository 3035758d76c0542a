"""Deliveries as the API shows them, and replay."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.errors import NotFound
from relay.models import Delivery, new_id, utcnow
from relay.pairs import store

STATUSES = ("pending", "retrying", "succeeded", "failed")


def to_json(delivery: Delivery, base_url: str) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook": delivery.webhook_uuid,
        "event": delivery.event_id,
        "eventName": delivery.event.name,
        "consumer": delivery.event.consumer,
        "provider": delivery.event.provider,
        "status": delivery.status,
        "createdAt": delivery.created_at.isoformat(),
        "nextAttemptAt": delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None,
        "attempts": [{"number": a.number, "at": a.at.isoformat(), "duration_ms": a.duration_ms,
                      "request": a.request, "response": a.response, "error": a.error} for a in delivery.attempts],
        "_links": {"self": {"href": f"{base_url}/deliveries/{delivery.id}"},
                   "pb:replay": {"href": f"{base_url}/deliveries/{delivery.id}/replay"},
                   "pb:webhook": {"href": f"{base_url}/webhooks/{delivery.webhook_uuid}"}},
    }


def get(session: Session, delivery_id: str) -> Delivery:
    delivery = session.get(Delivery, delivery_id) if len(delivery_id) <= 36 else None
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id[:40]!r}")
    return delivery


def newest(session: Session, limit: int, webhook_uuid: str | None = None, status: str | None = None,
           before: str | None = None) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
    if webhook_uuid:
        query = query.where(Delivery.webhook_uuid == webhook_uuid)
    if status:
        query = query.where(Delivery.status == status)
    return list(session.scalars(query))


def replay(session: Session, delivery_id: str) -> Delivery:
    """A new delivery of the same event to the same webhook, due now; the caller commits."""
    original = get(session, delivery_id)
    now = utcnow()
    copy = Delivery(id=new_id(), webhook_uuid=original.webhook_uuid, event_id=original.event_id, status="pending",
                    next_attempt_at=now, created_at=now, updated_at=now)
    session.add(copy)
    session.flush()
    store.note_delivery(session, original.event.consumer, original.event.provider, copy.id)
    return copy
