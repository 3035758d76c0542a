"""The per-token limiter: counted locally far below the limit, exactly near it, fleet-wide in Redis."""

from __future__ import annotations

import math

from relay.security.ratelimit import KEY, LOCAL_MIN, SYNC_EVERY, Limiter


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def counted(runtime, key: str, clock: Clock, window: float = 60.0) -> int:
    return int(runtime.redis.get(KEY.format(key=key, window=math.floor(clock.now / window))) or 0)


def test_far_below_the_limit_redis_is_asked_once_per_batch(runtime):
    clock = Clock()
    limiter = Limiter(lambda: runtime.redis, 10_000, 60.0, clock)
    assert all(limiter.check("far") is None for _ in range(SYNC_EVERY * 2 + 20))
    assert counted(runtime, "far", clock) == SYNC_EVERY * 2  # two round trips for 120 requests
    clock.now += 0.3  # a quiet moment later the next request sends what was counted meanwhile
    assert limiter.check("far") is None
    assert counted(runtime, "far", clock) == SYNC_EVERY * 2 + 21


def test_a_fleet_of_processes_lets_exactly_the_limit_through(runtime):
    clock = Clock()
    processes = [Limiter(lambda: runtime.redis, LOCAL_MIN, 60.0, clock) for _ in range(8)]
    allowed = sum(processes[i % 8].check("fleet") is None for i in range(LOCAL_MIN + 500))
    assert allowed == LOCAL_MIN
    refused = processes[3].check("fleet")
    assert refused is not None and 1 <= refused <= 60


def test_small_limits_are_counted_request_by_request(runtime):
    clock = Clock()
    limiter = Limiter(lambda: runtime.redis, 5, 60.0, clock)
    assert [limiter.check("small") is None for _ in range(7)] == [True] * 5 + [False] * 2
    assert counted(runtime, "small", clock) == 7


def test_a_new_window_starts_from_zero(runtime):
    clock = Clock(600.0)
    limiter = Limiter(lambda: runtime.redis, LOCAL_MIN, 60.0, clock)
    assert sum(limiter.check("w") is None for _ in range(LOCAL_MIN + 10)) == LOCAL_MIN
    clock.now += 60
    assert limiter.check("w") is None
