"""POST /events: the Pact Broker's webhook lands here."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from relay import events, pairstore
from relay.api import db, enqueue_after_response
from relay.auth import require
from relay.errors import PayloadError

bp = Blueprint("events", __name__)
log = logging.getLogger(__name__)


@bp.post("/events")
@require("intake")
def receive():
    if not request.is_json:
        raise PayloadError.one("Content-Type", "must be application/json", status=415)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise PayloadError.one("Idempotency-Key", "must be 1 to 255 characters")
    intake = events.receive(db(), request.get_data(cache=False), key, on_store=[pairstore.record])
    log.info("event %s %s: %d deliveries%s", intake.event_id, "repeat" if intake.duplicate else "stored",
             intake.deliveries, "" if not intake.duplicate else " (not re-sent)")
    response = jsonify({"event": intake.event_id, "deliveries": intake.deliveries})
    response.status_code = 200 if intake.duplicate else 202
    return enqueue_after_response(response, intake.to_enqueue)
