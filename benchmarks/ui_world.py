"""A company-sized world for the UI, built through the API: 30 services, 60 pairs, 9 webhooks, one target down.

Run with `python -m benchmarks.ui_world URL ADMIN_TOKEN [SINK_URL]`; tests/e2e/test_world.py builds it for the browser.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import requests

EVENTS_DIR = Path(__file__).resolve().parents[1] / "examples" / "events"
AREAS = ["Checkout", "Billing", "Payments", "Ledger", "Orders", "Inventory", "Shipping", "Users", "Identity",
         "Notifications", "Search", "Catalogue", "Pricing", "Promotions", "Reviews", "Recommendations",
         "Fraud Detection", "Customer Support", "Returns", "Warehouse"]
SUFFIXES = ["API", "Service", "Web", "App", "Worker", "Gateway"]
SHA_CHARS = "0123456789abcdef"


def services(count: int = 30) -> list[str]:
    """Names up to 40 characters; a few deliberately long ones, as real platforms have."""
    names = [f"{AREAS[i % len(AREAS)]} {SUFFIXES[i % len(SUFFIXES)]}" for i in range(count)]
    names[3] = "Customer Account Preferences Service API"[:40]
    names[11] = "Legacy Mainframe Billing Adapter Gateway"[:40]
    return names


def pairs(names: list[str], count: int = 60, seed: int = 26) -> list[tuple[str, str]]:
    """A layered dependency graph (consumers earlier in the list than their providers): chains run five deep."""
    rng = random.Random(seed)
    edges = {(names[i], names[i + 1]) for i in range(0, len(names) - 1, 2)}  # every service in some pair
    edges |= {(names[i], names[i + 6]) for i in range(1, len(names) - 6, 6)}  # a spine five deep
    while len(edges) < count:
        a, b = sorted(rng.sample(range(len(names)), 2))
        if b - a <= 12:
            edges.add((names[a], names[b]))
    return sorted(edges)


def event(name: str, consumer: str, provider: str, rng: random.Random) -> dict:
    doc = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    sha = "".join(rng.choice(SHA_CHARS) for _ in range(40))
    text = json.dumps(doc).replace("Matching%20Service", consumer.replace(" ", "%20")).replace(
        "Animal%20Profile%20Service", provider.replace(" ", "%20"))
    doc = json.loads(text)
    doc.update(consumerName=consumer, providerName=provider, consumerVersionNumber=sha)
    if "providerVersionNumber" in doc:
        doc["providerVersionNumber"] = "".join(rng.choice(SHA_CHARS) for _ in range(40))
    return doc


def build(url: str, token: str, sink_url: str | None = None, seed: int = 26) -> dict:
    """Post the webhooks and events; returns what was made: services, pairs, webhook uuids, events by state."""
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    names = services()
    edges = pairs(names)
    sink = sink_url or "http://127.0.0.1:9"  # the discard port: nothing listens, every send is refused
    hooks = []
    specs = [("CI for every published pact", None, None, f"{sink}/ci"),
             ("Checkout team builds", None, names[0], f"{sink}/checkout"),
             ("Billing provider verification", names[1], None, f"{sink}/billing"),
             ("Orders chat notifications", None, names[4], f"{sink}/orders"),
             ("Search index rebuild", names[10], None, f"{sink}/search"),
             ("Identity audit trail", names[8], None, f"{sink}/identity"),
             ("Payments release gate (answers 500)", None, None, f"{sink}/fail500"),
             ("Legacy target that is down", None, None, "http://127.0.0.1:9/down"),
             ("Reviews status to the CI server", names[14], None, f"{sink}/reviews")]
    for description, provider, consumer, target in specs:
        doc = {"description": description, "events": [{"name": n} for n in (
                   "contract_published", "provider_verification_succeeded", "provider_verification_failed")],
               "request": {"method": "POST", "url": target, "headers": {"Content-Type": "application/json"},
                           "body": {"consumer": "${pactbroker.consumerName}",
                                    "provider": "${pactbroker.providerName}"}}}
        if provider:
            doc["provider"] = {"name": provider}
        if consumer:
            doc["consumer"] = {"name": consumer}
        made = session.post(f"{url}/webhooks", json=doc, timeout=10)
        made.raise_for_status()
        hooks.append(made.json()["uuid"])
    states: dict[str, list[tuple[str, str]]] = {"failed": [], "verified": [], "unverified": []}
    for n, (consumer, provider) in enumerate(edges):
        kind = "provider_verification_failed" if n % 6 == 0 else (
            "contract_published" if n % 7 == 0 else "provider_verification_succeeded")
        states["failed" if n % 6 == 0 else "unverified" if n % 7 == 0 else "verified"].append((consumer, provider))
        sent = session.post(f"{url}/events", json=event(kind, consumer, provider, rng), timeout=10)
        sent.raise_for_status()
    return {"services": names, "pairs": edges, "webhooks": hooks, "states": states}


if __name__ == "__main__":
    made = build(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    print(f"{len(made['services'])} services, {len(made['pairs'])} pairs, {len(made['webhooks'])} webhooks")
