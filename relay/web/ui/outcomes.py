"""How a delivery's outcome is shown: its status as the API gives it, and why when nothing was sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from relay.models import Attempt

SKIP_NOTE = "skipped: "


@dataclass(frozen=True)
class Shown:
    status: str
    reason: str = ""
    superseded_by: str = ""


def skip_reason(response: dict | None) -> str:
    """The reason an integration recorded for sending nothing ("" when it did send)."""
    note = (response or {}).get("note") or ""
    return note[len(SKIP_NOTE):] if note.startswith(SKIP_NOTE) else ""


def shown(doc: dict[str, Any]) -> Shown:
    """A delivery as the API shows it (`deliveries.to_json`): `reason` and `supersededBy` when the API has them.
    An attempt that sent nothing because the integration skipped is never shown as a green `succeeded`."""
    status, reason = doc["status"], doc.get("reason") or ""
    if status == "succeeded":
        attempts = doc.get("attempts") or []
        last = attempts[-1] if attempts else {}
        if last and not last.get("request") and skip_reason(last.get("response")):
            status, reason = "skipped", reason or skip_reason(last.get("response"))
    return Shown(status, reason, doc.get("supersededBy") or "")


def sent(attempt: dict[str, Any] | None) -> str:
    """What one attempt did, as a clause: sent and answered, sent and failed, or not sent."""
    if not attempt:
        return ""
    number, response, error = attempt["number"], attempt.get("response") or {}, attempt.get("error")
    if attempt.get("request"):
        if response.get("status"):
            return f"Attempt {number} was sent and answered HTTP {response['status']}"
        return f"Attempt {number} was sent and failed: {error}" if error else f"Attempt {number} was sent"
    return f"Attempt {number} sent nothing: {error}" if error else ""


def headline(status: str, reason: str, attempts: list[dict[str, Any]]) -> str:
    """The one sentence above a delivery's attempts; it never says "nothing was sent" above an attempt that was."""
    why = reason.removeprefix("waiting: ")
    last = sent(attempts[-1] if attempts else None)
    if status == "skipped" and not last:
        return f"Nothing was sent: {why}." if why else "Nothing was sent."
    if not why:
        return ""
    if status in ("pending", "retrying"):
        return f"{last}; the next attempt waits: {why}." if last else f"Nothing sent yet, waiting: {why}."
    return f"{last}; then {why}." if last else f"Nothing was sent: {why}."


def list_rows(session, rows) -> dict[str, Shown]:
    """`shown` for a page of deliveries; one query finds the skips recorded as `succeeded` before the
    `skipped` status existed."""
    ok = [d.id for d in rows if d.status == "succeeded"]
    skipped: dict[str, str] = {}
    if ok:
        for delivery_id, request, response in session.execute(
                select(Attempt.delivery_id, Attempt.request, Attempt.response)
                .where(Attempt.delivery_id.in_(ok)).order_by(Attempt.number)):
            skipped[delivery_id] = "" if request else skip_reason(response)
    return {d.id: Shown("skipped", skipped[d.id]) if skipped.get(d.id)
            else Shown(d.status, d.reason or "", d.superseded_by or "") for d in rows}
