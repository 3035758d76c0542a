"""Startup checks for a relay of many hosts: one database, one Redis, and keys that read the fleet's secrets."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy import delete, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from relay.config import ConfigError
from relay.models import FleetHost, FleetRow, Secret, Webhook, utcnow
from relay.runtime import Runtime
from relay.security.secrets import DecryptionError

log = logging.getLogger(__name__)
KEY_CHECK = "pact-relay fleet key check"


class FleetMismatch(ConfigError):
    """This host does not belong with the database, Redis or keys it was given; the message names the setting."""


def check(runtime: Runtime, owned_redis: bool = False) -> str:
    """Refuse to start (FleetMismatch) unless this host's database, Redis and keys are the fleet's; its id.

    `owned_redis`: the Redis was started empty by this very process (serve's embedded one), so an empty Redis says
    nothing about where the other hosts are."""
    fleet_id, heartbeat = _database_row(runtime)
    _claim_redis(runtime, fleet_id, None if owned_redis else heartbeat)
    return fleet_id


def keep(runtime: Runtime, fleet_id: str) -> threading.Event:
    """In a running worker: refresh the database's heartbeat and claim the Redis again after it was emptied, every
    RELAY_FLEET_HEARTBEAT seconds, in a thread; set the returned event to stop."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(runtime.settings.fleet_heartbeat):
            try:
                _beat(runtime, fleet_id)
            except Exception as exc:  # the database or Redis away: the next beat tries again
                log.warning("fleet heartbeat failed: %s: %s", type(exc).__name__, exc)

    threading.Thread(target=beat, name="fleet-heartbeat", daemon=True).start()
    return stop


def host_id(runtime: Runtime) -> str:
    """This host: its name and data directory (two relays on one machine keep their own directories)."""
    return f"{socket.gethostname()}:{runtime.settings.data_dir}"[:255]


def _beat(runtime: Runtime, fleet_id: str) -> None:
    now, me = utcnow(), host_id(runtime)
    with runtime.sessions.begin() as session:
        session.execute(update(FleetRow).where(FleetRow.id == 1).values(heartbeat_at=now))
        if not session.execute(update(FleetHost).where(FleetHost.host == me).values(heartbeat_at=now)).rowcount:
            session.add(FleetHost(host=me, heartbeat_at=now))
        # Hosts replaced for good (a container's new name after each deploy) leave a row each: a day is enough.
        session.execute(delete(FleetHost).where(FleetHost.heartbeat_at < now - timedelta(days=1)))
    key = redis_key(runtime.settings.queue_name)
    if runtime.redis.set(key, fleet_id, nx=True):
        log.info("Redis was emptied: claimed it again for fleet %s", fleet_id)
    elif (owner := (runtime.redis.get(key) or b"").decode()) != fleet_id:
        log.error("this Redis now carries the work of another relay (database %s); this host's database is %s",
                  owner, fleet_id)


def redis_key(queue_name: str) -> str:
    return f"pact-relay:fleet:{queue_name}"


def _database_row(runtime: Runtime) -> tuple[str, object]:
    _require_schema(runtime)
    for _ in range(3):
        try:
            with runtime.sessions.begin() as session:
                row = session.scalars(select(FleetRow).where(FleetRow.id == 1).with_for_update()).first()
                if row is None:  # the first host of this database: its keys must read what is stored already
                    _can_read_stored(session, runtime)
                    row = FleetRow(id=1, key_check=runtime.vault.encrypt(KEY_CHECK),
                                   generated_keys=runtime.settings.generated_encryption_keys)
                    session.add(row)
                    session.flush()
                else:
                    _can_read_check(row, runtime)
                return row.fleet_id, row.heartbeat_at
        except IntegrityError:
            continue  # another host wrote the row at the same moment: check this host against that one
    raise ConfigError("RELAY_DATABASE_URL: could not read or write the fleet row")


def _require_schema(runtime: Runtime) -> None:
    tables = inspect(runtime.engine)
    if tables.has_table("fleet"):
        return
    where = make_url(runtime.settings.database_url).render_as_string(hide_password=True)
    if not tables.has_table("deliveries"):
        raise FleetMismatch(f"RELAY_DATABASE_URL: {where} holds no Pact Relay database; point this host at the "
                            "fleet's database (a new relay creates one with `pact-relay db upgrade`)")
    raise FleetMismatch(f"RELAY_DATABASE_URL: {where} is not migrated to this version; run `pact-relay db upgrade`")


def _can_read_stored(session, runtime: Runtime) -> None:
    stored = [(f"secret {name!r}", value) for name, value in
              session.execute(select(Secret.name, Secret.ciphertext).order_by(Secret.name).limit(1))]
    stored += [(f"the signing secret of webhook {uuid!r}", value) for uuid, value in session.execute(
        select(Webhook.uuid, Webhook.signing_secret).where(Webhook.signing_secret.is_not(None)).limit(1))]
    for what, value in stored:
        try:
            runtime.vault.decrypt(value)
        except DecryptionError:
            raise FleetMismatch(f"RELAY_ENCRYPTION_KEYS: no key on this host can read the stored {what}; "
                                "set the keys the fleet's secrets were encrypted with") from None


def _can_read_check(row: FleetRow, runtime: Runtime) -> None:
    settings = runtime.settings
    if settings.generated_encryption_keys and not row.generated_keys:
        raise FleetMismatch(f"RELAY_ENCRYPTION_KEYS is not set on this host (it generated a key in "
                            f"{settings.data_dir}) but the fleet uses real keys; set the fleet's keys here")
    try:
        runtime.vault.decrypt(row.key_check)
    except DecryptionError:
        if settings.generated_encryption_keys:
            raise FleetMismatch(f"RELAY_ENCRYPTION_KEYS is not set on this host and the key it generated in "
                                f"{settings.data_dir} cannot read the fleet's secrets; set the fleet's keys "
                                "here") from None
        raise FleetMismatch("RELAY_ENCRYPTION_KEYS: no key on this host can read the fleet's secrets (the "
                            "database's key check was encrypted with another key); set the fleet's keys "
                            "here") from None
    if row.generated_keys and not settings.generated_encryption_keys:
        row.generated_keys = False  # the generated key was made a real one: from now on it is required


def _other_beats(runtime: Runtime, since) -> dict[str, object]:
    """The heartbeats of the fleet's other hosts newer than `since`."""
    with runtime.sessions() as session:
        return dict(session.execute(select(FleetHost.host, FleetHost.heartbeat_at).where(
            FleetHost.host != host_id(runtime), FleetHost.heartbeat_at > since)).all())


def _claim_redis(runtime: Runtime, fleet_id: str, heartbeat) -> None:
    """The Redis carries one fleet's work: a host of another database is refused. An empty Redis is claimed, unless
    another host of the fleet is alive: on the same Redis it claims it again within a heartbeat; one whose heartbeat
    keeps advancing while this Redis stays empty uses another Redis. A fleet whose recent beats are this host's own
    (a restart after a crash) or stand still is dead, and its emptied Redis is claimed at once or after the wait."""
    key = redis_key(runtime.settings.queue_name)
    interval = runtime.settings.fleet_heartbeat
    owner = (runtime.redis.get(key) or b"").decode()
    recent = utcnow() - timedelta(seconds=3 * interval)
    others = _other_beats(runtime, recent) if not owner and heartbeat is not None and heartbeat > recent else {}
    if others:
        log.info("Redis holds no relay yet while %d other host(s) of the fleet beat recently: waiting for them to "
                 "claim it, or to see whether they still beat", len(others))
        deadline = time.monotonic() + 2 * interval
        alive = False
        while not owner and not alive and time.monotonic() < deadline:
            time.sleep(min(0.5, interval / 4))
            owner = (runtime.redis.get(key) or b"").decode()
            beats = _other_beats(runtime, recent)
            alive = any(at > others.get(host, recent) for host, at in beats.items())
        if alive and not owner:
            time.sleep(min(0.5, interval / 4))  # a host on this Redis writes the database first, then claims it
            owner = (runtime.redis.get(key) or b"").decode()
        if alive and not owner:
            raise FleetMismatch("RELAY_REDIS_URL: the fleet's other hosts, running on this database, use another "
                                "Redis (this one stays empty); point every host at the same Redis")
        if not owner:
            log.info("the fleet's other hosts stopped beating: they are gone, not on another Redis")
    if not owner and runtime.redis.set(key, fleet_id, nx=True):
        log.info("Redis had no relay on queue %r yet (new or emptied): claimed it for fleet %s",
                 runtime.settings.queue_name, fleet_id)
        _beat(runtime, fleet_id)
        return
    owner = owner or (runtime.redis.get(key) or b"").decode()
    if owner != fleet_id:
        raise FleetMismatch(f"RELAY_DATABASE_URL and RELAY_REDIS_URL belong to different relays: this Redis "
                            f"carries the work of the relay whose database is {owner}, this database is "
                            f"{fleet_id}; point every host at the same database and Redis")
    _beat(runtime, fleet_id)
