"""API tokens: created once, stored as SHA-256 hashes, checked with role rules on every call."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps

from flask import current_app, g, jsonify, request
from sqlalchemy.orm import Session

from relay import metrics
from relay.driversql import Driver, Sql
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


_T = Token.__table__.c
# On the driver's connection (relay.driversql): every API call runs this, and SQLAlchemy's ORM spent several times
# what the lookup itself costs. One autocommitted read, no write lock on SQLite.
_BY_HASH = Sql("SELECT id, name, role, token_hash, created_at, expires_at, revoked_at, last_used_at "
               "FROM tokens WHERE token_hash = :token_hash",
               results=(None, None, None, None, _T.created_at, _T.expires_at, _T.revoked_at, _T.last_used_at))
_TOUCH = Sql("UPDATE tokens SET last_used_at = :at WHERE id = :id", binds={"at": _T.last_used_at})


@dataclass(frozen=True, slots=True)
class Presented:
    """The stored token a request presented (a plain row: an ORM instance cost more than the lookup)."""

    id: int
    name: str
    role: str
    token_hash: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def authenticate(driver: Driver, value: str) -> tuple[Presented | None, str]:
    """The live token for a presented value, or None and why not; read fresh on every call, so a revoked token
    is refused on its next request."""
    rows = driver.run(lambda tx: tx.rows(_BY_HASH, {"token_hash": hash_token(value)}), write=False)
    now = utcnow()
    token = Presented(*rows[0]) if rows else None
    reason = ""
    if token is None:
        reason = "unknown token"
    elif token.revoked_at:
        reason = "this token was revoked"
    elif token.expires_at and token.expires_at <= now:
        reason = "this token has expired"
    if reason:
        return None, reason
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        driver.run(lambda tx: tx.run(_TOUCH, {"at": now, "id": token.id}))
    return token, ""


def revoke_token(session: Session, token: Token) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()


def token_to_json(token: Token) -> dict:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": token.id, "name": token.name, "role": token.role, "createdAt": when(token.created_at),
            "expiresAt": when(token.expires_at), "lastUsedAt": when(token.last_used_at),
            "revokedAt": when(token.revoked_at), "revoked": token.revoked_at is not None,
            "expired": bool(token.expires_at and token.expires_at <= utcnow())}


def deny(status: int, message: str, scheme: str = "Bearer"):
    """A 401/403 JSON answer; the audit hook records it with the message as the reason."""
    response = jsonify({"error": message})
    response.status_code = status
    if status == 401 and scheme:
        response.headers["WWW-Authenticate"] = f'{scheme} realm="pact-relay"'
    return response


def _too_many(wait: float, message: str):
    metrics.instruments().rate_limited.inc()
    response = deny(429, f"{message}; slow down and retry after the given seconds")
    response.headers["Retry-After"] = str(int(wait))
    return response


def _unauthenticated(message: str):
    """401, until this address has had too many of them in the window: then 429 (not audited)."""
    wait = current_app.extensions["relay.auth_failures"].check(f"401:{request.remote_addr or ''}")
    if wait is not None:
        return _too_many(wait, "too many requests without a valid token from this address")
    return deny(401, message)


def require(permission: str):
    """Decorator: the request must carry a bearer token whose role grants `permission`."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return _unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
            token, reason = authenticate(current_app.extensions["relay"].driver, value.strip())
            if token is None:
                return _unauthenticated(f"{reason}: send a valid API token")
            g.token = token
            # Before the role check, so a token hammering what it may not do is slowed down too.
            wait = current_app.extensions["relay.limiter"].check(token.token_hash[:32])
            if wait is not None:
                return _too_many(wait, "too many requests with this token")
            if permission not in GRANTS[token.role]:
                return deny(403, f"a {token.role} token may not do this (needs {permission})")
            return view(*args, **kwargs)

        wrapper.relay_permission = permission
        return wrapper

    return decorate
