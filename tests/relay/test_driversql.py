"""SQL on the driver's connection: the same values as the ORM, SQLAlchemy's errors, one retry after a dropped
connection and none after any other failure."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import exc, select

from relay.config import Settings
from relay.db import make_engine
from relay.driversql import Driver, Sql, Tx
from relay.models import Event, PairStateRow
from tests.conftest import PG_ADMIN_URL, TEST_KEYS, free_port, sample_event

E, P = Event.__table__.c, PairStateRow.__table__.c
INSERT = Sql("INSERT INTO events (id, name, consumer, provider, variables, received_at) "
             "VALUES (:id, :name, :consumer, :provider, :variables, :at)",
             binds={"variables": E.variables, "at": E.received_at})
READ = Sql("SELECT variables, received_at FROM events WHERE id = :id", results=(E.variables, E.received_at))
AT = datetime(2026, 12, 1, 5, 30, 0, 123456, tzinfo=UTC)
VARIABLES = {"eventName": "contract_published", "consumerName": "Zoë ünïcode ✓", "providerName": "P",
             "pactUrl": "https://broker/pacts/x?y=1&z=%2e%2e"}


def insert(tx: Tx, event_id: str) -> None:
    tx.run(INSERT, {"id": event_id, "name": "contract_published", "consumer": "C", "provider": "P",
                    "variables": VARIABLES, "at": AT})


def test_values_written_and_read_are_the_orm_s(runtime):
    runtime.driver.run(lambda tx: insert(tx, "e1"))
    with runtime.sessions() as session:
        event = session.get(Event, "e1")
    assert event.variables == VARIABLES and event.received_at == AT
    assert runtime.driver.run(lambda tx: tx.rows(READ, {"id": "e1"}), write=False) == [(VARIABLES, AT)]


def test_booleans_and_nulls_convert_both_ways(runtime):
    flag = Sql("SELECT verification_success, pact_at FROM pair_states WHERE consumer = :c",
               results=(P.verification_success, P.pact_at))
    write = Sql("INSERT INTO pair_states (consumer, provider, consumer_tag, provider_tag, pact_sha, pact_url, "
                "consumer_version, consumer_branch, verification_success, verification_sha, verification_url, "
                "verified_consumer_version, provider_version, provider_branch, last_event_name) "
                "VALUES (:c, 'P', '', '', '', '', '', '', :ok, '', '', '', '', '', '')",
                binds={"ok": P.verification_success})
    runtime.driver.run(lambda tx: (tx.run(write, {"c": "yes", "ok": True}), tx.run(write, {"c": "no", "ok": False}),
                                   tx.run(write, {"c": "unknown", "ok": None})))
    got = {c: runtime.driver.run(lambda tx, c=c: tx.rows(flag, {"c": c}), write=False)
           for c in ("yes", "no", "unknown")}
    assert got == {"yes": [(True, None)], "no": [(False, None)], "unknown": [(None, None)]}


def test_a_failure_is_sqlalchemy_s_error_rolls_back_and_is_not_retried(runtime):
    runs = []

    def twice(tx: Tx) -> None:
        runs.append(1)
        insert(tx, "dup-a")
        insert(tx, "dup-a")

    with pytest.raises(exc.IntegrityError):
        runtime.driver.run(twice)
    assert len(runs) == 1
    with runtime.sessions() as session:
        assert session.scalars(select(Event.id)).all() == []


def _terminate_others(runtime) -> int:
    """What a PostgreSQL restart does to the relay's pooled connections: every backend of its database ends."""
    database = runtime.engine.url.database
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        return len(admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchall())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dropped_connection_is_retried_once_on_a_fresh_one(runtime, api):
    runtime.driver.run(lambda tx: insert(tx, "warm"))  # a pooled connection to be dropped
    assert _terminate_others(runtime) >= 1
    runs = []

    def work(tx: Tx) -> None:
        runs.append(1)
        insert(tx, "after-restart")

    runtime.driver.run(work)
    assert len(runs) == 2  # the first run failed on the dead connection, the second committed
    with runtime.sessions() as session:
        assert session.get(Event, "after-restart") is not None

    # Intake and token checks go through it: the first event after a restart is accepted, not refused.
    assert _terminate_others(runtime) >= 1
    response = api.post("/events", json=sample_event("contract_published"))
    assert response.status_code == 202, response.json


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_second_drop_in_a_row_is_the_database_unavailable(runtime):
    def dropped_every_time(tx: Tx) -> None:
        _terminate_others(runtime)
        insert(tx, "never")

    with pytest.raises(exc.OperationalError) as raised:
        runtime.driver.run(dropped_every_time)
    assert raised.value.connection_invalidated
    with runtime.sessions() as session:
        assert session.get(Event, "never") is None


def test_a_database_that_cannot_be_reached_is_sqlalchemy_s_operational_error(tmp_path):
    settings = Settings.from_env({}, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
                                 secret_key="x", encryption_keys=TEST_KEYS)
    driver = Driver(make_engine(settings))
    for write in (True, False):  # the API answers this one 503 with Retry-After
        with pytest.raises(exc.OperationalError):
            driver.run(lambda tx: tx.rows(READ, {"id": "x"}), write=write)
