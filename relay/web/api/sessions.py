"""POST /login, POST /logout and GET /session: JSON sign-in for the web UI's cookie session."""

from __future__ import annotations

from flask import Blueprint, jsonify

from relay.errors import PayloadError
from relay.security import sessions
from relay.security.sessions import LoginRefused, login_required
from relay.security.tokens import deny
from relay.web.requests import json_body

bp = Blueprint("sessions", __name__)


def _me(user) -> dict:
    return {"email": user.email, "role": user.role, "csrfToken": sessions.csrf_token()}


@bp.post("/login")
def login():
    # JSON only: a cross-site form cannot send it without a CORS preflight, which the relay never grants.
    doc = json_body()
    if not isinstance(doc, dict):
        raise PayloadError.one("body", "must be a JSON object")
    errors = {k: ["is required"] for k in ("email", "password") if not isinstance(doc.get(k), str) or not doc[k]}
    if errors:
        raise PayloadError(errors)
    try:
        user = sessions.login(doc["email"], doc["password"])
    except LoginRefused as refused:
        response = deny(refused.status, refused.message, scheme="")
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    return jsonify(_me(user))


@bp.post("/logout")
@login_required()
def logout():
    sessions.logout()
    return "", 204


@bp.get("/session")
@login_required()
def show():
    user, _ = sessions.current_user()
    return jsonify(_me(user))
