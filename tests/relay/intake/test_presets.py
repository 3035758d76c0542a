"""Presets: each expands to a valid `request` webhook whose rendered request matches its golden file."""

from __future__ import annotations

import json

import pytest

from integrations.http import HttpRequest
from relay.intake.presets import PRESETS, PresetError, expand, list_presets
from relay.templating import host_is_templated, template_errors
from tests.integrations.conftest import event, golden, renderer

PARAMS = {
    "github-repository-dispatch": {"repository": "acme/animal-profile-service"},
    "github-workflow-dispatch": {"repository": "acme/animal-profile-service", "workflow": "verify-pacts.yml"},
    "gitlab-pipeline-trigger": {"project": "acme/animal-profile-service"},
    "circleci-pipeline": {"project_slug": "gh/acme/animal-profile-service"},
    "buildkite-build": {"organization": "acme", "pipeline": "animal-profile-service"},
    "bitbucket-pipeline": {"workspace": "acme", "repository": "animal-profile-service"},
    "azure-devops-pipeline": {"organization": "acme", "project": "Pacts", "pipeline_id": "12"},
    "gitlab-commit-status": {"project": "acme/matching-service"},
    "bitbucket-commit-status": {"workspace": "acme", "repository": "matching-service"},
}
TOKENS = {name: f"secret-value-of-{name}" for name in ("GitHubToken", "GitLabTriggerToken", "CircleCIToken",
                                                        "BuildkiteToken", "BitbucketToken", "AzureDevOpsToken",
                                                        "GitLabToken")}


def test_every_preset_has_sample_params():
    assert set(PARAMS) == set(PRESETS) and len(list_presets()) == len(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_renders_the_expected_request(name):
    webhook = expand(name, PARAMS[name])
    request = webhook["request"]
    assert not template_errors(webhook, set(TOKENS)), "only known variables and existing secrets"
    assert not host_is_templated(request["url"])
    assert HttpRequest().validate(request) == {}
    for event_name in [e["name"] for e in webhook["events"]]:
        variables = event(event_name)
        built = HttpRequest().build(request, renderer(variables, TOKENS), variables)
        log = built.to_log()
        log["auth"] = list(built.auth) if built.auth else None
        text = json.dumps(log)
        for secret_name, value in TOKENS.items():
            text = text.replace(value, f"<{secret_name}>")
        log = json.loads(text)
        log["body"] = json.loads(log["body"])
        golden("presets", f"{event_name}__{name}", {"webhook": webhook, "rendered": log})


def test_webhook_keys_pass_through_and_defaults_apply():
    webhook = expand("circleci-pipeline", {"project_slug": "gh/a/b", "branch": "develop",
                                           "provider": {"name": "Animal Profile Service"}})
    assert webhook["provider"] == {"name": "Animal Profile Service"}
    assert webhook["request"]["url"] == "https://circleci.com/api/v2/project/gh/a/b/pipeline"
    assert webhook["request"]["body"]["branch"] == "develop"
    assert webhook["request"]["headers"]["Circle-Token"] == "${user.CircleCIToken}"


def test_path_segments_are_encoded():
    url = expand("gitlab-pipeline-trigger", {"project": "group/sub group/app"})["request"]["url"]
    assert url == "https://gitlab.com/api/v4/projects/group%2Fsub%20group%2Fapp/trigger/pipeline"


@pytest.mark.parametrize("name,params,field", [
    ("nope", {}, "preset"),
    ("circleci-pipeline", {}, "project_slug"),
    ("circleci-pipeline", {"project_slug": "gh/a/b", "colour": "red"}, "colour"),
    ("circleci-pipeline", {"project_slug": "gh/a/b", "token_secret": "my-token"}, "token_secret"),
    ("circleci-pipeline", {"project_slug": "${pactbroker.providerName}"}, "project_slug"),
    ("gitlab-commit-status", {"project": "1", "gitlab_url": "gitlab.internal"}, "gitlab_url"),
])
def test_bad_input_names_the_field(name, params, field):
    with pytest.raises(PresetError) as err:
        expand(name, params)
    assert field in err.value.errors and field in str(err.value)
