"""Rate limits shared by the fleet: holds learnt from targets' answers, and a webhook's own sends per second."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import RedisError

from integrations.http import retry_after_seconds

MAX_HOLD = 24 * 3600.0
# GitHub: "If you receive a secondary rate limit error without retry-after or x-ratelimit-remaining: 0,
# wait at least one minute" (docs.github.com, "Rate limits for the REST API").
DEFAULT_HOLD = 60.0
PREFIX = "pact-relay:hold:"
RATE_PREFIX = "pact-relay:rate:"

# One Redis round trip per send at most; times come from the Redis server's clock, the one clock the fleet shares.
_PACE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free > now_us then
  return next_free - now_us
end
redis.call('SET', KEYS[1], now_us + interval, 'PX', math.ceil(interval / 1000) + 1000)
return 0
"""


def hold_seconds(status: int | None, headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Pure: how long every send with the same credential and host must wait after this answer, or None.

    429 (any target; Slack always says Retry-After), GitHub's 403 for an exhausted primary or a secondary limit,
    a 503 that names a Retry-After, and a success that used up GitHub's primary limit (x-ratelimit-remaining: 0)."""
    if status is None:
        return None
    h = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    after = retry_after_seconds(h.get("retry-after"))
    exhausted = h.get("x-ratelimit-remaining", "").strip() == "0"
    reset = _reset_in(h.get("x-ratelimit-reset", ""), now)
    if status == 429 or (status == 403 and (after is not None or exhausted)):
        seconds = after if after is not None else reset if exhausted and reset is not None else DEFAULT_HOLD
    elif status == 503 and after is not None:
        seconds = after
    elif 200 <= status < 300 and exhausted and reset is not None:
        seconds = reset
    else:
        return None
    return min(max(seconds, 0.0), MAX_HOLD)


def _reset_in(value: str, now: float | None) -> float | None:
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        return None
    return max(0.0, float(value) - (time.time() if now is None else now))


def limit_key(signing_key: str, url: str, credentials: Iterable[str]) -> str:
    """Names what a target's limit applies to: its host and the credentials used, never stored in the clear."""
    host = (urlsplit(url).hostname or "").lower()
    material = "\0".join([host, *sorted(set(credentials))])
    return hmac.new(signing_key.encode(), material.encode(), hashlib.sha256).hexdigest()[:40]


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def hold(redis: Redis, key: str, seconds: float) -> None:
    """Hold every send under `key` for `seconds`; a longer hold already set stays."""
    ms = max(1, int(seconds * 1000))
    pipe = redis.pipeline()
    pipe.set(PREFIX + key, "1", px=ms, nx=True)
    pipe.pexpire(PREFIX + key, ms, gt=True)
    pipe.execute()


def held_for(redis: Redis, key: str) -> float | None:
    """Seconds left of a hold on `key`, or None when sends may go (also when Redis cannot say)."""
    try:
        ms = redis.pttl(PREFIX + key)
    except RedisError:
        return None
    return ms / 1000 if ms and ms > 0 else None


def pace(redis: Redis, webhook_uuid: str, per_second: float) -> float | None:
    """A webhook's own `rateLimit`: None when a send may go now (and takes the slot), else seconds to wait."""
    interval_us = int(1_000_000 / per_second)
    wait_us = redis.eval(_PACE, 1, RATE_PREFIX + webhook_uuid, interval_us)
    return wait_us / 1_000_000 if wait_us else None
