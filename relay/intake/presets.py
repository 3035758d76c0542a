"""Ready-made `request` webhooks for CI systems and commit statuses without a typed integration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from integrations.base import FieldErrors, dot_segment, split_url

MARK = re.compile(r"\{\{([a-z_]+)\}\}")
SECRET_NAME = re.compile(r"[A-Za-z0-9]+")
WEBHOOK_KEYS = ("description", "consumer", "provider", "enabled", "events")
VERIFY_EVENTS = ("contract_requiring_verification_published",)
STATUS_EVENTS = ("contract_published", "provider_verification_published")
JSON = {"Content-Type": "application/json"}


class PresetError(ValueError):
    """An unknown preset or bad parameters; `errors` maps each field to its problems (a 400 at save time)."""

    def __init__(self, errors: FieldErrors):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Param:
    required: bool = False
    default: str | None = None
    help: str = ""
    slashes: bool = False  # may keep "/" when inserted in a URL path (e.g. a CircleCI project slug)
    kind: str = "text"  # text | secret (a secret's name) | base_url


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    events: tuple[str, ...]
    params: dict[str, Param]
    request: dict[str, Any]
    docs: str


def _secret(default: str) -> Param:
    return Param(default=default, kind="secret", help="name of the relay secret holding the token")


def _vars(style: str) -> dict[str, str]:
    names = {"pactUrl": "PACT_URL", "providerVersionNumber": "PROVIDER_VERSION_NUMBER",
             "providerVersionBranch": "PROVIDER_VERSION_BRANCH", "consumerName": "CONSUMER_NAME",
             "consumerVersionNumber": "CONSUMER_VERSION_NUMBER"}
    if style == "snake":
        return {v.lower(): f"${{pactbroker.{k}}}" for k, v in names.items()}
    if style == "camel":
        return {k: f"${{pactbroker.{k}}}" for k in names}
    return {v: f"${{pactbroker.{k}}}" for k, v in names.items()}


GITHUB_HEADERS = {"Accept": "application/vnd.github+json", "Authorization": "Bearer ${user.{{token_secret}}}",
                  "X-GitHub-Api-Version": "2022-11-28", **JSON}
GITHUB_API = Param(default="https://api.github.com", kind="base_url", help="GitHub Enterprise: https://HOST/api/v3")
GITLAB_URL = Param(default="https://gitlab.com", kind="base_url")
BRANCH = Param(default="main", help="branch (ref) to run on")
DESCRIPTION = "Pact ${pactbroker.consumerName} ${pactbroker.consumerVersionNumber} / ${pactbroker.providerName}"

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("github-repository-dispatch", "GitHub Actions: repository_dispatch", VERIFY_EVENTS,
           {"repository": Param(True, help="owner/name", slashes=True), "event_type": Param(default="pact_changed"),
            "token_secret": _secret("GitHubToken"), "api_url": GITHUB_API},
           {"url": "{{api_url}}/repos/{{repository}}/dispatches", "headers": GITHUB_HEADERS,
            "body": {"event_type": "{{event_type}}", "client_payload": _vars("snake")}},
           "https://docs.github.com/en/rest/repos/repos#create-a-repository-dispatch-event"),
    Preset("github-workflow-dispatch", "GitHub Actions: workflow_dispatch", VERIFY_EVENTS,
           {"repository": Param(True, help="owner/name", slashes=True),
            "workflow": Param(True, help="workflow file name or id, e.g. verify-pacts.yml"), "ref": BRANCH,
            "token_secret": _secret("GitHubToken"), "api_url": GITHUB_API},
           {"url": "{{api_url}}/repos/{{repository}}/actions/workflows/{{workflow}}/dispatches",
            "headers": GITHUB_HEADERS,
            "body": {"ref": "{{ref}}", "inputs": {k: v for k, v in _vars("snake").items() if "provider" in k
                                                  or k == "pact_url"}}},
           "https://docs.github.com/en/rest/actions/workflows#create-a-workflow-dispatch-event"),
    Preset("gitlab-pipeline-trigger", "GitLab: pipeline trigger", VERIFY_EVENTS,
           {"project": Param(True, help="project id or group/name"), "ref": BRANCH,
            "token_secret": _secret("GitLabTriggerToken"), "gitlab_url": GITLAB_URL},
           {"url": "{{gitlab_url}}/api/v4/projects/{{project}}/trigger/pipeline", "headers": JSON,
            "body": {"token": "${user.{{token_secret}}}", "ref": "{{ref}}", "variables": _vars("upper")}},
           "https://docs.gitlab.com/ci/triggers/"),
    Preset("circleci-pipeline", "CircleCI: trigger a pipeline", VERIFY_EVENTS,
           {"project_slug": Param(True, help="e.g. gh/org/repo", slashes=True), "branch": BRANCH,
            "token_secret": _secret("CircleCIToken")},
           {"url": "https://circleci.com/api/v2/project/{{project_slug}}/pipeline",
            "headers": {"Circle-Token": "${user.{{token_secret}}}", **JSON},
            "body": {"branch": "{{branch}}", "parameters": _vars("snake")}},
           "https://circleci.com/docs/api/v2/index.html#operation/triggerPipeline"),
    Preset("buildkite-build", "Buildkite: create a build", VERIFY_EVENTS,
           {"organization": Param(True, help="organization slug"), "pipeline": Param(True, help="pipeline slug"),
            "branch": BRANCH, "commit": Param(default="HEAD"), "token_secret": _secret("BuildkiteToken")},
           {"url": "https://api.buildkite.com/v2/organizations/{{organization}}/pipelines/{{pipeline}}/builds",
            "headers": {"Authorization": "Bearer ${user.{{token_secret}}}", **JSON},
            "body": {"commit": "{{commit}}", "branch": "{{branch}}", "message": "Verify " + DESCRIPTION,
                     "env": _vars("upper")}},
           "https://buildkite.com/docs/apis/rest-api/builds#create-a-build"),
    Preset("bitbucket-pipeline", "Bitbucket Pipelines: run a custom pipeline", VERIFY_EVENTS,
           {"workspace": Param(True), "repository": Param(True, help="repository slug"), "branch": BRANCH,
            "pipeline": Param(default="verify-pacts", help="custom pipeline name in bitbucket-pipelines.yml"),
            "token_secret": _secret("BitbucketToken")},
           {"url": "https://api.bitbucket.org/2.0/repositories/{{workspace}}/{{repository}}/pipelines/",
            "headers": {"Authorization": "Bearer ${user.{{token_secret}}}", **JSON},
            "body": {"target": {"type": "pipeline_ref_target", "ref_type": "branch", "ref_name": "{{branch}}",
                                "selector": {"type": "custom", "pattern": "{{pipeline}}"}},
                     "variables": [{"key": k, "value": v} for k, v in _vars("upper").items()]}},
           "https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pipelines/"),
    Preset("azure-devops-pipeline", "Azure DevOps: run a pipeline", VERIFY_EVENTS,
           {"organization": Param(True), "project": Param(True), "pipeline_id": Param(True), "branch": BRANCH,
            "token_secret": _secret("AzureDevOpsToken")},
           {"url": "https://dev.azure.com/{{organization}}/{{project}}/_apis/pipelines/{{pipeline_id}}/runs"
                   "?api-version=7.1",
            "headers": JSON, "username": "pact-relay", "password": "${user.{{token_secret}}}",
            "body": {"resources": {"repositories": {"self": {"refName": "refs/heads/{{branch}}"}}},
                     "templateParameters": _vars("camel")}},
           "https://learn.microsoft.com/en-us/rest/api/azure/devops/pipelines/runs/run-pipeline"),
    Preset("gitlab-commit-status", "GitLab: commit status", STATUS_EVENTS,
           {"project": Param(True, help="project id or group/name"), "token_secret": _secret("GitLabToken"),
            "gitlab_url": GITLAB_URL},
           {"url": "{{gitlab_url}}/api/v4/projects/{{project}}/statuses/${pactbroker.consumerVersionNumber}",
            "headers": {"PRIVATE-TOKEN": "${user.{{token_secret}}}", **JSON},
            "body": {"state": "${pactbroker.gitlabVerificationStatus}", "name": "pact/${pactbroker.providerName}",
                     "target_url": "${pactbroker.pactUrl}", "description": DESCRIPTION}},
           "https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit"),
    Preset("bitbucket-commit-status", "Bitbucket: commit build status", STATUS_EVENTS,
           {"workspace": Param(True), "repository": Param(True, help="repository slug"),
            "token_secret": _secret("BitbucketToken")},
           {"url": "https://api.bitbucket.org/2.0/repositories/{{workspace}}/{{repository}}/commit/"
                   "${pactbroker.consumerVersionNumber}/statuses/build",
            "headers": {"Authorization": "Bearer ${user.{{token_secret}}}", **JSON},
            "body": {"state": "${pactbroker.bitbucketVerificationStatus}", "key": "pact-${pactbroker.providerName}",
                     "name": "Pact verification by ${pactbroker.providerName}", "url": "${pactbroker.pactUrl}",
                     "description": DESCRIPTION}},
           "https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/"),
)}


def list_presets() -> list[dict[str, Any]]:
    """What `GET /webhooks/presets` and `pact-relay webhooks presets` show."""
    return [{"name": p.name, "title": p.title, "events": list(p.events), "docs": p.docs,
             "params": {k: {"required": v.required, "default": v.default, "help": v.help} for k, v in p.params.items()}}
            for p in PRESETS.values()]


def expand(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The Pact Broker-style webhook JSON for a preset; webhook keys (description, consumer, ...) pass through."""
    preset = PRESETS.get(name)
    if preset is None:
        raise PresetError({"preset": [f"unknown preset {name!r}; known: {', '.join(PRESETS)}"]})
    values, errors = {}, {}
    for key in params:
        if key not in preset.params and key not in WEBHOOK_KEYS:
            errors[key] = [f"is not a parameter of preset {name} (parameters: {', '.join(preset.params)})"]
    for key, spec in preset.params.items():
        value = params.get(key, spec.default)
        if value in (None, ""):
            errors[key] = ["is required"]
        elif not isinstance(value, str):
            errors[key] = ["must be a string"]
        elif "${" in value or "{{" in value:
            errors[key] = ["must be a literal value, not a template"]
        elif spec.kind not in ("base_url", "secret") and any(
                not part or dot_segment(part) for part in (value.split("/") if spec.slashes else [value])):
            errors[key] = ["must not be or contain an empty, '.' or '..' path segment"]
        elif spec.kind == "secret" and not SECRET_NAME.fullmatch(value):
            errors[key] = ["must be a secret name (letters and digits)"]
        elif spec.kind == "base_url" and (split_url(value) is None or split_url(value).scheme not in ("http", "https")
                                          or not split_url(value).hostname):
            errors[key] = ["must be an http(s) URL"]
        else:
            values[key] = value.rstrip("/") if spec.kind == "base_url" else value
    if errors:
        raise PresetError(errors)

    def fill(item: Any, in_url: bool = False) -> Any:
        if isinstance(item, dict):
            return {k: fill(v, k == "url") for k, v in item.items()}
        if isinstance(item, list):
            return [fill(v) for v in item]
        if not isinstance(item, str):
            return item

        def one(match: re.Match) -> str:
            spec, value = preset.params[match.group(1)], values[match.group(1)]
            if in_url and spec.kind != "base_url":
                return quote(value, safe="/" if spec.slashes else "")
            return value

        return MARK.sub(one, item)

    webhook = {"description": f"{preset.title} ({name})", "events": [{"name": e} for e in preset.events],
               "request": {"method": "POST", **fill(preset.request)}}
    webhook.update({k: params[k] for k in WEBHOOK_KEYS if k in params})
    return webhook
