"""Fleet-wide limits on sends in flight per target (webhook) and per host, held in Redis by every worker."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis

import integrations
from relay.models import Webhook
from relay.runtime import Runtime

PREFIX = "pact-relay:inflight:"
FULL = ("target", "host")

# KEYS: the slot sets (target, host). ARGV: token, lease ms, then one limit per key. Every member's score is
# the Redis time (ms) its slot expires: a worker that dies holding slots loses them when its lease would end.
ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then return -i end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2]) + 1000)
end
return 1
"""


@dataclass(frozen=True)
class Keys:
    """Where one delivery's send counts: its target (the webhook) and the host it talks to, with their limits."""

    target: str
    host: str
    target_limit: int
    host_limit: int


@dataclass(frozen=True)
class Slots:
    """The slots one send holds; give them back with `Limits.release`."""

    keys: tuple[str, ...]
    token: str


def host_of(webhook: Webhook, reveal: Callable[[str], str] | None = None) -> str:
    """The host (and port) a webhook's sends go to, as its integration declares it (Integration.host); `reveal`
    opens a secret field holding the URL (a Teams webhook). The kind's name when the host cannot be told."""
    try:
        integration = integrations.get(webhook.kind)
    except KeyError:
        return webhook.kind
    return integration.host(webhook.config or {}, reveal) or webhook.kind


def keys_for(webhook: Webhook, target_limit: int, host_limit: int,
             reveal: Callable[[str], str] | None = None) -> Keys:
    return Keys(target=webhook.uuid, host=host_of(webhook, reveal),
                target_limit=webhook.max_in_flight or target_limit, host_limit=host_limit)


class Limits:
    """Counting semaphores in Redis, shared by every worker process of the fleet."""

    def __init__(self, redis: Redis):
        self.redis = redis
        self._acquire = redis.register_script(ACQUIRE)

    def try_acquire(self, keys: Keys, hold_seconds: float) -> Slots | str:
        """Both slots (target and host) or neither: the Slots, or which is full ("target", "host"). Never waits."""
        names = (f"{PREFIX}target:{keys.target}", f"{PREFIX}host:{keys.host}")
        token = uuid.uuid4().hex
        got = self._acquire(keys=list(names), args=[token, int(hold_seconds * 1000), keys.target_limit,
                                                     keys.host_limit])
        return Slots(names, token) if got == 1 else FULL[-got - 1]

    def release(self, slots: Slots) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for name in slots.keys:
            pipe.zrem(name, slots.token)
        pipe.execute()

    def in_flight(self, keys: Keys) -> tuple[int, int]:
        """(target, host) slots taken now, expired ones not counted; for tests and metrics."""
        now_ms = int(self.redis.time()[0] * 1000)
        return tuple(self.redis.zcount(f"{PREFIX}{kind}:{name}", now_ms, "+inf")  # type: ignore[return-value]
                     for kind, name in (("target", keys.target), ("host", keys.host)))


class _Holder:
    limits: Limits | None = None


def of(runtime: Runtime) -> Limits:
    """The runtime's Limits (its Redis script registered once)."""
    holder = runtime.cache(_Holder)
    if holder.limits is None:
        holder.limits = Limits(runtime.redis)
    return holder.limits
