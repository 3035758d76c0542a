"""What every integration declares and returns: fields, outgoing requests, results and errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import SplitResult, unquote, urlsplit

FieldErrors = dict[str, list[str]]
DEBOUNCE = "debounce"  # a CI trigger: one build for a burst of events (webhook `debounce`)
SUPERSEDE = "supersede_key"  # a status: a newer send for the same supersede_key makes an older one moot
ONLY_FAILURES = "only_failures"  # a message: the `only_failures` option skips every other event


def split_url(url: str) -> SplitResult | None:
    """urlsplit, or None for what it cannot parse (bad IPv6 brackets, a port out of range)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError:
        return None
    return parts


def url_host(url: str) -> str | None:
    """`host` or `host:port` of a URL whose host is not a template; None otherwise."""
    parts = split_url(url)
    if parts is None or not parts.hostname or "${" in parts.netloc:
        return None
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


def carries_credentials(parts: SplitResult) -> bool:
    """True for `scheme://user:password@host`: such a URL would show its secret wherever the URL is shown."""
    return "@" in parts.netloc


SEPARATORS = re.compile(r"[/\\]")  # "\\" too: IIS and some Java and Windows servers read it as "/"


def dot_segment(part: str) -> bool:
    """True for a path segment that is, or decodes to, '.' or '..' (%2e%2e, %252e...), or holds one between
    separators a server may resolve ('..%5C..%5Cadmin', 'a%2F..'): servers resolve those."""
    for _ in range(3):
        if any(piece in (".", "..") for piece in SEPARATORS.split(part)):
            return True
        decoded = unquote(part)
        if decoded == part:
            return False
        part = decoded
    return any(piece in (".", "..") for piece in SEPARATORS.split(part))


def path_problem(url: str) -> str | None:
    """Why a rendered URL would not reach the endpoint it names: a dot segment or a control character."""
    if any(ord(c) < 33 or c == "\x7f" for c in url):
        return "contains a space or control character after rendering"
    parts = split_url(url)
    if parts is None:
        return "is not a valid URL after rendering"
    if any(dot_segment(segment) for segment in parts.path.split("/")):
        return "has a '.' or '..' path segment after rendering (an event value must not change the endpoint)"
    return None


def shown(template: Any, value: str, limit: int = 80) -> str:
    """How an error message quotes a rendered value: cut to `limit`, and never when a secret went into it (the
    redactor masks whole values only, and a cut or repr() is another spelling)."""
    if "${user." in str(template):
        return "(rendered from a secret; not shown)"
    return repr(value[:limit])


def checked_url(url: str, field: str) -> str:
    """`url` when its path stays where it points, else a PermanentDeliveryError naming the field."""
    problem = path_problem(url)
    if problem:
        raise PermanentDeliveryError(f"{field} {problem}; not sent")
    return url


class DeliveryError(Exception):
    """A send that did not succeed; `response` is what the target answered, if anything."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, response: Response | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.response = response
        self.retry_after = retry_after


class RetryableDeliveryError(DeliveryError):
    """Try again later (connection error, timeout, 408, 425, 429, 5xx, rate limit)."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """Trying again cannot help (other 4xx, refused address, bad configuration)."""


@dataclass(frozen=True)
class Field:
    """One config field of an integration: templated unless `template=False`, secret fields never echoed."""

    kind: str = "str"  # str | map | bool | int
    required: bool = False
    secret: bool = False
    template: bool = True
    default: Any = None
    help: str = ""
    endpoint: bool = False  # the URL requests go to: per-host limits read its host


@dataclass
class Request:
    """An outgoing HTTP request, fully rendered; what the attempt log shows (after redaction)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    auth: tuple[str, str] | None = None

    def to_log(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "headers": dict(self.headers), "body": self.body}


# The variables given to build() may carry why a failed verification failed, under this key: a name no
# ${pactbroker.X} template can reach (X is [A-Za-z0-9_]+). Its value: {"interactions": n, "mismatches": n,
# "first": [{"description", "attribute", "path", "message"}, ...], "reason": str | None, "url": str,
# "all": [{"description", "providerStates", "mismatches": [...]}, ...] (every interaction kept, for a check run),
# "verifier": {"name", "version"} | None, "truncated": bool}.
FAILURE = "relay.failure"


# With a GitHub webhook's `can_i_deploy` option, the broker's answer for the event's version, under this key:
# {"state": "yes" | "no" | "unknown", "reason": str, "to": "environment production" | "tag prod"}.
CAN_I_DEPLOY = "relay.can_i_deploy"


def failure_of(variables: Mapping[str, Any]) -> Mapping[str, Any] | None:
    found = variables.get(FAILURE)
    return found if isinstance(found, Mapping) else None


def mismatch_line(mismatch: Mapping[str, Any]) -> str:
    """One mismatch in words: `body $.age: Expected 73 but got "73"`."""
    where = " ".join(str(mismatch[k]) for k in ("attribute", "path") if mismatch.get(k))
    what = mismatch.get("message") or (f"expected {mismatch.get('expected')}, got {mismatch.get('actual')}")
    return f"{where}: {what}" if where else str(what)


# How much of a target's answer the attempt log keeps (DESIGN §7: 4 KiB), cut after redaction; and how much is
# read for it: enough past the cut that a secret starting before the cut is whole when it is redacted.
LOG_BODY_LIMIT = 4096
READ_LIMIT = LOG_BODY_LIMIT + 16 * 1024


@dataclass
class Response:
    """What the target answered; the attempt log keeps the first LOG_BODY_LIMIT characters of the redacted body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def to_log(self) -> dict[str, Any]:
        return {"status": self.status, "headers": dict(self.headers), "body": self.body[:READ_LIMIT]}


@dataclass
class Result:
    """A send that did not fail: the requests made and the responses received (several for some targets).
    `skipped` holds the reason when the integration chose to send nothing for this event."""

    requests: list[Request]
    response: Response | None
    note: str = ""
    skipped: str = ""  # the integration chose not to send, and why; nothing was sent


@dataclass(frozen=True)
class Context:
    """Everything `send` may use besides the built request: the guarded HTTP session and timeouts."""

    session: Any  # requests.Session from Guard.session(); connections are checked by Guard.enforced()
    check_url: Callable[[str], None]  # raises PermanentDeliveryError for a URL the policy refuses
    timeout: tuple[float, float] = (5.0, 15.0)
    delivery_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


Render = Callable[[Any, str], Any]
"""render(template, location): location 'url' (values form-encoded), 'header' or 'text' (raw) for a
string, 'json' for any JSON value (strings inside rendered raw, so the result stays valid JSON)."""


class Integration:
    """Base of every integration module's class; subclasses are registered in integrations/__init__.py."""

    name: ClassVar[str]
    title: ClassVar[str]
    fields: ClassVar[dict[str, Field]]
    # Whether build() shows why a verification failed (FAILURE): the first send of a failed verification then
    # waits briefly for the relay to read it from the broker.
    shows_failure: ClassVar[bool] = False
    # The events a webhook of this kind reacts to when it names none.
    default_events: ClassVar[tuple[str, ...]] = ("contract_content_changed",)
    # A configuration that validates, with ${user.NAME} references for its secrets: docs, forms, the harness.
    sample: ClassVar[dict[str, Any]] = {}
    # What the core does for this kind: DEBOUNCE (CI triggers), SUPERSEDE (statuses), ONLY_FAILURES (messages).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # The host a configuration sends to when its URL sits in a secret field (sealed at rest): Slack's hooks.
    secret_url_host: ClassVar[str] = ""

    def host(self, config: Mapping[str, Any], reveal: Callable[[str], str] | None = None) -> str | None:
        """The host (and port) this configuration sends to, for per-host limits; None when it cannot tell.
        `reveal(value)` gives a secret field's plain value (a sealed literal or a ${user.X} reference)."""
        for name, spec in self.fields.items():
            value = config.get(name) or spec.default
            if not spec.endpoint or not isinstance(value, str) or not value:
                continue
            if spec.secret:
                if self.secret_url_host:
                    return self.secret_url_host
                if reveal is None:
                    continue
                try:
                    value = reveal(value)
                except Exception:  # a missing secret fails the send itself, with its reason
                    continue
            host = url_host(value) if "://" in value else None
            if host:
                return host
        return None

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        """Type and presence checks beyond the declared fields; {} when fine."""
        return {}

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> Any:
        """Pure: the rendered outgoing request(s) for one event. No I/O."""
        raise NotImplementedError

    def send(self, built: Any, ctx: Context) -> Result:
        """Perform the request(s); raise RetryableDeliveryError / PermanentDeliveryError on failure."""
        raise NotImplementedError

    def supersede_key(self, config: Mapping[str, Any], render: Render) -> Any:
        """What a newer send of the same webhook makes moot (GitHub: repository, commit and context); None: nothing."""
        return None

    def credentials(self, built: Any) -> list[tuple[str, str]]:
        """(username, password) pairs `send` puts in an HTTP basic-auth header beyond its requests' `auth`, so
        their base64 form is masked wherever the target echoes them."""
        return []

    def describe(self, built: Any) -> list[Request]:
        """The requests `built` stands for, for the attempt log when sending fails before any response."""
        return built if isinstance(built, list) else [built]
