"""Startup checks for a relay of many hosts: one database, one Redis, and keys that read the fleet's secrets."""

from __future__ import annotations

import logging

from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from relay.config import ConfigError
from relay.models import FleetRow, Secret, Webhook
from relay.runtime import Runtime
from relay.security.secrets import DecryptionError

log = logging.getLogger(__name__)
KEY_CHECK = "pact-relay fleet key check"


class FleetMismatch(ConfigError):
    """This host does not belong with the database, Redis or keys it was given; the message names the setting."""


def check(runtime: Runtime) -> str:
    """Refuse to start (FleetMismatch) unless this host's database, Redis and keys are the fleet's; its id."""
    fleet_id = _database_row(runtime)
    _claim_redis(runtime, fleet_id)
    return fleet_id


def redis_key(queue_name: str) -> str:
    return f"pact-relay:fleet:{queue_name}"


def _database_row(runtime: Runtime) -> str:
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
                return row.fleet_id
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


def _claim_redis(runtime: Runtime, fleet_id: str) -> None:
    """The Redis carries one fleet's work: the first host claims it, a host of another database is refused."""
    key = redis_key(runtime.settings.queue_name)
    if runtime.redis.set(key, fleet_id, nx=True):
        log.info("Redis had no relay on queue %r yet (new or emptied): claimed it for fleet %s",
                 runtime.settings.queue_name, fleet_id)
        return
    owner = (runtime.redis.get(key) or b"").decode()
    if owner and owner != fleet_id:
        raise FleetMismatch(f"RELAY_DATABASE_URL and RELAY_REDIS_URL belong to different relays: this Redis "
                            f"carries the work of the relay whose database is {owner}, this database is "
                            f"{fleet_id}; point every host at the same database and Redis")
    if not owner:
        runtime.redis.set(key, fleet_id)
