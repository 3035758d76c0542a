"""Settings: the one place that reads the environment, and the generated embedded-default keys."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

log = logging.getLogger(__name__)

DEFAULT_RETRY_SCHEDULE = (10, 60, 120, 300, 600, 1200)
TRUE = {"1", "true", "yes", "on"}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) or make an existing one of ours 0700: it holds the database, keys and logs."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)
    return path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    secret_key: str
    encryption_keys: tuple[str, ...]
    public_url: str = "http://localhost:8000"
    # RELAY_PUBLIC_URL was given: links use it, never the request's Host header (which a client chooses).
    public_url_set: bool = False
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    allowed_hosts: tuple[str, ...] = ()
    allow_private_networks: bool = False
    allowed_schemes: tuple[str, ...] = ("https",)
    allowed_methods: tuple[str, ...] = ("POST", "PUT", "PATCH", "GET", "DELETE")
    private_badges: bool = False
    lease_seconds: float = 60.0
    # Every worker looks for due work this often (retries, deferred and lost deliveries), one pass per interval
    # across the fleet; a fresh delivery gets sweep_grace to be queued by intake before the sweeper queues it.
    sweep_interval: float = 1.0
    sweep_grace: float = 2.0
    send_concurrency: int = 64
    target_concurrency: int = 8
    host_concurrency: int = 64
    # How long an admitted delivery may wait in a worker for a target or host slot before it is deferred.
    slot_wait: float = 10.0
    queue_name: str = "deliveries"
    max_body_bytes: int = 256 * 1024
    log_level: str = "INFO"
    log_format: str = "auto"  # auto: text when stderr is a terminal, JSON otherwise
    # Per token: at most rate_limit requests in each rate_window seconds (0 turns the limiter off).
    rate_limit: int = 6000
    rate_window: float = 60.0
    # Per source address: requests refused 401 in each rate_window before the rest get 429 unrecorded,
    # so a flood of bad tokens can neither fill the audit log nor keep the database busy guessing.
    auth_failure_limit: int = 120
    public_metrics: bool = False
    metrics_dir: Path | None = None
    # Slow clients: a request's headers and body must arrive within this many seconds.
    request_read_timeout: float = 30.0
    # Reverse proxies in front of the web process whose X-Forwarded-* headers are believed (0: none).
    trusted_proxies: int = 0
    # Consecutive failures (connection errors, timeouts, 5xx) that pause a target (the circuit breaker).
    breaker_failures: int = 5
    # The Pact Broker this relay serves (optional, read only); its credentials never show in a repr or a log.
    broker_url: str | None = None
    broker_token: str | None = field(default=None, repr=False)
    broker_username: str | None = None
    broker_password: str | None = field(default=None, repr=False)
    # Seconds the broker gets to answer one read (connecting gets at most 2, the whole answer twice this).
    broker_timeout: float = 5.0
    # True when RELAY_ENCRYPTION_KEYS was unset and the key came from the data directory (embedded default).
    generated_encryption_keys: bool = False
    # A worker's own Prometheus endpoint (RELAY_METRICS_PORT; unset: none, the web process serves /metrics).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # How often every worker proves to the database and Redis that it is alive (relay.ops.fleet).
    fleet_heartbeat: float = 15.0
    # Single sign-on (docs/security.md): (group, role) pairs in the order given, the role without a mapped group,
    # passwords off but for break-glass users, and how long an SSO session lasts before the IdP is asked again.
    sso_role_map: tuple[tuple[str, str], ...] = ()
    sso_default_role: str | None = None
    sso_only: bool = False
    sso_session_hours: float = 12.0
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_scopes: tuple[str, ...] = ("openid", "email", "profile")
    oidc_roles_claim: str = "groups"
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_base_url: str = "https://github.com"
    saml_idp_metadata_url: str | None = None
    saml_idp_metadata_file: str | None = None
    saml_roles_attribute: str = "groups"
    saml_allow_idp_initiated: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("RELAY_DATA_DIR") or "./relay-data").resolve()
        allow_private = _bool(env, "RELAY_ALLOW_PRIVATE_NETWORKS")
        schemes = _words(env, "RELAY_ALLOWED_SCHEMES") or (("http", "https") if allow_private else ("https",))
        values = dict(
            data_dir=data_dir,
            database_url=env.get("RELAY_DATABASE_URL") or f"sqlite:///{data_dir / 'relay.db'}",
            redis_url=env.get("RELAY_REDIS_URL") or None,
            secret_key=env.get("RELAY_SECRET_KEY") or "",
            encryption_keys=tuple(k.strip() for k in env.get("RELAY_ENCRYPTION_KEYS", "").split(",") if k.strip()),
            public_url=(env.get("RELAY_PUBLIC_URL") or "http://localhost:8000").rstrip("/"),
            retry_schedule=_schedule(env.get("RELAY_RETRY_SCHEDULE")),
            allowed_hosts=tuple(h.lower() for h in _words(env, "RELAY_ALLOWED_HOSTS")),
            allow_private_networks=allow_private,
            allowed_schemes=tuple(s.lower() for s in schemes),
            allowed_methods=tuple(m.upper() for m in _words(env, "RELAY_ALLOWED_METHODS"))
            or ("POST", "PUT", "PATCH", "GET", "DELETE"),
            private_badges=_bool(env, "RELAY_PRIVATE_BADGES"),
            lease_seconds=_number(env, "RELAY_LEASE_SECONDS", 60.0),
            sweep_interval=_number(env, "RELAY_SWEEP_INTERVAL", 1.0),
            sweep_grace=_number(env, "RELAY_SWEEP_GRACE", 2.0),
            send_concurrency=_whole(env, "RELAY_SEND_CONCURRENCY", 64),
            target_concurrency=_whole(env, "RELAY_TARGET_CONCURRENCY", 8),
            host_concurrency=_whole(env, "RELAY_HOST_CONCURRENCY", 64),
            queue_name=env.get("RELAY_QUEUE") or "deliveries",
            log_level=(env.get("RELAY_LOG_LEVEL") or "INFO").upper(),
            log_format=_choice(env, "RELAY_LOG_FORMAT", ("auto", "json", "text"), "auto"),
            rate_limit=_rate(env.get("RELAY_RATE_LIMIT"))[0],
            rate_window=_rate(env.get("RELAY_RATE_LIMIT"))[1],
            public_metrics=_bool(env, "RELAY_PUBLIC_METRICS"),
            # prometheus_client reads this variable itself; `pact-relay serve` sets it for its children.
            metrics_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"]) if env.get("PROMETHEUS_MULTIPROC_DIR") else None,
            request_read_timeout=_number(env, "RELAY_REQUEST_READ_TIMEOUT", 30.0),
            trusted_proxies=_count(env, "RELAY_TRUSTED_PROXIES"),
            breaker_failures=_failures(env.get("RELAY_BREAKER_FAILURES")),
            broker_url=_broker_url(env.get("RELAY_BROKER_URL")),
            broker_token=env.get("RELAY_BROKER_TOKEN") or None,
            broker_username=env.get("RELAY_BROKER_USERNAME") or None,
            broker_password=env.get("RELAY_BROKER_PASSWORD") or None,
            broker_timeout=_number(env, "RELAY_BROKER_TIMEOUT", 5.0),
            metrics_port=_port(env, "RELAY_METRICS_PORT"),
            metrics_host=(env.get("RELAY_METRICS_HOST") or "127.0.0.1").strip(),
            fleet_heartbeat=_number(env, "RELAY_FLEET_HEARTBEAT", 15.0),
        )
        values.update(_sso(env))
        values.update(overrides)
        values.setdefault("public_url_set", bool(env.get("RELAY_PUBLIC_URL")) or "public_url" in overrides)
        _check_database_url(values["database_url"])
        return cls(**values)

    def ensure_data_dir(self) -> Path:
        try:
            private_dir(self.data_dir)
        except OSError as exc:
            raise ConfigError(f"RELAY_DATA_DIR: cannot create {self.data_dir}: {exc.strerror or exc}") from None
        return self.data_dir

    def with_generated_keys(self) -> Settings:
        """Fill in missing keys from files in the data dir, creating them (mode 0600) on first use."""
        if not (self.secret_key and self.encryption_keys):
            self.ensure_data_dir()
        secret_key = self.secret_key or _key_file(self.data_dir / "secret.key", lambda: secrets.token_urlsafe(48),
                                                  "RELAY_SECRET_KEY")
        keys = self.encryption_keys or (_key_file(self.data_dir / "encryption.key",
                                                  lambda: Fernet.generate_key().decode(), "RELAY_ENCRYPTION_KEYS"),)
        for key in keys:
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ConfigError("RELAY_ENCRYPTION_KEYS: each key must be a url-safe base64 32-byte Fernet key "
                                  "(make one with `pact-relay keys generate`)") from None
        return _replace(self, secret_key=secret_key, encryption_keys=keys,
                        generated_encryption_keys=self.generated_encryption_keys or not self.encryption_keys)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def github_enabled(self) -> bool:
        return bool(self.github_client_id)

    @property
    def saml_enabled(self) -> bool:
        return bool(self.saml_idp_metadata_url or self.saml_idp_metadata_file)


def _replace(settings: Settings, **changes) -> Settings:
    return replace(settings, **changes)


def _check_database_url(url: str) -> None:
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise ConfigError("RELAY_DATABASE_URL: not a database URL; use sqlite:///path/relay.db or "
                          "postgresql://user@host/db") from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"RELAY_DATABASE_URL: {backend!r} is not supported; use SQLite or PostgreSQL")


def _key_file(path: Path, make, variable: str) -> str:
    if path.exists():
        return path.read_text().strip()
    value = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this relay made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    log.warning("%s is not set: generated one into %s; set a real one for production", variable, path)
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    return (env.get(name) or "").strip().lower() in TRUE


def _words(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple((env.get(name) or "").replace(",", " ").split())


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be positive")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, most: int = 10_000) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise ConfigError(f"{name}: {raw!r} must be a whole number from 1 to {most}")
    return int(raw)


def _count(env: Mapping[str, str], name: str) -> int:
    raw = (env.get(name) or "0").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 10:
        raise ConfigError(f"{name}: {raw!r} must be a whole number from 0 to 10 (the proxies in front of the relay)")
    return int(raw)


def _failures(raw: str | None) -> int:
    raw = (raw or "5").strip()
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        raise ConfigError(f"RELAY_BREAKER_FAILURES: {raw[:40]!r} must be a whole number from 1 to 1000")
    return int(raw)


def _port(env: Mapping[str, str], name: str) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name}: {raw!r} must be a port number from 1 to 65535")
    return int(raw)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} must be one of {', '.join(choices)}")
    return value


def _rate(raw: str | None) -> tuple[int, float]:
    """RELAY_RATE_LIMIT as `requests/seconds` (`6000/60`), `requests` per minute, or 0 for no limit."""
    if not raw:
        return 6000, 60.0
    count, _, window = raw.strip().partition("/")
    try:
        values = int(count), float(window or 60)
    except ValueError:
        raise ConfigError(f"RELAY_RATE_LIMIT: {raw!r} must look like 6000/60 (requests per seconds)") from None
    if values[0] < 0 or values[1] <= 0:
        raise ConfigError("RELAY_RATE_LIMIT: requests must be 0 or more and seconds positive")
    return values


def _broker_url(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    url = raw.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("RELAY_BROKER_URL: must be the broker's http(s) base URL, like https://broker.example.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("RELAY_BROKER_URL: give the base URL alone; credentials go in RELAY_BROKER_TOKEN or "
                          "RELAY_BROKER_USERNAME and RELAY_BROKER_PASSWORD")
    return url


def _schedule(raw: str | None) -> tuple[float, ...]:
    if not raw:
        return DEFAULT_RETRY_SCHEDULE
    try:
        values = tuple(float(v) for v in raw.replace(",", " ").split())
    except ValueError:
        raise ConfigError(f"RELAY_RETRY_SCHEDULE: {raw!r} must be seconds separated by spaces") from None
    if any(v < 0 for v in values):
        raise ConfigError("RELAY_RETRY_SCHEDULE: seconds must not be negative")
    return values


SSO_ROLES = ("admin", "write", "read")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def _sso(env: Mapping[str, str]) -> dict:
    """The single sign-on settings, each checked on its own so a mistake is named before the relay starts."""
    values: dict = dict(
        sso_role_map=_role_map(env.get("RELAY_SSO_ROLE_MAP")),
        sso_default_role=_sso_role(env, "RELAY_SSO_DEFAULT_ROLE"),
        sso_only=_bool(env, "RELAY_SSO_ONLY"),
        sso_session_hours=_hours(env.get("RELAY_SSO_SESSION_HOURS")),
    )
    issuer = (env.get("RELAY_OIDC_ISSUER") or "").strip()
    if issuer:
        values.update(
            oidc_issuer=_issuer(issuer),
            oidc_client_id=_required(env, "RELAY_OIDC_CLIENT_ID", "RELAY_OIDC_ISSUER"),
            oidc_client_secret=_required(env, "RELAY_OIDC_CLIENT_SECRET", "RELAY_OIDC_ISSUER"),
            oidc_scopes=_scopes(env.get("RELAY_OIDC_SCOPES")),
            oidc_roles_claim=(env.get("RELAY_OIDC_ROLES_CLAIM") or "groups").strip(),
        )
    elif env.get("RELAY_OIDC_CLIENT_ID"):
        raise ConfigError("RELAY_OIDC_ISSUER: required with RELAY_OIDC_CLIENT_ID (the provider's issuer URL)")
    github = (env.get("RELAY_GITHUB_CLIENT_ID") or "").strip()
    if github:
        values.update(
            github_client_id=github,
            github_client_secret=_required(env, "RELAY_GITHUB_CLIENT_SECRET", "RELAY_GITHUB_CLIENT_ID"),
            github_base_url=_github_url(env.get("RELAY_GITHUB_BASE_URL")),
        )
    values.update(_saml(env))
    if values["sso_only"] and not (issuer or github or values["saml_idp_metadata_url"]
                                   or values["saml_idp_metadata_file"]):
        raise ConfigError("RELAY_SSO_ONLY: needs a way in; set RELAY_OIDC_ISSUER, RELAY_GITHUB_CLIENT_ID or "
                          "RELAY_SAML_IDP_METADATA_URL")
    return values


def _saml(env: Mapping[str, str]) -> dict:
    url = (env.get("RELAY_SAML_IDP_METADATA_URL") or "").strip()
    path = (env.get("RELAY_SAML_IDP_METADATA_FILE") or "").strip()
    if url and path:
        raise ConfigError("RELAY_SAML_IDP_METADATA_URL: set it or RELAY_SAML_IDP_METADATA_FILE, not both")
    if url:
        _metadata_url(url)
    if path and not os.access(path, os.R_OK):
        raise ConfigError(f"RELAY_SAML_IDP_METADATA_FILE: {path[:200]!r} is not a readable file")
    return dict(
        saml_idp_metadata_url=url or None,
        saml_idp_metadata_file=path or None,
        saml_roles_attribute=(env.get("RELAY_SAML_ROLES_ATTRIBUTE") or "groups").strip(),
        saml_allow_idp_initiated=_bool(env, "RELAY_SAML_ALLOW_IDP_INITIATED"),
    )


def _sso_role(env: Mapping[str, str], name: str) -> str | None:
    role = (env.get(name) or "").strip().lower()
    if role and role not in SSO_ROLES:
        raise ConfigError(f"{name}: {role[:40]!r} must be one of {', '.join(SSO_ROLES)}")
    return role or None


def _role_map(raw: str | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        group, sep, role = item.rpartition("=")
        group, role = group.strip(), role.strip().lower()
        if not sep or not group or role not in SSO_ROLES:
            raise ConfigError(f"RELAY_SSO_ROLE_MAP: {item.strip()[:80]!r} must be group=role with role one of "
                              f"{', '.join(SSO_ROLES)} (like pact-admins=admin,acme/devs=write)")
        pairs.append((group, role))
    return tuple(pairs)


def _hours(raw: str | None) -> float:
    try:
        hours = float(raw) if raw and raw.strip() else 12.0
    except ValueError:
        hours = -1.0
    if not 0 < hours <= 24 * 30:
        raise ConfigError(f"RELAY_SSO_SESSION_HOURS: {str(raw)[:40]!r} must be hours from above 0 to 720")
    return hours


def _required(env: Mapping[str, str], name: str, because: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise ConfigError(f"{name}: required with {because}")
    return value


def _scopes(raw: str | None) -> tuple[str, ...]:
    scopes = tuple((raw or "openid email profile").replace(",", " ").split())
    if "openid" not in scopes:
        raise ConfigError("RELAY_OIDC_SCOPES: must include openid")
    return scopes


def _base_url(raw: str, name: str, example: str) -> str:
    url = raw.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
            or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"{name}: must be an https URL alone, like {example}")
    # Plain http would let anyone on the path forge the provider's answers: only a provider on this machine.
    if parts.scheme == "http" and parts.hostname.lower() not in LOOPBACK_HOSTS:
        raise ConfigError(f"{name}: http:// is accepted for a loopback address only; use https://")
    return url


def _issuer(raw: str) -> str:
    _base_url(raw, "RELAY_OIDC_ISSUER", "https://accounts.google.com")
    # Kept as given, trailing slash and all (Auth0 has one): the ID token's `iss` must equal it exactly.
    return raw.strip()


def _github_url(raw: str | None) -> str:
    return _base_url(raw, "RELAY_GITHUB_BASE_URL", "https://github.example.com") if raw and raw.strip() \
        else "https://github.com"


def _metadata_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        parts = None
    # A query is allowed: Entra ID's federation metadata URL carries the app id in one.
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
            or parts.password or parts.fragment:
        raise ConfigError("RELAY_SAML_IDP_METADATA_URL: must be an https URL, like https://idp.example.com/metadata")
    if parts.scheme == "http" and parts.hostname.lower() not in LOOPBACK_HOSTS:
        raise ConfigError("RELAY_SAML_IDP_METADATA_URL: http:// is accepted for a loopback address only; use https://")
