"""Per-token request limits counted in Redis (locally, far below the limit); when Redis is away the limiter fails
open so intake keeps working."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from redis import Redis

from relay import metrics

log = logging.getLogger(__name__)
KEY = "pact-relay:rate:{key}:{window}"
# After a Redis error, stop asking it for this long: a broker's requests must not each wait for a dead Redis.
PAUSE_AFTER_ERROR = 5.0


# Far below its limit a process counts a key locally and adds its count to Redis every SYNC_EVERY requests or
# SYNC_SECONDS: a round trip per request was a tenth of an intake's cost. From half the limit on, every request
# is counted in Redis before it goes ahead. Exact while processes x SYNC_EVERY stays under half the limit (60
# processes at the default 6,000 a minute); limits under LOCAL_MIN are always counted request by request.
SYNC_EVERY = 50
SYNC_SECONDS = 0.25
LOCAL_MIN = 2000
MAX_LOCAL_KEYS = 10_000


class _Local:
    __slots__ = ("window", "known", "pending", "synced_at")

    def __init__(self, window: int, now: float):
        self.window, self.known, self.pending, self.synced_at = window, 0, 0, now


class Limiter:
    """Fixed windows: at most `limit` requests per key in each `window` seconds, counted fleet-wide in Redis."""

    def __init__(self, redis: Callable[[], Redis], limit: int, window: float, clock: Callable[[], float] = time.time):
        self.redis = redis
        self.limit = limit
        self.window = window
        self.clock = clock
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self._local: dict[str, _Local] = {}

    def check(self, key: str) -> float | None:
        """None when the request may go ahead, else the seconds until it may (for Retry-After)."""
        if self.limit <= 0:
            return None
        now = self.clock()
        if now < self._paused_until:
            _failed_open()
            return None
        window = math.floor(now / self.window)
        add = 1
        if self.limit >= LOCAL_MIN:
            with self._lock:
                state = self._local.get(key)
                if state is None or state.window != window:
                    if len(self._local) >= MAX_LOCAL_KEYS:
                        self._local.clear()
                    state = self._local[key] = _Local(window, now)
                if state.known + state.pending + 1 < self.limit // 2:
                    state.pending += 1
                    if state.pending < SYNC_EVERY and now - state.synced_at < SYNC_SECONDS:
                        return None
                    add, state.pending, state.synced_at = state.pending, 0, now
                else:
                    add, state.pending = state.pending + 1, 0
        count = self._count(key, window, add, now)
        if count is None:
            return None
        if self.limit >= LOCAL_MIN:
            with self._lock:
                state = self._local.get(key)
                if state is not None and state.window == window:
                    state.known = max(state.known, count)
        if count <= self.limit:
            return None
        return max(1.0, math.ceil((window + 1) * self.window - now))

    def _count(self, key: str, window: int, add: int, now: float) -> int | None:
        """The key's count in this window after adding `add`, or None with Redis away (fail open)."""
        name = KEY.format(key=key, window=window)
        try:
            pipe = self.redis().pipeline(transaction=False)
            pipe.incrby(name, add)
            pipe.expire(name, math.ceil(self.window) + 1)
            count, _ = pipe.execute()
        except Exception as exc:  # fail open: the database, not Redis, decides whether intake works
            with self._lock:
                if now >= self._paused_until:
                    log.warning("rate limiter: Redis unavailable (%s); letting requests through unchecked for %ss",
                                type(exc).__name__, PAUSE_AFTER_ERROR)
                self._paused_until = now + PAUSE_AFTER_ERROR
            _failed_open()
            return None
        return count


def _failed_open() -> None:
    metrics.instruments().limiter_failed_open.inc()
