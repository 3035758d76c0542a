"""POST /events: the Pact Broker's webhook lands here."""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, g, jsonify, request
from sqlalchemy.exc import OperationalError

from relay import metrics
from relay.delivery import queue
from relay.errors import PayloadError
from relay.intake import events
from relay.intake.groupcommit import GroupCommit
from relay.pairs import deploy, store
from relay.security.tokens import require
from relay.web.requests import body_bytes, enqueue_after_response, runtime

bp = Blueprint("events", __name__)
log = logging.getLogger(__name__)


@bp.post("/events")
@require("intake")
def receive():
    if not request.is_json:
        _rejected("unsupported-media-type")
        raise PayloadError.one("Content-Type", "must be application/json", status=415)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        _rejected("invalid")
        raise PayloadError.one("Idempotency-Key", "must be 1 to 255 characters")
    try:
        intake = events.receive(runtime().driver, body_bytes(), key, on_store=[store.record],
                                subscriptions=runtime().cache(events.SubscriptionCache),
                                group=runtime().cache(GroupCommit), key_scope=str(g.token.id))
    except PayloadError as exc:
        _rejected("invalid", sorted(exc.errors))
        raise
    except OperationalError:
        metrics.event_received("unknown", "unavailable")
        log.warning("event not stored: database unavailable", extra={"outcome": "unavailable"})
        raise
    if intake.conflict:
        _rejected("invalid", ["Idempotency-Key"])
        raise PayloadError.one("Idempotency-Key", "was used before for an event with other content; "
                                                  "send a new key for a new event", status=422)
    outcome = "duplicate" if intake.duplicate else "stored"
    metrics.event_received(intake.event_name, outcome)
    log.info("event %s %s", intake.event_id, outcome,
             extra={"event_id": intake.event_id, "event_name": intake.event_name, "outcome": outcome,
                    "deliveries": intake.deliveries, "delivery_ids": intake.to_enqueue})
    response = jsonify({"event": intake.event_id, "deliveries": intake.deliveries})
    response.status_code = 200 if intake.duplicate else 202
    if not intake.duplicate and intake.event_name in deploy.EVENTS and runtime().settings.broker_url:
        response.call_on_close(functools.partial(queue.enqueue_explain, runtime(), intake.event_id))
    return enqueue_after_response(response, intake.to_enqueue)


def _rejected(outcome: str, fields: list[str] | None = None) -> None:
    metrics.event_received("unknown", outcome)
    log.info("event rejected: %s", outcome, extra={"outcome": outcome, "fields": fields or []})
