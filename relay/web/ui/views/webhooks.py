"""Webhooks: the list, and the editor with presets, variables help, Save and Test."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

import integrations
from relay.delivery import breaker, policies, testsend
from relay.errors import NotFound, PayloadError
from relay.intake import presets, webhooks
from relay.intake.events import matches
from relay.models import Delivery, Event, Secret, TargetState, Webhook, utcnow
from relay.pairs.store import pacticipants
from relay.templating import VARIABLES
from relay.web.requests import db, runtime
from relay.web.ui import access, outcomes
from relay.web.ui.blueprint import bp
from relay.web.ui.webhook_form import (
    EditorForm,
    event_choices,
    from_doc,
    from_request,
    from_webhook,
    place_errors,
    to_doc,
)

VARIABLE_HELP = {
    "pactUrl": "permalink to the pact content",
    "verificationResultUrl": "URL of the verification result; empty when none",
    "consumerVersionNumber": "consumer application version (often a git sha)",
    "providerVersionNumber": "provider version of the verification, or the one that needs verifying",
    "providerVersionTags": "tags of the provider version, comma-separated",
    "providerVersionBranch": "branch of the provider version",
    "providerVersionDescriptions": "why each provider version needs verifying",
    "consumerVersionTags": "tags of the consumer version, comma-separated",
    "consumerVersionBranch": "branch of the consumer version",
    "consumerName": "the consumer's name",
    "providerName": "the provider's name",
    "githubVerificationStatus": "pending, success, failure or error, for GitHub statuses",
    "bitbucketVerificationStatus": "INPROGRESS, SUCCESSFUL or FAILED, for Bitbucket",
    "azureDevOpsVerificationStatus": "pending, succeeded or failed, for Azure DevOps",
    "gitlabVerificationStatus": "pending, success or failed, for GitLab",
    "consumerLabels": "labels of the consumer, comma-separated",
    "providerLabels": "labels of the provider, comma-separated",
    "eventName": "the event that fired",
    "buildUrl": "CI build URL of the verification",
    "currentlyDeployedProviderVersionNumber": "provider version(s) currently deployed",
}


def _get(uuid: str) -> Webhook:
    hook = db().get(Webhook, uuid) if webhooks.UUID_PATTERN.fullmatch(uuid) else None
    if hook is None:
        raise NotFound(f"no webhook {uuid[:100]!r}")
    return hook


def _secret_names(session) -> list[str]:
    return list(session.scalars(select(Secret.name).order_by(Secret.name)))


def last_results(session, uuids: list[str]) -> dict[str, Delivery]:
    """The newest delivery of each webhook: one short index lookup each (ix_deliveries_webhook)."""
    out = {}
    for uuid in uuids:
        row = session.scalars(select(Delivery).where(Delivery.webhook_uuid == uuid)
                              .order_by(Delivery.created_at.desc()).limit(1)).first()
        if row is not None:
            out[uuid] = row
    return out


def target_host(hook: Webhook) -> str:
    """Where a webhook sends, when its configuration says so without opening a secret."""
    integration = integrations.REGISTRY.get(hook.kind)
    return (integration.host(hook.config or {}) if integration else None) or ""


@bp.get("/webhooks")
@access.login_required("read")
def webhooks_list():
    session = db()
    hooks = list(session.scalars(select(Webhook).order_by(Webhook.description, Webhook.uuid)))
    hosts = {h.uuid: target_host(h) for h in hooks}
    needle = request.args.get("q", "").strip()
    if needle:  # part of any shown text, any case; the list is short enough to filter here
        hooks = [h for h in hooks if needle.casefold() in " ".join(
            filter(None, (h.description, h.consumer_name, h.consumer_label, h.provider_name, h.provider_label,
                          h.kind, hosts[h.uuid]))).casefold()]
    results = last_results(session, [h.uuid for h in hooks])
    targets = {u: webhooks.target_json(t) for u, t in breaker.states(session).items()}
    return render_template("webhooks.html", hooks=hooks, results=results, targets=targets, hosts=hosts, q=needle,
                           seen=pacticipants(session), shown=outcomes.list_rows(session, list(results.values())))


def latest_events(session, hook: Webhook | None, limit: int = 24) -> list[Event]:
    """The newest stored event of each kind for each pair the webhook matches (any pair for a new one)."""
    found: dict[tuple[str, str, str], Event] = {}
    for event in session.scalars(select(Event).order_by(Event.received_at.desc()).limit(1000)):
        key = (event.consumer, event.provider, event.name)
        if key not in found and (hook is None or matches(hook, event.variables)):
            found[key] = event
            if len(found) >= limit:
                break
    return list(found.values())


def test_choice(form) -> dict:
    """The Test form's event choice as execute_once takes it."""
    picked = form.get("test_event", "")
    if picked.startswith("event:"):
        return {"event": picked.removeprefix("event:")}
    if picked.startswith("sample:"):
        return {"sample": picked.removeprefix("sample:"), "consumer": form.get("test_consumer", "").strip(),
                "provider": form.get("test_provider", "").strip()}
    return {}


def _editor(form: EditorForm, hook: Webhook | None, status: int = 200, **extra):
    session = db()
    extra.setdefault("picked", {"test_event": "", "test_consumer": "", "test_provider": ""})
    target = webhooks.target_json(session.get(TargetState, hook.uuid) if hook else None)
    return render_template(
        "webhook_edit.html", form=form, hook=hook, events=event_choices(), kinds=integrations.REGISTRY,
        variables=[(name, VARIABLE_HELP.get(name, "")) for name in VARIABLES], secrets=_secret_names(session),
        presets=presets.PRESETS, test_events=latest_events(session, hook), samples=event_choices(),
        seen=sorted(pacticipants(session), key=str.lower), target=target, **extra), status


def _preset_form(name: str):
    """A preset's parameters (GET, so it works without JS); once complete, the editor filled from it."""
    preset = presets.PRESETS.get(name)
    if preset is None:
        raise NotFound(f"no preset {name[:100]!r}")
    params = {k: request.args.get(f"p.{k}", "").strip() for k in preset.params}
    submitted = request.args.get("apply") == "1"
    errors: dict[str, list[str]] = {}
    if submitted:
        try:
            return _editor(from_doc(presets.expand(name, {k: v for k, v in params.items() if v})), None,
                           from_preset=preset)
        except presets.PresetError as exc:
            errors = exc.errors
    values = {k: params[k] or (spec.default or "") for k, spec in preset.params.items()}
    return render_template("preset.html", preset=preset, values=values, errors=errors)


@bp.get("/webhooks/new")
@access.login_required("write")
def webhook_new():
    if request.args.get("preset"):
        return _preset_form(request.args["preset"])
    kind = request.args.get("kind", "request")
    return _editor(from_doc({}, kind if kind in integrations.REGISTRY else "request"), None)


@bp.get("/webhooks/<uuid>")
@access.login_required("read")
def webhook_edit(uuid: str):
    hook = _get(uuid)
    kind = request.args.get("kind")
    if kind in integrations.REGISTRY and kind != hook.kind:
        form = from_webhook(hook)
        switched = from_doc({}, kind)
        switched.description, switched.parties, switched.events, switched.enabled = \
            form.description, form.parties, form.events, form.enabled
        switched.rate_limit, switched.debounce = form.rate_limit, form.debounce
        return _editor(switched, hook)
    return _editor(from_webhook(hook), hook)


def _validate(form: EditorForm, existing: Webhook | None) -> tuple[dict | None, webhooks.WebhookInput]:
    rt = runtime()
    validator = webhooks.WebhookInput(rt.settings, rt.vault, set(_secret_names(db())), existing)
    doc = to_doc(form)
    if existing is not None and existing.team_uuid:
        doc["teamUuid"] = existing.team_uuid  # set by a broker client; the editor has no field for it
    try:
        values = validator.parse(doc)
    except PayloadError as exc:
        place_errors(form, exc.errors)
        return None, validator
    return (None if form.errors else values), validator


@bp.post("/webhooks/new")
@bp.post("/webhooks/<uuid>")
@access.login_required("write")
def webhook_save(uuid: str | None = None):
    session = db()
    hook = _get(uuid) if uuid else None
    form = from_request(request.form, request.form.get("kind", "request"))
    values, validator = _validate(form, hook)
    if values is None:
        return _editor(form, hook, 400)
    created = hook is None
    if created:
        hook = Webhook(uuid=webhooks.new_uuid())
        session.add(hook)
    webhooks.apply(hook, values)
    session.flush()
    access.audit("webhook.created" if created else "webhook.updated", uuid=hook.uuid, webhook=webhooks.audit_json(hook))
    session.commit()
    warnings = {**validator.warnings, **webhooks.unseen_names(hook, pacticipants(session))}
    if validator.new_signing_secret or warnings:
        # Shown on this one response only; only its ciphertext is stored.
        return _editor(from_webhook(hook), hook, 201 if created else 200, saved=True,
                       signing_secret=validator.new_signing_secret, warnings=warnings)
    return redirect(url_for("ui.webhook_edit", uuid=hook.uuid, saved=1))


@bp.post("/webhooks/test")
@access.login_required("write")
def webhook_test():
    """Send the form as it stands (saved or not) once, with the last matching event or a sample."""
    uuid = request.form.get("uuid", "")
    hook = _get(uuid) if uuid else None
    form = from_request(request.form, request.form.get("kind", "request"))
    values, _ = _validate(form, hook)
    result = None
    if values is not None:
        probe = Webhook(uuid=hook.uuid if hook else "unsaved")
        webhooks.apply(probe, values)
        try:
            result = testsend.execute_once(db(), runtime(), probe, test_choice(request.form))  # audited there
        except PayloadError as exc:
            place_errors(form, exc.errors)
    if request.headers.get("X-Requested-With") == "fetch":
        return render_template("_test_result.html", result=result, form=form), 200 if result else 400
    picked = {k: request.form.get(k, "") for k in ("test_event", "test_consumer", "test_provider")}
    return _editor(form, hook, 200 if result else 400, test_result=result, result=result, picked=picked)


@bp.post("/webhooks/<uuid>/delete")
@access.login_required("write")
def webhook_delete(uuid: str):
    session = db()
    hook = _get(uuid)
    session.delete(hook)
    access.audit("webhook.deleted", uuid=hook.uuid, description=hook.description)
    session.commit()
    return redirect(url_for("ui.webhooks_list", deleted=hook.description or uuid))


@bp.post("/webhooks/<uuid>/resume")
@access.login_required("write")
def webhook_resume(uuid: str):
    session = db()
    hook = _get(uuid)
    was_paused, released = policies.resume(session, hook.uuid, utcnow())
    access.audit("webhook.resumed", uuid=hook.uuid, wasPaused=was_paused, released=len(released))
    session.commit()
    policies.enqueue_released(runtime(), released)
    return redirect(url_for("ui.webhook_edit", uuid=hook.uuid, resumed=1))
