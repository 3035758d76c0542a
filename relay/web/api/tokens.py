"""/tokens: API tokens, admin only; a token's value is shown once, in the response that creates it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, jsonify
from sqlalchemy import select

from relay.errors import NotFound, PayloadError
from relay.models import Token, utcnow
from relay.security.auditing import record
from relay.security.tokens import ROLES, create_token, require, revoke_token, token_to_json
from relay.web.requests import db, json_body

bp = Blueprint("tokens", __name__)
MAX_DAYS = 3650


def _expiry(doc: dict) -> datetime | None:
    at, days = doc.get("expiresAt"), doc.get("expiresInDays")
    if at is not None and days is not None:
        raise PayloadError.one("expiresAt", "send expiresAt or expiresInDays, not both")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise PayloadError.one("expiresInDays", f"must be a whole number from 1 to {MAX_DAYS}")
        return utcnow() + timedelta(days=days)
    if at is None:
        return None
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    if when is None:
        raise PayloadError.one("expiresAt", "must be an ISO 8601 date and time, e.g. 2030-01-31T00:00:00Z")
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when <= utcnow():
        raise PayloadError.one("expiresAt", "must be in the future")
    return when


def _get(token_id: int) -> Token:
    token = db().get(Token, token_id) if token_id < 2**31 else None
    if token is None:
        raise NotFound(f"no token {token_id}")
    return token


@bp.get("/tokens")
@require("admin")
def index():
    return jsonify({"tokens": [token_to_json(t) for t in db().scalars(select(Token).order_by(Token.id))]})


@bp.post("/tokens")
@require("admin")
def create():
    doc = json_body()
    if not isinstance(doc, dict):
        raise PayloadError.one("body", "must be a JSON object")
    errors = {}
    if not isinstance(doc.get("name"), str) or not doc["name"].strip() or len(doc["name"]) > 200:
        errors["name"] = ["must be 1 to 200 characters"]
    if doc.get("role") not in ROLES:
        errors["role"] = [f"must be one of {', '.join(ROLES)}"]
    if errors:
        raise PayloadError(errors)
    expires = _expiry(doc)
    session = db()
    token, value = create_token(session, doc["name"], doc["role"], expires)
    session.flush()
    record(session, "token.created", id=token.id, name=token.name, role=token.role,
           expiresAt=expires.isoformat() if expires else None)
    session.commit()
    return jsonify({**token_to_json(token), "token": value}), 201


@bp.get("/tokens/<int:token_id>")
@require("admin")
def show(token_id: int):
    return jsonify(token_to_json(_get(token_id)))


def _revoke(token_id: int) -> Token:
    session = db()
    token = _get(token_id)
    revoke_token(session, token)
    record(session, "token.revoked", id=token.id, name=token.name, role=token.role)
    session.commit()
    return token


@bp.delete("/tokens/<int:token_id>")
@require("admin")
def destroy(token_id: int):
    _revoke(token_id)
    return "", 204


@bp.post("/tokens/<int:token_id>/revoke")
@require("admin")
def revoke(token_id: int):
    return jsonify(token_to_json(_revoke(token_id)))
