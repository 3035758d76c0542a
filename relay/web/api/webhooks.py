"""/webhooks: Pact Broker webhook JSON in and out, test execution and per-webhook deliveries."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from werkzeug.routing import BaseConverter

from relay.delivery import breaker, deliveries, policies, testsend
from relay.errors import NotFound, PayloadError
from relay.intake import presets, webhooks
from relay.models import Secret, TargetState, Webhook, utcnow
from relay.pairs import badgeurls
from relay.pairs.store import pacticipants
from relay.security.auditing import record
from relay.security.tokens import require
from relay.web.requests import RestOfPath, base_url, db, json_body, limit_arg, raw_path, runtime, self_url

bp = Blueprint("webhooks", __name__)


class WebhookSegment(BaseConverter):
    """Any path segment but `presets`, which is a resource of its own: PUT /webhooks/presets is a 405,
    not a webhook named "presets". Bad uuids still reach the views, which explain what is wrong."""

    regex = r"(?!(?:presets|provider|consumer)(?:/|$))[^/]+"


@bp.record_once
def _register_converter(state) -> None:
    state.app.url_map.converters.setdefault("webhook", WebhookSegment)
    state.app.url_map.converters.setdefault("rest", RestOfPath)


def _get(uuid: str) -> Webhook:
    hook = db().get(Webhook, uuid) if webhooks.UUID_PATTERN.fullmatch(uuid) else None
    if hook is None:
        raise NotFound(f"no webhook {uuid[:100]!r}")
    return hook


def _validated(doc, existing: Webhook | None) -> tuple[dict, str | None, dict]:
    rt = runtime()
    names = set(db().scalars(select(Secret.name)))
    form = webhooks.WebhookInput(rt.settings, rt.vault, names, existing)
    values = form.parse(doc)
    return values, form.new_signing_secret, form.warnings


def _respond(hook: Webhook, status: int, signing_secret: str | None = None, warnings: dict | None = None):
    doc = webhooks.to_json(hook, base_url(), db().get(TargetState, hook.uuid))
    if signing_secret:
        doc["signingSecret"] = signing_secret  # shown this once; only its ciphertext is stored
    if warnings:
        doc["warnings"] = warnings
    response = jsonify(doc)
    response.status_code = status
    if status == 201:
        response.headers["Location"] = doc["_links"]["self"]["href"]
    return response


@bp.get("/webhooks")
@require("read")
def index():
    hooks = list(db().scalars(select(Webhook).order_by(Webhook.created_at)))
    return jsonify(webhooks.listing(hooks, base_url(), breaker.states(db())))


@bp.get("/webhooks/presets")
@require("read")
def preset_list():
    return jsonify({"presets": presets.list_presets()})


def _expand_preset(doc):
    """`{"preset": NAME, ...params}` becomes the preset's webhook JSON; anything else passes through."""
    if not isinstance(doc, dict) or "preset" not in doc:
        return doc
    params = {k: v for k, v in doc.items() if k != "preset"}
    if not isinstance(doc["preset"], str):
        raise PayloadError.one("preset", "must be a preset name")
    try:
        return presets.expand(doc["preset"], params)
    except presets.PresetError as exc:
        raise PayloadError(exc.errors) from None


@bp.post("/webhooks")
@require("write")
def create():
    return _create(json_body())


def _create(doc):
    values, signing_secret, warnings = _validated(_expand_preset(doc), None)
    hook = Webhook(uuid=webhooks.new_uuid())
    webhooks.apply(hook, values)
    session = db()
    session.add(hook)
    session.flush()
    record(session, "webhook.created", uuid=hook.uuid, webhook=webhooks.audit_json(hook))
    session.commit()
    return _respond(hook, 201, signing_secret, {**warnings, **webhooks.unseen_names(hook, pacticipants(session))})


def _pacticipants() -> dict[str, str]:
    """The broker's webhook path forms: provider and/or consumer names from the path, percent-decoded."""
    try:
        parts = badgeurls.path_segments(raw_path(), strict=True)
    except UnicodeDecodeError:
        raise PayloadError.one("path", "a name in the path must be UTF-8 once percent-decoded") from None
    start = min(i for i, part in enumerate(parts) if part == "webhooks" and i + 1 < len(parts)
                and parts[i + 1] in ("provider", "consumer"))
    rest, names = parts[start + 1:], {}
    while rest:
        side, name, rest = rest[0], rest[1:2], rest[2:]
        if side not in ("provider", "consumer") or side in names or not name or not name[0].strip():
            raise PayloadError.one("path", "must be /webhooks/provider/{provider}/consumer/{consumer}, "
                                           "/webhooks/provider/{provider} or /webhooks/consumer/{consumer}")
        if any(ord(c) < 32 or c == "\x7f" for c in name[0]):
            raise PayloadError.one(side, "a name in the path must not contain control characters (NUL, CR, LF, ...)")
        names[side] = name[0]
    return names


@bp.get("/webhooks/provider/<rest:_rest>", merge_slashes=False)
@bp.get("/webhooks/consumer/<rest:_rest>", merge_slashes=False)
@require("read")
def pacticipant_index(_rest: str):
    names = _pacticipants()
    query = select(Webhook).order_by(Webhook.created_at)
    for side, name in names.items():
        query = query.where(getattr(Webhook, f"{side}_name") == name)
    doc = webhooks.listing(list(db().scalars(query)), base_url())
    doc["_links"]["self"]["href"] = self_url(query=False)
    return jsonify(doc)


@bp.post("/webhooks/provider/<rest:_rest>", merge_slashes=False)
@bp.post("/webhooks/consumer/<rest:_rest>", merge_slashes=False)
@require("write")
def pacticipant_create(_rest: str):
    """As the broker: the path names the webhook's consumer and/or provider; the body may repeat, not contradict."""
    names = _pacticipants()
    doc = json_body()
    if isinstance(doc, dict):
        for side, name in names.items():
            given = doc.get(side)
            if given is not None and not (isinstance(given, dict) and given.get("name") == name):
                raise PayloadError.one(side, f"the path names the {side} {name[:100]!r}; leave it out of the body")
            doc[side] = {"name": name}
    return _create(doc)


@bp.get("/webhooks/<webhook:uuid>")
@require("read")
def show(uuid: str):
    return _respond(_get(uuid), 200)


@bp.put("/webhooks/<webhook:uuid>")
@require("write")
def upsert(uuid: str):
    if not webhooks.UUID_PATTERN.fullmatch(uuid):
        raise PayloadError.one("uuid", "must be 16 to 100 characters of A-Z, a-z, 0-9, _ and -")
    session = db()
    hook = session.get(Webhook, uuid)
    values, signing_secret, warnings = _validated(json_body(), hook)
    created = hook is None
    if created:
        hook = Webhook(uuid=uuid)
        session.add(hook)
    webhooks.apply(hook, values)
    session.flush()
    record(session, "webhook.created" if created else "webhook.updated", uuid=hook.uuid,
           webhook=webhooks.audit_json(hook))
    session.commit()
    warnings = {**warnings, **webhooks.unseen_names(hook, pacticipants(session))}
    return _respond(hook, 201 if created else 200, signing_secret, warnings)


@bp.delete("/webhooks/<webhook:uuid>")
@require("write")
def destroy(uuid: str):
    session = db()
    hook = _get(uuid)
    session.delete(hook)
    record(session, "webhook.deleted", uuid=hook.uuid, description=hook.description)
    session.commit()
    return "", 204


@bp.post("/webhooks/<webhook:uuid>/resume")
@require("write")
def resume(uuid: str):
    """Resume a paused target by hand: its waiting deliveries are due at once."""
    session = db()
    hook = _get(uuid)
    was_paused, released = policies.resume(session, hook.uuid, utcnow())
    record(session, "webhook.resumed", uuid=hook.uuid, wasPaused=was_paused, released=len(released))
    session.commit()
    policies.enqueue_released(runtime(), released)
    return _respond(hook, 200)


@bp.post("/webhooks/<webhook:uuid>/execute")
@require("write")
def execute(uuid: str):
    hook = _get(uuid)
    choice = json_body() if request.content_length else {}
    return jsonify(testsend.execute_once(db(), runtime(), hook, choice))


@bp.get("/webhooks/<webhook:uuid>/deliveries")
@require("read")
def webhook_deliveries(uuid: str):
    rows = deliveries.newest(db(), limit_arg(), webhook_uuid=_get(uuid).uuid)
    return jsonify({"deliveries": [deliveries.to_json(d, base_url()) for d in rows]})
