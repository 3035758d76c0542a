"""GitHub commit statuses (PyGithub), by token or as a GitHub App installation, with an App also check runs."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import requests
from urllib3.util.retry import Retry

from integrations.base import (
    CAN_I_DEPLOY,
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
    RetryableDeliveryError,
    failure_of,
    mismatch_line,
    shown,
)
from integrations.checkrun import CheckRun, deploy_run, verification_run
from integrations.outcome import (
    COMMIT_SHA,
    OWNER_NAME,
    endpoint,
    fail,
    target_message,
    template_or,
    url_problem,
    wait_seconds,
)

STATES = ("success", "failure", "pending", "error")
EVENT_STATES = {
    "contract_published": "pending",
    "contract_content_changed": "pending",
    "contract_requiring_verification_published": "pending",
    "provider_verification_succeeded": "success",
    "provider_verification_failed": "failure",
}
APP_FIELDS = ("app_id", "private_key", "installation_id")
# PyGithub takes any status below 400 for success (and follows a same-host 301). Answering a redirect with an
# error at the transport keeps "only 2xx succeeds, redirects are never followed" as for every other target.
NO_REDIRECTS = Retry(total=0, connect=0, read=0, redirect=0, status_forcelist=(301, 302, 303, 305, 307, 308),
                     allowed_methods=None, raise_on_status=True, raise_on_redirect=True)
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)  # installation tokens live an hour; renew well before


@dataclass(frozen=True)
class GitHubAuth:
    token: str = field(default="", repr=False)
    app_id: str = ""
    private_key: str = field(default="", repr=False)
    installation_id: str = ""


@dataclass(frozen=True)
class CommitStatus:
    """One status to set on every commit in `shas` of `repository`."""

    base_url: str
    repository: str
    shas: tuple[str, ...]
    state: str
    context: str
    description: str
    target_url: str
    auth: GitHubAuth = field(repr=False)
    deploy: tuple[str, str] | None = None  # the pact/can-i-deploy status (state, description) set beside it
    checks: tuple[CheckRun, ...] = ()  # with a GitHub App and `check_run`: created on every commit after the statuses

    def statuses(self) -> list[tuple[str, str, str]]:
        """(state, context, description) of each status set on every commit."""
        made = [(self.state, self.context, self.description)]
        if self.deploy:
            made.append((self.deploy[0], DEPLOY_CONTEXT, self.deploy[1]))
        return made

    def requests(self, with_app_token: bool = False) -> list[Request]:
        scheme = "token <installation token>" if self.auth.app_id else "token <token>"
        made = [Request("POST", f"{self.base_url}/app/installations/{self.auth.installation_id}/access_tokens",
                        {"Authorization": "Bearer <app jwt>"}, '{"permissions": {}}')] if with_app_token else []
        for state, context, description in self.statuses():
            body = {"state": state, "target_url": self.target_url or None, "description": description,
                    "context": context}
            body = json.dumps({k: v for k, v in body.items() if v is not None})
            made += [Request("POST", f"{self.base_url}/repos/{self.repository}/statuses/{sha}",
                             {"Authorization": scheme, "Content-Type": "application/json"}, body)
                     for sha in self.shas]
        for check in self.checks:
            made += [Request("POST", f"{self.base_url}/repos/{self.repository}/check-runs",
                             {"Authorization": scheme, "Content-Type": "application/json"}, check.json(sha))
                     for sha in self.shas]
        return made


DEPLOY_CONTEXT = "pact/can-i-deploy"
DEPLOY_STATES = {"yes": "success", "no": "failure", "unknown": "pending"}


def deploy_status(variables: Mapping[str, Any]) -> tuple[str, str] | None:
    """The pact/can-i-deploy status for the broker's answer, None when there is none."""
    found = variables.get(CAN_I_DEPLOY)
    if not isinstance(found, Mapping) or found.get("state") not in DEPLOY_STATES:
        return None
    verdict = {"yes": "Can deploy", "no": "Cannot deploy", "unknown": "Cannot tell yet whether it can deploy"}
    reason = str(found.get("reason") or "").replace("\n", " ")
    text = f"{verdict[found['state']]} to {found.get('to', '')}" + (f": {reason}" if reason else "")
    return DEPLOY_STATES[found["state"]], cut(text)


def state_for(variables: Mapping[str, str]) -> str:
    """The commit state the event stands for; `error` when the event does not say."""
    state = EVENT_STATES.get(variables.get("eventName", ""))
    if state is None:
        state = variables.get("githubVerificationStatus", "")
    return state if state in STATES else "error"


def default_description(state: str, v: Mapping[str, str]) -> str:
    provider, version = v.get("providerName", ""), v.get("providerVersionNumber", "")
    branch = f" ({v['providerVersionBranch']})" if v.get("providerVersionBranch") else ""
    event = v.get("eventName", "")
    if state == "success":
        return f"Pact verified by {provider} {version}{branch}"
    failure = failure_of(v)
    if state == "failure" and failure and failure.get("first"):
        # The first mismatch is what the author can act on; GitHub keeps 140 characters (cut() marks the cut).
        count = failure.get("mismatches") or 0
        more = f" (+{count - 1} more)" if count > 1 else ""
        first = failure["first"][0]
        return f"{first.get('description', '')}: {mismatch_line(first)}{more}"
    if state == "failure":
        return f"Pact verification by {provider} {version}{branch} failed"
    if event == "contract_requiring_verification_published":
        return f"Pact awaits verification by {provider} {version}{branch}"
    if state == "pending":
        return f"Pact published; awaiting verification by {provider}"
    return "Pact Relay could not tell the verification result"


def cut(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class GitHubStatus(Integration):
    name = "github"
    shows_failure = True
    title = "GitHub commit status"
    capabilities = frozenset({SUPERSEDE})
    sample: ClassVar[dict[str, Any]] = {"repository": "pact-foundation/matching-service",
                                        "sha": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                                        "token": "${user.GitHubToken}"}
    fields: ClassVar[dict[str, Field]] = {
        "repository": Field(required=True, help="owner/name"),
        "sha": Field(default="${pactbroker.consumerVersionNumber}", help="commit(s), comma-separated"),
        "context": Field(default="pact/${pactbroker.providerName}"),
        "description": Field(help="default: a sentence per event; cut to 140 characters"),
        "target_url": Field(help="default: the verification result URL, else the pact URL"),
        "token": Field(secret=True, help="personal access or installation token"),
        "app_id": Field(help="GitHub App id (with private_key and installation_id)"),
        "private_key": Field(secret=True, help="GitHub App private key (PEM)"),
        "installation_id": Field(),
        "base_url": Field(default="https://api.github.com", help="GitHub Enterprise: https://HOST/api/v3",
                          endpoint=True),
        "can_i_deploy": Field(kind="map", template=False, help="also set pact/can-i-deploy: {\"to_environment\": "
                              "\"production\"} or {\"to\": \"prod\"} (a tag); \"pacticipant\": \"provider\" "
                              "asks for the provider version (default: consumer)"),
        "check_run": Field(kind="bool", template=False, default=False,
                           help="with a GitHub App: also a check run of the same name listing every failing "
                           "interaction and mismatch (and pact/can-i-deploy with can_i_deploy)"),
    }

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        errors: FieldErrors = {}
        repo = config.get("repository")
        if repo and not template_or(OWNER_NAME, repo):
            errors["repository"] = ["must be owner/name"]
        sha = config.get("sha")
        if sha and "${" not in str(sha) and not all(COMMIT_SHA.match(s.strip()) for s in str(sha).split(",")):
            errors["sha"] = ["must be commit shas (7 to 40 hex digits), comma-separated, or a template"]
        app = [name for name in APP_FIELDS if config.get(name)]
        if config.get("token") and app:
            errors["token"] = ["give either a token or a GitHub App (app_id, private_key, installation_id), not both"]
        elif app and len(app) < len(APP_FIELDS):
            for name in APP_FIELDS:
                if not config.get(name):
                    errors[name] = ["is required for GitHub App authentication"]
        elif not config.get("token") and not app:
            errors["token"] = ["is required unless app_id, private_key and installation_id are given"]
        for name in ("app_id", "installation_id"):
            value = config.get(name)
            if value and not (str(value).isdigit() or "${" in str(value)):
                errors.setdefault(name, []).append("must be a number")
        if config.get("check_run") not in (None, True, False):
            errors["check_run"] = ["must be true or false"]
        elif config.get("check_run") and not config.get("app_id"):
            errors["check_run"] = ["needs a GitHub App (app_id, private_key, installation_id): GitHub lets only an "
                                   "App create check runs"]
        if config.get("base_url") and url_problem(config["base_url"]):
            errors["base_url"] = [url_problem(config["base_url"])]
        option = config.get("can_i_deploy")
        if option is not None:
            targets = [k for k in ("to_environment", "to") if option.get(k)]
            if len(targets) != 1 or set(option) - {"to_environment", "to", "pacticipant"}:
                errors["can_i_deploy"] = ["must be {\"to_environment\": \"<environment>\"} or {\"to\": \"<tag>\"}, "
                                          "with \"pacticipant\": \"consumer\" or \"provider\" if need be"]
            elif option.get("pacticipant", "consumer") not in ("consumer", "provider"):
                errors["can_i_deploy.pacticipant"] = ["must be consumer or provider"]
        return errors

    def _template(self, config: Mapping[str, Any], name: str) -> str:
        return str(config.get(name) or self.fields[name].default or "")

    def _value(self, config: Mapping[str, Any], render: Render, name: str, location: str = "text") -> str:
        return render(self._template(config, name), location).strip()

    def supersede_key(self, config: Mapping[str, Any], render: Render) -> tuple:
        shas = sorted({s.strip() for s in self._value(config, render, "sha").split(",") if s.strip()})
        return (self._value(config, render, "base_url").rstrip("/"), self._value(config, render, "repository"),
                tuple(shas), self._value(config, render, "context"))

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> CommitStatus:
        def value(name: str, location: str = "text") -> str:
            return self._value(config, render, name, location)

        state = state_for(variables)
        repository = value("repository")
        if not OWNER_NAME.match(repository):
            raise PermanentDeliveryError(f"repository {shown(config.get('repository'), repository)} is not "
                                         "owner/name after rendering")
        shas = tuple(dict.fromkeys(s.strip() for s in value("sha").split(",") if s.strip()))
        if not shas:
            raise PermanentDeliveryError("sha is empty after rendering; nothing to set a status on")
        for sha in shas:
            if not COMMIT_SHA.match(sha):
                raise PermanentDeliveryError(f"sha {shown(self._template(config, 'sha'), sha)} is not a commit sha "
                                             "(7 to 40 hex digits) after rendering; set the consumer version to the "
                                             "git sha or set sha")
        target = value("target_url") or variables.get("verificationResultUrl") or variables.get("pactUrl") or ""
        if not value("token", "header") and not value("app_id"):
            raise PermanentDeliveryError("token is empty after rendering")
        context, description = value("context"), cut(value("description") or default_description(state, variables))
        checks: list[CheckRun | None] = []
        if config.get("check_run") is True and value("app_id"):
            checks.append(verification_run(context, state, description, variables, target))
            if config.get("can_i_deploy"):
                checks.append(deploy_run(DEPLOY_CONTEXT, variables, target))
        return CommitStatus(
            base_url=endpoint(render, config.get("base_url") or self.fields["base_url"].default, "base_url"),
            repository=repository, shas=shas, state=state, context=context, description=description,
            target_url=target, deploy=deploy_status(variables) if config.get("can_i_deploy") else None,
            checks=tuple(c for c in checks if c is not None),
            auth=GitHubAuth(token=value("token", "header"), app_id=value("app_id"),
                            private_key=value("private_key"), installation_id=value("installation_id")))

    def describe(self, built: CommitStatus) -> list[Request]:
        return built.requests()

    def send(self, built: CommitStatus, ctx: Context) -> Result:
        # Imported here: PyGithub adds ~17 MB to every web and worker process, most of which never send a status.
        from github import Auth, Github, GithubException  # noqa: PLC0415 (PyGithub is heavy: loaded only where a GitHub status is sent)

        ctx.check_url(built.base_url)
        options = {"base_url": built.base_url, "timeout": int(ctx.timeout[1]), "retry": NO_REDIRECTS,
                   "seconds_between_requests": None, "seconds_between_writes": None}  # never sleep in a worker
        fetched = False
        try:
            token = built.auth.token
            if not token:
                token, fetched = installation_token(built.auth, options)
            made = built.requests(with_app_token=fetched)
            repo = Github(auth=Auth.Token(token), lazy=True, **options).get_repo(built.repository)
            status = None
            for state, context, description in built.statuses():
                for sha in built.shas:
                    status = repo.get_commit(sha).create_status(
                        state=state, description=description, context=context,
                        **({"target_url": built.target_url} if built.target_url else {}))
            for check in built.checks:
                for sha in built.shas:
                    status = repo.create_check_run(**check.body(sha))
        except GithubException as exc:
            raise github_error(exc, built.requests(with_app_token=fetched)) from None
        except requests.exceptions.RetryError as exc:  # NO_REDIRECTS: an answer PyGithub would take for success
            status = re.search(r"too many (\d{3}) ", str(exc))
            raise PermanentDeliveryError(f"GitHub redirected from base_url (HTTP {status[1] if status else '3xx'}); "
                                         "redirects are not followed: set the webhook's base_url to GitHub's "
                                         "final API address") from None
        except requests.RequestException as exc:
            raise RetryableDeliveryError(f"GitHub unreachable: {type(exc).__name__}") from None
        except RuntimeError as exc:
            if "redirected" not in str(exc):
                raise
            # PyGithub refuses a redirect to another host or scheme; retrying cannot help, base_url is wrong.
            raise PermanentDeliveryError(f"GitHub: {exc}".replace("via base_url: Github(base_url=...)",
                                                                  "in the webhook's base_url")) from None
        response = Response(status=201, headers=dict(status.raw_headers), body=json.dumps(status.raw_data))
        note = f"status {built.state} set on {len(built.shas)} commit(s) of {built.repository}"
        if built.deploy:
            note += f"; {DEPLOY_CONTEXT} {built.deploy[0]}"
        if built.checks:
            note += "; check run " + ", ".join(f"{c.name} {c.conclusion or c.status}" for c in built.checks)
        if built.auth.app_id:
            note += "; new installation token" if fetched else "; cached installation token"
        return Result(requests=made, response=response, note=note)


def github_error(exc: Exception, made: list[Request]) -> Exception:
    headers = dict(exc.headers or {})
    response = Response(status=exc.status, headers=headers, body=json.dumps(exc.data))
    message = f"GitHub: {target_message(exc.data) or exc.status}"
    lowered = {k.lower(): v for k, v in headers.items()}
    limited = exc.status == 403 and ("retry-after" in lowered or lowered.get("x-ratelimit-remaining") == "0")
    if limited:  # GitHub answers 403 for exhausted primary and secondary rate limits
        return RetryableDeliveryError(f"HTTP 403 rate limited: {message}", response=response,
                                      retry_after=wait_seconds(headers))
    return fail(response, made, message)


_tokens: dict[tuple[str, ...], tuple[str, datetime]] = {}
_tokens_lock = threading.Lock()


def installation_token(auth: GitHubAuth, options: dict[str, Any]) -> tuple[str, bool]:
    """An installation token from the in-process cache, or a fresh one (signed JWT); (token, fetched)."""
    key_hash = hashlib.sha256(auth.private_key.encode()).hexdigest()
    key = (options["base_url"], auth.app_id, auth.installation_id, key_hash)
    with _tokens_lock:
        cached = _tokens.get(key)
        if cached and cached[1] - TOKEN_REFRESH_MARGIN > datetime.now(UTC):
            return cached[0], False
        from github import Auth, GithubIntegration  # noqa: PLC0415 (PyGithub is heavy)

        try:
            app = GithubIntegration(auth=Auth.AppAuth(auth.app_id, auth.private_key), **options)
            granted = app.get_access_token(int(auth.installation_id))
        except (ValueError, TypeError) as exc:  # bad PEM or id; never echo the key itself
            raise PermanentDeliveryError(f"GitHub App credentials unusable: {type(exc).__name__}") from None
        expires = granted.expires_at or datetime.now(UTC) + timedelta(minutes=10)
        _tokens[key] = (granted.token, expires)
        return granted.token, True
