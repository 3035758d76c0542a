"""The Pact Broker-compatible `request` webhook: any HTTP request, optionally Standard Webhooks-signed."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import requests
from standardwebhooks.webhooks import Webhook as StandardWebhook

from integrations.base import (
    DEBOUNCE,
    READ_LIMIT,
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
    checked_url,
)

RETRYABLE_STATUSES = {408, 425, 429}


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def to_response(resp: requests.Response) -> Response:
    body = resp.content[:READ_LIMIT].decode(resp.encoding or "utf-8", errors="replace")
    return Response(status=resp.status_code, headers=dict(resp.headers), body=body)


def classify(resp: Response, requests_made: list[Request], headers: Mapping[str, str] | None = None) -> Result:
    """2xx is success; 408/425/429/5xx retry (honouring Retry-After); any other status fails for good."""
    if 200 <= resp.status < 300:
        return Result(requests=requests_made, response=resp)
    retry_after = retry_after_seconds({k.lower(): v for k, v in (headers or resp.headers).items()}.get("retry-after"))
    message = f"HTTP {resp.status} from target"
    if resp.status in RETRYABLE_STATUSES or resp.status >= 500:
        raise RetryableDeliveryError(message, response=resp, retry_after=retry_after)
    raise PermanentDeliveryError(message, response=resp)


def perform(session: requests.Session, req: Request, timeout: tuple[float, float]) -> Response:
    """Send one request without following redirects; transport failures become retryable errors."""
    try:
        resp = session.request(req.method, req.url, headers=wire_headers(req.headers),
                               data=req.body.encode() if req.body is not None else None,
                               auth=req.auth, timeout=timeout, allow_redirects=False)
    except requests.Timeout as exc:
        raise RetryableDeliveryError(f"timed out: {type(exc).__name__}") from None
    except requests.ConnectionError as exc:
        raise RetryableDeliveryError(f"connection failed: {_root_cause(exc)}") from None
    except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError) as exc:
        raise PermanentDeliveryError(f"invalid request: {exc}") from None
    return to_response(resp)


def wire_headers(headers: Mapping[str, str]) -> dict[str, str | bytes]:
    """Header values as sent: http.client encodes text as Latin-1, so anything beyond it goes as UTF-8 bytes
    (a consumer named in Chinese must not make the delivery fail)."""
    out: dict[str, str | bytes] = {}
    for name, value in headers.items():
        try:
            value.encode("latin-1")
            out[name] = value
        except UnicodeEncodeError:
            out[name] = value.encode("utf-8")
    return out


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return str(exc).split(": ", 1)[-1] if "Failed to establish" in str(exc) else str(exc)


def check_header(name: str, value: str) -> None:
    if any(c in value or c in name for c in "\r\n\0"):
        raise PermanentDeliveryError(f"header {name!r} contains a line break after rendering; not sent")


class HttpRequest(Integration):
    name = "request"
    title = "HTTP request (Pact Broker compatible)"
    capabilities = frozenset({DEBOUNCE})
    sample: ClassVar[dict[str, Any]] = {"method": "POST", "url": "https://ci.example.com/hooks/pact",
                                        "headers": {"Content-Type": "application/json"},
                                        "body": {"pact_url": "${pactbroker.pactUrl}"}}
    fields = {
        "method": Field(required=True, template=False, default="POST"),
        "url": Field(required=True, endpoint=True),
        "headers": Field(kind="map", default={}),
        "body": Field(kind="json"),
        "username": Field(),
        "password": Field(secret=True),
        "sign": Field(kind="bool", template=False, default=False),
    }

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        if config.get("password") and not config.get("username"):
            return {"username": ["is required when a password is given"]}
        return {}

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> Request:
        headers = {}
        for name, value in (config.get("headers") or {}).items():
            rendered = render(str(value), "header")
            check_header(name, rendered)
            headers[name] = rendered
        body = config.get("body")
        if isinstance(body, (dict, list)):
            body = json.dumps(render(body, "json"), separators=(",", ":"), ensure_ascii=False)
        elif body is not None:
            body = render(str(body), "text")
        auth = None
        if config.get("username"):
            auth = (render(config["username"], "header"), render(config.get("password") or "", "header"))
        url = checked_url(render(config["url"], "url"), "url")
        return Request(method=str(config.get("method") or "POST").upper(), url=url,
                       headers=headers, body=body, auth=auth)

    def send(self, built: Request, ctx: Context) -> Result:
        ctx.check_url(built.url)
        req = built
        signing_secret = ctx.extra.get("signing_secret")
        if signing_secret:
            req = Request(built.method, built.url, dict(built.headers), built.body, built.auth)
            req.headers.update(sign(signing_secret, ctx.delivery_id, req.body or ""))
        return classify(perform(ctx.session, req, ctx.timeout), [req])


def sign(secret: str, message_id: str, body: str, timestamp: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for one send; the id stays the same across retries."""
    ts = datetime.fromtimestamp(timestamp or time.time(), tz=UTC)
    signature = StandardWebhook(secret).sign(message_id, ts, body)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(ts.timestamp())),
            "webhook-signature": signature}
