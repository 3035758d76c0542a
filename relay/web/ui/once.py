"""Show-once values across a redirect (post, redirect, show once): a reload or a shared link shows nothing."""

from __future__ import annotations

import secrets

from redis.exceptions import RedisError

from relay.web.requests import runtime
from relay.web.ui import access

TTL = 300  # seconds between the post and the page that shows the value


def _key(ticket: str) -> str:
    return f"pact-relay:once:{access.viewer().name}:{ticket}"


def stash(value: str) -> str | None:
    """A ticket for the redirect's URL (not the value); None when Redis is away (then show it right away)."""
    ticket = secrets.token_urlsafe(16)
    rt = runtime()
    try:
        rt.redis.set(_key(ticket), rt.vault.encrypt(value), ex=TTL)  # encrypted: Redis never holds the token
    except RedisError:
        return None
    return ticket


def take(ticket: str) -> str | None:
    """The value, once, to the person who stashed it; None afterwards, for anyone else, or when expired."""
    if not ticket or len(ticket) > 64:
        return None
    rt = runtime()
    try:
        sealed = rt.redis.getdel(_key(ticket))
    except RedisError:
        return None
    return rt.vault.decrypt(sealed.decode() if isinstance(sealed, bytes) else sealed) if sealed else None
