"""A test send (Execute and Test): once, now, with the chosen, last matching or a sample event; stores nothing."""

from __future__ import annotations

from sqlalchemy import select

from relay.delivery.attempt import attempt
from relay.errors import PayloadError
from relay.intake.events import EVENT_NAMES, TEST_EVENT, matches, sample_variables
from relay.models import Event, Webhook
from relay.pairs.store import pacticipants
from relay.security.auditing import record

# What a failing verification carries: Test also tries it when the chosen event is skipped, so a webhook
# that only speaks up on failures is not reported healthy without ever having been tried.
FAILURE_VALUES = {"eventName": "provider_verification_failed", "githubVerificationStatus": "failure",
                  "bitbucketVerificationStatus": "FAILED", "azureDevOpsVerificationStatus": "failed",
                  "gitlabVerificationStatus": "failed"}


def execute_once(session, rt, hook: Webhook, choice: dict | None = None) -> dict:
    """Send once now with the chosen event (default: the last matching one, or a sample) and say what
    happened; stores nothing."""
    variables, event_id, warnings = test_event(session, hook, choice or {})
    # Everything the sends need is read: end the transaction before they go (on SQLite it holds the write
    # lock; anywhere it would hold a connection for as long as the target takes). The webhook leaves the
    # session first, so that the rollback keeps its loaded values instead of reading them again mid-send.
    if hook in session:
        session.expunge(hook)
    session.rollback()
    outcome = attempt(session, rt, hook, variables, f"test-{hook.uuid}")
    result = {**_result(outcome), "event": event_id, "eventName": variables.get("eventName", ""),
              "consumer": variables.get("consumerName", ""), "provider": variables.get("providerName", ""),
              "warnings": warnings}
    success = outcome.verdict == "succeeded"
    if outcome.skipped:
        failing = attempt(session, rt, hook, {**variables, **FAILURE_VALUES}, f"test-{hook.uuid}")
        result["failureEvent"] = {**_result(failing), "eventName": FAILURE_VALUES["eventName"]}
        success = failing.verdict == "succeeded"
    result["success"] = success
    record(session, "webhook.executed", uuid=hook.uuid, event=event_id, success=success, status=outcome.verdict,
           error=outcome.error or (result.get("failureEvent") or {}).get("error"),
           httpStatus=outcome.response["status"] if outcome.response else None)
    session.commit()
    return result


def test_event(session, hook: Webhook, choice: dict) -> tuple[dict[str, str], str | None, list[str]]:
    """(variables, stored event id or None, warnings) for a test: `{"event": id}` a stored event,
    `{"sample": name, "consumer", "provider"}` a sample of that kind, `{}` the last matching event or a sample."""
    if not isinstance(choice, dict):
        raise PayloadError.one("body", "must be a JSON object")
    if choice.get("event"):
        event = session.get(Event, choice["event"]) if isinstance(choice["event"], str) else None
        if event is None:
            raise PayloadError.one("event", "no stored event with this id")
        return event.variables, event.id, []
    if choice.get("sample"):
        name = choice["sample"]
        if name not in (*EVENT_NAMES, TEST_EVENT):
            raise PayloadError.one("sample", f"must be one of {', '.join((*EVENT_NAMES, TEST_EVENT))}")
        variables = {**sample_variables(hook), "eventName": name}
        if name == "provider_verification_failed":
            variables.update(FAILURE_VALUES)
        warnings = []
        seen = pacticipants(session)
        for side in ("consumer", "provider"):
            value = choice.get(side)
            if value is None or value == "":
                continue
            if not isinstance(value, str) or len(value) > 200 or any(c in value for c in "\r\n\0"):
                raise PayloadError.one(side, "must be a name of at most 200 characters on one line")
            variables[f"{side}Name"] = value
            if value not in seen:
                warnings.append(f"the relay has never seen a {side} called {value!r}; is the name right?")
        return variables, None, warnings
    recent = session.scalars(select(Event).order_by(Event.received_at.desc()).limit(500))
    event = next((e for e in recent if matches(hook, e.variables)), None)
    return (event.variables, event.id, []) if event else (sample_variables(hook), None, [])


def _result(outcome) -> dict:
    return {"status": outcome.verdict, "reason": outcome.skipped or None, "request": outcome.request,
            "response": outcome.response, "success": outcome.ok and not outcome.skipped, "error": outcome.error,
            "notes": outcome.notes, "duration_ms": outcome.duration_ms, "logs": log_lines(outcome)}


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
