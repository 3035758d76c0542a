"""Slack messages (slack-sdk): Block Kit per event kind, by incoming webhook or bot token + channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.error import URLError

from integrations.base import (
    ONLY_FAILURES,
    Context,
    Field,
    FieldErrors,
    Integration,
    PermanentDeliveryError,
    Render,
    Request,
    Response,
    Result,
    RetryableDeliveryError,
    failure_of,
    mismatch_line,
    split_url,
)
from integrations.netguard import AddressRefused
from integrations.outcome import EVENT_VALUE, endpoint, fail, url_problem, wait_seconds

# Slack error codes worth another try; every other code means the configuration must change.
# https://docs.slack.dev/reference/methods/chat.postMessage#errors, https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks#handling_errors
RETRY_CODES = {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
               "request_timeout", "rollup_error"}
HINTS = {
    "channel_not_found": "the channel does not exist, or the app cannot see it",
    "not_in_channel": "invite the app to the channel",
    "channel_is_archived": "the channel is archived",
    "invalid_auth": "the token is not valid",
    "not_authed": "no token was sent",
    "token_revoked": "the token was revoked",
    "missing_scope": "the token lacks the chat:write scope",
    "invalid_payload": "Slack rejected the message payload",
    "no_service": "the incoming webhook was disabled or removed",
    "action_prohibited": "a workspace admin restricted posting to this channel",
}
COLOURS = {"success": "#2EB886", "failure": "#D40E0D", "pending": "#DAA038", "info": "#439FE0"}


@dataclass(frozen=True)
class SlackMessage:
    payload: dict[str, Any]
    webhook_url: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    base_url: str = "https://slack.com/api/"
    skipped: str = ""

    def requests(self) -> list[Request]:
        if self.skipped:
            return []
        body = json.dumps(self.payload, ensure_ascii=False)
        if self.webhook_url:
            parts = split_url(self.webhook_url)
            origin = f"{parts.scheme}://{parts.netloc}" if parts else "<webhook_url>"
            return [Request("POST", f"{origin}/<webhook_url path>",
                            {"Content-Type": "application/json;charset=utf-8"}, body)]
        return [Request("POST", f"{self.base_url}chat.postMessage",
                        {"Authorization": "Bearer <token>", "Content-Type": "application/json;charset=utf-8"}, body)]


def esc(text: str) -> str:
    """Slack mrkdwn escaping of the three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def outcome(v: Mapping[str, str]) -> str:
    event = v.get("eventName", "")
    if event == "provider_verification_failed":
        return "failure"
    if event == "provider_verification_succeeded":
        return "success"
    if event == "provider_verification_published":
        return {"success": "success", "failure": "failure"}.get(v.get("githubVerificationStatus", ""), "info")
    return "pending" if event == "contract_requiring_verification_published" else "info"


def headline(v: Mapping[str, str], result: str) -> str:
    consumer, provider = f"*{esc(v.get('consumerName', ''))}*", f"*{esc(v.get('providerName', ''))}*"
    cv, pv = esc(v.get("consumerVersionNumber", "")), esc(v.get("providerVersionNumber", ""))
    event = v.get("eventName", "")
    if result == "success":
        return f":white_check_mark: {provider} {pv} verified the pact from {consumer} {cv}"
    if result == "failure":
        return f":x: {provider} {pv} *failed* to verify the pact from {consumer} {cv}"
    if result == "pending":
        return f":hourglass_flowing_sand: {provider} {pv} needs to verify the pact from {consumer} {cv}"
    if event == "contract_content_changed":
        return f":pencil2: The pact between {consumer} {cv} and {provider} changed"
    if event == "contract_published":
        return f":page_facing_up: {consumer} {cv} published a pact with {provider}"
    if event == "test":
        return f":wave: Test message from Pact Relay for {consumer} and {provider}"
    return f"Pact event {esc(event)}: {consumer} and {provider}"


def blocks(v: Mapping[str, str], text: str) -> list[dict[str, Any]]:
    facts = [("Consumer version", "consumerVersionNumber"), ("Consumer branch", "consumerVersionBranch"),
             ("Provider version", "providerVersionNumber"), ("Provider branch", "providerVersionBranch"),
             ("Provider tags", "providerVersionTags"), ("Why", "providerVersionDescriptions")]
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{esc(v[key])}"} for label, key in facts if v.get(key)]
    links = [(label, v[key]) for label, key in (("Pact", "pactUrl"), ("Verification result", "verificationResultUrl"),
                                                ("Build", "buildUrl")) if v.get(key)]
    out: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        out.append({"type": "section", "fields": fields})
    failure = failure_of(v) if outcome(v) == "failure" else None
    if failure:
        out.append(mismatch_block(failure))
    if links:
        out.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": " · ".join(f"<{url}|{label}>" for label, url in links)}]})
    return out


MAX_SHOWN = 5
SECTION_TEXT = 3000  # Block Kit: a section's text is at most 3000 characters
LINE = 400


def mismatch_block(failure: Mapping[str, Any]) -> dict[str, Any]:
    """The first mismatches of a failed verification as one section, within Block Kit's limits."""
    first = list(failure.get("first") or [])[:MAX_SHOWN]
    if not first:
        reason = failure.get("reason") or "details unavailable"
        return {"type": "context", "elements": [{"type": "mrkdwn", "text": esc(str(reason))[:SECTION_TEXT]}]}
    count = failure.get("mismatches") or len(first)
    lines = [f"*Mismatches ({count})*"]
    for m in first:
        line = f"• _{esc(str(m.get('description', '')))}_: {esc(mismatch_line(m))}"
        lines.append(line if len(line) <= LINE else line[:LINE - 1] + "…")
    if count > len(first):
        lines.append(f"… and {count - len(first)} more in the verification result")
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:SECTION_TEXT]}}


class Slack(Integration):
    name = "slack"
    shows_failure = True
    title = "Slack message"
    capabilities = frozenset({ONLY_FAILURES})
    secret_url_host = "hooks.slack.com"  # incoming webhooks all live there; the URL itself is sealed
    sample: ClassVar[dict[str, Any]] = {"webhook_url": "https://hooks.slack.com/services/${user.SlackHookPath}"}
    fields: ClassVar[dict[str, Field]] = {
        "webhook_url": Field(secret=True, help="incoming webhook URL", endpoint=True),
        "token": Field(secret=True, help="bot token (xoxb-...) with chat:write"),
        "channel": Field(help="channel id or name, with token"),
        "text": Field(help="custom message text; default: a sentence per event"),
        "only_failures": Field(kind="bool", template=False, default=False),
        "base_url": Field(default="https://slack.com/api/", help="Slack Web API base URL", endpoint=True),
    }

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        errors: FieldErrors = {}
        hook, token, channel = config.get("webhook_url"), config.get("token"), config.get("channel")
        if hook and token:
            errors["token"] = ["give either webhook_url or token + channel, not both"]
        elif channel and not token:
            errors["channel"] = ["needs a token; an incoming webhook posts to its own channel"]
        elif token and not channel:
            errors["channel"] = ["is required with a token"]
        elif not hook and not token:
            errors["webhook_url"] = ["is required unless a token and a channel are given"]
        if hook and EVENT_VALUE.search(str(hook)):
            errors["webhook_url"] = ["must not contain event values (${pactbroker.*}): an event must not choose "
                                     "the endpoint"]
        elif hook and "${" not in hook and url_problem(hook):
            errors["webhook_url"] = [url_problem(hook)]
        if config.get("base_url") and url_problem(config["base_url"]):
            errors["base_url"] = [url_problem(config["base_url"])]
        if not isinstance(config.get("only_failures", False), bool):
            errors["only_failures"] = ["must be true or false"]
        return errors

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> SlackMessage:
        result = outcome(variables)
        if config.get("only_failures") and result != "failure":
            return SlackMessage(payload={}, skipped=f"skipped: only_failures is set and "
                                f"{variables.get('eventName', 'this event')} is not a failed verification")
        text = render(config["text"], "text") if config.get("text") else headline(variables, result)
        payload: dict[str, Any] = {"text": text, "attachments": [{"color": COLOURS[result],
                                                                  "blocks": blocks(variables, text)}]}
        if config.get("token"):
            payload = {"channel": render(config.get("channel") or "", "text"), **payload}
            base = endpoint(render, config.get("base_url") or self.fields["base_url"].default, "base_url") + "/"
            return SlackMessage(payload=payload, token=render(config["token"], "header"), base_url=base)
        hook = endpoint(render, config.get("webhook_url") or "", "webhook_url")
        return SlackMessage(payload=payload, webhook_url=hook)

    def describe(self, built: SlackMessage) -> list[Request]:
        return built.requests()

    def send(self, built: SlackMessage, ctx: Context) -> Result:
        if built.skipped:
            return Result(requests=[], response=None, note=built.skipped,
                          skipped=built.skipped.removeprefix("skipped: "))
        # Imported here: slack-sdk adds ~5 MB to every web and worker process, most of which never post to Slack.
        from slack_sdk import WebClient, WebhookClient  # noqa: PLC0415 (slack-sdk is heavy: loaded only where a Slack message is sent)
        from slack_sdk.errors import SlackApiError, SlackRequestError  # noqa: PLC0415 (slack-sdk)

        made, timeout = built.requests(), int(ctx.timeout[1])
        try:
            if built.webhook_url:
                try:
                    ctx.check_url(built.webhook_url)
                except AddressRefused as exc:  # its message quotes the URL, which is the secret here
                    raise AddressRefused(str(exc).replace(built.webhook_url, made[0].url)) from None
                answer = WebhookClient(built.webhook_url, timeout=timeout, retry_handlers=[]).send_dict(built.payload)
                response = Response(answer.status_code, dict(answer.headers or {}), answer.body or "")
                code = (answer.body or "").strip()
                ok = answer.status_code == 200
            else:
                ctx.check_url(made[0].url)
                client = WebClient(token=built.token, base_url=built.base_url, timeout=timeout, retry_handlers=[])
                try:
                    answer = client.chat_postMessage(**built.payload)
                except SlackApiError as exc:
                    answer = exc.response
                response = Response(answer.status_code, dict(answer.headers or {}), json.dumps(answer.data))
                code = str(answer.data.get("error", "")) if isinstance(answer.data, dict) else ""
                ok = answer.status_code == 200 and isinstance(answer.data, dict) and answer.data.get("ok")
        except (URLError, OSError, SlackRequestError) as exc:
            raise RetryableDeliveryError(f"Slack unreachable: {getattr(exc, 'reason', exc)}") from None
        if ok:
            return Result(requests=made, response=response, note="message posted")
        raise slack_error(response, made, code)


def slack_error(response: Response, made: list[Request], code: str) -> Exception:
    detail = f"Slack: {code}" + (f" ({HINTS[code]})" if code in HINTS else "") if code else "Slack error"
    if response.status == 200 or code in RETRY_CODES:  # Web API errors come with 200 and ok: false
        if code in RETRY_CODES:
            return RetryableDeliveryError(detail, response=response, retry_after=wait_seconds(response.headers))
        return PermanentDeliveryError(detail, response=response)
    return fail(response, made, detail)
