"""Bitbucket Cloud commit build statuses (REST API 2.0) over the relay's guarded requests session."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from integrations.base import (
    SUPERSEDE,
    Context,
    Field,
    PermanentDeliveryError,
    Render,
    Request,
    Response,
    Result,
    shown,
)
from integrations.github import cut, default_description, state_for
from integrations.gitlab import CommitStatus
from integrations.http import perform
from integrations.outcome import endpoint, fail, target_message

# A workspace id is letters, digits, '-' and '_'; a repository slug adds '.', never being '.' or '..'.
REPOSITORY = re.compile(r"^[A-Za-z0-9_-]{1,100}/(?!\.{1,2}\Z)[A-Za-z0-9_.-]{1,100}\Z")
# https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/
STATES = {"pending": "INPROGRESS", "success": "SUCCESSFUL", "failure": "FAILED", "error": "FAILED"}
KEY_LIMIT = 40
DESCRIPTION_LIMIT = 255


@dataclass(frozen=True)
class BuildStatus:
    """One build status set on every commit in `shas` of `repository`."""

    base_url: str
    repository: str
    shas: tuple[str, ...]
    state: str
    key: str
    description: str
    url: str
    token: str = field(default="", repr=False)

    def requests(self, token: str = "<token>") -> list[Request]:
        body = json.dumps({"key": self.key, "state": self.state, "url": self.url, "description": self.description},
                          ensure_ascii=False)
        workspace, slug = (quote(part, safe="") for part in self.repository.split("/"))
        return [Request("POST", f"{self.base_url}/2.0/repositories/{workspace}/{slug}/commit/{sha}/statuses/build",
                        {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                         "Accept": "application/json"}, body) for sha in self.shas]


class Bitbucket(CommitStatus):
    name = "bitbucket"
    place, place_pattern, key_field, key_limit = "repository", REPOSITORY, "key", KEY_LIMIT
    place_rule = "must be workspace/repo_slug"
    shows_failure = True
    title = "Bitbucket Cloud build status"
    capabilities = frozenset({SUPERSEDE})
    default_events = ("contract_published", "provider_verification_published")
    sample: ClassVar[dict[str, Any]] = {"repository": "pact-foundation/matching-service",
                                        "sha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                                        "token": "${user.BitbucketToken}"}
    fields: ClassVar[dict[str, Field]] = {
        "repository": Field(required=True, help="workspace/repo_slug"),
        "sha": Field(default="${pactbroker.consumerVersionNumber}", help="commit(s), comma-separated"),
        "key": Field(default="pact-${pactbroker.providerName}", help="identifies the status on the commit; "
                     "at most 40 characters (longer keys are cut)"),
        "description": Field(help="default: a sentence per event; cut to 255 characters"),
        "url": Field(help="the status link; default: the verification result URL, else the pact URL"),
        "token": Field(required=True, secret=True, help="access token (repository:write), sent as Bearer"),
        "base_url": Field(default="https://api.bitbucket.org", endpoint=True),
    }

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> BuildStatus:
        def value(name: str, location: str = "text") -> str:
            return self._value(config, render, name, location)

        repository = value("repository")
        if not REPOSITORY.match(repository):
            raise PermanentDeliveryError(f"repository {shown(config.get('repository'), repository)} is not "
                                         "workspace/repo_slug after rendering")
        key = value("key")[:KEY_LIMIT]
        if not key:
            raise PermanentDeliveryError("key is empty after rendering")
        url = value("url") or variables.get("verificationResultUrl") or variables.get("pactUrl") or ""
        if not url:
            raise PermanentDeliveryError("url is empty after rendering, and Bitbucket requires a link; set url")
        state = state_for(variables)
        shas = self.shas(config, render)
        return BuildStatus(
            base_url=endpoint(render, config.get("base_url") or self.fields["base_url"].default, "base_url"),
            repository=repository, shas=shas, state=STATES[state], key=key,
            description=cut(value("description") or default_description(state, variables), DESCRIPTION_LIMIT),
            url=url, token=value("token", "header"))

    def describe(self, built: BuildStatus) -> list[Request]:
        return built.requests()

    def send(self, built: BuildStatus, ctx: Context) -> Result:
        logged = built.requests()
        ctx.check_url(built.base_url)
        response: Response | None = None
        for real in built.requests(built.token):
            response = perform(ctx.session, real, ctx.timeout)
            if not 200 <= response.status < 300:  # a 429 waits for Retry-After when Bitbucket sends one
                raise fail(response, logged, f"Bitbucket: {bitbucket_message(response.body) or response.status}")
        return Result(requests=logged, response=response,
                      note=f"build status {built.state} set on {len(built.shas)} commit(s) of {built.repository}")


def bitbucket_message(body: str) -> str:
    """Bitbucket puts its words in {"type": "error", "error": {"message": ..., "detail": ...}}."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        detail = f" ({error['detail']})" if isinstance(error.get("detail"), str) else ""
        return f"{error['message']}{detail}"[:300]
    return target_message(body)
