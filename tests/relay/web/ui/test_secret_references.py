"""A template naming a secret is shown, not masked; "Used by" sees every field; a used secret is not deleted."""

from __future__ import annotations

from sqlalchemy import select

from relay.models import Secret


def make_hooks(api):
    for name in ("CIToken", "SlackHook", "GhToken", "Unused"):
        assert api.post("/secrets", json={"name": name, "value": f"value-of-{name}-1234"}).status_code == 201
    ci = api.post("/webhooks", json={"description": "CI build", "events": [{"name": "contract_published"}],
                                     "request": {"method": "POST", "url": "https://ci.example.com/build",
                                                 "headers": {"Authorization": "Bearer ${user.CIToken}",
                                                             "X-Api-Token": "literal-token-9876"}}})
    slack = api.post("/webhooks", json={"description": "Slack", "events": [{"name": "contract_published"}],
                                        "slack": {"webhook_url": "${user.SlackHook}"}})
    github = api.post("/webhooks", json={"description": "GitHub", "events": [{"name": "contract_published"}],
                                         "github": {"repository": "acme/app", "token": "token ${user.GhToken}"}})
    for made in (ci, slack, github):
        assert made.status_code == 201, made.json
    return ci.json, slack.json, github.json


def test_references_are_shown_and_literals_masked(api):
    ci, slack, github = make_hooks(api)
    assert ci["request"]["headers"] == {"Authorization": "Bearer ${user.CIToken}", "X-Api-Token": "**********"}
    assert slack["slack"]["webhook_url"] == "${user.SlackHook}"
    assert github["github"]["token"] == "token ${user.GhToken}"
    shown = api.get(f"/webhooks/{ci['uuid']}").json
    assert shown["request"]["headers"]["Authorization"] == "Bearer ${user.CIToken}"


def test_used_by_covers_every_field_of_every_kind(api, browser):
    ci, slack, github = make_hooks(api)
    page = browser.get("/ui/secrets").text
    for secret, hook in (("CIToken", "CI build"), ("SlackHook", "Slack"), ("GhToken", "GitHub")):
        row = page.split(f'<td data-label="Name">{secret}</td>', 1)[1].split("</tr>", 1)[0]
        assert hook in row, (secret, row)
    unused = page.split('<td data-label="Name">Unused</td>', 1)[1].split("</tr>", 1)[0]
    assert "nothing" in unused
    editor = browser.get(f"/ui/webhooks/{ci['uuid']}").text
    assert "Bearer ${user.CIToken}" in editor


def test_deleting_a_used_secret_is_refused_with_the_list_unless_forced(api, browser, runtime):
    ci, *_ = make_hooks(api)
    refused = api.delete("/secrets/CIToken")
    assert refused.status_code == 409
    assert refused.json["usedBy"] == [{"uuid": ci["uuid"], "description": "CI build",
                                       "fields": ["request.headers.Authorization"]}]
    assert api.delete("/secrets/Unused").status_code == 204
    page = browser.get("/ui/secrets")
    ui_refused = browser.post("/ui/secrets/SlackHook/delete")
    assert ui_refused.status_code == 409 and 'id="in-use"' in ui_refused.text and "slack.webhook_url" in ui_refused.text
    assert page.status_code == 200
    with runtime.sessions() as session:
        assert {"CIToken", "SlackHook"} <= set(session.scalars(select(Secret.name)))
    assert browser.post("/ui/secrets/SlackHook/delete", {"force": "1"}).status_code == 302
    assert api.delete("/secrets/CIToken?force=true").status_code == 204
    with runtime.sessions() as session:
        assert set(session.scalars(select(Secret.name))) == {"GhToken"}


def test_the_cli_refuses_too(api, cli):
    make_hooks(api)
    refused = cli("secrets", "delete", "CIToken")
    assert refused.exit_code != 0 and "CI build" in refused.output and "--force" in refused.output
    assert cli("secrets", "delete", "CIToken", "--force").exit_code == 0
