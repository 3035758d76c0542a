"""Jenkins builds with parameters (python-jenkins), crumbs included, over the relay's HTTP session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import jenkins
import requests

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
    RetryableDeliveryError,
    shown,
)
from integrations.http import to_response
from integrations.outcome import checked_url, dot_segment, fail, target_message, url_problem


@dataclass(frozen=True)
class JenkinsBuild:
    url: str
    job: str
    parameters: dict[str, str]
    username: str = ""
    token: str = field(default="", repr=False)

    def build_url(self) -> str:
        *folders, name = self.job.split("/")
        path = "".join(f"job/{quote(part)}/" for part in folders + [name])
        if self.parameters:
            return f"{self.url}{path}buildWithParameters?{urlencode(self.parameters)}"
        return f"{self.url}{path}build"

    def requests(self) -> list[Request]:
        headers = {"Authorization": f"Basic <{self.username}:token>"} if self.username else {}
        return [Request("POST", self.build_url(), headers)]


class _GuardedJenkins(jenkins.Jenkins):
    """python-jenkins over the relay's session adapters (connections kept across sends), no proxies from the
    environment, no redirects, no retries with sleeps. Only the session's adapters and settings change."""

    def __init__(self, url: str, username: str | None, password: str | None, timeout: Any,
                 adapters: Mapping[str, Any]):
        super().__init__(url, username, password, timeout=timeout, retries=0)
        session = self._session  # python-jenkins exposes no other way to choose its transport
        session.trust_env = False
        session.max_redirects = 0
        for prefix, adapter in adapters.items():
            session.mount(prefix, adapter)


def _http_error(exc: BaseException) -> requests.HTTPError | None:
    """python-jenkins re-raises HTTP errors as its own exceptions; the original is in the context chain."""
    while exc is not None:
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class Jenkins(Integration):
    name = "jenkins"
    title = "Jenkins build"
    capabilities = frozenset({DEBOUNCE})
    sample: ClassVar[dict[str, Any]] = {
        "url": "https://jenkins.example.com/", "job": "contracts/verify-provider", "username": "relay-bot",
        "token": "${user.JenkinsToken}",
        "parameters": {"PACT_URL": "${pactbroker.pactUrl}", "PROVIDER_VERSION": "${pactbroker.providerVersionNumber}",
                       "PROVIDER_BRANCH": "${pactbroker.providerVersionBranch}", "EVENT": "${pactbroker.eventName}"}}
    fields: ClassVar[dict[str, Field]] = {
        "url": Field(required=True, help="Jenkins base URL", endpoint=True),
        "job": Field(required=True, help="job name; folders as a/b"),
        "parameters": Field(kind="map", default={}, help="build parameters, e.g. PACT_URL"),
        "username": Field(),
        "token": Field(secret=True, help="the user's API token"),
    }

    def validate(self, config: Mapping[str, Any]) -> FieldErrors:
        errors: FieldErrors = {}
        if config.get("url") and url_problem(config["url"]):
            errors["url"] = [url_problem(config["url"])]
        job = config.get("job")
        if job is not None and (not isinstance(job, str) or any(not part or dot_segment(part) or "\\" in part
                                                                for part in job.split("/"))):
            errors["job"] = ["must be a job name, with folders as a/b (no empty, '.' or '..' part, no '\\')"]
        params = config.get("parameters")
        if params is not None and not (isinstance(params, dict) and all(isinstance(k, str) for k in params)):
            errors["parameters"] = ["must be a map of names to values"]
        if bool(config.get("username")) != bool(config.get("token")):
            errors["username" if config.get("token") else "token"] = ["username and token go together"]
        return errors

    def build(self, config: Mapping[str, Any], render: Render, variables: Mapping[str, str]) -> JenkinsBuild:
        # Folders come from the template; each rendered part must stay exactly one job name.
        parts = [render(part, "text").strip() for part in str(config["job"]).strip("/").split("/")]
        job = "/".join(parts)
        if any(not part or "/" in part or "\\" in part or dot_segment(part)
               or any(ord(c) < 32 or c == "\x7f" for c in part) for part in parts):
            raise PermanentDeliveryError(f"job {shown(config['job'], job, 120)} is not a job name after rendering "
                                         "(folders as a/b in the template; no value may add a '/' or '\\', be "
                                         "empty, '.' or '..', or hold a control character)")
        parameters = {render(str(k), "text"): render(str(v), "text")
                      for k, v in (config.get("parameters") or {}).items()}
        url = checked_url(render(str(config["url"]), "url").rstrip("/") + "/", "url")
        return JenkinsBuild(url=url, job=job, parameters=parameters,
                            username=render(config.get("username") or "", "header"),
                            token=render(config.get("token") or "", "header"))

    def describe(self, built: JenkinsBuild) -> list[Request]:
        return built.requests()

    def credentials(self, built: JenkinsBuild) -> list[tuple[str, str]]:
        return [(built.username, built.token)] if built.username and built.token else []

    def send(self, built: JenkinsBuild, ctx: Context) -> Result:
        ctx.check_url(built.url)
        made = built.requests()
        server = _GuardedJenkins(built.url, built.username or None, built.token or None, ctx.timeout,
                                 getattr(ctx.session, "adapters", {}))
        try:
            url = server.build_job_url(built.job, dict(built.parameters) or None)
            answer = server.jenkins_request(requests.Request("POST", url))
        except (requests.Timeout, jenkins.TimeoutException):
            raise RetryableDeliveryError("Jenkins timed out") from None
        except requests.TooManyRedirects:
            raise PermanentDeliveryError("Jenkins answered with a redirect; set url to its final address") from None
        except requests.ConnectionError as exc:
            raise RetryableDeliveryError(f"Jenkins unreachable: {type(exc).__name__}") from None
        except ValueError:  # python-jenkins reads the crumb issuer's answer as JSON: a login page is not
            raise PermanentDeliveryError("Jenkins: the crumb issuer did not answer JSON; is url Jenkins' own "
                                         "address?") from None
        except (requests.HTTPError, jenkins.JenkinsException) as exc:
            http = _http_error(exc)
            if http is None:
                raise PermanentDeliveryError(f"Jenkins: {exc}") from None
            response = to_response(http.response)
            where = "crumb request" if "crumbIssuer" in (http.request.url or "") else "build request"
            raise fail(response, made, f"Jenkins {where}: {target_message(response.body) or http}") from None
        response = to_response(answer)
        location = answer.headers.get("Location", "")
        note = f"queued: {location}" if location else "queued (Jenkins sent no queue item URL)"
        return Result(requests=made, response=response, note=note)
