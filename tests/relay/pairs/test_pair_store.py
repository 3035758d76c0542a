"""Stored pair states: the intake hook under concurrency, storage bounds, and the migration."""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from relay.config import Settings
from relay.db import MIGRATIONS, make_engine
from relay.errors import PayloadError
from relay.intake import events
from relay.intake.groupcommit import GroupCommit
from relay.models import Base, PairStateRow, utcnow
from relay.pairs import store
from relay.pairs.state import PairKey, apply, keys_for, new_state, status
from tests.conftest import PG_ADMIN_URL, SAMPLE_SHA, TEST_KEYS, pact_event

C, P = "Matching Service", "Animal Profile Service"


def rows(runtime) -> dict[PairKey, PairStateRow]:
    with runtime.sessions() as session:
        return {PairKey(r.consumer, r.provider, r.consumer_tag, r.provider_tag): r
                for r in session.scalars(select(PairStateRow))}


def receive(runtime, variables, key=None, now=None):
    # Through the runtime's group commit, as the API does: concurrent events here share transactions.
    return events.receive(runtime.driver, json.dumps(variables).encode(), key, now=now, on_store=[store.record],
                          group=runtime.cache(GroupCommit))


def test_an_event_writes_each_of_its_rows(runtime):
    variables = pact_event("provider_verification_succeeded", n=3)
    receive(runtime, variables)
    stored = rows(runtime)
    assert set(stored) == set(keys_for(variables))
    main = stored[PairKey(C, P)]
    assert main.verification_success is True and main.verification_number == 3
    assert main.verification_sha == SAMPLE_SHA and main.provider_version == "1.0.0"
    assert main.last_event_name == "provider_verification_succeeded" and main.last_event_at.tzinfo is not None


def test_only_changed_rows_are_written(runtime):
    t0 = utcnow()
    receive(runtime, pact_event("contract_published", consumerVersionTags="prod"), now=t0)
    receive(runtime, pact_event("provider_verification_succeeded", n=1), now=t0 + timedelta(seconds=1))
    before = rows(runtime)
    # An older result for the same content arrives late: only last_event_* could move, and it is older too.
    receive(runtime, pact_event("provider_verification_failed", n=0), key="late", now=t0 + timedelta(seconds=-5))
    after = rows(runtime)
    assert {k: store.to_state(v) for k, v in after.items()} == {k: store.to_state(v) for k, v in before.items()}


def run_at_once(count: int, target) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            target(n)
        except BaseException as exc:  # noqa: B036 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


@pytest.mark.parametrize("existing", [False, True], ids=["new-pair", "known-pair"])
def test_concurrent_events_for_one_pair_lose_nothing(runtime, existing):
    """Threads post verification results of one pact at once; the highest-numbered one must win."""
    if existing:
        receive(runtime, pact_event("contract_published"))
    count, rounds = 10, 4
    for r in range(rounds):
        def post(n: int, r=r) -> None:
            number = r * count + n + 1
            name = "provider_verification_failed" if number % 3 == 0 else "provider_verification_succeeded"
            receive(runtime, pact_event(name, n=number))

        run_at_once(count, post)
        stored = rows(runtime)
        assert set(stored) == set(keys_for(pact_event("provider_verification_succeeded")))
        newest = (r + 1) * count
        for row in stored.values():
            assert row.verification_number == newest and row.verification_success is (newest % 3 != 0)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PairStateRow)) == len(stored)


def test_concurrent_publications_keep_the_newest(runtime):
    count = 8
    t0 = utcnow()
    run_at_once(count, lambda n: receive(runtime, pact_event("contract_content_changed", f"{n:040x}"),
                                         now=t0 + timedelta(seconds=n)))
    main = rows(runtime)[PairKey(C, P)]
    assert main.pact_sha == f"{count - 1:040x}" and main.pact_at == t0 + timedelta(seconds=count - 1)


def folded(history) -> dict:
    """What each row holds after the events, applied one row at a time by the pure state logic."""
    states: dict = {}
    for variables, at in history:
        for key in keys_for(variables):
            states[key] = apply(states.get(key) or new_state(key), variables, at)
    return states


def stored_states(runtime) -> dict:
    return {k: store.to_state(v) for k, v in rows(runtime).items()}


def test_many_rows_written_at_once_equal_each_row_applied_alone(runtime):
    t0 = utcnow()
    tags = ", ".join(f"t{i}" for i in range(store.MAX_TAGS))
    history = [
        (pact_event("contract_published", consumerVersionTags="t0, t1"), t0),
        # Some of its rows exist, most are new.
        (pact_event("provider_verification_succeeded", n=2, consumerVersionTags=tags, providerVersionTags=tags),
         t0 + timedelta(seconds=1)),
        # An older result: it moves last_event_* and the rows it creates, nothing else.
        (pact_event("provider_verification_failed", n=1, consumerVersionTags=tags, providerVersionTags="p1"),
         t0 + timedelta(seconds=2)),
        (pact_event("contract_content_changed", "c" * 40, consumerVersionTags="t3, new"), t0 + timedelta(seconds=3)),
        (pact_event("contract_content_changed", "d" * 40, consumerVersionTags="t3, new"), t0 - timedelta(seconds=3)),
    ]
    for variables, at in history:
        receive(runtime, variables, now=at)
    assert stored_states(runtime) == folded(history)


@pytest.mark.parametrize("existing", [False, True], ids=["new-pair", "known-pair"])
def test_concurrent_events_with_new_tags_lose_nothing(runtime, existing):
    """Threads add rows to one pair at once, some shared and some their own; no deadlock, every row complete."""
    t0 = utcnow()
    history = [(pact_event("contract_published"), t0 - timedelta(seconds=1))] if existing else []
    for variables, at in history:
        receive(runtime, variables, now=at)
    count = 8
    events_at_once = [(pact_event("provider_verification_succeeded", n=n + 1, consumerVersionTags=f"shared, c{n}",
                                  providerVersionTags=f"p{n % 3}"), t0 + timedelta(seconds=n)) for n in range(count)]
    run_at_once(count, lambda n: receive(runtime, events_at_once[n][0], now=events_at_once[n][1]))
    assert stored_states(runtime) == folded(history + events_at_once)


def test_tags_are_bounded(runtime):
    tags = ",".join(f"t{i}" for i in range(5000))
    receive(runtime, pact_event("provider_verification_succeeded", consumerVersionTags=tags, providerVersionTags=tags))
    stored = rows(runtime)
    ctags = {k.consumer_tag for k in stored if k.consumer_tag}
    # MAX_TAGS tags plus the branch, on each side.
    assert len(ctags) == store.MAX_TAGS + 1
    assert len(stored) == 1 + (store.MAX_TAGS + 1) + (store.MAX_TAGS + 1) ** 2


def test_unstorable_values_never_fail_the_intake(runtime):
    # A result number past 64 bits is refused by intake's parse (issue 23 #8: past 4,300 digits it was a 500).
    with pytest.raises(PayloadError):
        receive(runtime, pact_event("provider_verification_succeeded", n=1,
                                    verificationResultUrl=f"https://b/pacts/pact-version/{SAMPLE_SHA}/"
                                                          f"verification-results/{10**30}"))
    wide = "\u4e2d" * 255  # 765 bytes: four such names exceed the index limit
    result = receive(runtime, pact_event("provider_verification_succeeded", consumerName=wide, providerName=wide,
                                         consumerVersionTags=wide, providerVersionTags=wide))
    assert result.event_id
    stored = rows(runtime)
    assert PairKey(wide, wide) in stored and PairKey(wide, wide, wide, wide) not in stored


@pytest.mark.parametrize(("key", "ok"), [
    (PairKey(C, P), True), (PairKey("x" * 255, P), True), (PairKey("x" * 256, P), False),
    (PairKey("a\x00", P), False), (PairKey("\ud800", P), False), (PairKey(*["\u4e2d" * 200] * 4), False),
])
def test_storable(key, ok):
    assert store.storable(key) is ok


def test_badge_state_of_a_matrix_badge(runtime):
    receive(runtime, pact_event("contract_published"))
    receive(runtime, pact_event("provider_verification_failed", n=1))
    with runtime.sessions() as session:
        state = store.badge_state(session, PairKey(C, P, "prod"), PairKey(C, P, "prod", "test"))
        assert status(state) == "failed" and state.provider_tag == "test"
        assert store.badge_state(session, PairKey(C, P, "prod"), PairKey(C, P, "prod", "x")) is None
        assert store.badge_state(session, PairKey("x" * 300, P)) is None


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from relay.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_migration_matches_the_models(runtime):
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == _head()
        assert compare_metadata(context, Base.metadata) == []
        indexes = {i["name"] for i in inspect(conn).get_indexes("pair_states")}
        assert "ix_pair_states_provider" in indexes


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"relay_migrations_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated(empty_database):
    """(engine, alembic(action, revision)) on the empty database."""
    settings = Settings.from_env({}, database_url=empty_database, secret_key="x", encryption_keys=TEST_KEYS)
    engine = make_engine(settings)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def alembic(action, revision):
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            action(config, revision)

    yield engine, alembic
    engine.dispose()


def test_migration_0002_goes_down_and_up(migrated):
    engine, alembic = migrated
    alembic(command.upgrade, "head")
    assert "pair_states" in inspect(engine).get_table_names()
    alembic(command.downgrade, "0001")
    assert "pair_states" not in inspect(engine).get_table_names()
    assert "events" in inspect(engine).get_table_names()
    alembic(command.upgrade, "head")
    assert "pair_states" in inspect(engine).get_table_names()


def test_migration_0004_fills_in_each_pairs_newest_delivery(migrated):
    engine, alembic = migrated
    alembic(command.upgrade, "0003")
    with engine.begin() as conn:
        for i, (consumer, at) in enumerate([("C1", "2026-01-01"), ("C1", "2026-03-01"), ("C2", "2026-02-01")]):
            conn.exec_driver_sql(
                "INSERT INTO events (id, name, consumer, provider, variables, received_at) "
                f"VALUES ('e{i}', 'contract_published', '{consumer}', 'P', '{{}}', '{at}')")
            conn.exec_driver_sql(
                "INSERT INTO deliveries (id, webhook_uuid, event_id, status, attempts_made, created_at, "
                f"updated_at) VALUES ('d{i}', 'w', 'e{i}', 'succeeded', 1, '{at}', '{at}')")
        for consumer, tag in (("C1", ""), ("C1", "prod"), ("C2", ""), ("C3", "")):
            conn.exec_driver_sql(
                "INSERT INTO pair_states (consumer, provider, consumer_tag, provider_tag, pact_sha, pact_url, "
                "consumer_version, consumer_branch, verification_sha, verification_url, "
                "verified_consumer_version, provider_version, provider_branch, last_event_name) "
                f"VALUES ('{consumer}', 'P', '{tag}', '', '', '', '', '', '', '', '', '', '', '')")
    alembic(command.upgrade, "head")
    with engine.connect() as conn:
        rows = dict(conn.exec_driver_sql(
            "SELECT consumer || '/' || consumer_tag, last_delivery_id FROM pair_states").all())
    assert rows == {"C1/": "d1", "C1/prod": None, "C2/": "d2", "C3/": None}
