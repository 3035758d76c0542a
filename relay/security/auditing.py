"""What the web app writes to the audit log: one rule per changing endpoint, every 401/403, in one hook."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, g, jsonify, request
from sqlalchemy.orm import Session

from relay import metrics
from relay.security import audit
from relay.security.audit import Actor, Origin

log = logging.getLogger(__name__)

# Every endpoint that changes something or sends something, and the audit type of its success.
# Views that know better parameters (or a more precise type) call record() inside their own transaction.
CHANGES = {
    "webhooks.create": "webhook.created",
    "webhooks.pacticipant_create": "webhook.created",
    "webhooks.upsert": "webhook.saved",
    "webhooks.destroy": "webhook.deleted",
    "webhooks.execute": "webhook.executed",
    "webhooks.resume": "webhook.resumed",
    "secrets.create": "secret.saved",
    "secrets.upsert": "secret.saved",
    "secrets.destroy": "secret.deleted",
    "tokens.create": "token.created",
    "tokens.destroy": "token.revoked",
    "tokens.revoke": "token.revoked",
    "deliveries.replay": "delivery.replayed",
    "sessions.login": "user.login",
    "sessions.logout": "user.logout",
    # The web UI's forms; their views record the precise entry themselves, like the API's.
    "ui.sign_in": "user.login",
    "ui.saml_acs": "user.login",
    "ui.sign_out": "user.logout",
    "ui.webhook_save": "webhook.saved",
    "ui.webhook_test": "webhook.executed",
    "ui.webhook_delete": "webhook.deleted",
    "ui.webhook_resume": "webhook.resumed",
    "ui.delivery_replay": "delivery.replayed",
    "ui.secret_save": "secret.saved",
    "ui.secret_delete": "secret.deleted",
    "ui.token_create": "token.created",
    "ui.token_revoke": "token.revoked",
    "ui.user_create": "user.created",
    "ui.user_toggle": "user.updated",
    "ui.user_change": "user.updated",
    "ui.about_intake_token": "token.created",
}
# A form's page shares its endpoint with the form's POST; showing it changes nothing.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Changing endpoints deliberately left out, with the reason.
UNAUDITED = {
    "events.receive": "every event is itself stored with its deliveries; the log would only repeat it",
    "ui.sso_start": "only sends the browser to the identity provider; the callback records the sign-in",
    "ui.saml_start": "only sends the browser to the SAML IdP; the ACS records the sign-in",
}


def actor() -> Actor:
    if g.get("user") is not None:
        return Actor("user", g.user.email)
    if g.get("token") is not None:
        return Actor("token", g.token.name)
    return audit.ANONYMOUS


def origin() -> Origin:
    path = request.full_path.rstrip("?") if request.query_string else request.path
    return Origin(method=request.method, path=path, source=request.remote_addr,
                  user_agent=request.user_agent.string or None)


def _anonymous_budget_spent() -> float | None:
    """None while an anonymous request may still be written: each source address gets `auth_failure_limit`
    anonymous entries per rate-limit window, as API 401s do; past it, the seconds to wait."""
    if actor() is not audit.ANONYMOUS:
        return None
    if "audit_wait" not in g:  # counted once per request, whichever place records it first
        g.audit_wait = current_app.extensions["relay.auth_failures"].check(f"audit:{request.remote_addr or ''}")
    return g.audit_wait


def record(session: Session, type: str, who: Actor | None = None, **payload: Any) -> None:
    """Append an entry for this request inside `session`'s transaction; the caller commits it with its change.
    An anonymous request past its address's budget is not written; the response becomes a 429 (`_after`)."""
    g.audited = True
    if who is None and _anonymous_budget_spent() is not None:
        return
    audit.append(session, type, who or actor(), payload, origin())


def _too_many(wait: float):
    metrics.instruments().rate_limited.inc()
    response = jsonify({"error": "too many unauthenticated requests from this address; slow down and retry after "
                                 "the given seconds"})
    response.status_code = 429
    response.headers["Retry-After"] = str(int(wait))
    return response


def _after(response):
    if g.get("audit_wait") is not None:
        return _too_many(g.audit_wait)
    if g.get("audited") or response.status_code == 429:
        return response
    status = response.status_code
    endpoint = request.endpoint or ""
    if status in (401, 403):
        body = response.get_json(silent=True) or {}
        entry = ("auth.denied", {"status": status, "reason": str(body.get("error", ""))[:300],
                                 "endpoint": endpoint})
    elif endpoint in CHANGES and status < 400 and request.method not in SAFE_METHODS:
        entry = (CHANGES[endpoint], {**(request.view_args or {}), "status": status})
    else:
        return response
    if (wait := _anonymous_budget_spent()) is not None:
        return _too_many(wait)
    # The request's own session: any transaction it still holds would otherwise block this write on SQLite.
    session = current_app.extensions["relay.session"]()
    try:
        session.rollback()
        audit.append(session, entry[0], actor(), entry[1], origin())
        session.commit()
    except Exception as exc:
        session.rollback()
        log.error("audit append failed for %s %s: %s", request.method, request.path, type(exc).__name__)
        if status < 400:
            failed = jsonify({"error": "the change was made but could not be written to the audit log; "
                                       "see the relay's log"})
            failed.status_code = 500
            return failed
    return response


def init_app(app: Flask) -> None:
    app.after_request(_after)
