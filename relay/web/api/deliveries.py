"""Deliveries: their attempt logs, and replay."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from relay.delivery import deliveries, queue
from relay.errors import PayloadError
from relay.security.auditing import record
from relay.security.tokens import require
from relay.web.requests import base_url, db, limit_arg, runtime

bp = Blueprint("deliveries", __name__)


@bp.get("/deliveries")
@require("read")
def index():
    status = request.args.get("status")
    if status is not None and status not in deliveries.STATUSES:
        raise PayloadError.one("status", f"must be one of {', '.join(deliveries.STATUSES)}")
    rows = deliveries.newest(db(), limit_arg(), webhook_uuid=request.args.get("webhook"), status=status)
    return jsonify({"deliveries": [deliveries.to_json(d, base_url()) for d in rows]})


@bp.get("/deliveries/<delivery_id>")
@require("read")
def show(delivery_id: str):
    return jsonify(deliveries.to_json(deliveries.get(db(), delivery_id), base_url()))


@bp.post("/deliveries/<delivery_id>/replay")
@require("write")
def replay(delivery_id: str):
    session = db()
    copy = deliveries.replay(session, delivery_id)
    record(session, "delivery.replayed", delivery=copy.id, replayOf=delivery_id, webhook=copy.webhook_uuid,
           event=copy.event_id)
    session.commit()
    queue.enqueue_fresh(runtime(), [copy.id])
    return jsonify(deliveries.to_json(copy, base_url())), 202
