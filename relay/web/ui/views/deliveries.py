"""Deliveries: newest first with filters and keyset pages, one delivery's attempts, and Replay."""

from __future__ import annotations

from flask import jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager, lazyload

from relay.delivery import deliveries, queue
from relay.models import Delivery, Event, Webhook
from relay.pairs.store import pacticipants
from relay.web.requests import db, runtime
from relay.web.ui import access, outcomes
from relay.web.ui.blueprint import bp
from relay.web.ui.paging import keyset

PAGE_SIZE = 50
ACTIVE = ("pending", "retrying")  # not ended: no Replay yet, and the page polls for its status


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
    # Part of a name, any case, the same on SQLite and PostgreSQL: lower() on both sides, LIKE escaped.
    if consumer:
        query = query.where(func.lower(Event.consumer).contains(consumer.lower(), autoescape=True))
    if provider:
        query = query.where(func.lower(Event.provider).contains(provider.lower(), autoescape=True))
    page = keyset(session, query, Delivery.created_at, Delivery.id, PAGE_SIZE,
                  request.args.get("before"), request.args.get("after"))
    filters = {k: v for k, v in (("state", state), ("webhook", webhook), ("consumer", consumer),
                                 ("provider", provider)) if v}
    return render_template("deliveries.html", page=page, filters=filters, statuses=deliveries.STATUSES,
                           webhooks=webhook_titles(session), shown=outcomes.list_rows(session, page.rows),
                           seen=sorted(pacticipants(session), key=str.lower))


def _live(session, delivery_id: str) -> dict:
    delivery = deliveries.get(session, delivery_id)
    doc = deliveries.to_json(delivery, "")
    shown = outcomes.shown(doc)
    return {"delivery": delivery, "shown": shown, "ended": delivery.status not in ACTIVE,
            "headline": outcomes.headline(shown.status, shown.reason, doc["attempts"])}


@bp.get("/deliveries/<delivery_id>")
@access.login_required("read")
def delivery_show(delivery_id: str):
    session = db()
    live = _live(session, delivery_id)
    delivery = live["delivery"]
    hook = session.get(Webhook, delivery.webhook_uuid)
    replays = list(session.scalars(select(Delivery).where(Delivery.replay_of == delivery.id)
                                   .options(lazyload(Delivery.attempts), lazyload(Delivery.event))
                                   .order_by(Delivery.created_at)))
    return render_template("delivery.html", webhook=hook, replays=replays, **live)


@bp.get("/deliveries/<delivery_id>/live")
@access.login_required("read")
def delivery_live(delivery_id: str):
    """The parts of a delivery page that change while it waits, for relay.js to swap in place: the status, the
    headline, Replay, and only the attempts the page does not show yet (what the reader selected stays put)."""
    live = _live(db(), delivery_id)
    since = request.args.get("since", 0, type=int)
    fresh = [a for a in live["delivery"].attempts if a.number > since]
    return jsonify(status=live["shown"].status, ended=live["ended"], attempts=len(live["delivery"].attempts),
                   live=render_template("_delivery_live.html", **live),
                   fresh=render_template("_attempts.html", attempts=fresh))


@bp.post("/deliveries/<delivery_id>/replay")
@access.login_required("write")
def delivery_replay(delivery_id: str):
    session = db()
    if deliveries.get(session, delivery_id).status in ACTIVE:
        return render_template("error.html", code=409,
                               message="This delivery has not ended yet; replay it once it has."), 409
    copy = deliveries.replay(session, delivery_id)
    access.audit("delivery.replayed", delivery=copy.id, replayOf=delivery_id, webhook=copy.webhook_uuid,
                 event=copy.event_id)
    session.commit()
    queue.enqueue_fresh(runtime(), [copy.id])
    return redirect(url_for("ui.delivery_show", delivery_id=copy.id, replayed=delivery_id))
