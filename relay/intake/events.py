"""Event intake: validate, de-duplicate, and store the event with its deliveries in one transaction."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relay import jsonlimits
from relay.errors import PayloadError
from relay.models import Delivery, Event, IdempotencyKey, Webhook, new_id, utcnow
from relay.templating import KNOWN

EVENT_NAMES = (
    "contract_published", "contract_content_changed", "contract_requiring_verification_published",
    "provider_verification_published", "provider_verification_succeeded", "provider_verification_failed",
)
TEST_EVENT = "test"
DEDUP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Intake:
    event_id: str
    deliveries: int
    to_enqueue: list[str]
    duplicate: bool = False
    event_name: str = ""


def parse(body: bytes) -> dict[str, str]:
    """The event's variables from a request body, or PayloadError naming each bad field."""
    try:
        payload = jsonlimits.loads(body)
    except jsonlimits.TooDeep as exc:
        raise PayloadError.one("body", str(exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError.one("body", f"is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict):
        raise PayloadError.one("body", "must be a JSON object of Pact Broker variables")
    errors: dict[str, list[str]] = {}
    variables: dict[str, str] = {}
    for key, value in payload.items():
        name = key.removeprefix("pactbroker.")
        if not isinstance(value, str):
            errors.setdefault(key, []).append(f"must be a string, not {_json_type(value)}")
        elif name in KNOWN and not _storable_text(value):
            # JSON can carry both, but no database column holds them (PostgreSQL text refuses NUL).
            errors.setdefault(key, []).append("must be valid Unicode text without NUL characters")
        elif name in KNOWN:
            variables[name] = value
    name = variables.get("eventName", "")
    if not name:
        errors.setdefault("eventName", []).append("is required")
    elif name not in EVENT_NAMES and name != TEST_EVENT:
        known = ", ".join((*EVENT_NAMES, TEST_EVENT))
        errors.setdefault("eventName", []).append(f"unknown event {name[:100]!r}; one of {known}")
    for field in ("consumerName", "providerName"):
        if not variables.get(field, "").strip() and field not in errors:
            errors[field] = ["is required"]
    if errors:
        raise PayloadError(errors)
    return variables


def _storable_text(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, which JSON escapes can carry
        return False
    return True


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


def dedup_key(body: bytes, idempotency_key: str | None) -> str:
    source = b"key:" + idempotency_key.encode() if idempotency_key else b"body:" + body
    return hashlib.sha256(source).hexdigest()


def labels(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def matches(webhook: Webhook | Subscription, variables: dict[str, str]) -> bool:
    name = variables["eventName"]
    if name != TEST_EVENT and name not in (webhook.events or ()):
        return False
    for side in ("consumer", "provider"):
        wanted_name = getattr(webhook, f"{side}_name")
        wanted_label = getattr(webhook, f"{side}_label")
        if wanted_name and wanted_name != variables.get(f"{side}Name"):
            return False
        if wanted_label and wanted_label not in labels(variables.get(f"{side}Labels", "")):
            return False
    return True


@dataclass(frozen=True)
class Subscription:
    """What matching needs of an enabled webhook: no config, no secrets."""

    uuid: str
    events: tuple[str, ...]
    consumer_name: str | None
    consumer_label: str | None
    provider_name: str | None
    provider_label: str | None


_WEBHOOKS_VERSION = select(func.count(), func.max(Webhook.updated_at))
_MATCH_COLUMNS = (Webhook.uuid, Webhook.events, Webhook.consumer_name, Webhook.consumer_label,
                  Webhook.provider_name, Webhook.provider_label)


class SubscriptionCache:
    """The enabled webhooks, reloaded only when the table changed.

    Every event needs them; loading a thousand webhook rows per event cost more than the rest of intake.
    A count and the latest update time of the table, read in the intake transaction, tell whether the
    copy is current: creating, changing, disabling or deleting a webhook changes one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._subscriptions: tuple[Subscription, ...] = ()

    def get(self, session: Session) -> tuple[Subscription, ...]:
        version = tuple(session.execute(_WEBHOOKS_VERSION).one())
        with self._lock:
            if version == self._version:
                return self._subscriptions
        rows = session.execute(select(*_MATCH_COLUMNS).where(Webhook.enabled.is_(True))).all()
        subscriptions = tuple(Subscription(r.uuid, tuple(r.events or ()), r.consumer_name, r.consumer_label,
                                           r.provider_name, r.provider_label) for r in rows)
        with self._lock:
            self._version, self._subscriptions = version, subscriptions
        return subscriptions


def matching_webhooks(session: Session, variables: dict[str, str],
                      subscriptions: SubscriptionCache | None = None) -> list[Subscription]:
    """The webhooks `variables` trigger; without the runtime's cache they are read from the table."""
    return [w for w in (subscriptions or SubscriptionCache()).get(session) if matches(w, variables)]


_EVENTS, _DELIVERIES, _KEYS = Event.__table__, Delivery.__table__, IdempotencyKey.__table__
# Core statements built once, rather than ORM objects and statements per event: intake is the hot path, and the
# unit of work and building statements cost more than running them.
_SEEN = select(_KEYS.c.event_id, _KEYS.c.created_at).where(_KEYS.c.key == bindparam("seen_key"))
_SEEN_LOCKED = _SEEN.with_for_update()
_RENEW_KEY = (update(_KEYS).where(_KEYS.c.key == bindparam("seen_key"))
              .values(event_id=bindparam("event_id"), created_at=bindparam("created_at")))
_INSERT_EVENT, _INSERT_DELIVERIES, _INSERT_KEY = insert(_EVENTS), insert(_DELIVERIES), insert(_KEYS)


def receive(session: Session, body: bytes, idempotency_key: str | None = None,
            now: datetime | None = None, on_store: Iterable = (),
            subscriptions: SubscriptionCache | None = None) -> Intake:
    """Store one event and a delivery per matching webhook; a repeat within 24 h returns the first event."""
    variables = parse(body)
    now = now or utcnow()
    key = None if variables["eventName"] == TEST_EVENT else dedup_key(body, idempotency_key)
    try:
        with session.begin():
            if key:
                seen = session.execute(_SEEN_LOCKED, {"seen_key": key}).first()
                if seen and seen.created_at > now - DEDUP_WINDOW:
                    return _repeat(session, seen.event_id, variables["eventName"])
            # `event` stays a plain (transient) object for the on_store hooks, called with it and a delivery id.
            event = Event(id=new_id(), name=variables["eventName"], consumer=variables["consumerName"],
                          provider=variables["providerName"], variables=variables, received_at=now)
            session.execute(_INSERT_EVENT, {"id": event.id, "name": event.name, "consumer": event.consumer,
                                            "provider": event.provider, "variables": variables, "received_at": now})
            deliveries = [{"id": new_id(), "webhook_uuid": w.uuid, "event_id": event.id, "status": "pending",
                           "attempts_made": 0, "next_attempt_at": now, "created_at": now, "updated_at": now}
                          for w in matching_webhooks(session, variables, subscriptions)]
            if deliveries:
                session.execute(_INSERT_DELIVERIES, deliveries)
            if key:
                if seen:
                    session.execute(_RENEW_KEY, {"seen_key": key, "event_id": event.id, "created_at": now})
                else:
                    session.execute(_INSERT_KEY, {"key": key, "event_id": event.id, "created_at": now})
            for hook in on_store:
                hook(session, event, deliveries[0]["id"] if deliveries else None)
    except IntegrityError:
        # A concurrent identical request committed first: answer with its event.
        session.rollback()
        with session.begin():
            seen = session.execute(_SEEN, {"seen_key": key}).first() if key else None
            if seen is None:
                raise
            return _repeat(session, seen.event_id, variables["eventName"])
    return Intake(event_id=event.id, deliveries=len(deliveries), to_enqueue=[d["id"] for d in deliveries],
                  event_name=event.name)


def _repeat(session: Session, event_id: str, event_name: str) -> Intake:
    count = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.event_id == event_id))
    return Intake(event_id=event_id, deliveries=count or 0, to_enqueue=[], duplicate=True, event_name=event_name)


def sample_variables(webhook: Webhook) -> dict[str, str]:
    """What a test execution renders with when no matching event was received yet."""
    consumer = webhook.consumer_name or "Example Consumer"
    provider = webhook.provider_name or "Example Provider"
    base = "https://broker.example.com/pacts/provider/{p}/consumer/{c}/pact-version/0000000000000000000000000000000000000000"

    url = base.format(p=quote(provider), c=quote(consumer))
    return {
        "eventName": TEST_EVENT, "consumerName": consumer, "providerName": provider, "pactUrl": url,
        "verificationResultUrl": f"{url}/verification-results/1", "consumerVersionNumber": "1.0.0",
        "consumerVersionBranch": "main", "consumerVersionTags": "main", "providerVersionNumber": "1.0.0",
        "providerVersionBranch": "main", "providerVersionTags": "main", "githubVerificationStatus": "success",
        "bitbucketVerificationStatus": "SUCCESSFUL", "azureDevOpsVerificationStatus": "succeeded",
        "gitlabVerificationStatus": "success", "consumerLabels": webhook.consumer_label or "",
        "providerLabels": webhook.provider_label or "", "buildUrl": "", "providerVersionDescriptions": "",
        "currentlyDeployedProviderVersionNumber": "",
    }
