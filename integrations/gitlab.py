"""GitLab commit statuses (REST API v4, GitLab.com or self-managed) over the relay's guarded requests session."""

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
    FieldErrors,
    Integration,
    PermanentDeliveryError,
    Render,
    Request,
    Response,
    Result,
    shown,
)
from integrations.github import cut, default_description, state_for
from integrations.http import perform
from integrations.outcome import COMMIT_SHA, endpoint, fail, target_message, template_or, url_problem

# A numeric id, or a namespace path: groups and subgroups, then the project, each a GitLab path segment.
# https://docs.gitlab.com/user/reserved_names/#rules-for-usernames-project-and-group-names-and-slugs
SEGMENT = r"(?!\.{1,2}(?:/|\Z))[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}"
PROJECT = re.compile(rf"^(?:[1-9][0-9]{{0,18}}|{SEGMENT}(?:/{SEGMENT}){{1,20}})\Z")
# https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
STATES = {"pending": "pending", "success": "success", "failure": "failed", "error": "failed"}
DESCRIPTION_LIMIT = 255


def gitlab_state(variables: Mapping[str, str]) -> str:
    """A pact awaiting a verification that was asked for is `running`; otherwise GitHub's state, in GitLab's words."""
    if variables.get("eventName") == "contract_requiring_verification_published":
        return "running"
    return STATES[state_for(variables)]


@dataclass(frozen=True)
class GitLabCommitStatus:
    """One status set on every commit in `shas` of `project`."""

    base_url: str
    project: str
    shas: tuple[str, ...]
    state: str
    name: str
    description: str
    target_url: str
    token: str = field(default="", repr=False)

    def requests(self, token: str = "<token>") -> list[Request]:
        body = {"state": self.state, "name": self.name, "target_url": self.target_url or None,
                "description": self.description}
        text = json.dumps({k: v for k, v in body.items() if v is not None}, ensure_ascii=False)
        project = quote(self.project, safe="")  # group/project is ONE path segment: group%2Fproject
        return [Request("POST", f"{self.base_url}/api/v4/projects/{project}/statuses/{sha}",
                        {"PRIVATE-TOKEN": token, "Content-Type": "application/json", "Accept": "application/json"},
                        text) for sha in self.shas]


def commit_shas(rendered: str, template: Any) -> tuple[str, ...]:
    """The rendered `sha` field as commit shas, or a PermanentDeliveryError saying why not (quoting the value only
    when no secret went into it)."""
    shas = tuple(dict.fromkeys(s.strip() for s in rendered.split(",") if s.strip()))
    if not shas:
        raise PermanentDeliveryError("sha is empty after rendering; nothing to set a status on")
    for sha in shas:
        if not COMMIT_SHA.match(sha):
            raise PermanentDeliveryError(f"sha {shown(template, sha)} is not a commit sha (7 to 40 hex digits) after "
                                         "rendering; set the consumer version to the git sha or set sha")
    return shas


def sha_problem(value: Any) -> str | None:
    if value and "${" not in str(value) and not all(COMMIT_SHA.match(s.strip()) for s in str(value).split(",")):
        return "must be commit shas (7 to 40 hex digits), comma-separated, or a template"
    return None


class CommitStatus(Integration):
    """What GitLab's and Bitbucket's commit statuses share: where the status goes (`place`: a project or a
    repository, checked against `place_pattern`), the commit shas, the base URL, and the supersede key."""

    place: ClassVar[str]
    place_pattern: ClassVar[re.Pattern[str]]
    place_rule: ClassVar[str]
    key_field: ClassVar[str]
    key_limit: ClassVar[int | None] = None

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        errors: FieldErrors = {}
        place = config.get(self.place)
        if place is not None and not template_or(self.place_pattern, str(place)):
            errors[self.place] = [self.place_rule]
        if problem := sha_problem(config.get("sha")):
            errors["sha"] = [problem]
        if config.get("base_url") and url_problem(config["base_url"]):
            errors["base_url"] = [url_problem(config["base_url"])]
        return errors

    def _value(self, config: Mapping[str, Any], render: Render, name: str, location: str = "text") -> str:
        return render(str(config.get(name) or self.fields[name].default or ""), location).strip()

    def shas(self, config: Mapping[str, Any], render: Render) -> tuple[str, ...]:
        return commit_shas(self._value(config, render, "sha"), config.get("sha") or self.fields["sha"].default)

    def supersede_key(self, config: Mapping[str, Any], render: Render) -> tuple:
        shas = sorted({s.strip() for s in self._value(config, render, "sha").split(",") if s.strip()})
        return (self._value(config, render, "base_url").rstrip("/"), self._value(config, render, self.place),
                tuple(shas), self._value(config, render, self.key_field)[:self.key_limit])


class GitLab(CommitStatus):
    name = "gitlab"
    place, place_pattern, key_field = "project", PROJECT, "name"
    place_rule = "must be a numeric project id or a group/project path"
    shows_failure = True
    title = "GitLab commit status"
    capabilities = frozenset({SUPERSEDE})
    default_events = ("contract_published", "provider_verification_published")
    sample: ClassVar[dict[str, Any]] = {"project": "pact-foundation/matching-service",
                                        "sha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                                        "token": "${user.GitLabToken}"}
    fields: ClassVar[dict[str, Field]] = {
        "project": Field(required=True, help="numeric id or group/project (subgroups as group/sub/project)"),
        "sha": Field(default="${pactbroker.consumerVersionNumber}", help="commit(s), comma-separated"),
        "name": Field(default="pact/${pactbroker.providerName}", help="the status name (GitLab's context)"),
        "description": Field(help="default: a sentence per event; cut to 255 characters"),
        "target_url": Field(help="default: the verification result URL, else the pact URL"),
        "token": Field(required=True, secret=True, help="access token with the api scope, sent as PRIVATE-TOKEN"),
        "base_url": Field(default="https://gitlab.com", help="self-managed: https://gitlab.example.com",
                          endpoint=True),
    }

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> GitLabCommitStatus:
        def value(name: str, location: str = "text") -> str:
            return self._value(config, render, name, location)

        project = value("project")
        if not PROJECT.match(project):
            raise PermanentDeliveryError(f"project {shown(config.get('project'), project)} is not a project id or "
                                         "group/project after rendering")
        target = value("target_url") or variables.get("verificationResultUrl") or variables.get("pactUrl") or ""
        description = value("description") or default_description(state_for(variables), variables)
        shas = self.shas(config, render)
        return GitLabCommitStatus(
            base_url=endpoint(render, config.get("base_url") or self.fields["base_url"].default, "base_url"),
            project=project, shas=shas, state=gitlab_state(variables), name=value("name"),
            description=cut(description, DESCRIPTION_LIMIT), target_url=target, token=value("token", "header"))

    def describe(self, built: GitLabCommitStatus) -> list[Request]:
        return built.requests()

    def send(self, built: GitLabCommitStatus, ctx: Context) -> Result:
        logged = built.requests()
        ctx.check_url(built.base_url)
        response: Response | None = None
        for real in built.requests(built.token):
            response = perform(ctx.session, real, ctx.timeout)
            if not 200 <= response.status < 300:  # a 429 waits for Retry-After, else RateLimit-Reset (outcome.fail)
                raise fail(response, logged, f"GitLab: {target_message(response.body) or response.status}")
        return Result(requests=logged, response=response,
                      note=f"status {built.state} set on {len(built.shas)} commit(s) of {built.project}")

