"""The dashboard of pairs, one pair's events and deliveries, and the network picture."""

from __future__ import annotations

from flask import Response, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, lazyload

from relay.errors import NotFound
from relay.models import Delivery, Event
from relay.pairs import failures
from relay.pairs.state import UNTAGGED
from relay.web.api.status import badge_link, failure_of
from relay.web.requests import db
from relay.web.ui import access, outcomes
from relay.web.ui.attention import attention
from relay.web.ui.blueprint import bp
from relay.web.ui.network import COLOURS, layout
from relay.web.ui.paging import keyset
from relay.web.ui.pairs import label, matching, pair_rows, pairs
from relay.web.ui.views.deliveries import webhook_titles


@bp.get("/")
@access.login_required("read")
def dashboard():
    text = request.args.get("q", "")
    session = db()
    every = pairs(session)
    counts: dict[str, int] = {}
    for pair in every:  # of every pair, whatever the filter: a count is what its filter then shows
        counts[pair.label] = counts.get(pair.label, 0) + 1
    return render_template("dashboard.html", pairs=matching(every, text), q=text, counts=counts, colours=COLOURS,
                           attention=attention(session))


@bp.get("/pair")
@access.login_required("read")
def pair_show():
    consumer, provider = request.args.get("consumer", ""), request.args.get("provider", "")
    session = db()
    rows = pair_rows(session, consumer, provider)
    if not rows:
        raise NotFound(f"no pair {consumer[:100]!r} → {provider[:100]!r}")
    main = rows[0]
    failure = failure_of(main, failures.read(session, [main.verification_url]))
    events = keyset(session, select(Event).where(Event.consumer == consumer, Event.provider == provider),
                    Event.received_at, Event.id, 20, request.args.get("before"), request.args.get("after"))
    recent = list(session.scalars(
        select(Delivery).join(Delivery.event).options(contains_eager(Delivery.event), lazyload(Delivery.attempts))
        .where(Event.consumer == consumer, Event.provider == provider)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(20)))
    return render_template("pair.html", main=main, state=label(main), tags=rows[1:], untagged=UNTAGGED,
                           status=label, events=events, deliveries=recent, webhooks=webhook_titles(session),
                           shown=outcomes.list_rows(session, recent),
                           badge_url=badge_link(main), badge_path=badge_link(main, base=""), colours=COLOURS,
                           failure=failure)


def _picture():
    return layout([(p.consumer, p.provider, p.status) for p in pairs(db())])


@bp.get("/network")
@access.login_required("read")
def network():
    return render_template("network.html", picture=_picture(), colours=COLOURS)


@bp.get("/network.svg")
@access.login_required("read")
def network_svg():
    svg = render_template("_network.svg", picture=_picture(), colours=COLOURS, standalone=True)
    return Response(svg, mimetype="image/svg+xml")
