"""Group commit: the intakes that arrive together in one process share one transaction, one commit and one
fsync, and each is answered only once that commit is durable."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from relay.driversql import Driver, Tx

_UNSET = object()


class _Waiting:
    __slots__ = ("work", "order", "done", "lead", "result", "error")

    def __init__(self, work: Callable[[Tx], Any], order: tuple):
        self.work, self.order = work, order
        self.done = threading.Event()
        self.lead = False
        self.result: Any = _UNSET
        self.error: BaseException | None = None


class GroupCommit:
    """One runtime's shared intake transactions.

    The first request to arrive runs its work at once, alone. Requests arriving while a transaction is in
    progress wait, and the first of them then runs all of theirs in one transaction: under load each commit
    (a WAL fsync on PostgreSQL, the write lock on SQLite, a pair's row lock held until the commit) is paid once
    per group instead of once per event. Work in a group runs in `order` (stable): every process takes the
    pair rows of a group in the same order, so groups in two processes do not deadlock each other. When the
    shared transaction fails, each work runs again in a transaction of its own, so one bad event fails alone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._busy = False

    def waiting(self) -> int:
        """Work queued behind the transaction in progress."""
        with self._lock:
            return len(self._queue)

    def run(self, driver: Driver, work: Callable[[Tx], Any], order: tuple = ()) -> Any:
        me = _Waiting(work, order)
        with self._lock:
            self._queue.append(me)
            me.lead = not self._busy
            self._busy = True
        if not me.lead:
            me.done.wait()
        if me.lead:
            self._lead(driver)
        if me.error is not None:
            raise me.error
        return me.result

    def _lead(self, driver: Driver) -> None:
        with self._lock:
            group, self._queue = self._queue, []
        try:
            _commit(driver, sorted(group, key=lambda w: w.order))
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
                else:
                    successor.lead = True
            if successor is not None:
                successor.done.set()
            for waiting in group:
                if waiting.result is _UNSET and waiting.error is None:  # the leader was interrupted
                    waiting.error = RuntimeError("the shared intake transaction was interrupted")
                waiting.done.set()


def _commit(driver: Driver, group: list[_Waiting]) -> None:
    try:
        results = driver.run(lambda tx: [w.work(tx) for w in group])
    except Exception as error:
        if len(group) == 1:
            group[0].error = error
            return
        for waiting in group:
            try:
                waiting.result = driver.run(waiting.work)
            except Exception as alone:
                waiting.error = alone
        return
    for waiting, result in zip(group, results, strict=True):
        waiting.result = result
