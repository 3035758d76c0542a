"""The UI's one seam to sign-in, roles, CSRF and the audit log; swap these bodies for the security module's."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from functools import wraps

from flask import abort, current_app, g, redirect, request, session, url_for

from relay.auth import GRANTS, find_token
from relay.models import Token, utcnow

log = logging.getLogger("relay.audit")
SESSION_KEY = "ui_token"
CSRF_KEY = "ui_csrf"
CSRF_FIELD = "csrf_token"
SIGN_IN_ROLES = ("admin", "write", "read")


@dataclass(frozen=True)
class Viewer:
    """Who is signed in, and what their role lets them do."""

    name: str
    role: str

    def can(self, permission: str) -> bool:
        return permission in GRANTS.get(self.role, ())


def _db():
    return current_app.extensions["relay.session"]()


def viewer() -> Viewer | None:
    if "ui_viewer" not in g:
        g.ui_viewer = None
        token_id = session.get(SESSION_KEY)
        if token_id is not None:
            token = _db().get(Token, token_id)
            now = utcnow()
            if token is not None and not token.revoked_at and not (token.expires_at and token.expires_at <= now) \
                    and token.role in SIGN_IN_ROLES:
                g.ui_viewer = Viewer(name=token.name, role=token.role)
            else:
                session.pop(SESSION_KEY, None)
    return g.ui_viewer


def sign_in(secret: str) -> Viewer | None:
    """Until web users exist, a person signs in with an API token of a read, write or admin role."""
    token = find_token(_db(), secret.strip()) if secret.strip() else None
    if token is None or token.role not in SIGN_IN_ROLES:
        audit("sign-in.failed", "ui", actor="anonymous")
        return None
    session.clear()  # a new session id for a new identity: no fixation
    session[SESSION_KEY] = token.id
    session.permanent = True
    g.pop("ui_viewer", None)
    who = viewer()
    audit("sign-in", "ui")
    return who


def sign_out() -> None:
    audit("sign-out", "ui")
    session.clear()
    g.pop("ui_viewer", None)


def login_required(permission: str = "read"):
    """Pages: signed in, and the role grants `permission` (else 403, whatever the page showed)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            who = viewer()
            if who is None:
                return redirect(url_for("ui.sign_in", next=request.full_path.rstrip("?")))
            if not who.can(permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def csrf_token() -> str:
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return session[CSRF_KEY]


def check_csrf() -> None:
    """Every state-changing UI request carries the session's token in the form or an X-CSRF-Token header."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
    expected = session.get(CSRF_KEY, "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, "the form expired or came from another site; reload the page and try again")


def audit(action: str, target: str, actor: str | None = None, **detail) -> None:
    who = actor or (viewer().name if viewer() else "anonymous")
    log.info("audit %s %s %s %s", who, action, target, detail or "")
