"""The webhook editor's form: HTML fields to Pact Broker webhook JSON and back; validation stays in WebhookInput."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import integrations
from integrations.base import Field
from relay import jsonlimits
from relay.intake.events import EVENT_NAMES
from relay.intake.webhooks import DEFAULT_EVENTS, masked_config
from relay.models import Webhook

PARTIES = ("consumer", "provider")
EVENT_HELP = {
    "contract_published": "Every time a pact is published, changed or not.",
    "contract_content_changed": "A pact is published whose content differs from the previous version.",
    "contract_requiring_verification_published":
        "A pact is published that a provider version must now verify: trigger the provider's build.",
    "provider_verification_published": "A provider publishes a verification result, success or failure.",
    "provider_verification_succeeded": "A verification result is published and it passed.",
    "provider_verification_failed": "A verification result is published and it failed.",
}


@dataclass
class EditorForm:
    """What the editor shows: plain strings for every input, and the errors beside them."""

    kind: str = "request"
    description: str = ""
    parties: dict[str, tuple[str, str]] = field(default_factory=lambda: {p: ("any", "") for p in PARTIES})
    events: list[str] = field(default_factory=lambda: list(DEFAULT_EVENTS))
    enabled: bool = True
    rate_limit: str = ""  # sends per second, fleet-wide
    debounce: str = ""  # seconds, CI triggers
    config: dict[str, str] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, Field]:
        return integrations.get(self.kind).fields

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def _map_text(value: Any) -> str:
    return "\n".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else ""


def _show(spec: Field, value: Any) -> str:
    if value is None:
        return ""
    if spec.kind == "map":
        return _map_text(value)
    if spec.kind == "json" and not isinstance(value, str):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None or isinstance(value, bool) else str(value)


def from_doc(doc: dict[str, Any], kind: str | None = None) -> EditorForm:
    """A form from webhook JSON (a preset, or a stored webhook's masked JSON)."""
    kind = kind or next((k for k in integrations.REGISTRY if k in doc), "request")
    form = EditorForm(kind=kind, description=doc.get("description", ""), enabled=doc.get("enabled", True) is not False,
                      rate_limit=_number_text(doc.get("rateLimit")), debounce=_number_text(doc.get("debounce")))
    for side in PARTIES:
        party = doc.get(side) or {}
        form.parties[side] = ("name", party["name"]) if party.get("name") else \
            ("label", party["label"]) if party.get("label") else ("any", "")
    if doc.get("events"):
        form.events = [e.get("name") for e in doc["events"] if isinstance(e, dict)]
    else:
        form.events = list(integrations.get(kind).default_events)
    config = doc.get(kind) or {}
    for key, spec in form.fields.items():
        if spec.kind == "bool":
            form.checks[key] = bool(config.get(key, spec.default))
        else:
            form.config[key] = _show(spec, config.get(key, spec.default if spec.kind != "map" else None))
    return form


def from_webhook(hook: Webhook) -> EditorForm:
    doc = {"description": hook.description, "enabled": hook.enabled, "events": [{"name": n} for n in hook.events],
           hook.kind: masked_config(hook), "rateLimit": hook.rate_limit, "debounce": hook.debounce}
    for side in PARTIES:
        name, label = getattr(hook, f"{side}_name"), getattr(hook, f"{side}_label")
        if name or label:
            doc[side] = {"name": name} if name else {"label": label}
    return from_doc(doc, hook.kind)


def from_request(values, kind: str) -> EditorForm:
    """Read a submitted form (a werkzeug MultiDict); problems of form encoding itself become field errors."""
    if kind not in integrations.REGISTRY:
        kind = "request"
    form = EditorForm(kind=kind, description=values.get("description", ""), enabled=values.get("enabled") == "on",
                      events=values.getlist("events"), rate_limit=values.get("rate_limit", "").strip(),
                      debounce=values.get("debounce", "").strip())
    for side in PARTIES:
        by = values.get(f"{side}_by", "any")
        form.parties[side] = (by if by in ("any", "name", "label") else "any", values.get(f"{side}_value", "").strip())
    for key, spec in form.fields.items():
        if spec.kind == "bool":
            form.checks[key] = values.get(f"cfg.{key}") == "on"
        else:
            form.config[key] = values.get(f"cfg.{key}", "")
    return form


def to_doc(form: EditorForm) -> dict[str, Any]:
    """Webhook JSON for WebhookInput; form-encoding problems are recorded on the form."""
    doc: dict[str, Any] = {"description": form.description, "enabled": form.enabled,
                           "events": [{"name": n} for n in form.events]}
    if not form.events:
        form.error("events", "choose at least one event")
    for name, raw, parse in (("rateLimit", form.rate_limit, float), ("debounce", form.debounce, int)):
        if raw:
            try:
                doc[name] = parse(raw)
            except ValueError:
                form.error(name, "must be a number" if parse is float else "must be a whole number of seconds")
    for side, (by, value) in form.parties.items():
        if by != "any":
            if not value:
                form.error(side, f"type the {by}, or choose ALL")
            else:
                doc[side] = {by: value}
    config: dict[str, Any] = {}
    for key, spec in form.fields.items():
        if spec.kind == "bool":
            config[key] = form.checks.get(key, False)
            continue
        raw = form.config.get(key, "")
        if not raw.strip():
            continue
        if spec.kind == "map":
            parsed = {}
            for number, line in enumerate(raw.splitlines(), 1):
                if not line.strip():
                    continue
                name, sep, value = line.partition(":")
                if not sep or not name.strip():
                    form.error(f"cfg.{key}", f"line {number}: write one 'Name: value' per line")
                parsed[name.strip()] = value.strip()
            config[key] = parsed
        elif spec.kind == "json" and raw.strip()[:1] in "{[":
            try:
                config[key] = jsonlimits.loads(raw)
            except (jsonlimits.TooDeep, jsonlimits.DuplicateKey) as exc:
                form.error(f"cfg.{key}", str(exc))
            except json.JSONDecodeError as exc:
                form.error(f"cfg.{key}", f"starts like JSON but is not valid JSON ({exc.msg}, line {exc.lineno})")
        elif spec.kind == "int":
            try:
                config[key] = int(raw)
            except ValueError:
                form.error(f"cfg.{key}", "must be a whole number")
        else:
            config[key] = raw
    doc[form.kind] = config
    return doc


def place_errors(form: EditorForm, errors: dict[str, list[str]]) -> None:
    """Put WebhookInput's field paths (`request.url`, `events[0].name`, `consumer.name`) beside the inputs."""
    known = {f"cfg.{k}" for k in form.fields} | {"description", "events", "enabled", "rateLimit", "debounce", *PARTIES}
    for path, messages in errors.items():
        head = path.split("[", 1)[0]
        if path.startswith(f"{form.kind}."):
            name = "cfg." + path[len(form.kind) + 1:].split(".", 1)[0].split("[", 1)[0]
        else:
            name = head.split(".", 1)[0]
        target = name if name in known else "form"
        for message in messages:
            form.error(target, message if target != "form" else f"{path}: {message}")


def event_choices() -> list[tuple[str, str]]:
    return [(name, EVENT_HELP.get(name, "")) for name in EVENT_NAMES]
