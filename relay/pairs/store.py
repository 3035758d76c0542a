"""Stored pair states: the intake hook that applies each event to its rows, and the reads behind badges."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, bindparam, or_, select, tuple_, update
from sqlalchemy.orm import Session

from relay.driversql import Sql, Tx
from relay.models import PairStateRow
from relay.pairs.state import PairKey, PairState, apply, combine, keys_for, new_state

log = logging.getLogger(__name__)

FIELDS = tuple(f.name for f in fields(PairState))
KEY_COLUMNS = ("consumer", "provider", "consumer_tag", "provider_tag")
STATE_COLUMNS = tuple(name for name in FIELDS if name not in KEY_COLUMNS)
MAX_NAME = 255  # the width of the key columns
# PostgreSQL refuses b-tree index entries above about 2700 bytes; four names of 255 characters can exceed that.
MAX_KEY_BYTES = 2000
# Verification events store one row per consumer tag x provider tag; a body of thousands of tags must not
# become millions of rows.
MAX_TAGS = 10
INT64 = 2**63 - 1
NAMES = ("consumerName", "providerName")


def pacticipants(session: Session) -> set[str]:
    """Every consumer and provider name the relay has received an event for."""
    rows = session.execute(select(PairStateRow.consumer, PairStateRow.provider).distinct())
    return {name for pair in rows for name in pair}


def storable(key: PairKey) -> bool:
    """Whether a key fits the table: bounded, encodable, no NUL (which PostgreSQL text refuses)."""
    try:
        size = sum(len(part.encode("utf-8")) for part in key)
    except UnicodeEncodeError:
        return False
    return size <= MAX_KEY_BYTES and all(len(part) <= MAX_NAME and "\x00" not in part for part in key)


def _clean(value: str) -> str:
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _bounded(variables: Mapping[str, str]) -> dict[str, str]:
    """The event's variables made storable: clean text, at most MAX_TAGS fitting tags per side."""
    # Names stay as sent: a name that cannot be stored gets no state rather than another pair's.
    result = {k: _clean(v) if isinstance(v, str) and k not in NAMES else v for k, v in variables.items()}
    for field in ("consumerVersionTags", "providerVersionTags"):
        tags = [t.strip() for t in result.get(field, "").split(",")]
        result[field] = ", ".join([t for t in tags if t and len(t) <= MAX_NAME][:MAX_TAGS])
    for field in ("consumerVersionBranch", "providerVersionBranch"):
        if len(result.get(field, "")) > MAX_NAME:
            result[field] = ""
    return result


def _values(state: PairState, names: tuple[str, ...] = FIELDS) -> dict:
    # Not dataclasses.asdict: it deep-copies every value, and this runs for every row of every event.
    values = {name: getattr(state, name) for name in names}
    if values["verification_number"] is not None and not 0 <= values["verification_number"] <= INT64:
        values["verification_number"] = None
    return values


def to_state(row: PairStateRow) -> PairState:
    return PairState(**{name: getattr(row, name) for name in FIELDS})


_TABLE = PairStateRow.__table__
_C = _TABLE.c
_STATE_TYPES = {name: _C[name] for name in FIELDS}
_NOTE_DELIVERY = (update(_TABLE)
                  .where(_C.consumer == bindparam("of_consumer"), _C.provider == bindparam("of_provider"),
                         _C.consumer_tag == "", _C.provider_tag == "")
                  .values(last_delivery_id=bindparam("delivery_id")))
# Intake runs these on the driver's connection (relay.driversql). Rows are locked in tag order, so the main row
# ('' tags) first; the statements depend on how many rows an event touches, so they are made (once) per count.
_UPDATE_ROW = Sql(f"UPDATE pair_states SET {', '.join(f'{n} = :{n}' for n in STATE_COLUMNS)}, "
                  "last_delivery_id = coalesce(:delivery_id, last_delivery_id) WHERE id = :row_id",
                  binds=_STATE_TYPES)


class StoredEvent(Protocol):
    """What record() reads of an event the intake is storing."""

    id: str
    variables: Mapping[str, str]
    received_at: datetime


@functools.cache
def _lock_rows(count: int, postgresql: bool) -> Sql:
    tags = ", ".join(f"(:ct{i}, :pt{i})" for i in range(count))
    return Sql(f"SELECT id, {', '.join(FIELDS)} FROM pair_states WHERE consumer = :consumer AND provider = :provider "
               f"AND (consumer_tag, provider_tag) IN ({tags}) ORDER BY consumer_tag, provider_tag"
               + (" FOR UPDATE" if postgresql else ""), results=(None, *_STATE_TYPES.values()))


@functools.cache
def _insert_rows(count: int) -> Sql:
    columns = (*FIELDS, "last_delivery_id")
    values = ", ".join("(" + ", ".join(f":{c}_{i}" for c in columns) + ")" for i in range(count))
    # WHERE 1 = 0 updates nothing but still locks a conflicting row, waiting for its holder: see record().
    return Sql(f"INSERT INTO pair_states ({', '.join(columns)}) VALUES {values} "
               f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET id = pair_states.id WHERE 1 = 0 "
               f"RETURNING {', '.join(KEY_COLUMNS)}",
               binds={f"{name}_{i}": column for i in range(count) for name, column in _STATE_TYPES.items()})


def _locked(tx: Tx, keys: list[PairKey]) -> dict[PairKey, tuple[int, PairState]]:
    params = {"consumer": keys[0].consumer, "provider": keys[0].provider}
    for i, key in enumerate(keys):
        params[f"ct{i}"], params[f"pt{i}"] = key.consumer_tag, key.provider_tag
    rows = tx.rows(_lock_rows(len(keys), tx.postgresql), params)
    return {PairKey(*row[1:5]): (row[0], PairState(*row[1:])) for row in rows}


def record(tx: Tx, event: StoredEvent, delivery_id: str | None = None) -> None:
    """Intake hook: apply the event to each of its rows, inside the intake transaction; note its delivery.

    The pair's main row (no tags) is its lock: every intake takes it before any other row of the pair, so two
    intakes for one pair queue instead of deadlocking or overwriting each other. Usually every row exists: one
    locking SELECT (main row first) and one executemany UPDATE of the changed rows. Missing rows are inserted
    already applied, main row first. A row that another intake committed after our SELECT began conflicts; the
    insert then locks it (waiting, for the main row, like any other intake) and it is read and applied like the
    rest. With DO NOTHING instead, such an insert would add tag rows without holding the main row: a deadlock.
    """
    variables = _bounded(event.variables)
    keys = keys_for(variables)
    if keys and not storable(keys[0]):
        log.warning("event %s: consumer or provider name too long to keep badge state for", event.id)
        return
    keys = sorted({k for k in keys if storable(k)})
    if not keys:
        return
    main, at = keys[0], event.received_at
    rows = _locked(tx, keys)
    missing = [k for k in keys if k not in rows]
    if missing:
        params = {}
        for i, key in enumerate(missing):
            values = _values(apply(new_state(key), variables, at))
            values["last_delivery_id"] = delivery_id if key == main else None
            params.update({f"{name}_{i}": value for name, value in values.items()})
        inserted = {PairKey(*row) for row in tx.rows(_insert_rows(len(missing)), params)}
        raced = [k for k in missing if k not in inserted]
        if raced:
            rows.update(_locked(tx, raced))
    changed = []
    for key, (row_id, old) in rows.items():
        new = apply(old, variables, at)
        noted = delivery_id if key == main else None
        if new is not old or noted:
            changed.append({"row_id": row_id, "delivery_id": noted, **_values(new, STATE_COLUMNS)})
    if changed:
        tx.run_many(_UPDATE_ROW, changed)


def note_delivery(session: Session, consumer: str, provider: str, delivery_id: str) -> None:
    """Make this the pair's newest delivery (a pair that has no stored state is left alone)."""
    session.execute(_NOTE_DELIVERY, {"of_consumer": consumer, "of_provider": provider, "delivery_id": delivery_id})


# One statement for every badge kind: the content row (provider_tag '') and, for a matrix badge, its matrix row.
# Built once: badges are the hottest read, and building a select costs more than running it.
_BADGE_ROWS = select(*_TABLE.c[FIELDS]).where(
    _TABLE.c.consumer == bindparam("consumer"), _TABLE.c.provider == bindparam("provider"),
    _TABLE.c.consumer_tag == bindparam("consumer_tag"),
    or_(_TABLE.c.provider_tag == "", _TABLE.c.provider_tag == bindparam("provider_tag")))


def badge_state(bind: Session | Connection, content_key: PairKey,
                matrix_key: PairKey | None = None) -> PairState | None:
    """The state a badge shows: a content row, or for a matrix badge its content row judged by the matrix row."""
    if not storable(matrix_key or content_key):
        return None
    if matrix_key is not None and (not matrix_key.provider_tag or matrix_key[:3] != content_key[:3]):
        return None
    params = {"consumer": content_key.consumer, "provider": content_key.provider,
              "consumer_tag": content_key.consumer_tag, "provider_tag": matrix_key.provider_tag if matrix_key else ""}
    states = {s.provider_tag: s for s in (PairState(**row._mapping) for row in bind.execute(_BADGE_ROWS, params))}
    if matrix_key is None:
        return states.get("")
    if matrix_key.provider_tag not in states:
        return None
    return combine(states.get("") or new_state(content_key), states[matrix_key.provider_tag])


def pairs(session: Session, consumer: str | None = None, provider: str | None = None,
          limit: int = 100) -> list[list[PairState]]:
    """Every pair's rows (its main row first), pairs ordered by consumer then provider."""
    c = PairStateRow
    main = select(c.consumer, c.provider).where(c.consumer_tag == "", c.provider_tag == "")
    if consumer is not None:
        main = main.where(c.consumer == consumer)
    if provider is not None:
        main = main.where(c.provider == provider)
    names = [tuple(r) for r in session.execute(main.order_by(c.consumer, c.provider).limit(limit))]
    if not names:
        return []
    grouped: dict[tuple[str, str], list[PairState]] = {n: [] for n in names}
    rows = session.scalars(select(c).where(tuple_(c.consumer, c.provider).in_(names))
                           .order_by(c.consumer_tag, c.provider_tag))
    for row in rows:
        grouped[(row.consumer, row.provider)].append(to_state(row))
    return list(grouped.values())
