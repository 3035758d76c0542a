"""`pact-relay apply -f`: a plan first, then all of it or nothing; a second apply changes nothing."""

from pathlib import Path

import pytest
from sqlalchemy import select

from relay.models import Secret, Token, Webhook

EXAMPLE = Path(__file__).parents[3] / "examples" / "relay.yaml"
ENV = {"GITHUB_TOKEN": "ghp_declared_0001", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/declared"}


@pytest.fixture
def apply(cli, tmp_path):
    def run(text: str | None = None, *flags: str, **env):
        path = tmp_path / "relay.yaml"
        path.write_text(EXAMPLE.read_text() if text is None else text)
        return cli("apply", "-f", str(path), *flags, **{**ENV, **env})

    return run


def rows(runtime, model):
    with runtime.sessions() as session:
        return session.scalars(select(model)).all()


def test_example_applies_then_is_stable(apply, runtime):
    first = apply()
    assert first.exit_code == 0, first.output
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in first.output
    assert "token pact-broker: prt_" in first.output
    assert {w.uuid: w.description for w in rows(runtime, Webhook)} == {
        "github-status-matching-service": "Pact status on Matching Service commits",
        "slack-failed-verifications": "Failed verifications to #contracts"}  # a bare # would start a comment
    assert {s.name for s in rows(runtime, Secret)} == {"GitHubToken", "SlackContracts"}
    again = apply()
    assert "Plan: 0 to add, 0 to change, 0 to destroy." in again.output and "prt_" not in again.output
    assert [t.name for t in rows(runtime, Token)] == ["pact-broker"]


def test_changes_are_planned_and_applied(apply, runtime):
    apply()
    text = EXAMPLE.read_text().replace("only_failures: true", "only_failures: false")
    result = apply(text, GITHUB_TOKEN="ghp_rotated_0002")
    assert "~ secret GitHubToken" in result.output and "~ webhook slack-failed-verifications" in result.output
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in result.output
    assert runtime.vault.decrypt(next(s for s in rows(runtime, Secret) if s.name == "GitHubToken").ciphertext) \
        == "ghp_rotated_0002"


def test_dry_run_changes_nothing(apply, runtime):
    result = apply(None, "--dry-run")
    assert "Plan: 5 to add" in result.output and rows(runtime, Webhook) == []


def test_prune_destroys_what_the_file_does_not_declare(apply, api, runtime):
    api.post("/webhooks", json={"request": {"method": "POST", "url": "https://example.org/x"}})
    apply()
    assert len(rows(runtime, Webhook)) == 3
    result = apply(None, "--prune")
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in result.output
    assert len(rows(runtime, Webhook)) == 2


@pytest.mark.parametrize("text,problem", [
    ("webhooks: [{description: x, request: {method: POST, url: 'https://e.org/'}}]", "webhooks[0].uuid: required"),
    ("webhooks:\n  - uuid: abcdefghijklmnopqrst\n    request: {method: TRACE, url: 'https://e.org'}",
     "webhooks[0].request.method: must be one of"),
    ("webhooks:\n  - uuid: abcdefghijklmnopqrst\n    request: {url: 'https://e.org/${user.Nope}'}",
     "secret ${user.Nope} does not exist"),
    ("secrets: {Tok: {env: NOT_SET_ANYWHERE}}", "environment variable NOT_SET_ANYWHERE is not set"),
    ("secrets: {Tok: {value: inline}}", "values come from the environment"),
    ("secrets: {bad-name: {env: X}}", "letters and digits only"),
    ("tokens: [{name: x, role: root}]", "tokens[0]: must be"),
    ("hooks: []", "hooks: unknown section"),
    ("webhooks: [: bad", "not valid YAML at line 2"),
    ("[1, 2]", "must be a mapping"),
])
def test_problems_are_listed_and_nothing_is_applied(apply, runtime, text, problem):
    result = apply("secrets: {Fine: {env: GITHUB_TOKEN}}\n" + text if text.startswith("webhooks:") else text)
    assert result.exit_code == 1 and problem in result.output, result.output
    assert "Traceback" not in result.output
    assert rows(runtime, Webhook) == [] and rows(runtime, Secret) == []


def test_secrets_never_reach_the_output(apply):
    for flags in ((), ("--dry-run",)):
        output = apply(None, *flags).output
        assert ENV["GITHUB_TOKEN"] not in output and "declared" not in output
