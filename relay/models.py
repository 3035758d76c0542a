"""Database tables: tokens, users, secrets, webhooks, events, deliveries, attempts, audit log, pair states,
verification details, fleet."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class User(Base):
    """A person who signs in to the web UI; the password is stored as an argon2 hash only."""

    __tablename__ = "users"
    __table_args__ = (Index("ix_users_sso", "sso_provider", "sso_subject", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    # Bumped on logout and password change: every session cookie carrying an older value stops working.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    # Where the person comes from: None for a local password user, else the identity provider ("oidc", "github")
    # and its stable subject there (OIDC issuer + " " + sub, a GitHub user id); never the e-mail, which can change.
    sso_provider: Mapped[str | None] = mapped_column(String(20))
    sso_subject: Mapped[str | None] = mapped_column(String(600))
    # May still sign in with a password when RELAY_SSO_ONLY is on (`pact-relay users create --break-glass`).
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntry(Base):
    """One append-only audit record; `hash` chains it to the entry before it."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_timestamp", "timestamp"), Index("ix_audit_log_type", "type"),
                      Index("ix_audit_log_actor", "actor_name"))

    # The position in the chain, handed out under the audit_head lock; never autoincremented.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    timestamp: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(100))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_name: Mapped[str] = mapped_column(String(254))
    method: Mapped[str | None] = mapped_column(String(10))
    path: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(Text)
    # Canonical JSON text, hashed exactly as stored (a JSON column could reorder or reformat it).
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single lock row appends serialize on; it also remembers the newest entry of the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class Secret(Base):
    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Webhook(Base):
    __tablename__ = "webhooks"

    uuid: Mapped[str] = mapped_column(String(100), primary_key=True, default=new_id)
    description: Mapped[str] = mapped_column(Text, default="")
    consumer_name: Mapped[str | None] = mapped_column(String(500))
    consumer_label: Mapped[str | None] = mapped_column(String(500))
    provider_name: Mapped[str | None] = mapped_column(String(500))
    provider_label: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    kind: Mapped[str] = mapped_column(String(50))
    # The integration's config; secret fields hold ciphertext (see relay.security.secrets.seal_config).
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    signing_secret: Mapped[str | None] = mapped_column(Text)
    connect_timeout: Mapped[float | None] = mapped_column(Float)
    read_timeout: Mapped[float | None] = mapped_column(Float)
    # Sends in flight to this webhook at once, fleet-wide; None: RELAY_TARGET_CONCURRENCY.
    max_in_flight: Mapped[int | None] = mapped_column(Integer)
    rate_limit: Mapped[float | None] = mapped_column(Float)  # sends per second, fleet-wide; None: no limit
    debounce: Mapped[int | None] = mapped_column(Integer)  # seconds; CI triggers only
    # PactFlow's team of the webhook, as broker clients send it (--team-uuid); kept and shown back, not used.
    team_uuid: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_received_at", "received_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    consumer: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_webhook", "webhook_uuid", "created_at"),
        Index("ix_deliveries_created", "created_at"),
        Index("ix_deliveries_event", "event_id"),
        Index("ix_deliveries_replay_of", "replay_of"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # No foreign key: a delivery's history outlives the webhook it was made for.
    webhook_uuid: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts_made: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Why it was skipped or superseded, or why it is waiting (target paused, rate limited, debounced).
    reason: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[str | None] = mapped_column(String(36))
    replay_of: Mapped[str | None] = mapped_column(String(36))  # the delivery this one replays
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship(lazy="joined")
    attempts: Mapped[list[Attempt]] = relationship(order_by="Attempt.number", lazy="selectin",
                                                     cascade="all, delete-orphan")


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_delivery", "delivery_id", "number", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"))
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class TargetState(Base):
    """The circuit breaker of one webhook: consecutive failures and, when paused, the cool-down and probe."""

    __tablename__ = "target_states"

    webhook_uuid: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    paused_since: Mapped[datetime | None]
    next_probe_at: Mapped[datetime | None]
    cooldown: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str | None] = mapped_column(Text)
    probe_until: Mapped[datetime | None]  # the lease of the one probe in flight
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PairStateRow(Base):
    """One relay.pairs.state.PairState: '' tags mean any; see relay.pairs.state.PairKey."""

    __tablename__ = "pair_states"
    __table_args__ = (
        UniqueConstraint("consumer", "provider", "consumer_tag", "provider_tag", name="uq_pair_states_key"),
        Index("ix_pair_states_provider", "provider", "consumer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(255))
    consumer_tag: Mapped[str] = mapped_column(String(255), default="")
    provider_tag: Mapped[str] = mapped_column(String(255), default="")
    pact_sha: Mapped[str] = mapped_column(Text, default="")
    pact_url: Mapped[str] = mapped_column(Text, default="")
    pact_at: Mapped[datetime | None]
    consumer_version: Mapped[str] = mapped_column(Text, default="")
    consumer_branch: Mapped[str] = mapped_column(Text, default="")
    verification_success: Mapped[bool | None] = mapped_column(Boolean)
    verification_sha: Mapped[str] = mapped_column(Text, default="")
    verification_number: Mapped[int | None] = mapped_column(BigInteger)
    verification_url: Mapped[str] = mapped_column(Text, default="")
    verification_at: Mapped[datetime | None]
    verified_consumer_version: Mapped[str] = mapped_column(Text, default="")
    provider_version: Mapped[str] = mapped_column(Text, default="")
    provider_branch: Mapped[str] = mapped_column(Text, default="")
    last_event_at: Mapped[datetime | None]
    last_event_name: Mapped[str] = mapped_column(String(100), default="")
    # The pair's newest delivery (main row only), so the dashboard never scans the deliveries table.
    last_delivery_id: Mapped[str | None] = mapped_column(String(36))


class VerificationDetailRow(Base):
    """Why a verification failed, as read from the Pact Broker: one row per verification result URL, shared by
    every pair-state row (main, tag, matrix) that points at it (relay.pairs.failures)."""

    __tablename__ = "verification_details"

    # sha256 of the result URL: URLs are unbounded text, and PostgreSQL's b-tree refuses long keys.
    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # found | unavailable
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class FleetRow(Base):
    """The one row that makes every host of a relay prove it shares this database and its keys (relay.ops.fleet)."""

    __tablename__ = "fleet"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fleet_id: Mapped[str] = mapped_column(String(36), default=new_id)
    # A known text encrypted with the keys of the host that wrote it: a host whose keys cannot read it
    # cannot read the fleet's secrets either.
    key_check: Mapped[str] = mapped_column(Text)
    generated_keys: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Refreshed by every running worker (relay.ops.fleet.keep): a host that finds the Redis empty while this is
    # recent waits for those hosts to claim it again, and is refused if they use another Redis.
    heartbeat_at: Mapped[datetime | None]


class FleetHost(Base):
    """One host's own heartbeat (relay.ops.fleet): a host restarted after a crash finds only its own recent beat
    and knows the fleet is dead, while another host's beat that keeps advancing says the fleet is alive."""

    __tablename__ = "fleet_hosts"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    heartbeat_at: Mapped[datetime]
