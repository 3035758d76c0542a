"""Group commit: intakes that arrive together share one transaction; each still gets its own answer."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import func, select

from relay.driversql import Sql, Tx
from relay.intake import events
from relay.intake.groupcommit import GroupCommit
from relay.models import Delivery, Event, IdempotencyKey
from relay.pairs import store
from tests.conftest import pact_event

TXID = Sql("SELECT txid_current()")  # PostgreSQL's own transaction id


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Held:
    """A first intake that holds its transaction open until released, so the ones behind it form one group."""

    def __init__(self, runtime, group: GroupCommit):
        self.release = threading.Event()
        self.thread = threading.Thread(target=group.run, args=(runtime.driver, self._work))
        self.started = threading.Event()

    def _work(self, tx: Tx) -> None:
        self.started.set()
        assert self.release.wait(10)

    def __enter__(self):
        self.thread.start()
        assert self.started.wait(10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(10)


def in_threads(calls):
    results, threads = [None] * len(calls), []
    for i, call in enumerate(calls):
        def run(i=i, call=call):
            try:
                results[i] = call()
            except Exception as exc:  # the assertion below shows it
                results[i] = exc
        threads.append(threading.Thread(target=run))
        threads[-1].start()
    return threads, results


def test_intakes_arriving_together_share_one_transaction(runtime):
    group = GroupCommit()
    dialect = runtime.engine.dialect.name

    def work(n):
        def run(tx: Tx):
            tx.run(Sql("INSERT INTO idempotency_keys (key, event_id, created_at) VALUES (:k, 'e', :at)",
                       binds={"at": IdempotencyKey.__table__.c.created_at}), {"k": f"k{n}", "at": events.utcnow()})
            return id(tx), tx.rows(TXID)[0][0] if dialect == "postgresql" else None
        return run

    with Held(runtime, group):
        threads, results = in_threads([lambda n=n: group.run(runtime.driver, work(n)) for n in range(5)])
        wait_until(lambda: group.waiting() == 5)
    for thread in threads:
        thread.join(10)
    assert len(set(results)) == 1  # one transaction (and on PostgreSQL one transaction id) for the five
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 5


def test_a_failing_intake_in_a_group_fails_alone(runtime):
    group = GroupCommit()
    key = Sql("INSERT INTO idempotency_keys (key, event_id, created_at) VALUES (:k, 'e', :at)",
              binds={"at": IdempotencyKey.__table__.c.created_at})

    def good(n):
        return lambda tx: (tx.run(key, {"k": f"good{n}", "at": events.utcnow()}), "stored")[1]

    def bad(tx: Tx):
        tx.run(key, {"k": "twice", "at": events.utcnow()})
        tx.run(key, {"k": "twice", "at": events.utcnow()})  # a primary key violation

    with Held(runtime, group):
        calls = [lambda: group.run(runtime.driver, good(0)), lambda: group.run(runtime.driver, bad),
                 lambda: group.run(runtime.driver, good(1))]
        threads, results = in_threads(calls)
        wait_until(lambda: group.waiting() == 3)
    for thread in threads:
        thread.join(10)
    assert results[0] == "stored" and results[2] == "stored"
    assert "IntegrityError" in type(results[1]).__name__
    with runtime.sessions() as session:
        assert set(session.scalars(select(IdempotencyKey.key))) == {"good0", "good1"}


def test_a_repeat_inside_the_same_group_is_a_duplicate_of_the_first(runtime, api):
    api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                "request": {"method": "POST", "url": "http://127.0.0.1:9/"}})
    group = GroupCommit()
    body = json.dumps(pact_event("contract_published")).encode()

    def intake():
        return events.receive(runtime.driver, body, on_store=[store.record],
                              subscriptions=runtime.cache(events.SubscriptionCache), group=group)

    with Held(runtime, group):
        threads, results = in_threads([intake, intake, intake])
        wait_until(lambda: group.waiting() == 3)
    for thread in threads:
        thread.join(10)
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert len({r.event_id for r in results}) == 1 and {r.deliveries for r in results} == {1}
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 1
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1


def test_a_group_runs_in_pair_order_and_arrival_order_within_a_pair(runtime):
    group, ran = GroupCommit(), []

    def work(name):
        return lambda tx: ran.append(name)

    with Held(runtime, group):
        orders = [("B", "x"), ("A", "x"), ("B", "x"), ("A", "y")]
        names = ["B1", "A1", "B2", "Ay"]
        threads = []
        for order, name in zip(orders, names, strict=True):  # queued one by one: arrival order is known
            threads.append(threading.Thread(target=group.run, args=(runtime.driver, work(name), order)))
            threads[-1].start()
            queued = len(threads)
            wait_until(lambda queued=queued: group.waiting() == queued)
    for thread in threads:
        thread.join(10)
    assert ran == ["A1", "Ay", "B1", "B2"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_processes_worth_of_groups_on_crossing_pairs_do_not_deadlock(runtime):
    """Groups in different processes lock pair rows in one global order: run many crossing groups at once."""
    groups = [GroupCommit(), GroupCommit()]
    pairs = [("A", "P"), ("B", "P"), ("C", "P")]

    def intake(n):
        consumer, provider = pairs[n % 3] if n % 2 else pairs[2 - n % 3]
        body = json.dumps({**pact_event("contract_published"), "consumerName": consumer,
                           "providerName": provider, "consumerVersionNumber": f"{n}"}).encode()
        return events.receive(runtime.driver, body, on_store=[store.record], group=groups[n % 2])

    threads, results = in_threads([lambda n=n: intake(n) for n in range(60)])
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, events.Intake) for r in results), [r for r in results if not isinstance(r, events.Intake)]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 60
