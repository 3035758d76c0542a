"""/webhooks: Pact Broker webhook JSON in and out, test execution and per-webhook deliveries."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from werkzeug.routing import BaseConverter

from relay.delivery import breaker, deliveries, policies
from relay.delivery.attempt import attempt
from relay.errors import NotFound, PayloadError
from relay.intake import presets, webhooks
from relay.intake.events import EVENT_NAMES, TEST_EVENT, matches, sample_variables
from relay.models import Event, PairStateRow, Secret, TargetState, Webhook, utcnow
from relay.security.auditing import record
from relay.security.tokens import require
from relay.web.api import base_url, db, json_body, limit_arg, runtime

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


def _audit_doc(hook: Webhook) -> dict:
    """The webhook as the API shows it (secret fields masked), without links and timestamps."""
    doc = webhooks.to_json(hook, "")
    for key in ("_links", "createdAt", "updatedAt"):
        doc.pop(key, None)
    return doc


def _respond(hook: Webhook, status: int, signing_secret: str | None = None):
    doc = webhooks.to_json(hook, base_url(), db().get(TargetState, hook.uuid))
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
    values, signing_secret = _validated(_expand_preset(json_body()), None)
    hook = Webhook(uuid=webhooks.new_uuid())
    webhooks.apply(hook, values)
    session = db()
    session.add(hook)
    session.flush()
    record(session, "webhook.created", uuid=hook.uuid, webhook=_audit_doc(hook))
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
    record(session, "webhook.created" if created else "webhook.updated", uuid=hook.uuid, webhook=_audit_doc(hook))
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


@bp.post("/webhooks/<webhook:uuid>/resume")
@require("write")
def resume(uuid: str):
    hook = _get(uuid)
    resume_target(db(), runtime(), hook)
    return _respond(hook, 200)


def resume_target(session, rt, hook: Webhook) -> None:
    """Resume a paused target by hand (API and UI): its waiting deliveries are due at once; audited."""
    state = session.get(TargetState, hook.uuid)
    was_paused = state is not None and state.paused_since is not None
    now = utcnow()
    breaker.resume(session, hook.uuid, now)
    released = policies.release(session, hook.uuid, now)
    record(session, "webhook.resumed", uuid=hook.uuid, wasPaused=was_paused, released=len(released))
    session.commit()
    policies.enqueue_released(rt, released)


@bp.post("/webhooks/<webhook:uuid>/execute")
@require("write")
def execute(uuid: str):
    hook = _get(uuid)
    choice = json_body() if request.content_length else {}
    return jsonify(execute_once(db(), runtime(), hook, choice))


# What a failing verification carries: Test also tries it when the chosen event is skipped, so a webhook
# that only speaks up on failures is not reported healthy without ever having been tried.
FAILURE_VALUES = {"eventName": "provider_verification_failed", "githubVerificationStatus": "failure",
                  "bitbucketVerificationStatus": "FAILED", "azureDevOpsVerificationStatus": "failed",
                  "gitlabVerificationStatus": "failed"}


def execute_once(session, rt, hook: Webhook, choice: dict | None = None) -> dict:
    """Send once now with the chosen event (default: the last matching one, or a sample) and say what
    happened; stores nothing."""
    variables, event_id, warnings = test_event(session, hook, choice or {})
    outcome = attempt(session, rt, hook, variables, f"test-{hook.uuid}")
    result = {**_result(outcome), "event": event_id, "eventName": variables.get("eventName", ""),
              "consumer": variables.get("consumerName", ""), "provider": variables.get("providerName", ""),
              "warnings": warnings}
    success = outcome.verdict == "succeeded"
    if outcome.skipped:
        failing = attempt(session, rt, hook, {**variables, **FAILURE_VALUES}, f"test-{hook.uuid}")
        result["failureEvent"] = {**_result(failing), "eventName": FAILURE_VALUES["eventName"]}
        success = failing.verdict == "succeeded"
    result["success"] = success
    session.rollback()  # end the read transaction; the audit entry gets its own
    record(session, "webhook.executed", uuid=hook.uuid, event=event_id, success=success, status=outcome.verdict,
           error=outcome.error or (result.get("failureEvent") or {}).get("error"),
           httpStatus=outcome.response["status"] if outcome.response else None)
    session.commit()
    return result


def test_event(session, hook: Webhook, choice: dict) -> tuple[dict[str, str], str | None, list[str]]:
    """(variables, stored event id or None, warnings) for a test: `{"event": id}` a stored event,
    `{"sample": name, "consumer", "provider"}` a sample of that kind, `{}` the last matching event or a sample."""
    if not isinstance(choice, dict):
        raise PayloadError.one("body", "must be a JSON object")
    if choice.get("event"):
        event = session.get(Event, choice["event"]) if isinstance(choice["event"], str) else None
        if event is None:
            raise PayloadError.one("event", "no stored event with this id")
        return event.variables, event.id, []
    if choice.get("sample"):
        name = choice["sample"]
        if name not in (*EVENT_NAMES, TEST_EVENT):
            raise PayloadError.one("sample", f"must be one of {', '.join((*EVENT_NAMES, TEST_EVENT))}")
        variables = {**sample_variables(hook), "eventName": name}
        if name == "provider_verification_failed":
            variables.update(FAILURE_VALUES)
        warnings = []
        seen = pacticipants(session)
        for side in ("consumer", "provider"):
            value = choice.get(side)
            if value is None or value == "":
                continue
            if not isinstance(value, str) or len(value) > 200 or any(c in value for c in "\r\n\0"):
                raise PayloadError.one(side, "must be a name of at most 200 characters on one line")
            variables[f"{side}Name"] = value
            if value not in seen:
                warnings.append(f"the relay has never seen a {side} called {value!r}; is the name right?")
        return variables, None, warnings
    recent = session.scalars(select(Event).order_by(Event.received_at.desc()).limit(500))
    event = next((e for e in recent if matches(hook, e.variables)), None)
    return (event.variables, event.id, []) if event else (sample_variables(hook), None, [])


def pacticipants(session) -> set[str]:
    """Every consumer and provider name the relay has received an event for."""
    rows = session.execute(select(PairStateRow.consumer, PairStateRow.provider).distinct())
    return {name for pair in rows for name in pair}


def _result(outcome) -> dict:
    return {"status": outcome.verdict, "reason": outcome.skipped or None, "request": outcome.request,
            "response": outcome.response, "success": outcome.ok and not outcome.skipped, "error": outcome.error,
            "notes": outcome.notes, "duration_ms": outcome.duration_ms, "logs": _log_lines(outcome)}


def _log_lines(outcome) -> str:
    lines = []
    if outcome.request:
        lines.append(f"{outcome.request['method']} {outcome.request['url']}")
        lines += [f"{k}: {v}" for k, v in outcome.request["headers"].items()]
        if outcome.request.get("body"):
            lines.append(outcome.request["body"])
    if outcome.response:
        lines.append(f"HTTP {outcome.response['status']}")
    if outcome.error:
        lines.append(f"error: {outcome.error}")
    lines += outcome.notes
    return "\n".join(lines)


@bp.get("/webhooks/<webhook:uuid>/deliveries")
@require("read")
def webhook_deliveries(uuid: str):
    rows = deliveries.newest(db(), limit_arg(), webhook_uuid=_get(uuid).uuid)
    return jsonify({"deliveries": [deliveries.to_json(d, base_url()) for d in rows]})
