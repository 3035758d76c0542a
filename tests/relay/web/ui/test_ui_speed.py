"""Server time of every main page with 10,000 deliveries stored; numbers are reported, not asserted."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import insert

from relay.models import Attempt, Delivery, Event, PairStateRow, Webhook, new_id, utcnow

DELIVERIES = 10_000
PAIRS = 25
WEBHOOKS = 5


def seed(runtime) -> dict:
    now = utcnow()
    hooks = [{"uuid": f"speed-webhook-{i:08d}", "description": f"hook {i}", "events": ["contract_published"],
              "enabled": True, "kind": "request", "config": {"method": "POST", "url": "https://example.com/x"},
              "created_at": now, "updated_at": now} for i in range(WEBHOOKS)]
    events, deliveries, attempts, pairs = [], [], [], []
    for p in range(PAIRS):
        pairs.append({"consumer": f"consumer-{p}", "provider": f"provider-{p % 7}", "consumer_tag": "",
                      "provider_tag": "", "consumer_version": f"1.{p}", "consumer_branch": "main",
                      "verification_success": p % 4 != 0 if p % 5 else None, "provider_version": "2.0",
                      "last_event_at": now, "last_event_name": "contract_published", "pact_sha": f"sha{p}",
                      "verification_sha": f"sha{p}" if p % 3 else "old", "last_delivery_id": None})
    per_event = WEBHOOKS
    for n in range(DELIVERIES // per_event):
        at = now - timedelta(seconds=DELIVERIES - n)
        pair = pairs[n % PAIRS]
        event_id = new_id()
        events.append({"id": event_id, "name": "contract_published", "consumer": pair["consumer"],
                       "provider": pair["provider"], "variables": {"eventName": "contract_published"},
                       "received_at": at})
        for h in hooks:
            delivery_id = new_id()
            status = ("succeeded", "failed", "retrying", "pending")[(n + len(deliveries)) % 4]
            deliveries.append({"id": delivery_id, "webhook_uuid": h["uuid"], "event_id": event_id, "status": status,
                               "attempts_made": 1, "created_at": at, "updated_at": at, "next_attempt_at": at})
            pair["last_delivery_id"] = delivery_id
            attempts.append({"delivery_id": delivery_id, "number": 1, "at": at, "duration_ms": 12.5,
                             "request": {"method": "POST", "url": "https://example.com/x", "headers": {},
                                         "body": "{}"},
                             "response": {"status": 200, "headers": {}, "body": "ok"}, "error": None})
    with runtime.sessions.begin() as session:
        for model, rows in ((Webhook, hooks), (Event, events), (Delivery, deliveries), (Attempt, attempts),
                            (PairStateRow, pairs)):
            for start in range(0, len(rows), 2000):
                session.execute(insert(model), rows[start:start + 2000])
    return {"delivery": deliveries[len(deliveries) // 2]["id"], "webhook": hooks[2]["uuid"], "pair": pairs[3]}


def test_pages_with_ten_thousand_deliveries(browser, runtime, database_url, tmp_path_factory, record_property):
    ids = seed(runtime)
    listing = browser.get("/ui/deliveries").text
    older = listing.split("before=", 1)[1].split('"', 1)[0]
    pair = ids["pair"]
    pages = {
        "dashboard": "/ui/",
        "dashboard filtered": "/ui/?q=consumer-1",
        "network": "/ui/network",
        "pair": f"/ui/pair?consumer={pair['consumer']}&provider={pair['provider']}",
        "webhooks": "/ui/webhooks",
        "deliveries page 1": "/ui/deliveries",
        "deliveries page 2": f"/ui/deliveries?before={older}",
        "deliveries state=failed": "/ui/deliveries?state=failed",
        "deliveries by webhook": f"/ui/deliveries?webhook={ids['webhook']}",
        "deliveries by pair": f"/ui/deliveries?consumer={pair['consumer']}&provider={pair['provider']}",
        "deliveries pair+failed": f"/ui/deliveries?consumer={pair['consumer']}&provider={pair['provider']}"
                                  "&state=failed",
        "delivery": f"/ui/deliveries/{ids['delivery']}",
        "webhook editor": f"/ui/webhooks/{ids['webhook']}",
        "secrets": "/ui/secrets",
        "about": "/ui/about",
    }
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    lines = []
    for name, path in pages.items():
        assert browser.get(path).status_code == 200, path  # warm: templates compiled, connections open
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            resp = browser.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            assert resp.status_code == 200
        samples.sort()
        lines.append(f"{backend:10} {name:26} median {samples[2]:6.1f} ms  max {samples[-1]:6.1f} ms")
        record_property(f"{backend} {name} ms", round(samples[2], 1))
    report = "\n".join(lines)
    out = tmp_path_factory.getbasetemp() / f"ui-page-times-{backend}.txt"
    out.write_text(report + "\n")
    print(f"\n{report}\n(written to {out})")
