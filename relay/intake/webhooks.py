"""Webhook definitions: Pact Broker webhook JSON in, validated columns out, and masked JSON back."""

from __future__ import annotations

import base64
import re
import secrets as pysecrets
from collections.abc import Mapping
from typing import Any

import integrations
from integrations.base import DEBOUNCE, Field, carries_credentials, split_url
from integrations.netguard import Guard, Policy
from relay.config import Settings
from relay.errors import PayloadError
from relay.intake.events import EVENT_NAMES
from relay.models import TargetState, Webhook
from relay.redact import HEADER_MASK, SENSITIVE_WORDS, is_sensitive_header
from relay.security.secrets import DecryptionError, Vault, is_sealed
from relay.templating import PLACEHOLDER, host_is_templated, reference_only, template_errors

UUID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,100}")
DEFAULT_EVENTS = ["contract_content_changed"]
TOP_LEVEL = {"description", "consumer", "provider", "events", "enabled", "timeout", "uuid", "createdAt",
             "updatedAt", "_links", "signingSecret", "maxInFlight", "rateLimit", "debounce", "state", "paused",
             "teamUuid"}
MAX_IN_FLIGHT = 1000
MAX_TIMEOUT = 120  # seconds, for either timeout; leases and RQ's job timeout are sized to outlast it
MAX_RATE = 1000.0  # sends per second
MIN_RATE = 1 / 86400  # one send a day; less is a mistake, and 5e-324 paces at infinity
MAX_DEBOUNCE = 3600  # seconds
# PactFlow team ids are UUIDs; any short id of those characters is kept as sent.
TEAM_UUID = re.compile(r"[A-Za-z0-9_-]{1,100}")
MAX_TEXT = 10_000
# RFC 9110 field names: a token. Anything else is refused at save time rather than failing every send.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def unstorable(value: Any, path: str = "") -> list[str]:
    """The fields (dotted paths) of a JSON document holding a string no database column stores: a lone surrogate,
    which JSON escapes can carry, or NUL, which PostgreSQL text refuses. Keys count as their field."""
    if isinstance(value, str):
        return [path or "body"] if "\x00" in value or not _encodable(value) else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            field = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and ("\x00" in key or not _encodable(key)):
                found.append(path or "body")
            else:
                found += unstorable(item, field)
        return found
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in unstorable(item, f"{path}[{i}]")]
    return []


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def new_uuid() -> str:
    """Broker-style webhook id: 22 url-safe characters."""
    return pysecrets.token_urlsafe(16)


def kinds() -> list[str]:
    return sorted(integrations.REGISTRY)


class WebhookInput:
    """Validates one webhook document against the settings, the stored secrets and the old version."""

    def __init__(self, settings: Settings, vault: Vault, secret_names: set[str], existing: Webhook | None = None):
        self.settings = settings
        self.vault = vault
        self.secret_names = secret_names
        self.existing = existing
        self.errors: dict[str, list[str]] = {}
        self.warnings: dict[str, list[str]] = {}
        self.new_signing_secret: str | None = None  # shown once, in the response that created it

    def error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def parse(self, doc: Any) -> dict[str, Any]:
        """Column values for a Webhook row, or PayloadError listing every problem by field."""
        if not isinstance(doc, dict):
            raise PayloadError.one("body", "must be a JSON object")
        for field in unstorable(doc):
            self.error(field, "must be valid Unicode text without NUL characters")
        if self.errors:  # nothing else is worth saying about text no column can hold
            raise PayloadError(self.errors)
        values: dict[str, Any] = {}
        description = doc.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_TEXT:
            self.error("description", f"must be a string of at most {MAX_TEXT} characters")
        values["description"] = description if isinstance(description, str) else ""
        for side in ("consumer", "provider"):
            values.update(self._party(side, doc.get(side)))
        kind_named = next((k for k in kinds() if k in doc), None)
        values["events"] = self._events(doc.get("events"), kind_named)
        enabled = doc.get("enabled", True)
        if not isinstance(enabled, bool):
            self.error("enabled", "must be true or false")
        values["enabled"] = enabled is not False
        values.update(self._timeouts(doc.get("timeout")))
        values["max_in_flight"] = self._max_in_flight(doc.get("maxInFlight"))
        values["rate_limit"] = self._rate_limit(doc.get("rateLimit"))
        values["team_uuid"] = self._team(doc.get("teamUuid"))
        present = [k for k in kinds() if k in doc]
        unknown = [k for k in doc if k not in TOP_LEVEL and k not in integrations.REGISTRY]
        for key in unknown:
            self.error(key, "unknown field")
        if not present:
            self.error("request", f"a webhook needs one of: {', '.join(kinds())}")
        elif len(present) > 1:
            self.error(present[1], f"a webhook takes exactly one of {', '.join(kinds())}; got {', '.join(present)}")
        else:
            kind = present[0]
            values["kind"] = kind
            values["config"] = self._config(kind, doc[kind])
            if kind == "request":
                values["signing_secret"] = self._signing(values["config"].get("sign"))
        values["debounce"] = self._debounce(doc.get("debounce"), values.get("kind"))
        if self.errors:
            raise PayloadError(self.errors)
        return values

    def _party(self, side: str, value: Any) -> dict[str, Any]:
        out = {f"{side}_name": None, f"{side}_label": None}
        if value is None:
            return out
        if not isinstance(value, dict) or len([k for k in ("name", "label") if value.get(k)]) != 1 \
                or set(value) - {"name", "label", "_links", "title"}:
            self.error(side, 'must be {"name": "..."} or {"label": "..."}, or left out for any')
            return out
        key = "name" if value.get("name") else "label"
        if not isinstance(value[key], str) or len(value[key]) > 500:
            self.error(f"{side}.{key}", "must be a string of at most 500 characters")
            return out
        out[f"{side}_{key}"] = value[key]
        return out

    def _events(self, value: Any, kind: str | None = None) -> list[str]:
        if value is None:
            return list(integrations.get(kind).default_events if kind else DEFAULT_EVENTS)
        if not isinstance(value, list) or not value:
            self.error("events", 'must be a non-empty list like [{"name": "contract_content_changed"}]')
            return []
        names = []
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            if name not in EVENT_NAMES:
                self.error(f"events[{i}].name", f"must be one of {', '.join(EVENT_NAMES)}")
            elif name not in names:
                names.append(name)
        return names

    def _team(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not TEAM_UUID.fullmatch(value):
            self.error("teamUuid", "must be a team id of 1 to 100 characters of A-Z, a-z, 0-9, _ and -")
            return None
        return value

    def _timeouts(self, value: Any) -> dict[str, Any]:
        out = {"connect_timeout": None, "read_timeout": None}
        if value is None:
            return out
        if not isinstance(value, dict):
            self.error("timeout", 'must be {"connect": seconds, "read": seconds}')
            return out
        for key in ("connect", "read"):
            seconds = value.get(key)
            if seconds is None:
                continue
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_TIMEOUT:
                self.error(f"timeout.{key}", f"must be a number of seconds between 0 and {MAX_TIMEOUT}")
            else:
                out[f"{key}_timeout"] = float(seconds)
        return out

    def _max_in_flight(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IN_FLIGHT:
            self.error("maxInFlight", f"must be a whole number from 1 to {MAX_IN_FLIGHT} (sends in flight at once)")
            return None
        return value

    def _rate_limit(self, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_RATE <= value <= MAX_RATE:
            self.error("rateLimit", f"must be a number of sends per second from {MIN_RATE:.8f} (one a day) "
                                    f"to {MAX_RATE:g}")
            return None
        return float(value)

    def _debounce(self, value: Any, kind: str | None) -> int | None:
        if value is None or value == 0:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DEBOUNCE:
            self.error("debounce", f"must be a whole number of seconds from 0 to {MAX_DEBOUNCE}")
            return None
        if kind is not None and kind not in (ci := integrations.with_capability(DEBOUNCE)):
            self.error("debounce", f"applies to CI triggers ({', '.join(ci)}), not to {kind}")
            return None
        return value

    def _config(self, kind: str, config: Any) -> dict[str, Any]:
        integration = integrations.get(kind)
        if not isinstance(config, dict):
            self.error(kind, "must be an object")
            return {}
        old = self.existing.config if self.existing is not None and self.existing.kind == kind else {}
        out: dict[str, Any] = {}
        for key in config:
            if key not in integration.fields:
                self.error(f"{kind}.{key}", f"unknown field; known: {', '.join(integration.fields)}")
        if kind == "request":
            self._check_headers(config.get("headers"))
        for key, field in integration.fields.items():
            value = config.get(key)
            path = f"{kind}.{key}"
            if value is None or value == "":
                if field.required and field.default is None:
                    self.error(path, "is required")
                elif field.default is not None:
                    out[key] = field.default
                continue
            value = self._typed(path, field, value)
            if value is None:
                continue
            if field.template:
                for message in template_errors(value, self.secret_names):
                    self.error(path, message)
            out[key] = self._protect(field, value, old.get(key), path)
        if kind == "request":
            self._check_request(out)
        plain = self._plain(out)
        for field, messages in integration.validate(plain).items():
            for message in messages:
                self.error(f"{kind}.{field}", message)
        self._check_addresses(kind, plain)
        return out

    def _check_addresses(self, kind: str, config: dict[str, Any]) -> None:
        """A literal internal address in any URL field is refused now, not at every send (names still are
        checked at every connection)."""
        guard = Guard(Policy(allow_private=self.settings.allow_private_networks,
                             allowed_hosts=self.settings.allowed_hosts, schemes=self.settings.allowed_schemes))
        for key, value in config.items():
            if isinstance(value, str) and "://" in value:
                problem = guard.literal_problem(PLACEHOLDER.sub("x", value))
                if problem:  # names the host only: a secret URL's path stays unsaid
                    self.error(f"{kind}.{key}", f"refused: {problem}")

    def _typed(self, path: str, field: Field, value: Any) -> Any:
        ok = {
            "str": isinstance(value, str) and len(value) <= MAX_TEXT,
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "map": isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_TEXT
                                                   for k, v in value.items()),
            "json": isinstance(value, (str, dict, list)),
        }.get(field.kind, True)
        if not ok:
            expected = {"str": "a string", "bool": "true or false", "int": "a whole number",
                        "map": "an object of string values", "json": "a string, an object or an array"}
            self.error(path, f"must be {expected.get(field.kind, field.kind)}")
            return None
        return value

    def _protect(self, field: Field, value: Any, old: Any, path: str) -> Any:
        """Seal literal secrets; the mask sent back means: keep what is stored."""
        if field.kind == "map":
            old = old if isinstance(old, dict) else {}
            for k, v in value.items():
                if not field.secret and is_sensitive_header(k) and v != HEADER_MASK and not reference_only(v):
                    self.warnings.setdefault(f"{path}.{k}", []).append(
                        f"treated as a secret (the name holds one of {', '.join(SENSITIVE_WORDS)}): stored encrypted "
                        "and shown as **********; a ${user.NAME} secret can be shared and rotated")
            return {k: self._protect_one(v, old.get(k), path, sensitive=field.secret or is_sensitive_header(k))
                    for k, v in value.items()}
        if isinstance(value, str):
            return self._protect_one(value, old, path, sensitive=field.secret)
        return value

    def _protect_one(self, value: str, old: Any, path: str, sensitive: bool) -> str:
        if value == HEADER_MASK:
            if old is None:
                self.error(path, "no stored value to keep; send the real value")
            return old
        if sensitive and not reference_only(value):
            return self.vault.seal(value)
        return value

    def _plain(self, value: Any) -> Any:
        """Config for integration.validate: the real values (a literal secret is validated, then kept sealed)."""
        if isinstance(value, dict):
            return {k: self._plain(v) for k, v in value.items()}
        if not is_sealed(value):
            return value
        try:
            return self.vault.unseal(value)
        except DecryptionError:  # a value kept from before a key was dropped: its shape cannot be checked
            return "<secret>"

    def _check_request(self, config: dict[str, Any]) -> None:
        method = str(config.get("method", "POST")).upper()
        if method not in self.settings.allowed_methods:
            self.error("request.method", f"must be one of {', '.join(self.settings.allowed_methods)}")
        config["method"] = method
        url = config.get("url")
        if not isinstance(url, str):
            return
        parts = split_url(PLACEHOLDER.sub("x", url))
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            self.error("request.url", "must be an absolute http(s) URL with a host")
        elif carries_credentials(parts):
            self.error("request.url", "must not carry credentials (user:password@): URLs are shown in responses and "
                                      "logs; use username and password, which are stored encrypted")
        elif host_is_templated(url):
            self.error("request.url", "the scheme and host may not contain a template")
        elif parts.scheme.lower() not in self.settings.allowed_schemes:
            self.error("request.url", f"scheme must be one of {', '.join(self.settings.allowed_schemes)}")

    def _check_headers(self, headers: Any) -> None:
        if not isinstance(headers, dict):
            return  # _typed names the wrong type
        for name, value in headers.items():
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                self.error("request.headers", f"{str(name)[:100]!r} is not a header name (letters, digits and "
                                              "!#$%&'*+-.^_`|~ only)")
            elif isinstance(value, str) and any(c in value for c in "\r\n\0"):
                self.error("request.headers", f"{name}: a value may not contain a line break or NUL")

    def _signing(self, sign: Any) -> str | None:
        if not sign:
            return None
        if self.existing is not None and self.existing.signing_secret:
            return self.existing.signing_secret
        self.new_signing_secret = "whsec_" + base64.b64encode(pysecrets.token_bytes(24)).decode()
        return self.vault.encrypt(self.new_signing_secret)


def masked_config(webhook: Webhook) -> dict[str, Any]:
    integration = integrations.get(webhook.kind)
    out = {}
    for key, value in (webhook.config or {}).items():
        if isinstance(value, dict):
            value = {k: (HEADER_MASK if is_sealed(v) or (is_sensitive_header(k) and not reference_only(v)) else v)
                     for k, v in value.items()}
        elif is_sealed(value) or (integration.fields.get(key, Field()).secret and isinstance(value, str)
                                  and not reference_only(value)):
            value = HEADER_MASK
        out[key] = value
    return out


def to_json(webhook: Webhook, base_url: str, target: TargetState | None = None) -> dict[str, Any]:
    """The webhook as the API shows it; `target` is its breaker state (paused or not)."""
    href = f"{base_url}/webhooks/{webhook.uuid}"
    doc: dict[str, Any] = {"uuid": webhook.uuid, "description": webhook.description or ""}
    for side in ("consumer", "provider"):
        name, label = getattr(webhook, f"{side}_name"), getattr(webhook, f"{side}_label")
        if name or label:
            doc[side] = {"name": name} if name else {"label": label}
    doc.update({
        "enabled": webhook.enabled,
        webhook.kind: masked_config(webhook),
        "events": [{"name": n} for n in webhook.events],
        "createdAt": webhook.created_at.isoformat(timespec="seconds"),
        "updatedAt": webhook.updated_at.isoformat(timespec="seconds"),
    })
    if webhook.max_in_flight:
        doc["maxInFlight"] = webhook.max_in_flight
    if webhook.team_uuid:
        doc["teamUuid"] = webhook.team_uuid
    if webhook.connect_timeout or webhook.read_timeout:
        doc["timeout"] = {k: v for k, v in (("connect", webhook.connect_timeout), ("read", webhook.read_timeout)) if v}
    if webhook.rate_limit:
        doc["rateLimit"] = webhook.rate_limit
    if webhook.debounce:
        doc["debounce"] = webhook.debounce
    doc.update(target_json(target))
    doc["_links"] = {
        "self": {"title": webhook.description or webhook.uuid, "href": href},
        "pb:execute": {"title": "Test the execution of the webhook", "href": f"{href}/execute"},
        "pb:deliveries": {"title": "Deliveries of this webhook", "href": f"{href}/deliveries"},
        "pr:resume": {"title": "Resume the webhook when paused", "href": f"{href}/resume"},
        "pb:webhooks": {"title": "All webhooks", "href": f"{base_url}/webhooks"},
    }
    return doc


def target_json(state: TargetState | None) -> dict[str, Any]:
    """`state` and, when the circuit breaker paused the webhook, `paused` (the shared contract of the UI and API)."""
    if state is None or state.paused_since is None:
        return {"state": "active"}
    return {"state": "paused", "paused": {
        "reason": f"{state.failures} consecutive failures; last: {state.reason or 'unknown'}",
        "since": state.paused_since.isoformat(timespec="seconds"),
        "nextProbeAt": state.next_probe_at.isoformat(timespec="seconds") if state.next_probe_at else None}}


def listing(hooks: list[Webhook], base_url: str, targets: dict[str, TargetState] | None = None) -> dict[str, Any]:
    targets = targets or {}
    return {
        "webhooks": [to_json(h, base_url, targets.get(h.uuid)) for h in hooks],
        "_links": {
            "self": {"title": "Webhooks", "href": f"{base_url}/webhooks"},
            "pb:create": {"title": "POST to create a webhook", "href": f"{base_url}/webhooks"},
            "pb:webhooks": [{"title": h.description or h.uuid, "name": h.description or h.uuid,
                             "href": f"{base_url}/webhooks/{h.uuid}"} for h in hooks],
        },
    }


def unseen_names(webhook: Webhook, known: set[str]) -> dict[str, list[str]]:
    """Warnings for a consumer or provider name no event has carried: a typo ("Checkout Servce") saves fine and
    then never matches. Names compare exactly, as matching does; a name differing only in case is pointed out."""
    warnings: dict[str, list[str]] = {}
    folded = {k.lower(): k for k in known}
    for side in ("consumer", "provider"):
        name = getattr(webhook, f"{side}_name")
        if not name or name in known:
            continue
        near = folded.get(name.lower())
        hint = f"; did you mean {near!r}? Names match exactly" if near else ""
        warnings.setdefault(f"{side}.name", []).append(
            f"the relay has never seen a {side} called {name!r}{hint}: this webhook fires only once an event "
            "names it")
    return warnings


def apply(webhook: Webhook, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        setattr(webhook, key, value)


def audit_json(hook: Webhook) -> dict:
    """The webhook as the API shows it (secret fields masked), without links and timestamps."""
    doc = to_json(hook, "")
    for key in ("_links", "createdAt", "updatedAt"):
        doc.pop(key, None)
    return doc
