"""The one Pact Broker webhook that sends every event to the relay."""

from __future__ import annotations

from relay.intake.events import EVENT_NAMES
from relay.templating import VARIABLES


def broker_webhook_json(relay_url: str, token: str) -> dict:
    return {
        "description": "Pact Relay: every event",
        "events": [{"name": name} for name in EVENT_NAMES],
        "request": {
            "method": "POST",
            "url": relay_url.rstrip("/") + "/events",
            "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            "body": {name: f"${{pactbroker.{name}}}" for name in VARIABLES},
        },
    }
