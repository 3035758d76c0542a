"""One send of one webhook for one event: render, build, send, and the redacted record of it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.orm import Session

import integrations
from integrations.base import CAN_I_DEPLOY, FAILURE, LOG_BODY_LIMIT, Context, DeliveryError, Request, Response
from integrations.netguard import refusal
from relay.config import Settings
from relay.delivery import ratelimits
from relay.models import Secret, Webhook
from relay.pairs import deploy, failures
from relay.redact import Redactor
from relay.runtime import Runtime
from relay.security.secrets import DecryptionError, is_sealed
from relay.templating import MissingSecret, RenderedTooLarge, Renderer

DEFAULT_TIMEOUT = (5.0, 15.0)
INTERNAL = "internal error"


@dataclass
class Outcome:
    """A redacted attempt: what was sent, what came back, and whether and when to try again."""

    ok: bool
    retryable: bool
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    error: str | None
    duration_ms: float
    retry_after: float | None = None
    notes: list[str] = field(default_factory=list)
    skipped: str = ""  # the integration chose not to send; the reason
    held: float | None = None  # not sent: a rate limit on this credential and host holds for this many seconds
    limit_key: str | None = None  # the credential and host a rate limit in the answer applies to
    internal: bool = False  # a bug of ours, which says nothing about the target

    @property
    def status(self) -> int | None:
        return (self.response or {}).get("status")

    @property
    def verdict(self) -> str:
        """What this one attempt amounts to: succeeded, skipped or failed (a retryable failure included)."""
        return "skipped" if self.skipped else "succeeded" if self.ok else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request, "response": self.response, "error": self.error,
                "duration_ms": self.duration_ms, "succeeded": self.ok}


def secret_lookup(session: Session, runtime: Runtime) -> Callable[[str], str]:
    cache: dict[str, str] = {}

    def lookup(name: str) -> str:
        if name not in cache:
            began = not session.in_transaction()
            row = session.get(Secret, name)
            ciphertext = row.ciphertext if row is not None else None
            if began:
                # End the read we started: on SQLite every transaction holds the write lock, and the send
                # that follows must not keep it.
                session.commit()
            if ciphertext is None:
                raise MissingSecret(name)
            cache[name] = runtime.vault.decrypt(ciphertext)
        return cache[name]

    return lookup


def attempt(session: Session, runtime: Runtime, webhook: Webhook, variables: dict[str, str],
            delivery_id: str, holds: bool = False) -> Outcome:
    """Send once; never raises for a failed send — the Outcome says what happened, secrets redacted.

    With `holds`, a rate limit learnt from an earlier answer for the same credential and host stops the send
    before it goes: the Outcome says `held` and nothing else.

    No transaction may be open on `session`: secrets are read in short transactions of their own, and nothing
    holds a database lock or connection while the target takes its time."""
    if session.in_transaction():
        raise RuntimeError("attempt() was called inside an open database transaction; end it before sending")
    integration = integrations.get(webhook.kind)
    renderer = Renderer(variables, secret_lookup(session, runtime))
    literal_secrets: list[str] = []
    built = None
    started = time.perf_counter()
    response = None
    result = None
    error = None
    retryable = False
    retry_after = None
    limit_key = None
    try:
        config = _unsealed(webhook.config, runtime, literal_secrets)
        signing_secret = runtime.vault.decrypt(webhook.signing_secret) if webhook.signing_secret else None
        if signing_secret:
            literal_secrets.append(signing_secret)
        shown = with_deploy(runtime, config, with_failure(session, variables, runtime.settings))
        built = integration.build(config, renderer, shown)
        limit_key = _limit_key(runtime, integration, built, [*renderer.used, *literal_secrets])
        held = ratelimits.held_for(runtime.redis, limit_key) if holds and limit_key else None
        if held:
            return Outcome(ok=False, retryable=True, request=None, response=None, error=None, duration_ms=0,
                           held=held, limit_key=limit_key)
        timeout = (webhook.connect_timeout or DEFAULT_TIMEOUT[0], webhook.read_timeout or DEFAULT_TIMEOUT[1])
        ctx = Context(session=runtime.http_session(), check_url=runtime.guard.check_url, timeout=timeout,
                      delivery_id=delivery_id, extra={"signing_secret": signing_secret} if signing_secret else {})
        with runtime.guard.enforced():  # whichever library the integration uses, its connections are checked
            result = integration.send(built, ctx)
        response = result.response
    except Exception as exc:
        error, retryable, retry_after, response = _failure(exc)
    duration_ms = round((time.perf_counter() - started) * 1000, 2)

    redactor = Redactor([*renderer.used, *literal_secrets])
    requests_made: list[Request] = result.requests if result else _described(integration, built)
    request = requests_made[-1] if requests_made else None
    pairs = [r.auth for r in requests_made if r.auth]
    if built is not None:  # every credential the integration sent, whatever field it came from
        pairs += integration.credentials(built)
    redactor = redactor.add_basic_auth(*pairs)
    notes = [result.note] if result and result.note else []
    return Outcome(
        ok=result is not None and error is None, retryable=retryable,
        request=_cut(redactor.data(request.to_log())) if request else None,
        response=_cut(redactor.data(response.to_log())) if response else None,
        error=redactor.text(error), duration_ms=duration_ms, retry_after=retry_after,
        notes=[redactor.text(n) for n in notes], skipped=redactor.text(result.skipped) if result else "",
        limit_key=limit_key, internal=bool(error and error.startswith(INTERNAL)))


def failure_variables(failure: failures.Failure | None, missing: str = "") -> dict[str, Any]:
    """What integrations get under integrations.base.FAILURE: the counts and the first few mismatches (`missing`:
    why there are none when nothing was read)."""
    if failure is None:
        return {"reason": missing or "verification details: not read from the Pact Broker yet", "first": []}
    first = [{"description": i.get("description", ""), **m} for i, m in failure.first_mismatches(5)]
    every = [{"description": i.get("description", ""), "providerStates": i.get("providerStates") or [],
              "mismatches": i.get("mismatches") or []} for i in failure.interactions]
    details = failure.details or {}
    return {"interactions": len(failure.interactions), "mismatches": failure.mismatch_count, "first": first,
            "all": every, "verifier": details.get("verifier"), "truncated": bool(details.get("truncated")),
            "reason": failure.reason or None, "url": failure.url}


def with_failure(session: Session, variables: dict[str, str], settings: Settings) -> Mapping[str, Any]:
    """The event's variables, and for a failed verification what the worker read of why: a first send waited
    for it up to the broker timeout (relay.delivery.details), so what is known now is what goes out."""
    url = variables.get("verificationResultUrl", "")
    if variables.get("eventName") != "provider_verification_failed" or not url or not settings.broker_url:
        return variables  # without a broker connection there is nothing to tell, nor a line saying so
    missing = (f"verification details: not read from the Pact Broker within {settings.broker_timeout:g} s; "
               "the pair page shows them once read")
    found = failures.one(session, url)
    if session.in_transaction():
        session.commit()  # end the read: on SQLite it would hold the write lock through the send
    return {**variables, FAILURE: failure_variables(found, missing)}


def with_deploy(runtime: Runtime, config: dict[str, Any], variables: Mapping[str, Any]) -> Mapping[str, Any]:
    """With a `can_i_deploy` option, the broker's answer for the event's version as last read (after the event:
    the first send waited for it, relay.delivery.details); nothing when Redis or the answer is missing."""
    question = deploy.status_question(config, variables) if runtime.settings.broker_url else None
    if question is None:
        return variables
    try:
        found = deploy.status_variables(question, deploy.stored(runtime.redis, question))
    except RedisError:
        found = None
    return {**variables, CAN_I_DEPLOY: found} if found else variables


def _limit_key(runtime: Runtime, integration, built, credentials: list[str]) -> str | None:
    """The credential and host this send counts against, for rate limits that hold the whole fleet back."""
    planned = _described(integration, built)
    if not planned:
        return None
    return ratelimits.limit_key(runtime.settings.secret_key, planned[0].url, credentials)


def _cut(logged: dict[str, Any]) -> dict[str, Any]:
    """The stored request or answer: its body cut to LOG_BODY_LIMIT after redaction, so no part of a secret is
    kept and a request rendered large is not stored whole with every attempt."""
    body = logged.get("body")
    return {**logged, "body": body[:LOG_BODY_LIMIT]} if isinstance(body, str) else logged


def _failure(exc: Exception) -> tuple[str, bool, float | None, Response | None]:
    """(error, retryable, retry_after, response) for what a send raised."""
    refused = refusal(exc)
    if refused is not None:  # a library may have wrapped it, or an integration turned it into "unreachable"
        return refused.message, False, None, None
    if isinstance(exc, DeliveryError):
        return exc.message, exc.retryable, exc.retry_after, exc.response
    if isinstance(exc, (MissingSecret, DecryptionError, RenderedTooLarge)):
        return str(exc), False, None, None
    # a bug in an integration must not kill the worker; retry with the schedule
    return f"{INTERNAL}: {type(exc).__name__}: {exc}", True, None, None


def _described(integration, built) -> list[Request]:
    """What was about to be sent, for the log; a failure here must not cost the attempt its record."""
    if built is None:
        return []
    try:
        return integration.describe(built)
    except Exception:
        return []


def _unsealed(config: dict[str, Any], runtime: Runtime, collected: list[str]) -> dict[str, Any]:
    """The config with literal secret fields decrypted; their values are collected for redaction."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            value = _unsealed(value, runtime, collected)
        elif is_sealed(value):
            value = runtime.vault.unseal(value)
            collected.append(value)
        out[key] = value
    return out

