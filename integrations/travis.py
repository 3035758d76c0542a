"""Travis CI build requests (API v3) over the relay's guarded requests session."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from integrations.base import (
    DEBOUNCE,
    Context,
    Field,
    FieldErrors,
    Integration,
    PermanentDeliveryError,
    Render,
    Request,
    Result,
    shown,
)
from integrations.http import perform
from integrations.outcome import OWNER_NAME, endpoint, fail, target_message, template_or, url_problem

MERGE_MODES = ("replace", "merge", "deep_merge", "deep_merge_append", "deep_merge_prepend")


@dataclass(frozen=True)
class TravisRequest:
    """One API v3 build request: https://docs.travis-ci.com/user/triggering-builds"""

    base_url: str
    repository: str
    branch: str
    message: str
    env: dict[str, str]
    merge_mode: str
    token: str = field(default="", repr=False)

    def body(self) -> dict[str, Any]:
        request: dict[str, Any] = {"branch": self.branch, "message": self.message}
        if self.env:
            # KEY=value lines as in .travis.yml; values shell-quoted because Travis exports them verbatim
            request["config"] = {"merge_mode": self.merge_mode,
                                 "env": {"global": [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]}}
        return {"request": request}

    def request(self, token: str = "<token>") -> Request:
        return Request("POST", f"{self.base_url}/repo/{quote(self.repository, safe='')}/requests",
                       {"Travis-API-Version": "3", "Authorization": f"token {token}",
                        "Content-Type": "application/json", "Accept": "application/json"},
                       json.dumps(self.body(), ensure_ascii=False))


class Travis(Integration):
    name = "travis"
    title = "Travis CI build request"
    capabilities = frozenset({DEBOUNCE})
    sample: ClassVar[dict[str, Any]] = {
        "repository": "pact-foundation/animal-profile-service", "branch": "main", "token": "${user.TravisToken}",
        "env": {"PACT_URL": "${pactbroker.pactUrl}", "PACT_WHY": "${pactbroker.providerVersionDescriptions}"}}
    fields: ClassVar[dict[str, Field]] = {
        "repository": Field(required=True, help="owner/name"),
        "branch": Field(required=True),
        "message": Field(default="Pact Relay: ${pactbroker.eventName} for ${pactbroker.consumerName} "
                                 "${pactbroker.consumerVersionNumber}"),
        "env": Field(kind="map", default={}, help="environment variables for the build"),
        "merge_mode": Field(template=False, default="deep_merge_append",
                            help="how env merges with .travis.yml: " + ", ".join(MERGE_MODES)),
        "token": Field(required=True, secret=True, help="Travis API token"),
        "base_url": Field(default="https://api.travis-ci.com", endpoint=True),
    }

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        errors: FieldErrors = {}
        if config.get("repository") and not template_or(OWNER_NAME, config["repository"]):
            errors["repository"] = ["must be owner/name"]
        env = config.get("env")
        if env is not None and not (isinstance(env, dict) and all(str(k).isidentifier() for k in env)):
            errors["env"] = ["must be a map of variable names (letters, digits, _) to values"]
        if config.get("merge_mode", MERGE_MODES[3]) not in MERGE_MODES:
            errors["merge_mode"] = [f"must be one of {', '.join(MERGE_MODES)}"]
        if config.get("base_url") and url_problem(config["base_url"]):
            errors["base_url"] = [url_problem(config["base_url"])]
        return errors

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> TravisRequest:
        def value(name: str, location: str = "text") -> str:
            return render(str(config.get(name) or self.fields[name].default or ""), location).strip()

        repository = value("repository")
        if not OWNER_NAME.match(repository):
            raise PermanentDeliveryError(f"repository {shown(config.get('repository'), repository)} is not "
                                         "owner/name after rendering")
        branch = value("branch")
        if not branch:
            raise PermanentDeliveryError("branch is empty after rendering")
        env = {str(k): render(str(v), "text") for k, v in (config.get("env") or {}).items()}
        base_url = endpoint(render, config.get("base_url") or self.fields["base_url"].default, "base_url")
        return TravisRequest(base_url=base_url, repository=repository, branch=branch,
                             message=value("message"), env=env,
                             merge_mode=config.get("merge_mode") or self.fields["merge_mode"].default,
                             token=value("token", "header"))

    def describe(self, built: TravisRequest) -> list[Request]:
        return [built.request()]

    def send(self, built: TravisRequest, ctx: Context) -> Result:
        logged = built.request()
        ctx.check_url(logged.url)
        response = perform(ctx.session, built.request(built.token), ctx.timeout)
        if not 200 <= response.status < 300:
            raise fail(response, [logged], f"Travis: {target_message(response.body) or response.status}")
        try:
            answer = json.loads(response.body)
            note = f"build request {answer['request']['id']} accepted"
            if "remaining_requests" in answer:
                note += f" (remaining_requests: {answer['remaining_requests']})"
        except (ValueError, KeyError, TypeError):
            note = "build request accepted"
        return Result(requests=[logged], response=response, note=note)
