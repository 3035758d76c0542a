"""Badge routes on the Pact Broker's paths: SVG or its JSON twin, ETags, and signatures for private badges."""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from relay.broker import deploy
from relay.db import read_connection
from relay.pairs import badges, badgeurls, store
from relay.pairs.state import status
from relay.web.api.broker import broker_only
from relay.web.requests import RestOfPath, raw_path, runtime

bp = Blueprint("badges", __name__)
SVG = "image/svg+xml"
JSON = "application/json"
TRUE = ("true", "1", "yes")


@bp.record_once
def _register_converter(state) -> None:
    # Any badge request, even with newlines or '//' in it, gets a badge, not a 404.
    state.app.url_map.converters.setdefault("rest", RestOfPath)


@bp.get("/pacts/provider/<rest:_rest>", merge_slashes=False, strict_slashes=False)
@bp.get("/matrix/provider/<rest:_rest>", merge_slashes=False, strict_slashes=False)
def badge(_rest: str):
    ref = badgeurls.parse(raw_path())
    if ref is None:
        return broker_only()
    label = request.args.get("label")
    initials = request.args.get("initials", "").lower() in TRUE
    tags = {"consumer_tag": ref.consumer_tag, "provider_tag": ref.provider_tag} if ref.kind == "matrix" else {}
    left = badges.badge_text(ref.consumer, ref.provider, label, initials, **tags)
    wants_json = request.accept_mimetypes.best_match([SVG, JSON]) == JSON
    if refused := _unsigned(ref, left, wants_json):
        return refused
    with read_connection(runtime().engine) as conn:
        state = status(store.badge_state(conn, ref.content_key(), ref.matrix_key()))
    if wants_json:
        return _cached(badges.badge_json(left, state), JSON)
    return _cached(badges.render_badge(left, state), SVG)


def _unsigned(ref, left: str, wants_json: bool):
    """With RELAY_PRIVATE_BADGES, the 403 for a badge URL without a valid signature; None when it may be served."""
    settings = runtime().settings
    if not settings.private_badges:
        return None
    signature = request.args.get("sig")
    if signature and badgeurls.verify(settings.secret_key, ref, signature):
        return None
    message = "signature required" if not signature else "invalid signature"
    # An <img> shows a 403 SVG but not a JSON error: the README reader sees why instead of a broken icon.
    if wants_json:
        return _json({"errors": {"sig": [f"{message}: private badges need the signed URL that "
                                          "`pact-relay badges url` or GET /status gives"]}}, 403)
    return _cached(badges.render_notice(left, message), SVG, 403)


@bp.get("/pacticipants/<rest:_rest>", merge_slashes=False, strict_slashes=False)
def can_i_deploy_badge(_rest: str):
    """The broker's can-i-deploy badge paths: the broker's answer, kept and refreshed by events; `unknown` with
    the reason (in the title and the JSON twin) when it is not known. Never waits past the broker timeout."""
    ref = badgeurls.deploy_badge(raw_path())
    if ref is None:
        return broker_only()
    left = request.args.get("label") or "can-i-deploy"
    wants_json = request.accept_mimetypes.best_match([SVG, JSON]) == JSON
    if refused := _unsigned(ref, left, wants_json):
        return refused
    found = deploy.answer(runtime(), ref.question)
    if wants_json:
        return _cached(badges.deploy_json(left, found.state, found.reason), JSON)
    return _cached(badges.render_deploy(left, found.state, found.reason), SVG)


def _cached(body: str, mimetype: str, code: int = 200) -> Response:
    tag = badges.etag(body).strip('"')
    if code == 200 and request.if_none_match.contains(tag):
        response = Response(status=304)
    else:
        response = Response(body, status=code, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Accept"
    response.set_etag(tag)
    return response


def _json(doc: dict, code: int) -> Response:
    response = Response(json.dumps(doc), status=code, mimetype=JSON)
    response.headers["Cache-Control"] = "no-cache"
    return response
