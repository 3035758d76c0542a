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

from relay import jsonlimits
from relay.driversql import Driver, Sql, Tx
from relay.errors import PayloadError
from relay.intake.groupcommit import GroupCommit
from relay.models import Delivery, Event, IdempotencyKey, Webhook, new_id, utcnow
from relay.pairs.state import verification_number_too_large
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
    conflict: bool = False  # the Idempotency-Key was used before for an event with other content


def parse(body: bytes) -> dict[str, str]:
    """The event's variables from a request body, or PayloadError naming each bad field."""
    try:
        payload = jsonlimits.loads(body)
    except jsonlimits.TooDeep as exc:
        raise PayloadError.one("body", str(exc)) from None
    except jsonlimits.DuplicateKey as exc:
        raise PayloadError.one(exc.key.removeprefix("pactbroker.")[:100], str(exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError.one("body", f"is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict):
        raise PayloadError.one("body", "must be a JSON object of Pact Broker variables")
    errors: dict[str, list[str]] = {}
    variables: dict[str, str] = {}
    for key, value in payload.items():
        name = key.removeprefix("pactbroker.")
        if name in variables:
            errors.setdefault(name, []).append("appears twice (with and without the pactbroker. prefix)")
        elif not isinstance(value, str):
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
    if verification_number_too_large(variables.get("verificationResultUrl", "")):
        errors["verificationResultUrl"] = ["the verification result number is larger than a 64-bit integer"]
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


def dedup_key(body: bytes, idempotency_key: str | None, scope: str = "") -> str:
    """An Idempotency-Key counts within its `scope` (the sending token), so one sender cannot claim another's."""
    if idempotency_key:
        source = b"key:" + scope.encode() + b"\0" + idempotency_key.encode()
    else:
        source = b"body:" + body
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


@dataclass(frozen=True)
class Stored:
    """The event as the intake's on_store hooks see it, inside the intake transaction."""

    id: str
    name: str
    variables: dict[str, str]
    received_at: datetime


_E, _D, _K, _W = Event.__table__.c, Delivery.__table__.c, IdempotencyKey.__table__.c, Webhook.__table__.c
# Intake runs on the driver's connection (relay.driversql): statement for statement, SQLAlchemy's own work cost
# several times what SQLite or PostgreSQL spent running them.
_WEBHOOKS_VERSION = Sql("SELECT count(*), max(updated_at) FROM webhooks")
_SUBSCRIPTIONS = Sql("SELECT uuid, events, consumer_name, consumer_label, provider_name, provider_label "
                     "FROM webhooks WHERE enabled = :on", binds={"on": _W.enabled}, results=(None, _W.events))
# The key is claimed first: a repeat within the window (or one a concurrent request committed while this one
# waited for its row lock) changes nothing and returns no row; a key older than the window is taken over.
_CLAIM_KEY = Sql("INSERT INTO idempotency_keys (key, event_id, created_at) VALUES (:key, :event_id, :at) "
                 "ON CONFLICT (key) DO UPDATE SET event_id = excluded.event_id, created_at = excluded.created_at "
                 "WHERE idempotency_keys.created_at <= :stale RETURNING event_id",
                 binds={"at": _K.created_at, "stale": _K.created_at})
_SEEN = Sql("SELECT event_id FROM idempotency_keys WHERE key = :key")
_VARIABLES = Sql("SELECT variables FROM events WHERE id = :id", results=(_E.variables,))
_DELIVERY_COUNT = Sql("SELECT count(*) FROM deliveries WHERE event_id = :event_id")
_INSERT_EVENT = Sql("INSERT INTO events (id, name, consumer, provider, variables, received_at) "
                    "VALUES (:id, :name, :consumer, :provider, :variables, :received_at)",
                    binds={"variables": _E.variables, "received_at": _E.received_at})
_INSERT_DELIVERY = Sql("INSERT INTO deliveries (id, webhook_uuid, event_id, status, attempts_made, next_attempt_at, "
                       "created_at, updated_at) VALUES (:id, :webhook_uuid, :event_id, 'pending', 0, :at, :at, :at)",
                       binds={"at": _D.created_at})


class SubscriptionCache:
    """The enabled webhooks, reloaded only when the table changed.

    Every event needs them; loading a thousand webhook rows per event cost more than the rest of intake.
    A count and the latest update time of the table, read in the intake transaction, tell whether the
    copy is current: creating, changing, disabling or deleting a webhook changes one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._subscriptions: tuple[Subscription, ...] = ()

    def get(self, tx: Tx) -> tuple[Subscription, ...]:
        version = tuple(tx.rows(_WEBHOOKS_VERSION)[0])
        with self._lock:
            if version == self._version:
                return self._subscriptions
        subscriptions = tuple(Subscription(uuid, tuple(names or ()), *rest)
                              for uuid, names, *rest in tx.rows(_SUBSCRIPTIONS, {"on": True}))
        with self._lock:
            self._version, self._subscriptions = version, subscriptions
        return subscriptions


def receive(driver: Driver, body: bytes, idempotency_key: str | None = None,
            now: datetime | None = None, on_store: Iterable = (),
            subscriptions: SubscriptionCache | None = None, group: GroupCommit | None = None,
            key_scope: str = "") -> Intake:
    """Store one event and a delivery per matching webhook in one transaction (shared with the concurrent
    intakes of `group`); a repeat within 24 h returns the first event. The hooks in `on_store` run inside it,
    called with (tx, Stored, first delivery id or None). An Idempotency-Key counts per `key_scope` (the token);
    reused for other content, it stores nothing and says `conflict`."""
    variables = parse(body)
    now = now or utcnow()
    key = None if variables["eventName"] == TEST_EVENT else dedup_key(body, idempotency_key, key_scope)
    event = Stored(new_id(), variables["eventName"], variables, now)
    cache = subscriptions or SubscriptionCache()

    def store(tx: Tx) -> Intake:
        if key and not tx.rows(_CLAIM_KEY, {"key": key, "event_id": event.id, "at": now,
                                            "stale": now - DEDUP_WINDOW}):
            first = tx.rows(_SEEN, {"key": key})[0][0]
            if idempotency_key:
                seen = tx.rows(_VARIABLES, {"id": first})
                if seen and seen[0][0] != variables:
                    return Intake(event_id=first, deliveries=0, to_enqueue=[], duplicate=True,
                                  event_name=event.name, conflict=True)
            count = tx.rows(_DELIVERY_COUNT, {"event_id": first})[0][0]
            return Intake(event_id=first, deliveries=count, to_enqueue=[], duplicate=True, event_name=event.name)
        tx.run(_INSERT_EVENT, {"id": event.id, "name": event.name, "consumer": variables["consumerName"],
                               "provider": variables["providerName"], "variables": variables, "received_at": now})
        ids = [(new_id(), w.uuid) for w in cache.get(tx) if matches(w, variables)]
        if ids:
            tx.run_many(_INSERT_DELIVERY, [{"id": i, "webhook_uuid": uuid, "event_id": event.id, "at": now}
                                           for i, uuid in ids])
        for hook in on_store:
            hook(tx, event, ids[0][0] if ids else None)
        return Intake(event_id=event.id, deliveries=len(ids), to_enqueue=[i for i, _ in ids], event_name=event.name)

    if group is None:
        return driver.run(store)
    return group.run(driver, store, order=(variables["consumerName"], variables["providerName"]))


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
