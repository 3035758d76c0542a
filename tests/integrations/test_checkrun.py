"""GitHub App check runs: every failing interaction and mismatch of the real verifiers' results in the summary."""

from __future__ import annotations

import json

import pytest

from integrations import checkrun
from integrations import github as gh
from integrations.base import CAN_I_DEPLOY, FAILURE
from tests.integrations.conftest import failure_from, golden, recorded, renderer
from tests.integrations.fakes import app_key_pem, serve_github
from tests.integrations.test_github import SHA, event

INSTALLATION_TOKEN = "ghs_fakeinstallationtoken"  # what serve_github grants
APP = {"app_id": "4242", "private_key": "${user.AppKey}", "installation_id": "77", "check_run": True}


@pytest.fixture(scope="module")
def pem() -> str:
    return app_key_pem()


def app_config(httpserver, **extra):
    return {"repository": "pact-foundation/matching-service", "base_url": httpserver.url_for("").rstrip("/"),
            **APP, **extra}


def failed(fixture: str, **extra) -> dict:
    return {**event("provider_verification_failed"), FAILURE: failure_from(fixture), **extra}


def send(httpserver, ctx, pem, variables, **extra):
    gh._tokens.clear()
    integration = gh.GitHubStatus()
    built = integration.build(app_config(httpserver, **extra), renderer(variables, {"AppKey": pem}), variables)
    return built, integration.send(built, ctx)


def check_runs(httpserver) -> list[dict]:
    return [json.loads(r.get_data()) for r, _ in httpserver.log if r.path.endswith("/check-runs")]


EXPECTED = {
    "rust.json": [
        ("a request for an alligator", "there is an alligator named Mary",
         ["**body $.age**: Expected '73' (String) to be equal to 73 (Integer)",
          "**body $**: Actual map is missing the following keys: first\\_name"]),
        ("a request for a missing alligator", "there is not an alligator named Ken",
         ["**status**: expected 404 but was 200"]),
        ("a request for all alligators", "there are alligators",
         ["**body $\\[0\\]**: Actual map is missing the following keys: name"])],
    "ruby.json": [
        ("a request for an alligator", "there is an alligator named Mary",
         ["**body $**: Could not find key \"first\\_name\" (keys present are: name, firstName, age) at $",
          "**body $.age**: Expected 73 but got \"73\" at $.age"]),
        ("a request for a missing alligator", "there is not an alligator named Ken",
         ["**status**: expected 404 but was 200 (expected 404, actual 200)"]),
        ("a request for all alligators", "there are alligators",
         ["**body $\\[0\\]**: Could not find key \"name\" (keys present are: nom) at $\\[0\\]"])],
}


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_the_check_run_lists_every_failing_interaction_and_mismatch(httpserver, ctx, pem, fixture):
    serve_github(httpserver)
    built, result = send(httpserver, ctx, pem, failed(fixture))
    (run,) = check_runs(httpserver)
    assert (run["name"], run["head_sha"], run["status"], run["conclusion"]) == (
        "pact/Animal Profile Service", SHA, "completed", "failure")
    assert run["output"]["title"] == "3 failing interactions, 4 mismatches"
    summary = run["output"]["summary"]
    assert summary.startswith("**Animal Profile Service 1.0.0** failed to verify the pact from **Matching Service ")
    for number, (description, state, mismatches) in enumerate(EXPECTED[fixture], 1):
        assert f"### {number}. {description}\n" in summary
        assert f"Provider states: {state}\n" in summary
        for mismatch in mismatches:
            assert f"- {mismatch}" in summary
    assert "… and" not in summary
    assert "check run pact/Animal Profile Service failure" in result.note
    shown = json.dumps([[r.to_log() for r in result.requests], result.response.to_log(), result.note, repr(built)])
    assert pem not in shown and INSTALLATION_TOKEN not in shown
    calls = recorded(httpserver, {"INSTALLATION_TOKEN": INSTALLATION_TOKEN})
    assert [c["path"] for c in calls] == ["/app/installations/77/access_tokens",
                                          f"/repos/pact-foundation/matching-service/statuses/{SHA}",
                                          "/repos/pact-foundation/matching-service/check-runs"]
    assert calls[2]["headers"]["Authorization"] == "token <INSTALLATION_TOKEN>"
    del calls[0]["headers"]["Authorization"]  # a JWT signed now, different each run; never the key itself
    assert pem not in json.dumps(calls)
    golden("github", f"provider_verification_failed__check_run_{fixture.removesuffix('.json')}", calls)


def test_the_described_requests_are_what_github_receives(httpserver, ctx, pem):
    serve_github(httpserver)
    built, result = send(httpserver, ctx, pem, failed("rust.json"))
    sent = [json.loads(r.get_data()) for r, _ in httpserver.log][1:]
    assert [json.loads(r.body) for r in result.requests[1:]] == sent
    assert result.requests[-1].headers["Authorization"] == "token <installation token>"


def test_a_summary_past_githubs_limit_is_cut_saying_how_many_more(httpserver, ctx, pem):
    huge = {"description": "d", "providerStates": ["s"],
            "mismatches": [{"attribute": "body", "path": f"$.x{n}", "expected": "e" * 900, "actual": "a" * 900,
                            "message": "é" * 1990} for n in range(20)]}
    variables = failed("rust.json")
    variables[FAILURE] = {**variables[FAILURE], "all": [{**huge, "description": f"i{n}"} for n in range(50)]}
    serve_github(httpserver)
    send(httpserver, ctx, pem, variables)
    summary = check_runs(httpserver)[0]["output"]["summary"]
    assert len(summary.encode()) <= checkrun.SUMMARY_LIMIT
    shown = summary.count("\n- **body")
    assert 0 < shown < 1000
    assert summary.endswith(f"… and {1000 - shown} more mismatches, {50 - summary.count('### ')} interactions not "
                            "shown; all of them are on the pair page and the verification result")


def test_verifier_text_cannot_add_links_or_markup():
    mismatch = {"attribute": "body", "path": "$.a", "message": "see [here](https://evil.example) <img src=x>\n# h"}
    run = checkrun.verification_run("pact/p", "failure", "d", {FAILURE: {"all": [
        {"description": "**bold** `code`", "providerStates": ["a | b"], "mismatches": [mismatch]}]}}, "")
    assert "\\[here\\](https://evil.example) \\<img src=x\\> # h" in run.summary
    assert "### 1. \\*\\*bold\\*\\* \\`code\\`" in run.summary and "a \\| b" in run.summary


def test_a_passed_verification_and_a_pending_one(httpserver, ctx, pem):
    serve_github(httpserver)
    send(httpserver, ctx, pem, event("provider_verification_succeeded"))
    send(httpserver, ctx, pem, event("contract_published"))
    passed, pending = check_runs(httpserver)
    assert (passed["status"], passed["conclusion"]) == ("completed", "success")
    assert passed["output"]["title"] == "Pact verified by Animal Profile Service 1.0.0 (main)"
    assert (pending["status"], "conclusion" in pending) == ("in_progress", False)


@pytest.mark.parametrize("state,status,conclusion,title", [
    ("yes", "completed", "success", "Can deploy to environment production"),
    ("no", "completed", "failure", "Cannot deploy to environment production"),
    ("unknown", "in_progress", None, "Cannot tell yet whether it can deploy to environment production")])
def test_can_i_deploy_is_a_check_run_too(httpserver, ctx, pem, state, status, conclusion, title):
    reason = "There is no verified pact between version 9fceb02 of Matching Service and … in production"
    variables = failed("rust.json", **{CAN_I_DEPLOY: {"state": state, "reason": reason,
                                                      "to": "environment production"}})
    serve_github(httpserver)
    send(httpserver, ctx, pem, variables, can_i_deploy={"to_environment": "production"})
    verification, deploy = check_runs(httpserver)
    assert verification["name"] == "pact/Animal Profile Service"
    assert (deploy["name"], deploy["status"], deploy.get("conclusion")) == ("pact/can-i-deploy", status, conclusion)
    assert deploy["output"]["title"] == title and reason in deploy["output"]["summary"]


def test_no_check_run_unless_asked_for(httpserver, ctx, pem):
    serve_github(httpserver)
    send(httpserver, ctx, pem, failed("rust.json"), check_run=False)
    assert check_runs(httpserver) == []


def test_validation():
    v = gh.GitHubStatus().validate
    app = {"repository": "a/b", "app_id": "1", "private_key": "k", "installation_id": "2"}
    assert v({**app, "check_run": True}) == {}
    assert "GitHub App" in v({"repository": "a/b", "token": "t", "check_run": True})["check_run"][0]
    assert v({**app, "check_run": "yes"}) == {"check_run": ["must be true or false"]}
