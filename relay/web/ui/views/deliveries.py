"""Deliveries: newest first with filters and keyset pages, one delivery's attempts, and Replay."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, lazyload

from relay.delivery import deliveries, queue
from relay.models import Delivery, Event, Webhook
from relay.web.requests import db, runtime
from relay.web.ui import access
from relay.web.ui.blueprint import bp
from relay.web.ui.paging import keyset

PAGE_SIZE = 50


def webhook_titles(session) -> dict[str, str]:
    return {uuid: description or uuid for uuid, description in session.execute(
        select(Webhook.uuid, Webhook.description).order_by(Webhook.description))}


@bp.get("/deliveries")
@access.login_required("read")
def deliveries_list():
    session = db()
    state = request.args.get("state", "")
    webhook = request.args.get("webhook", "")
    consumer = request.args.get("consumer", "").strip()
    provider = request.args.get("provider", "").strip()
    query = (select(Delivery).join(Delivery.event).options(contains_eager(Delivery.event), lazyload(Delivery.attempts)))
    if state in deliveries.STATUSES:
        query = query.where(Delivery.status == state)
    if webhook:
        query = query.where(Delivery.webhook_uuid == webhook)
    if consumer:
        query = query.where(Event.consumer == consumer)
    if provider:
        query = query.where(Event.provider == provider)
    page = keyset(session, query, Delivery.created_at, Delivery.id, PAGE_SIZE,
                  request.args.get("before"), request.args.get("after"))
    filters = {k: v for k, v in (("state", state), ("webhook", webhook), ("consumer", consumer),
                                 ("provider", provider)) if v}
    return render_template("deliveries.html", page=page, filters=filters, statuses=deliveries.STATUSES,
                           webhooks=webhook_titles(session))


@bp.get("/deliveries/<delivery_id>")
@access.login_required("read")
def delivery_show(delivery_id: str):
    session = db()
    delivery = deliveries.get(session, delivery_id)
    hook = session.get(Webhook, delivery.webhook_uuid)
    return render_template("delivery.html", delivery=delivery, webhook=hook)


@bp.post("/deliveries/<delivery_id>/replay")
@access.login_required("write")
def delivery_replay(delivery_id: str):
    session = db()
    copy = deliveries.replay(session, delivery_id)
    access.audit("delivery.replayed", delivery=copy.id, replayOf=delivery_id, webhook=copy.webhook_uuid,
                 event=copy.event_id)
    session.commit()
    queue.enqueue_fresh(runtime(), [copy.id])
    return redirect(url_for("ui.delivery_show", delivery_id=copy.id, replayed=delivery_id))
