"""The process-wide handles built from Settings: database, vault, Redis, outgoing guard."""

from __future__ import annotations

import threading
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from typing import TypeVar
from urllib.parse import unquote

from redis import Redis
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from integrations.netguard import Guard, Policy
from relay.config import ConfigError, Settings
from relay.db import make_engine, make_sessionmaker
from relay.driversql import Driver
from relay.redact import SESSION_KEY, KnownSecrets
from relay.security.secrets import Vault

T = TypeVar("T")


class Runtime:
    """Built once per process; every attribute is created on first use, never at import."""

    def __init__(self, settings: Settings):
        self.settings = settings.with_generated_keys()
        self._local = threading.local()
        self.dispatcher = None  # a worker process's relay.delivery.dispatcher.Dispatcher, while it runs
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
    def driver(self) -> Driver:
        """The engine's connections used directly, for intake and token checks."""
        return Driver(self.engine)

    @cached_property
    def sessions(self):
        return make_sessionmaker(self.engine, info={SESSION_KEY: self.known_secrets})

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.settings.encryption_keys, self.known_secrets)

    @cached_property
    def redis(self) -> Redis:
        url = self.settings.redis_url or embedded_redis_url(self.settings)
        return redis_client(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)

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


SENTINEL_SCHEME = "redis+sentinel://"


def redis_client(url: str, **options) -> Redis:
    """A client for RELAY_REDIS_URL: `redis://`, `rediss://`, `unix://`, or
    `redis+sentinel://[[user]:password@]host:26379[,host2:26379...]/<primary name>[/<db>]`: the primary the
    Sentinels name, found again after a failover (commands in flight are retried while it moves)."""
    if not url.startswith(SENTINEL_SCHEME):
        return Redis.from_url(url, **options)
    sentinels, name, db, username, password = _sentinel_parts(url)
    connect = {k: v for k, v in options.items() if k in ("socket_connect_timeout", "socket_timeout")}
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 12,
                  supported_errors=(redis_errors.ConnectionError, redis_errors.TimeoutError))
    return Sentinel(sentinels, sentinel_kwargs=connect, **connect).master_for(
        name, db=db, username=username, password=password, retry=retry, connection_class=_SentinelConnection,
        **{k: v for k, v in options.items() if k not in connect}, **connect)


class _SentinelConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection keeps a connection whose read was interrupted (a worker's BLPOP stopped by
    SIGTERM) open in the pool, its reply still due, so the next command on it waited for that reply: the worker
    hung on its way out. It is closed instead, as a plain connection is."""

    def read_response(self, *args, disconnect_on_error: bool = True, **kwargs):
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, int, str | None, str | None]:
    usage = ("RELAY_REDIS_URL: a Sentinel URL looks like redis+sentinel://[:password@]host:26379[,host2:26379]"
             "/<primary name>[/<db>]")
    rest = url[len(SENTINEL_SCHEME):].split("?", 1)[0]
    netloc, _, path = rest.partition("/")
    credentials, _, hosts = netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    sentinels = []
    for entry in filter(None, hosts.split(",")):
        host, _, port = entry.rpartition(":") if entry.rsplit(":", 1)[-1].isdigit() else (entry, "", "26379")
        if not host:
            raise ConfigError(usage)
        sentinels.append((host.strip("[]"), int(port)))
    name, _, db = path.strip("/").partition("/")
    if not sentinels or not name or (db and not db.isdigit()):
        raise ConfigError(usage)
    return sentinels, name, int(db or 0), unquote(username) or None, unquote(password) or None


def embedded_redis_url(settings: Settings) -> str:
    """The embedded server `pact-relay serve` starts listens on a unix socket in the data dir."""
    return f"unix://{settings.data_dir / 'redis.sock'}"
