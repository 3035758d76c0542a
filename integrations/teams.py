"""Microsoft Teams messages: an Adaptive Card per event, posted to a Teams Workflows webhook URL."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from integrations.base import (
    ONLY_FAILURES,
    Context,
    DeliveryError,
    Field,
    FieldErrors,
    Integration,
    Render,
    Request,
    Result,
    failure_of,
    mismatch_line,
    split_url,
)
from integrations.http import perform
from integrations.netguard import AddressRefused
from integrations.outcome import EVENT_VALUE, endpoint, fail, target_message, url_problem
from integrations.slack import outcome

# https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-reference
CARD_VERSION = "1.4"
COLOURS = {"success": "Good", "failure": "Attention", "pending": "Warning", "info": "Accent"}
FACTS = (("Consumer version", "consumerVersionNumber"), ("Consumer branch", "consumerVersionBranch"),
         ("Provider version", "providerVersionNumber"), ("Provider branch", "providerVersionBranch"),
         ("Provider tags", "providerVersionTags"), ("Why", "providerVersionDescriptions"))
LINKS = (("Pact", "pactUrl"), ("Verification result", "verificationResultUrl"), ("Build", "buildUrl"))
MAX_SHOWN = 5
LINE = 400
HIDDEN_PATH = "<webhook_url path>"


MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]()<>|~"})
LINE_START = re.compile(r"^(?:([#+-](?=[ \t]|$)|>)|(\d+)([.)])(?=[ \t]|$))", re.M)  # heading, quote, list


def md(value: Any) -> str:
    """Teams renders Markdown in TextBlocks and facts: a value from an event or a verifier is escaped, so a name
    like `[sign in](https://evil.example)` stays text and never becomes a link."""
    escaped = str(value).translate(MARKDOWN)
    return LINE_START.sub(lambda m: "\\" + m[1] if m[1] else m[2] + "\\" + m[3], escaped)


def headline(v: Mapping[str, str], result: str) -> str:
    """The Slack message's sentence, without Slack's markup; every value escaped."""
    consumer, provider = md(v.get("consumerName", "")), md(v.get("providerName", ""))
    cv, pv = md(v.get("consumerVersionNumber", "")), md(v.get("providerVersionNumber", ""))
    event = v.get("eventName", "")
    if result == "success":
        return f"✅ {provider} {pv} verified the pact from {consumer} {cv}"
    if result == "failure":
        return f"❌ {provider} {pv} failed to verify the pact from {consumer} {cv}"
    if result == "pending":
        return f"⏳ {provider} {pv} needs to verify the pact from {consumer} {cv}"
    if event == "contract_content_changed":
        return f"✏️ The pact between {consumer} {cv} and {provider} changed"
    if event == "contract_published":
        return f"📄 {consumer} {cv} published a pact with {provider}"
    if event == "test":
        return f"👋 Test message from Pact Relay for {consumer} and {provider}"
    return f"Pact event {md(event)}: {consumer} and {provider}"


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": value, "wrap": True, **extra}


def failure_blocks(failure: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The first mismatches of a failed verification, as the Slack message shows them."""
    first = list(failure.get("first") or [])[:MAX_SHOWN]
    if not first:
        return [text(md(failure.get("reason") or "details unavailable"), isSubtle=True)]
    count = failure.get("mismatches") or len(first)
    out = [text(f"Mismatches ({count})", weight="Bolder")]
    for m in first:
        line = f"{m.get('description', '')}: {mismatch_line(m)}"
        line = line if len(line) <= LINE else line[:LINE - 1] + "…"
        out.append(text("• " + md(line), spacing="Small"))
    if count > len(first):
        out.append(text(f"… and {count - len(first)} more in the verification result", isSubtle=True))
    return out


def card(v: Mapping[str, Any], result: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = [text(headline(v, result), size="Medium", weight="Bolder", color=COLOURS[result])]
    facts = [{"title": label, "value": md(v[key])} for label, key in FACTS if v.get(key)]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    failure = failure_of(v) if result == "failure" else None
    if failure:
        body += failure_blocks(failure)
    content: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                               "type": "AdaptiveCard", "version": CARD_VERSION, "body": body,
                               "msteams": {"width": "Full"}}
    links = [{"type": "Action.OpenUrl", "title": label, "url": v[key]} for label, key in LINKS if v.get(key)]
    if links:
        content["actions"] = links
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                "contentUrl": None, "content": content}]}


@dataclass(frozen=True)
class TeamsMessage:
    payload: dict[str, Any]
    webhook_url: str = field(default="", repr=False)
    skipped: str = ""

    def shown_url(self) -> str:
        parts = split_url(self.webhook_url)
        return f"{parts.scheme}://{parts.netloc}/{HIDDEN_PATH}" if parts else "<webhook_url>"

    def request(self, url: str = "") -> Request:
        return Request("POST", url or self.shown_url(), {"Content-Type": "application/json"},
                       json.dumps(self.payload, ensure_ascii=False))


class Teams(Integration):
    name = "teams"
    shows_failure = True
    title = "Microsoft Teams message"
    capabilities = frozenset({ONLY_FAILURES})
    sample: ClassVar[dict[str, Any]] = {"webhook_url": "${user.TeamsWebhook}", "only_failures": False}
    fields: ClassVar[dict[str, Field]] = {
        "webhook_url": Field(required=True, secret=True, endpoint=True,
                             help="the Teams Workflows URL (\"Post to a channel when a webhook request is received\")"),
        "only_failures": Field(kind="bool", template=False, default=False),
    }

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        errors: FieldErrors = {}
        hook = config.get("webhook_url")
        if hook and EVENT_VALUE.search(str(hook)):
            errors["webhook_url"] = ["must not contain event values (${pactbroker.*}): an event must not choose "
                                     "the endpoint"]
        elif hook and "${" not in str(hook) and url_problem(hook):
            errors["webhook_url"] = [url_problem(hook)]
        if not isinstance(config.get("only_failures", False), bool):
            errors["only_failures"] = ["must be true or false"]
        return errors

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> TeamsMessage:
        result = outcome(variables)
        if config.get("only_failures") and result != "failure":
            return TeamsMessage(payload={}, skipped=f"only_failures is set and "
                                f"{variables.get('eventName', 'this event')} is not a failed verification")
        return TeamsMessage(payload=card(variables, result),
                            webhook_url=endpoint(render, config.get("webhook_url") or "", "webhook_url"))

    def describe(self, built: TeamsMessage) -> list[Request]:
        return [] if built.skipped else [built.request()]

    def send(self, built: TeamsMessage, ctx: Context) -> Result:
        if built.skipped:
            return Result(requests=[], response=None, note=f"skipped: {built.skipped}", skipped=built.skipped)
        shown = built.request()
        try:
            ctx.check_url(built.webhook_url)
            response = perform(ctx.session, built.request(built.webhook_url), ctx.timeout)
        except DeliveryError as exc:  # a refusal or a transport error may quote the URL, which is the secret here
            raise hidden(exc, built) from None
        if not 200 <= response.status < 300:
            raise fail(response, [shown], f"Teams: {target_message(response.body) or response.status}")
        return Result(requests=[shown], response=response, note="card posted")


def hidden(exc: DeliveryError, built: TeamsMessage) -> DeliveryError:
    """The same error, with the webhook URL and its path (the secret) left out of its message."""
    parts = split_url(built.webhook_url)
    message = exc.message.replace(built.webhook_url, built.shown_url())
    if parts and parts.path not in ("", "/"):
        message = message.replace(parts.path + (f"?{parts.query}" if parts.query else ""), "/" + HIDDEN_PATH)
        message = message.replace(parts.path, "/" + HIDDEN_PATH)
    if parts and parts.query:
        message = message.replace(parts.query, "<query>")
    if isinstance(exc, AddressRefused):
        return AddressRefused(message)
    return type(exc)(message, response=exc.response, retry_after=exc.retry_after)
