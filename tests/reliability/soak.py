"""Soak: `python -m tests.reliability.soak` sends 20,000 events through a real relay to flaky targets and
accounts for every delivery and every send (not part of the pytest run)."""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.e2e.conftest import Relay, Sink, free_port, wait_for
from tests.reliability.tools import Broker, metric_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=300, help="seconds over which to send the events")
    parser.add_argument("--webhooks", type=int, default=2)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--errors", type=float, default=0.10, help="share of sends answered 500")
    parser.add_argument("--hangs", type=float, default=0.02, help="share of sends that hang past the timeout")
    parser.add_argument("--schedule", default="1 2 4", help="RELAY_RETRY_SCHEDULE for the run")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    figures = soak(args)
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    assert figures["lost"] == 0 and not figures["problems"], figures["problems"][:20]


READ_TIMEOUT = 2.0
HANG = 4.0


def soak(args) -> dict:
    rng = random.Random(args.seed)
    rng_lock = threading.Lock()
    sink = Sink()

    def behaviour(n, req):
        with rng_lock:
            roll = rng.random()
        answer = (500, 0) if roll < args.errors else (200, HANG) if roll < args.errors + args.hangs else (200, 0)
        req["answer"] = answer
        return answer

    sink.behaviour = behaviour
    workdir = Path(tempfile.mkdtemp(prefix="relay-soak-"))
    db_url, drop = _database(args.database, workdir)
    relay = Relay(workdir / "data", {
        "RELAY_DATABASE_URL": db_url, "RELAY_RETRY_SCHEDULE": args.schedule, "RELAY_LEASE_SECONDS": "30",
        "RELAY_SWEEP_INTERVAL": "2", "RELAY_SWEEP_GRACE": "5", "RELAY_LOG_LEVEL": "WARNING"})
    try:
        relay.start(workers=args.workers, web_workers=2, threads=8)
        for i in range(args.webhooks):
            resp = relay.call("POST", "/webhooks", json={
                "description": f"soak {i}", "events": [{"name": "contract_published"}],
                "timeout": {"read": READ_TIMEOUT},
                "request": {"method": "POST", "url": f"{sink.url}/hook/{i}", "sign": True,
                            "headers": {"Content-Type": "application/json"},
                            "body": {"version": "${pactbroker.consumerVersionNumber}"}}})
            assert resp.status_code == 201, resp.text
        broker = Broker(relay)
        started = time.monotonic()
        _send_paced(broker, args.events, args.duration)
        sent_in = time.monotonic() - started
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
        expected = args.events * args.webhooks

        def settled() -> bool:
            with engine.connect() as conn:
                open_, total = conn.execute(text(
                    "SELECT count(*) FILTER (WHERE status IN ('pending', 'retrying')), count(*) FROM deliveries"
                    if args.database == "postgresql" else
                    "SELECT sum(status IN ('pending', 'retrying')), count(*) FROM deliveries")).one()
            return total == expected and not open_

        wait_for(settled, timeout=args.duration + 1800, interval=2, what="every delivery settled")
        settled_in = time.monotonic() - started
        time.sleep(HANG + 1)  # let the last hung sends finish arriving at the sink
        figures = _account(engine, sink, broker, args, expected)
        metrics = relay.call("GET", "/metrics").text
        figures.update(
            events_sent=args.events, webhooks=args.webhooks, database=args.database, workers=args.workers,
            schedule=args.schedule, send_seconds=round(sent_in, 1), settle_seconds=round(settled_in, 1),
            intake_per_second=round(args.events / sent_in, 1), broker_answers=dict(broker.answers),
            attempts_recorded_by_metrics=metric_value(metrics, "pact_relay_delivery_attempts_total"),
            attempt_p_le_100ms=_share_under(metrics, "0.1"))
        engine.dispose()
        return figures
    finally:
        relay.stop()
        sink.close()
        drop()


def _send_paced(broker: Broker, events: int, duration: float, threads: int = 8) -> None:
    """Each thread sends its share at an even pace, so the load lasts `duration` seconds."""
    interval = duration * threads / events

    def run(offset: int):
        start = time.monotonic()
        for k, i in enumerate(range(offset, events, threads)):
            delay = start + k * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            broker.send(f"9.{i}")

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def _account(engine, sink: Sink, broker: Broker, args, expected: int) -> dict:
    schedule_attempts = len(args.schedule.split()) + 1
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, event_id, status, attempts_made FROM deliveries")).all()
        attempts = conn.execute(text("SELECT delivery_id, error, response FROM attempts")).all()
        events = conn.execute(text("SELECT count(*) FROM events")).scalar()
    per_event = Counter(r.event_id for r in rows)
    recorded = defaultdict(lambda: Counter())
    for a in attempts:
        response = a.response if isinstance(a.response, dict) or a.response is None else json.loads(a.response)
        kind = ("timeout" if (a.error or "").startswith("timed out") else
                "500" if response and response.get("status") == 500 else
                "ok" if a.error is None else "other")
        recorded[a.delivery_id][kind] += 1
    seen = defaultdict(lambda: Counter())
    for req in sink.requests:
        status, delay = req.get("answer", (None, None))
        kind = "500" if status == 500 else "hang" if delay else "ok"
        seen[req["headers"].get("webhook-id")][kind] += 1
    problems, lost, repeats = [], 0, 0
    statuses = Counter(r.status for r in rows)
    for r in rows:
        at_sink, log = seen.get(r.id, Counter()), recorded.get(r.id, Counter())
        if r.status == "succeeded" and at_sink["ok"] != 1:
            lost += at_sink["ok"] == 0
            if at_sink["ok"] > 1:
                problems.append(f"{r.id}: answered 200 {at_sink['ok']} times")
        if r.status == "failed" and (r.attempts_made != schedule_attempts or at_sink["ok"]):
            problems.append(f"{r.id}: failed after {r.attempts_made} attempts, {at_sink['ok']} successes")
        if r.status not in ("succeeded", "failed"):
            problems.append(f"{r.id}: still {r.status}")
        # every send is one recorded attempt: 500s as 500s, hangs as timed-out attempts
        if (at_sink["500"], at_sink["hang"]) != (log["500"], log["timeout"]) or log["other"]:
            problems.append(f"{r.id}: sink saw {dict(at_sink)}, attempts say {dict(log)}")
        repeats += sum(at_sink.values()) - 1 if at_sink else 0
    return {
        "events_stored": events, "events_accepted": len(broker.accepted),
        "deliveries": len(rows), "deliveries_expected": expected,
        "every_event_has_all_deliveries": set(per_event.values()) == {args.webhooks},
        "statuses": dict(statuses), "attempts": len(attempts), "arrivals_at_sink": len(sink.requests),
        "answered_500": sum(s["500"] for s in seen.values()), "hung": sum(s["hang"] for s in seen.values()),
        "repeat_sends": repeats, "repeat_sends_unexplained": len([p for p in problems if "sink saw" in p]),
        "lost": lost, "problems": problems,
    }


def _share_under(metrics: str, bound: str) -> float:
    under = metric_value(metrics, "pact_relay_delivery_attempt_duration_seconds_bucket", le=bound)
    total = metric_value(metrics, "pact_relay_delivery_attempt_duration_seconds_count")
    return round(under / total, 3) if total else 0.0


def _database(kind: str, workdir: Path):
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'soak.db'}", lambda: None
    name = f"relay_soak_{free_port()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


if __name__ == "__main__":
    main()
