"""Helpers for the delivery policy tests: webhooks over the API, events in, deliveries out, time moved on."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from relay.models import Delivery, Event, utcnow
from tests.conftest import sample_event


class Relay:
    def __init__(self, api, runtime, drain):
        self.api, self.runtime, self.drain = api, runtime, drain

    def hook(self, doc: dict, events=("provider_verification_failed",)) -> dict:
        resp = self.api.post("/webhooks", json={"events": [{"name": e} for e in events], **doc})
        assert resp.status_code == 201, resp.json
        return resp.json

    def event(self, name: str = "provider_verification_failed", **overrides) -> str:
        resp = self.api.post("/events", json={**sample_event(name), **overrides},
                             headers={"Idempotency-Key": uuid.uuid4().hex})  # each call a new event
        assert resp.status_code == 202, resp.json
        return resp.json["event"]

    def deliveries(self, hook: dict) -> list[dict]:
        """Oldest first."""
        return self.api.get(f"/webhooks/{hook['uuid']}/deliveries").json["deliveries"][::-1]

    def webhook(self, hook: dict) -> dict:
        return self.api.get(f"/webhooks/{hook['uuid']}").json

    def all_due(self) -> None:
        with self.runtime.sessions.begin() as session:
            session.execute(update(Delivery).where(Delivery.status.in_(("pending", "retrying")))
                            .values(next_attempt_at=utcnow() - timedelta(seconds=1)))  # due on any clock

    def probe_due(self, hook: dict) -> None:
        from relay.models import TargetState  # imported here, so these tests also run (and fail) on older code

        with self.runtime.sessions.begin() as session:
            session.execute(update(TargetState).where(TargetState.webhook_uuid == hook["uuid"])
                            .values(next_probe_at=utcnow() - timedelta(seconds=1)))

    def sent_earlier(self, seconds: float = 3.0) -> None:
        """Every delivery recorded so far was recorded `seconds` earlier (GitHub statuses are spaced out)."""
        with self.runtime.sessions.begin() as session:
            for delivery in session.scalars(select(Delivery).where(Delivery.status == "succeeded")):
                delivery.updated_at -= timedelta(seconds=seconds)

    def age(self, seconds: float) -> None:
        """Every event and delivery arrived `seconds` earlier than it did."""
        shift = timedelta(seconds=seconds)
        with self.runtime.sessions.begin() as session:
            for delivery in session.scalars(select(Delivery)):
                delivery.created_at -= shift
            for event in session.scalars(select(Event)):
                event.received_at -= shift


@pytest.fixture
def relay(api, runtime, drain) -> Relay:
    return Relay(api, runtime, drain)
