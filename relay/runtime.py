"""The process-wide handles built from Settings: database, vault, Redis, outgoing guard."""

from __future__ import annotations

import threading
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from typing import TypeVar

from redis import Redis

from integrations.netguard import Guard, Policy
from relay.config import Settings
from relay.db import make_engine, make_sessionmaker
from relay.redact import SESSION_KEY, KnownSecrets
from relay.security.secrets import Vault

T = TypeVar("T")


class Runtime:
    """Built once per process; every attribute is created on first use, never at import."""

    def __init__(self, settings: Settings):
        self.settings = settings.with_generated_keys()
        self._local = threading.local()
        # The secret values this runtime's vault handled: the log filter and the audit log mask them.
        self.known_secrets = KnownSecrets()
        self._caches: dict[type, object] = {}
        self._caches_lock = threading.Lock()

    def cache(self, kind: type[T]) -> T:
        """This runtime's one instance of a cache class, made on first use: a cache lives as long as the app or
        worker that made the runtime, never in a module global."""
        with self._caches_lock:
            if kind not in self._caches:
                self._caches[kind] = kind()
            return self._caches[kind]

    @cached_property
    def engine(self):
        return make_engine(self.settings)

    @cached_property
    def sessions(self):
        return make_sessionmaker(self.engine, info={SESSION_KEY: self.known_secrets})

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.settings.encryption_keys, self.known_secrets)

    @cached_property
    def redis(self) -> Redis:
        url = self.settings.redis_url or embedded_redis_url(self.settings)
        return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)

    @cached_property
    def guard(self) -> Guard:
        s = self.settings
        return Guard(Policy(allow_private=s.allow_private_networks, allowed_hosts=s.allowed_hosts,
                            schemes=s.allowed_schemes))

    def http_session(self):
        """This thread's requests session, kept across sends so connections are reused.

        A session per attempt cost a new TCP (and TLS) connection per delivery. Cookies are refused so
        that nothing one target sets is ever sent along with a later delivery."""
        session = getattr(self._local, "http", None)
        if session is None:
            session = self._local.http = self.guard.session()
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        return session


def embedded_redis_url(settings: Settings) -> str:
    """The embedded server `pact-relay serve` starts listens on a unix socket in the data dir."""
    return f"unix://{settings.data_dir / 'redis.sock'}"
