"""A test send (the Execute and Test buttons): once, now, with the last matching event or a sample; stores nothing."""

from __future__ import annotations

from sqlalchemy import select

from relay.delivery.attempt import attempt
from relay.intake.events import matches, sample_variables
from relay.models import Event, Webhook
from relay.security.auditing import record


def execute_once(session, rt, hook: Webhook) -> dict:
    """Send once now with the last matching event (or a sample) and say what happened; stores nothing."""
    recent = session.scalars(select(Event).order_by(Event.received_at.desc()).limit(500))
    event = next((e for e in recent if matches(hook, e.variables)), None)
    variables = event.variables if event else sample_variables(hook)
    outcome = attempt(session, rt, hook, variables, f"test-{hook.uuid}")
    event_id = event.id if event else None
    params = dict(uuid=hook.uuid, event=event_id, success=outcome.ok, error=outcome.error,
                  status=outcome.response["status"] if outcome.response else None)
    session.rollback()  # end the read transaction; the audit entry gets its own
    record(session, "webhook.executed", **params)
    session.commit()
    return {"request": outcome.request, "response": outcome.response, "success": outcome.ok,
            "error": outcome.error, "notes": outcome.notes, "duration_ms": outcome.duration_ms,
            "event": event_id, "logs": log_lines(outcome)}


def log_lines(outcome) -> str:
    lines = []
    if outcome.request:
        lines.append(f"{outcome.request['method']} {outcome.request['url']}")
        lines += [f"{k}: {v}" for k, v in outcome.request["headers"].items()]
        if outcome.request.get("body"):
            lines.append(outcome.request["body"])
    if outcome.response:
        lines.append(f"HTTP {outcome.response['status']}")
    if outcome.error:
        lines.append(f"error: {outcome.error}")
    lines += outcome.notes
    return "\n".join(lines)
