"""Shared by the typed integrations: a target's answer and rate-limit headers turned into delivery errors."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from integrations.base import (
    DeliveryError,
    PermanentDeliveryError,
    Request,
    Response,
    carries_credentials,
    checked_url,
    dot_segment,
    split_url,
)
from integrations.http import classify, retry_after_seconds

# GitHub's rules: an owner is up to 39 letters, digits and hyphens (underscores for managed users), not starting
# with a hyphen; a repository name up to 100 letters, digits, '.', '-', '_', and never '.' or '..'.
OWNER_NAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,39}/(?!\.{1,2}$)[A-Za-z0-9_.-]{1,100}\Z")
COMMIT_SHA = re.compile(r"^[0-9a-fA-F]{7,40}\Z")
EVENT_VALUE = re.compile(r"\$\{pactbroker\.")


def wait_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date), else X-RateLimit-Reset or RateLimit-Reset (epoch)."""
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    seconds = retry_after_seconds(lowered.get("retry-after"))
    reset = lowered.get("x-ratelimit-reset") or lowered.get("ratelimit-reset", "")  # GitHub's, GitLab's: epoch
    if seconds is None and reset.isdigit():
        seconds = max(0.0, float(reset) - time.time())
    return seconds


def target_message(body: Any) -> str:
    """The error text a target put in its answer: a JSON message/error field, else the start of the body."""
    data = body
    if isinstance(body, (str, bytes)):
        try:
            data = json.loads(body)
        except ValueError:
            text = body if isinstance(body, str) else body.decode("utf-8", "replace")
            if text.lstrip().startswith("<"):  # an HTML error page: its words, without markup
                text = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.DOTALL | re.IGNORECASE)
            return " ".join(text.split())[:300]
    if isinstance(data, dict):
        for key in ("message", "error_message", "error", "errors"):
            if data.get(key):
                return str(data[key])[:300]
    return json.dumps(data)[:300] if data else ""


def fail(response: Response, requests_made: list[Request], detail: str = "",
         retry_after: float | None = None) -> DeliveryError:
    """The error for a non-2xx answer (decided as for `request` webhooks), with the target's own message."""
    try:
        classify(response, requests_made, {})
    except DeliveryError as exc:
        message = f"{exc.message}: {detail}" if detail else exc.message
        if exc.retryable:
            wait = retry_after if retry_after is not None else wait_seconds(response.headers)
            return type(exc)(message, response=response, retry_after=wait)
        return type(exc)(message, response=response)
    return PermanentDeliveryError(f"unexpected success status {response.status}", response=response)


def endpoint(render: Any, template: str, field: str) -> str:
    """A base URL field rendered (secrets only: event values may not choose where a request goes), checked."""
    if EVENT_VALUE.search(template):
        raise PermanentDeliveryError(f"{field} uses an event value (${{pactbroker.*}}); an event must not choose "
                                     "the endpoint; not sent")
    return checked_url(render(template, "text").strip().rstrip("/"), field)


def template_or(pattern: re.Pattern, value: Any) -> bool:
    """True when a field is a template (checked after rendering) or already matches `pattern`."""
    return isinstance(value, str) and ("${" in value or bool(pattern.match(value)))


def url_problem(value: Any) -> str | None:
    """Why a base URL field is unusable at save time, or None."""
    if not isinstance(value, str):
        return "must be a string"
    parts = split_url(value)
    if parts is None:
        return "must be an http(s) URL with a host"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    if carries_credentials(parts):
        return ("must not carry credentials (user:password@): URLs are shown in responses and logs; "
                "use the secret fields")
    if "${" in parts.netloc:
        return "must not have a template in its host"
    if EVENT_VALUE.search(value):
        return "must not contain event values (${pactbroker.*}): an event must not choose the endpoint"
    if any(dot_segment(segment) for segment in parts.path.split("/")):
        return "must not have a '.' or '..' path segment"
    return None
