"""Per-token request limits counted in Redis; when Redis is away the limiter fails open so intake keeps working."""

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


class Limiter:
    """Fixed windows: at most `limit` requests per key in each `window` seconds (one INCR per request)."""

    def __init__(self, redis: Callable[[], Redis], limit: int, window: float, clock: Callable[[], float] = time.time):
        self.redis = redis
        self.limit = limit
        self.window = window
        self.clock = clock
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def check(self, key: str) -> float | None:
        """None when the request may go ahead, else the seconds until it may (for Retry-After)."""
        if self.limit <= 0:
            return None
        now = self.clock()
        if now < self._paused_until:
            _failed_open()
            return None
        window = math.floor(now / self.window)
        name = KEY.format(key=key, window=window)
        try:
            pipe = self.redis().pipeline(transaction=False)
            pipe.incr(name)
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
        if count <= self.limit:
            return None
        return max(1.0, math.ceil((window + 1) * self.window - now))


def _failed_open() -> None:
    metrics.instruments().limiter_failed_open.inc()
