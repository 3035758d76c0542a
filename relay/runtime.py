"""The process-wide handles built from Settings: database, vault, Redis, outgoing guard."""

from __future__ import annotations

from functools import cached_property

from redis import Redis

from integrations.netguard import Guard, Policy
from relay.config import Settings
from relay.db import make_engine, make_sessionmaker
from relay.secrets import Vault


class Runtime:
    """Built once per process; every attribute is created on first use, never at import."""

    def __init__(self, settings: Settings):
        self.settings = settings.with_generated_keys()

    @cached_property
    def engine(self):
        return make_engine(self.settings)

    @cached_property
    def sessions(self):
        return make_sessionmaker(self.engine)

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.settings.encryption_keys)

    @cached_property
    def redis(self) -> Redis:
        url = self.settings.redis_url or embedded_redis_url(self.settings)
        return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)

    @cached_property
    def guard(self) -> Guard:
        s = self.settings
        return Guard(Policy(allow_private=s.allow_private_networks, allowed_hosts=s.allowed_hosts,
                            schemes=s.allowed_schemes))


def embedded_redis_url(settings: Settings) -> str:
    """The embedded server `pact-relay serve` starts listens on a unix socket in the data dir."""
    return f"unix://{settings.data_dir / 'redis.sock'}"
