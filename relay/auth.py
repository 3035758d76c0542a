"""API tokens: created once, stored as SHA-256 hashes, checked with role rules on every call."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, g, jsonify, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relay.db import read_only
from relay.models import Token, utcnow

ROLES = ("admin", "write", "read", "intake")
# What each role may do; `admin` may do everything.
GRANTS = {"admin": {"admin", "write", "read", "intake"}, "write": {"write", "read"}, "read": {"read"},
          "intake": {"intake"}}
PREFIX = "prt_"
LAST_USED_EVERY = timedelta(minutes=1)


def hash_token(value: str) -> str:
    # Tokens are 256 random bits, so a fast hash is as safe as a slow one and keeps intake cheap.
    return hashlib.sha256(value.encode()).hexdigest()


def create_token(session: Session, name: str, role: str, expires_at: datetime | None = None) -> tuple[Token, str]:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 200:
        raise ValueError("name must be 1 to 200 characters")
    value = PREFIX + secrets.token_urlsafe(32)
    token = Token(name=name.strip(), role=role, token_hash=hash_token(value), expires_at=expires_at)
    session.add(token)
    return token, value


def find_token(session: Session, value: str) -> Token | None:
    read_only(session)  # every authenticated call does this: it must not wait for the SQLite write lock
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(value)))
    session.commit()  # end this short transaction: the view starts its own
    now = utcnow()
    if token is not None and (token.revoked_at or (token.expires_at and token.expires_at <= now)):
        token = None
    if token is not None and (token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY):
        session.execute(update(Token).where(Token.id == token.id).values(last_used_at=now))
        session.commit()
    return token


def _deny(status: int, message: str):
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="pact-relay"'
    return response


def require(permission: str):
    """Decorator: the request must carry a bearer token whose role grants `permission`."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return _deny(401, "missing bearer token: send 'Authorization: Bearer <token>'")
            token = find_token(current_app.extensions["relay.session"](), value.strip())
            if token is None:
                return _deny(401, "invalid, expired or revoked token")
            if permission not in GRANTS[token.role]:
                return _deny(403, f"a {token.role} token may not do this (needs {permission})")
            g.token = token
            return view(*args, **kwargs)

        return wrapper

    return decorate
