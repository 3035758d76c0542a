"""Many sends in flight in one worker process: leases taken in batches, fleet-wide slots, a pool of senders.

Fresh deliveries come from intake's feed (relay.delivery.queue), the rest from RQ jobs: both go to
`Dispatcher.submit`; one thread leases them in batches (a delivery
that is not due or is held elsewhere is dropped: the database decides), a second gives each the slots of its
target and host as they come free, and `send_concurrency` threads run `run_delivery`. A delivery waiting for
a slot holds its lease but no thread; after `slot_wait` it is deferred to the database without spending an
attempt, so a dead target never fills a worker. Threads, not asyncio: PyGithub, slack-sdk, python-jenkins
and requests block, and a thread waiting on a socket costs little (see docs/PERFORMANCE.md)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import timedelta
from queue import Empty, SimpleQueue

from relay.delivery import leases, limits, queue
from relay.delivery.runner import Record, run_delivery, runtime_keys, write
from relay.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 500
RECORD_BATCH = 256
SUBMIT_WAIT = 30.0  # below the RQ job timeout: what is not taken by then the sweeper queues again
TICK = 0.02  # how often waiting deliveries look for slots freed by other workers
FEED_WAIT = 1.0  # seconds a feed read blocks: how long a stop may wait for it


@dataclass
class Waiting:
    claimed: leases.Claimed
    keys: limits.Keys
    since: float


class Dispatcher:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.concurrency = runtime.settings.send_concurrency
        self.capacity = max(256, 16 * self.concurrency)  # taken from RQ and not yet finished
        self.cond = threading.Condition()
        self.incoming: list[str] = []
        self.held = 0
        self.sending = 0
        self.waiting: OrderedDict[str, OrderedDict[str, deque[Waiting]]] = OrderedDict()  # host → target → FIFO
        self.sends: SimpleQueue = SimpleQueue()
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.threads: list[threading.Thread] = []
        self.records: SimpleQueue = SimpleQueue()

    def start(self) -> Dispatcher:
        loops = [("admit", self._admit_loop), ("slots", self._slot_loop), ("record", self._record_loop),
                 ("feed", self._feed_loop)]
        loops += [(f"send-{i}", self._send_loop) for i in range(self.concurrency)]
        for name, target in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def submit(self, delivery_ids: list[str]) -> int:
        """Take ids from an RQ job; waits while the process is full, so the rest stays queued in Redis."""
        deadline = time.monotonic() + SUBMIT_WAIT
        with self.cond:
            while self.held >= self.capacity and not self.stopping.is_set() and time.monotonic() < deadline:
                self.cond.wait(0.1)
            if self.stopping.is_set() or self.held >= self.capacity:
                return 0  # not leased: the sweeper queues them again
            self.incoming.extend(delivery_ids)
            self.held += len(delivery_ids)
            self.cond.notify_all()
        return len(delivery_ids)

    def stop(self, grace: float) -> int:
        """Take nothing new, give back what waits for a slot, let sends in flight finish within `grace` seconds.

        Returns how many sends were still in flight at the end; their leases expire and they go out again."""
        self.stopping.set()
        self.wake.set()
        with self.cond:
            self.cond.notify_all()
        for thread in self.threads:  # the feed's last read ends within FEED_WAIT, anything it took put back
            if thread.name in ("admit", "slots", "feed"):
                thread.join(5)
        with self.cond:
            left = [w.claimed for targets in self.waiting.values() for dq in targets.values() for w in dq]
            self.waiting.clear()
            self.held -= len(left)
        if left:
            self._give_back(left)
        deadline = time.monotonic() + grace
        with self.cond:
            while self.sending and time.monotonic() < deadline:
                self.cond.wait(0.1)
            unfinished = self.sending
        for _ in range(self.concurrency):
            self.sends.put(None)
        self.records.put(None)
        log.info("dispatcher stopped: %d waiting deliveries given back, %d sends unfinished", len(left), unfinished)
        return unfinished

    def _give_back(self, claimed: list[leases.Claimed]) -> None:
        try:
            with self.runtime.sessions() as session, session.begin():
                leases.release(session, [(c.delivery_id, c.owner) for c in claimed])
        except Exception as exc:  # their leases expire instead
            log.warning("could not give back %d leases: %s", len(claimed), type(exc).__name__)

    def _feed_loop(self) -> None:
        """Fresh deliveries from intake (relay.delivery.queue's feed), taken only while this process has room: the
        rest stays in Redis for the other workers."""
        name, paused, check_at = self.runtime.settings.queue_name, False, 0.0
        while not self.stopping.is_set():
            with self.cond:
                while self.held >= self.capacity and not self.stopping.is_set():
                    self.cond.wait(0.1)
            if self.stopping.is_set():
                return
            try:
                if time.monotonic() >= check_at:  # `rq suspend` holds the feed too, within a second
                    paused, check_at = queue.suspended(self.runtime.redis), time.monotonic() + 1.0
                if paused:
                    self.stopping.wait(0.2)
                    continue
                ids = queue.take_fresh(self.runtime.redis, name, FEED_WAIT)
            except Exception as exc:  # Redis away: the sweeper finds what was stored meanwhile
                log.warning("feed: %s: %s", type(exc).__name__, exc)
                self.stopping.wait(1.0)
                continue
            if ids and not self.submit(ids):  # stopping, or full for SUBMIT_WAIT: another worker takes them
                try:
                    queue.enqueue_batch(self.runtime.redis, name, ids, front=True)
                except Exception as exc:  # unmarked and due: the sweeper queues them
                    log.warning("could not give back %d fresh deliveries: %s", len(ids), type(exc).__name__)

    def _admit_loop(self) -> None:
        while True:
            with self.cond:
                while not self.incoming and not self.stopping.is_set():
                    self.cond.wait(0.5)
                if self.stopping.is_set():
                    self.held -= len(self.incoming)
                    self.incoming = []
                    self.cond.notify_all()
                    return
                batch, self.incoming = self.incoming[:BATCH], self.incoming[BATCH:]
            try:
                with self.runtime.sessions() as session, session.begin():
                    claimed = leases.claim(session, self.runtime.settings, batch)
            except Exception as exc:  # the database is away: the sweeper queues them again
                log.warning("could not lease %d deliveries: %s: %s", len(batch), type(exc).__name__, exc)
                claimed = []
            if self.stopping.is_set():
                self._give_back(claimed)
                claimed = []
            if len(claimed) < len(batch):
                log.debug("%d of %d deliveries not leased (not due, held elsewhere or done)",
                          len(batch) - len(claimed), len(batch))
            now = time.monotonic()
            with self.cond:
                self.held -= len(batch) - len(claimed)
                for c in claimed:
                    if c.webhook is None:  # nothing to send to: recorded as failed at once
                        self.sending += 1
                        self.sends.put((c, None))
                        continue
                    keys = runtime_keys(self.runtime, c)
                    targets = self.waiting.setdefault(keys.host, OrderedDict())
                    targets.setdefault(keys.target, deque()).append(Waiting(c, keys, now))
                self.cond.notify_all()
            self.wake.set()

    def _slot_loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(TICK)
            self.wake.clear()
            try:
                self._hand_out()
                self._defer_overdue()
            except Exception as exc:  # Redis away: try again next tick; leases expire if it stays away
                log.warning("slot loop: %s: %s", type(exc).__name__, exc)
                time.sleep(0.5)

    def _hand_out(self) -> None:
        with self.cond:
            hosts = [(h, list(t.items())) for h, t in self.waiting.items()]
        for host, targets in hosts:
            for target, dq in targets:
                full = None
                while dq and self.sending < self.concurrency and not self.stopping.is_set():
                    w = dq[0]
                    got = limits.of(self.runtime).try_acquire(w.keys, w.claimed.lease_seconds)
                    if not isinstance(got, limits.Slots):
                        full = got
                        break
                    dq.popleft()
                    with self.cond:
                        self.sending += 1
                        self.waiting[host].move_to_end(target)  # the next free slot goes to another target
                    self.sends.put((w.claimed, got))
                if full == "host" or self.sending >= self.concurrency:
                    break
        with self.cond:
            for host in list(self.waiting):
                for target in [t for t, dq in self.waiting[host].items() if not dq]:
                    del self.waiting[host][target]
                if not self.waiting[host]:
                    del self.waiting[host]

    def _defer_overdue(self) -> None:
        cutoff = time.monotonic() - self.runtime.settings.slot_wait
        overdue: list[leases.Claimed] = []
        with self.cond:
            for targets in self.waiting.values():
                for dq in targets.values():
                    while dq and dq[0].since < cutoff:
                        overdue.append(dq.popleft().claimed)
        if not overdue:
            return
        try:
            with self.runtime.sessions() as session, session.begin():
                until = leases.db_now(session) + timedelta(seconds=1)
                for c in overdue:
                    leases.defer(session, c.delivery_id, until, "no free slot at its target or host", c.owner)
        except Exception as exc:  # their leases expire instead
            log.warning("could not defer %d deliveries: %s", len(overdue), type(exc).__name__)
        with self.cond:
            self.held -= len(overdue)
            self.cond.notify_all()

    def _send_loop(self) -> None:
        while (item := self.sends.get()) is not None:
            claimed, slots = item
            try:
                run_delivery(self.runtime, claimed.delivery_id, claimed, self.record)
            except Exception:  # a bug must not take the thread; the lease expires and the sweeper retries
                log.exception("delivery %s failed in the dispatcher", claimed.delivery_id)
            finally:
                if slots is not None:
                    try:
                        limits.of(self.runtime).release(slots)
                    except Exception:  # Redis away: the slots expire with the lease
                        pass
                with self.cond:
                    self.sending -= 1
                    self.held -= 1
                    self.cond.notify_all()
                self.wake.set()

    def record(self, record: Record) -> bool:
        """Write a finished attempt with others finishing at the same time (one transaction, one commit) and
        wait for it: when this returns, the attempt is in the database."""
        done = threading.Event()
        slot: list = []
        self.records.put((record, done, slot))
        done.wait()
        if isinstance(slot[0], BaseException):
            raise slot[0]
        return slot[0]

    def _record_loop(self) -> None:
        while (first := self.records.get()) is not None:
            batch = [first]
            while len(batch) < RECORD_BATCH:
                try:
                    item = self.records.get_nowait()
                except Empty:
                    break
                if item is None:
                    self.records.put(None)
                    break
                batch.append(item)
            try:
                with self.runtime.sessions() as session, session.begin():
                    results: list = write(session, [r for r, _, _ in batch])
            except Exception as exc:  # each sender sees it; the leases expire and the attempts are made again
                results = [exc] * len(batch)
            for (_, done, slot), result in zip(batch, results, strict=True):
                slot.append(result)
                done.set()
