"""The audit log names what changed and how, filters by prefix, groups sign-ins and hides no detail."""

from __future__ import annotations


def test_names_diffs_prefixes_and_grouped_sign_ins(api, browser, app, people):
    from tests.relay.web.ui.conftest import Browser

    made = api.post("/webhooks", json={"description": "Notify CI", "events": [{"name": "contract_published"}],
                                       "request": {"method": "POST", "url": "https://ci.example.com/a",
                                                   "password": "hunter2-secret", "username": "bot"}}).json
    api.put(f"/webhooks/{made['uuid']}", json={"description": "Notify CI", "events": [{"name": "contract_published"}],
                                                "request": {"method": "PUT", "url": "https://ci.example.com/b",
                                                            "password": "changed-secret-99", "username": "bot"}})
    api.post("/secrets", json={"name": "Tok", "value": "value-never-shown"})
    for _ in range(3):
        Browser(app.test_client()).sign_in(people["read"])
    page = browser.get("/ui/audit").text
    updated = page.split("<code>webhook.updated</code>", 1)[1].split("</tr>", 1)[0]
    assert '<strong class="subject">Notify CI</strong>' in updated
    assert ("<code>request.url</code>: <del>https://ci.example.com/a</del> → <ins>https://ci.example.com/b</ins>"
            in updated)
    assert "<code>request.method</code>: <del>POST</del> → <ins>PUT</ins>" in updated
    assert "hunter2" not in page and "changed-secret" not in page and "value-never-shown" not in page
    assert '<strong class="subject">Tok</strong>' in page
    assert "<details>" in updated or "<details>" in page  # details expand instead of being cut off
    assert page.count("<code>user.login</code>") == 2 and "× 3" in page  # the admin once; three sign-ins, one row
    webhooks_only = browser.get("/ui/audit?type=webhook").text
    assert "webhook.created" in webhooks_only and "webhook.updated" in webhooks_only
    assert "secret.created" not in webhooks_only and "user.login" not in webhooks_only
    assert "secret.created" not in browser.get("/ui/audit?type=%25").text  # LIKE wildcards are literal


def test_only_real_changes_the_created_settings_and_secrets_by_name(api, browser):
    events = [{"name": "provider_verification_failed"}, {"name": "contract_published"}]
    made = api.post("/webhooks", json={"description": "Order matters not", "events": events,
                                       "request": {"method": "POST", "url": "https://ci.example.com/a",
                                                   "password": "hunter2-secret", "username": "bot"}}).json
    api.put(f"/webhooks/{made['uuid']}", json={"description": "Order matters not", "events": events[::-1],
                                                "request": {"method": "POST", "url": "https://ci.example.com/b",
                                                            "password": "**********", "username": "bot"}})
    api.post("/secrets", json={"name": "slackHook", "description": "the incoming webhook of #deploys",
                               "value": "value-never-shown"})
    page = browser.get("/ui/audit").text
    updated = page.split("<code>webhook.updated</code>", 1)[1].split("</tr>", 1)[0]
    assert "<code>request.url</code>" in updated and "<code>events</code>" not in updated  # only the URL changed
    created = page.split("<code>webhook.created</code>", 1)[1].split("</tr>", 1)[0]
    assert "<code>request.url</code>: https://ci.example.com/a" in created
    assert "<code>events</code>: contract_published, provider_verification_failed" in created
    assert "<code>request.password</code>: **********" in created and "hunter2" not in page
    secret = page.split("<code>secret.created</code>", 1)[1].split("</tr>", 1)[0]
    assert '<strong class="subject">slackHook</strong>' in secret
