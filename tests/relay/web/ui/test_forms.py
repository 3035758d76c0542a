"""Forms: rules said by the field first, an error summary linking to fields, admin role and password changes,
multi-line secrets (a pasted GitHub App key signs in)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from werkzeug import Response

from relay.models import Secret, User, Webhook
from tests.relay.web.ui.test_ui_pages import editor_form


def test_the_password_rule_is_said_by_the_field_before_any_failure(browser):
    page = browser.get("/ui/users").text
    assert 'id="user-password-hint">At least 12 characters' in page and 'minlength="12"' in page


def test_admins_change_roles_and_reset_passwords(browser, app, people, runtime):
    from tests.relay.web.ui.conftest import Browser

    reader = Browser(app.test_client()).sign_in(people["read"])
    with runtime.sessions() as session:
        user = session.scalars(select(User).where(User.email == people["read"])).one()
    browser.get("/ui/users")
    assert browser.post(f"/ui/users/{user.id}/role", {"role": "write"}).status_code == 302
    assert reader.get("/ui/").status_code == 302  # the old session ended with the old role
    short = browser.post(f"/ui/users/{user.id}/password", {"password": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text and 'id="error-summary"' in short.text
    assert browser.post(f"/ui/users/{user.id}/password", {"password": "a brand new long password"}).status_code == 302
    fresh = Browser(app.test_client()).sign_in(people["read"], "a brand new long password")
    assert fresh.get("/ui/webhooks/new").status_code == 200  # write role now
    with runtime.sessions() as session:
        me = session.scalars(select(User).where(User.email == people["admin"])).one()
    assert browser.post(f"/ui/users/{me.id}/role", {"role": "read"}).status_code == 400


def test_a_failed_save_starts_at_an_error_summary_linking_to_each_field(browser):
    browser.get("/ui/webhooks/new")
    bad = browser.post("/ui/webhooks/new", editor_form("ftp://x", **{"cfg.body": "{oops", "events": []}))
    assert bad.status_code == 400
    summary = bad.text.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert 'href="#cfg-url"' in summary and 'href="#cfg-body"' in summary and 'href="#events-error"' in summary
    assert 'id="cfg-url"' in bad.text and 'id="events-error"' in bad.text


def test_a_pasted_pem_key_keeps_its_lines_and_signs_in(browser, runtime, httpserver):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    browser.get("/ui/secrets")
    pasted = pem.replace("\n", "\r\n")  # what a browser sends for a textarea
    assert browser.post("/ui/secrets", {"name": "AppKey", "value": pasted}).status_code == 302
    with runtime.sessions() as session:
        assert runtime.vault.decrypt(session.get(Secret, "AppKey").ciphertext) == pem
    signed = []

    def grant(request):
        token = request.headers["Authorization"].partition(" ")[2]
        signed.append(jwt.decode(token, key.public_key(), algorithms=["RS256"])["iss"])
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Response(json.dumps({"token": "ghs_x", "expires_at": expires}), status=201,
                        content_type="application/json")

    httpserver.expect_request("/app/installations/77/access_tokens", method="POST").respond_with_handler(grant)
    httpserver.expect_request("/repos/acme/app/statuses/0123abc", method="POST").respond_with_json({"id": 1},
                                                                                               status=201)
    browser.get("/ui/webhooks/new?kind=github")
    form = {"kind": "github", "description": "status", "consumer_by": "any", "provider_by": "any",
            "events": ["provider_verification_succeeded"], "enabled": "on", "cfg.repository": "acme/app",
            "cfg.app_id": "4242", "cfg.private_key": "${user.AppKey}", "cfg.installation_id": "77",
            "cfg.sha": "0123abc",
            "cfg.base_url": httpserver.url_for("/").rstrip("/"), "test_event": "sample:provider_verification_succeeded"}
    html = browser.post("/ui/webhooks/test", form).text
    assert signed == ["4242"], html[html.find("test-result"):][:2000]
    assert 'class="status status-succeeded"' in html


def test_a_header_named_like_a_credential_is_sealed_masked_and_warned_about(browser, runtime):
    """Issue 23 #17: the editor warns when it seals a literal header value for its name, and never shows it."""
    browser.get("/ui/webhooks/new")
    saved = browser.post("/ui/webhooks/new", editor_form(
        "https://example.org/hook", **{"cfg.headers": "X-Functions-Key: fnkey-0123456789abcdef\nAccept: text/plain"}))
    assert saved.status_code == 201, saved.text
    assert 'id="save-warnings"' in saved.text and "X-Functions-Key" in saved.text
    with runtime.sessions() as session:
        (config,) = session.scalars(select(Webhook.config))
    assert runtime.vault.unseal(config["headers"]["X-Functions-Key"]) == "fnkey-0123456789abcdef"
    assert "fnkey-0123456789abcdef" not in saved.text + browser.get("/ui/audit").text
