"""/webhooks: Pact Broker webhook JSON in and out, test execution and per-webhook deliveries."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import select
from werkzeug.routing import BaseConverter

from relay.delivery import deliveries, testsend
from relay.errors import NotFound, PayloadError
from relay.intake import presets, webhooks
from relay.models import Secret, Webhook
from relay.security.auditing import record
from relay.security.tokens import require
from relay.web.requests import base_url, db, json_body, limit_arg, runtime

bp = Blueprint("webhooks", __name__)


class WebhookSegment(BaseConverter):
    """Any path segment but `presets`, which is a resource of its own: PUT /webhooks/presets is a 405,
    not a webhook named "presets". Bad uuids still reach the views, which explain what is wrong."""

    regex = r"(?!presets(?:/|$))[^/]+"


@bp.record_once
def _register_converter(state) -> None:
    state.app.url_map.converters.setdefault("webhook", WebhookSegment)


def _get(uuid: str) -> Webhook:
    hook = db().get(Webhook, uuid) if webhooks.UUID_PATTERN.match(uuid) else None
    if hook is None:
        raise NotFound(f"no webhook {uuid[:100]!r}")
    return hook


def _validated(doc, existing: Webhook | None) -> tuple[dict, str | None]:
    rt = runtime()
    names = set(db().scalars(select(Secret.name)))
    form = webhooks.WebhookInput(rt.settings, rt.vault, names, existing)
    values = form.parse(doc)
    return values, form.new_signing_secret


def _respond(hook: Webhook, status: int, signing_secret: str | None = None):
    doc = webhooks.to_json(hook, base_url())
    if signing_secret:
        doc["signingSecret"] = signing_secret  # shown this once; only its ciphertext is stored
    response = jsonify(doc)
    response.status_code = status
    if status == 201:
        response.headers["Location"] = doc["_links"]["self"]["href"]
    return response


@bp.get("/webhooks")
@require("read")
def index():
    hooks = list(db().scalars(select(Webhook).order_by(Webhook.created_at)))
    return jsonify(webhooks.listing(hooks, base_url()))


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
    values, signing_secret = _validated(_expand_preset(json_body()), None)
    hook = Webhook(uuid=webhooks.new_uuid())
    webhooks.apply(hook, values)
    session = db()
    session.add(hook)
    session.flush()
    record(session, "webhook.created", uuid=hook.uuid, webhook=webhooks.audit_json(hook))
    session.commit()
    return _respond(hook, 201, signing_secret)


@bp.get("/webhooks/<webhook:uuid>")
@require("read")
def show(uuid: str):
    return _respond(_get(uuid), 200)


@bp.put("/webhooks/<webhook:uuid>")
@require("write")
def upsert(uuid: str):
    if not webhooks.UUID_PATTERN.match(uuid):
        raise PayloadError.one("uuid", "must be 16 to 100 characters of A-Z, a-z, 0-9, _ and -")
    session = db()
    hook = session.get(Webhook, uuid)
    values, signing_secret = _validated(json_body(), hook)
    created = hook is None
    if created:
        hook = Webhook(uuid=uuid)
        session.add(hook)
    webhooks.apply(hook, values)
    session.flush()
    record(session, "webhook.created" if created else "webhook.updated", uuid=hook.uuid,
           webhook=webhooks.audit_json(hook))
    session.commit()
    return _respond(hook, 201 if created else 200, signing_secret)


@bp.delete("/webhooks/<webhook:uuid>")
@require("write")
def destroy(uuid: str):
    session = db()
    hook = _get(uuid)
    session.delete(hook)
    record(session, "webhook.deleted", uuid=hook.uuid, description=hook.description)
    session.commit()
    return "", 204


@bp.post("/webhooks/<webhook:uuid>/execute")
@require("write")
def execute(uuid: str):
    return jsonify(testsend.execute_once(db(), runtime(), _get(uuid)))


@bp.get("/webhooks/<webhook:uuid>/deliveries")
@require("read")
def webhook_deliveries(uuid: str):
    rows = deliveries.newest(db(), limit_arg(), webhook_uuid=_get(uuid).uuid)
    return jsonify({"deliveries": [deliveries.to_json(d, base_url()) for d in rows]})
