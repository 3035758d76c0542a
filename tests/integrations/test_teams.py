"""Microsoft Teams: what a hostile name or verifier message can do to the Adaptive Card (nothing)."""

from __future__ import annotations

import json

from integrations import REGISTRY
from integrations.base import FAILURE
from integrations.teams import md
from tests.integrations.conftest import SECRETS, event, failure_from, renderer

LINK = "[sign in](https://evil.example/login)"


def card_texts(payload: dict) -> list[str]:
    content = payload["attachments"][0]["content"]
    texts = [block["text"] for block in content["body"] if block["type"] == "TextBlock"]
    facts = [f["value"] for block in content["body"] if block["type"] == "FactSet" for f in block["facts"]]
    return texts + facts


def test_markdown_in_event_values_stays_text():
    variables = {**event("provider_verification_failed"), "consumerName": LINK, "providerName": "**Boss**",
                 "providerVersionBranch": "- not a list"}
    config = {"webhook_url": "${user.TeamsWebhook}"}
    built = REGISTRY["teams"].build(config, renderer(variables, SECRETS), variables)
    texts = card_texts(built.payload)
    assert not any(LINK in t or "**Boss**" in t for t in texts), texts
    assert any(r"\[sign in\]\(https://evil.example/login\)" in t for t in texts)
    assert r"\- not a list" in texts


def test_verifier_messages_stay_text_and_every_line_is_escaped():
    failure = failure_from("ruby.json")
    variables = {**event("provider_verification_failed"), FAILURE: failure}
    built = REGISTRY["teams"].build({"webhook_url": "${user.TeamsWebhook}"}, renderer(variables, SECRETS), variables)
    mismatches = [t for t in card_texts(built.payload) if t.startswith("• ")]
    assert mismatches and all("_" not in t.replace(r"\_", "") for t in mismatches)
    assert json.dumps(built.payload).count("first\\\\_name") >= 1  # Could not find key "first_name": escaped


def test_escaping_is_lossless_for_the_reader():
    for value in ("1.0.0", "feat/x-y", "a_b*c", "12. done", "# heading", "plain text"):
        unescaped = md(value).replace("\\", "") if "\\" not in value else None
        assert unescaped == value
