"""${pactbroker.NAME} and ${user.NAME} templates: single pass, escaped by where they stand."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote_plus, urlsplit

VARIABLES = (
    "pactUrl", "verificationResultUrl", "consumerVersionNumber", "providerVersionNumber",
    "providerVersionTags", "providerVersionBranch", "providerVersionDescriptions", "consumerVersionTags",
    "consumerVersionBranch", "consumerName", "providerName", "githubVerificationStatus",
    "bitbucketVerificationStatus", "azureDevOpsVerificationStatus", "gitlabVerificationStatus",
    "consumerLabels", "providerLabels", "eventName", "buildUrl", "currentlyDeployedProviderVersionNumber",
)
KNOWN = frozenset(VARIABLES)
PLACEHOLDER = re.compile(r"\$\{(pactbroker|user)\.([A-Za-z0-9_]+)\}")
LOCATIONS = ("url", "header", "text", "json")
# What the values substituted into one request may add up to: an event is at most 256 KiB, but a template may
# repeat a value a thousand times (100 MB stored per attempt was seen), so the total is what is capped.
MAX_RENDERED = 1024 * 1024
# What may stand next to placeholders in a credential field that holds no credential itself: an HTTP
# authentication scheme (`Bearer ${user.CIToken}`), separators and spaces.
SCHEMES = r"bearer|basic|token|bot|digest|apikey|api-key|key|oauth|jwt|sso-key|ssws"
REFERENCE_ONLY_REST = re.compile(rf"\s*(?:(?:{SCHEMES})\b)?[\s:]*", re.I)


class RenderedTooLarge(ValueError):
    """The values substituted into one request exceed MAX_RENDERED."""

    def __init__(self):
        super().__init__(f"the rendered request is larger than {MAX_RENDERED // 1024} KiB of substituted values; "
                         "not sent (repeat a value fewer times, or send less of it)")


class MissingSecret(LookupError):
    """A ${user.NAME} names no stored secret."""

    def __init__(self, name: str):
        super().__init__(f"secret {name!r} does not exist")
        self.name = name


def references(value: Any) -> Iterator[tuple[str, str]]:
    """Every (namespace, name) placeholder in a template, nested JSON included."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield match.group(1), match.group(2)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from references(key)
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def reference_only(value: Any) -> bool:
    """True for a credential field that only names where its value comes from (`Bearer ${user.CIToken}`):
    such a template is not secret and is shown; a literal credential in it would be sealed and masked."""
    return (isinstance(value, str) and PLACEHOLDER.search(value) is not None
            and REFERENCE_ONLY_REST.fullmatch(PLACEHOLDER.sub(" ", value)) is not None)


def template_errors(value: Any, secret_names: set[str]) -> list[str]:
    """Save-time problems: unknown ${pactbroker.X} names and ${user.X} naming a missing secret."""
    errors = []
    for namespace, name in references(value):
        if namespace == "pactbroker" and name not in KNOWN:
            errors.append(f"unknown variable ${{pactbroker.{name}}}")
        elif namespace == "user" and name not in secret_names:
            errors.append(f"secret ${{user.{name}}} does not exist")
    return sorted(set(errors))


def host_is_templated(url: str) -> bool:
    """True when a placeholder stands in the scheme or host part of a URL template."""
    netloc_end = url.find("/", url.find("//") + 2) if "//" in url else -1
    authority = url if netloc_end < 0 else url[:netloc_end]
    if PLACEHOLDER.search(authority):
        return True
    try:
        return not urlsplit(PLACEHOLDER.sub("x", url)).hostname
    except ValueError:  # unparseable: no host to speak of
        return True


class Renderer:
    """Renders templates for one event; `used` collects the secret values substituted, for redaction."""

    def __init__(self, variables: Mapping[str, str], secrets: Callable[[str], str]):
        self.variables = variables
        self.secrets = secrets
        self.used: set[str] = set()
        self.rendered = 0  # characters substituted so far, against MAX_RENDERED

    def _value(self, match: re.Match) -> str | None:
        namespace, name = match.group(1), match.group(2)
        if namespace == "pactbroker":
            if name not in KNOWN:
                return None
            return self.variables.get(name, "") or ""
        value = self.secrets(name)
        if value:
            self.used.add(value)
        return value

    def render_string(self, template: str, location: str) -> str:
        escape = (lambda v: quote_plus(v, safe="")) if location == "url" else (lambda v: v)

        def substitute(match: re.Match) -> str:
            value = self._value(match)
            if value is None:
                return match.group(0)
            self.rendered += len(value)
            if self.rendered > MAX_RENDERED:
                raise RenderedTooLarge()
            return escape(value)

        return PLACEHOLDER.sub(substitute, template)

    def __call__(self, template: Any, location: str) -> Any:
        if location == "json":
            return self._render_json(template)
        if location not in LOCATIONS:
            raise ValueError(f"unknown template location {location!r}")
        return self.render_string(template, location)

    def _render_json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.render_string(value, "text")
        if isinstance(value, dict):
            return {self.render_string(k, "text"): self._render_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._render_json(v) for v in value]
        return value
