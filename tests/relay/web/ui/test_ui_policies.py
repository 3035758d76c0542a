"""The UI tells the truth about delivery policies: a paused webhook says so (list and editor) and resumes by hand;
the editor keeps a webhook's rate limit and debounce."""

from relay.delivery import breaker
from relay.models import Webhook, utcnow
from relay.web.ui.webhook_form import from_webhook, to_doc


def paused_hook(api, runtime, httpserver) -> dict:
    hook = api.post("/webhooks", json={"description": "flaky", "request": {"method": "POST",
                                                                           "url": httpserver.url_for("/hook")}}).json
    with runtime.sessions.begin() as session:
        for _ in range(5):
            breaker.record_failure(session, hook["uuid"], utcnow(), "connection failed: refused", probe=False)
    return hook


def test_a_paused_webhook_shows_in_the_list_and_editor_and_resumes(browser, api, runtime, httpserver):
    hook = paused_hook(api, runtime, httpserver)
    listing = browser.get("/ui/webhooks").text
    assert 'class="status status-paused"' in listing and "5 consecutive failures" in listing
    editor = browser.get(f"/ui/webhooks/{hook['uuid']}").text
    assert "Resume now" in editor and "last: connection failed: refused" in editor
    resp = browser.post(f"/ui/webhooks/{hook['uuid']}/resume")
    assert resp.status_code == 302
    assert api.get(f"/webhooks/{hook['uuid']}").json["state"] == "active"
    assert "status-paused" not in browser.get("/ui/webhooks").text
    assert "Resumed" in browser.get(f"/ui/webhooks/{hook['uuid']}?resumed=1").text


def test_resume_needs_write_and_a_csrf_token(app, people, api, runtime, httpserver):
    from tests.relay.web.ui.conftest import Browser

    hook = paused_hook(api, runtime, httpserver)
    reader = Browser(app.test_client()).sign_in(people["read"])
    assert "Resume now" not in reader.get(f"/ui/webhooks/{hook['uuid']}").text
    assert reader.post(f"/ui/webhooks/{hook['uuid']}/resume").status_code == 403
    writer = Browser(app.test_client()).sign_in(people["write"])
    assert writer.post(f"/ui/webhooks/{hook['uuid']}/resume", {"csrf_token": "forged"}).status_code in (400, 403)
    assert api.get(f"/webhooks/{hook['uuid']}").json["state"] == "paused"


def test_the_editor_keeps_rate_limit_and_debounce(browser, api, runtime, httpserver):
    hook = api.post("/webhooks", json={"request": {"method": "POST", "url": httpserver.url_for("/hook")},
                                       "rateLimit": 2.5, "debounce": 30}).json
    page = browser.get(f"/ui/webhooks/{hook['uuid']}").text
    assert 'name="rate_limit" value="2.5"' in page and 'name="debounce" value="30"' in page
    with runtime.sessions() as session:
        doc = to_doc(from_webhook(session.get(Webhook, hook["uuid"])))
    assert doc["rateLimit"] == 2.5 and doc["debounce"] == 30
