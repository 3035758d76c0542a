"""The web UI through the Flask client: sign-in, roles, CSRF, the editor, secrets, tokens, deliveries."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import select

from relay.models import Secret, Token, Webhook
from tests.conftest import sample_event

PAGES = ["/ui/", "/ui/network", "/ui/webhooks", "/ui/webhooks/new", "/ui/deliveries", "/ui/secrets", "/ui/tokens",
         "/ui/users", "/ui/audit", "/ui/about"]


def editor_form(url, **overrides):
    """A valid editor form; its consumer is "any", as a name no event carried would make the save warn."""
    form = {"kind": "request", "description": "notify CI", "consumer_by": "any", "consumer_value": "",
            "provider_by": "any", "provider_value": "", "events": ["contract_published"], "enabled": "on",
            "cfg.method": "POST", "cfg.url": url, "cfg.headers": "Content-Type: application/json",
            "cfg.body": '{"consumer": "${pactbroker.consumerName}"}'}
    form.update(overrides)
    return form


def test_pages_need_sign_in(client):
    for page in PAGES:
        resp = client.get(page)
        assert resp.status_code == 302 and "/ui/sign-in" in resp.headers["Location"], page


def test_sign_in_rejects_wrong_passwords_and_records_it(app, people, runtime):
    from relay.models import AuditEntry
    from tests.relay.web.ui.conftest import Browser

    b = Browser(app.test_client())
    b.get("/ui/sign-in")
    resp = b.post("/ui/sign-in", {"email": people["admin"], "password": "wrong password!"})
    assert resp.status_code == 401 and "wrong e-mail or password" in resp.text
    with runtime.sessions() as session:
        assert "user.login_failed" in session.scalars(select(AuditEntry.type)).all()


def test_every_page_renders_for_admin(browser):
    for page in PAGES:
        resp = browser.get(page)
        assert resp.status_code == 200, (page, resp.text[:500])
        assert "Signed in as" in resp.text and "csrf_token" in resp.text


def test_forms_without_csrf_are_refused(browser):
    resp = browser.client.post("/ui/secrets", data={"name": "A1", "value": "v"})
    assert resp.status_code == 400 and "expired" in resp.text


def test_read_role_sees_no_write_actions_and_is_refused_server_side(as_role, runtime):
    reader = as_role("read")
    assert "New webhook" not in reader.get("/ui/webhooks").text
    assert "Tokens" not in reader.get("/ui/").text
    assert reader.get("/ui/tokens").status_code == 403
    assert reader.get("/ui/webhooks/new").status_code == 403
    assert reader.post("/ui/secrets", {"name": "A1", "value": "v"}).status_code == 403
    with runtime.sessions() as session:
        assert session.get(Secret, "A1") is None


def test_editor_creates_validates_and_masks(browser, runtime):
    browser.get("/ui/webhooks/new")
    bad = browser.post("/ui/webhooks/new", editor_form("ftp://x", **{"cfg.body": "{oops", "events": []}))
    assert bad.status_code == 400
    assert 'id="cfg.url-error"' in bad.text and "absolute http(s) URL" in bad.text
    assert 'id="cfg.body-error"' in bad.text and 'id="events-error"' in bad.text
    resp = browser.post("/ui/webhooks/new", editor_form("https://ci.example.com/build", consumer_by="label",
                                                        consumer_value="Foo",
                                                        **{"cfg.password": "hunter2-very-secret",
                                                           "cfg.username": "bot"}))
    assert resp.status_code == 302
    with runtime.sessions() as session:
        hook = session.scalars(select(Webhook)).one()
    assert hook.consumer_label == "Foo" and hook.events == ["contract_published"]
    page = browser.get(resp.headers["Location"]).text
    assert "hunter2-very-secret" not in page and "**********" in page
    # Saving again with the mask keeps the stored password.
    again = browser.post(f"/ui/webhooks/{hook.uuid}", editor_form("https://ci.example.com/build2",
                                                                   **{"cfg.password": "**********",
                                                                      "cfg.username": "bot"}))
    assert again.status_code == 302
    with runtime.sessions() as session:
        stored = session.get(Webhook, hook.uuid)
    assert stored.config["url"].endswith("build2") and stored.config["password"] == hook.config["password"]


def test_editing_keeps_the_team_a_broker_client_set(browser, runtime):
    with runtime.sessions.begin() as session:
        session.add(Webhook(uuid="team-webhook-0000001", events=["contract_published"], kind="request",
                            config={"method": "POST", "url": "https://ci.example.com/a"}, team_uuid="team-42"))
    browser.get("/ui/webhooks/team-webhook-0000001")
    assert browser.post("/ui/webhooks/team-webhook-0000001",
                        editor_form("https://ci.example.com/b")).status_code == 302
    with runtime.sessions() as session:
        stored = session.get(Webhook, "team-webhook-0000001")
    assert stored.config["url"].endswith("/b") and stored.team_uuid == "team-42"


def test_unknown_variable_and_missing_secret_are_shown_beside_the_field(browser):
    browser.get("/ui/webhooks/new")
    resp = browser.post("/ui/webhooks/new", editor_form("https://x.example.com/${pactbroker.nope}",
                                                        **{"cfg.headers": "X-Key: ${user.Missing}"}))
    assert resp.status_code == 400
    assert "unknown variable ${pactbroker.nope}" in resp.text and "secret ${user.Missing} does not exist" in resp.text


def test_every_kind_has_an_editor(browser):
    import integrations

    for kind in integrations.REGISTRY:
        resp = browser.get(f"/ui/webhooks/new?kind={kind}")
        assert resp.status_code == 200
        for key in integrations.get(kind).fields:
            assert f'name="cfg.{key}"' in resp.text, (kind, key)


def test_preset_fills_the_editor(browser):
    page = browser.get("/ui/webhooks/new?preset=github-repository-dispatch")
    assert 'name="p.repository"' in page.text
    missing = browser.get("/ui/webhooks/new?preset=github-repository-dispatch&apply=1")
    assert "is required" in missing.text
    filled = browser.get("/ui/webhooks/new?preset=github-repository-dispatch&apply=1&p.repository=org/app")
    assert "https://api.github.com/repos/org/app/dispatches" in filled.text
    assert "${user.GitHubToken}" in filled.text


def test_test_button_sends_and_shows_request_response_and_log(browser, httpserver):
    httpserver.expect_request("/hook").respond_with_data("thanks", status=200)
    browser.get("/ui/webhooks/new")
    form = editor_form(httpserver.url_for("/hook"))
    fragment = browser.post("/ui/webhooks/test", form, headers={"X-Requested-With": "fetch"})
    assert fragment.status_code == 200 and "succeeded" in fragment.text
    assert "HTTP 200" in fragment.text and "thanks" in fragment.text and "<html" not in fragment.text
    full = browser.post("/ui/webhooks/test", form)
    assert "<html" in full.text and "succeeded" in full.text
    bad = browser.post("/ui/webhooks/test", editor_form("nope"), headers={"X-Requested-With": "fetch"})
    assert bad.status_code == 400 and "Not sent" in bad.text


def test_secret_value_is_never_rendered(browser, runtime):
    browser.get("/ui/secrets")
    resp = browser.post("/ui/secrets", {"name": "CiToken", "description": "CI", "value": "s3cr3t-value-xyz"})
    assert resp.status_code == 302
    for page in ("/ui/secrets", "/ui/secrets?edit=CiToken", "/ui/webhooks/new"):
        text = browser.get(page).text
        assert "s3cr3t-value-xyz" not in text
    assert "${user.CiToken}" in browser.get("/ui/secrets").text
    bad = browser.post("/ui/secrets", {"name": "bad name", "value": "another-secret-value"})
    assert bad.status_code == 400 and "another-secret-value" not in bad.text
    browser.get("/ui/secrets")
    assert browser.post("/ui/secrets/CiToken/delete").status_code == 302
    with runtime.sessions() as session:
        assert session.get(Secret, "CiToken") is None


def test_tokens_shown_once_and_revocable(browser, runtime):
    browser.get("/ui/tokens")
    resp = browser.post("/ui/tokens", {"name": "ci", "role": "write"}, follow_redirects=True)
    assert resp.status_code == 200 and "shown this once" in resp.text
    value = resp.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert value.startswith("prt_") and value not in browser.get("/ui/tokens").text
    with runtime.sessions() as session:
        token = session.scalars(select(Token).where(Token.name == "ci")).one()
    assert browser.post(f"/ui/tokens/{token.id}/revoke").status_code == 302
    assert "revoked" in browser.get("/ui/tokens").text


def test_a_reloaded_token_form_creates_nothing_more(browser, runtime):
    page = browser.get("/ui/tokens").text
    form = {"name": "ci", "role": "read", "form_id": page.split('name="form_id" value="', 1)[1].split('"', 1)[0]}
    assert browser.post("/ui/tokens", form).status_code == 302
    again = browser.post("/ui/tokens", form)  # what a browser's reload of the result page sends
    assert again.status_code == 409 and "already sent" in again.text and "shown this once" not in again.text
    with runtime.sessions() as session:
        assert len(session.scalars(select(Token).where(Token.name == "ci")).all()) == 1
    fresh = browser.get("/ui/tokens").text.split('name="form_id" value="', 1)[1].split('"', 1)[0]
    assert fresh != form["form_id"]
    assert browser.post("/ui/tokens", {**form, "form_id": fresh}).status_code == 302  # a new form makes a new one


def test_event_to_dashboard_deliveries_and_replay(browser, api, drain, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    browser.get("/ui/webhooks/new")
    form = editor_form(httpserver.url_for("/hook"), consumer_by="any", consumer_value="")
    assert browser.post("/ui/webhooks/new", form).status_code == 302
    event = sample_event("contract_published")
    assert api.post("/events", json=event).status_code == 202
    drain()
    board = browser.get("/ui/").text
    assert event["consumerName"] in board and "succeeded" in board
    listing = browser.get("/ui/deliveries?state=succeeded").text
    delivery_id = listing.split('href="/ui/deliveries/', 1)[1].split('"', 1)[0]
    assert f'href="/ui/deliveries/{delivery_id}" class="status status-succeeded"' in board  # the pair's newest
    page = browser.get(f"/ui/deliveries/{delivery_id}").text
    assert "Attempt 1" in page and "HTTP 200" in page
    replay = browser.post(f"/ui/deliveries/{delivery_id}/replay")
    assert replay.status_code == 302
    for _ in range(20):  # a busy machine may take a moment to see the new job
        drain()
        copy = browser.get(replay.headers["Location"]).text
        if "Attempt 1" in copy:
            break
        time.sleep(0.25)
    assert "Replayed" in copy and "Attempt 1" in copy
    copy_id = replay.headers["Location"].split("?", 1)[0].rsplit("/", 1)[1]
    assert f'href="/ui/deliveries/{copy_id}" class="status' in browser.get("/ui/").text  # the replay is newest now
    pair = browser.get(f"/ui/pair?consumer={event['consumerName']}&provider={event['providerName']}")
    assert pair.status_code == 200 and "contract_published" in pair.text
    src = re.search(r'<img src="([^"]+)"', pair.text).group(1)
    assert src.startswith("/pacts/provider/")  # on the host serving the page, whatever RELAY_PUBLIC_URL says
    image = browser.get(src.replace("&amp;", "&"))
    assert image.status_code == 200 and image.mimetype == "image/svg+xml"
    assert "[![pact](http://localhost:8000/pacts/provider/" in pair.text
    svg = browser.get("/ui/network.svg")
    assert svg.mimetype == "image/svg+xml" and event["providerName"] in svg.text


def test_about_shows_version_and_broker_json(browser):
    page = browser.get("/ui/about").text
    assert "0.1.0" in page and "/events" in page and "${pactbroker.pactUrl}" in page
    resp = browser.post("/ui/about/intake-token", follow_redirects=True)
    doc = json.loads(resp.text.split('id="broker-json">', 1)[1].split("</pre>", 1)[0].replace("&#34;", '"'))
    assert doc["request"]["headers"]["Authorization"].startswith("Bearer prt_")


def test_sign_in_redirect_stays_on_site(app, people):
    from tests.relay.web.ui.conftest import PASSWORD, Browser

    b = Browser(app.test_client())
    b.get("/ui/sign-in")
    resp = b.post("/ui/sign-in", {"email": people["read"], "password": PASSWORD, "next": "//evil.example.com/"})
    assert resp.headers["Location"] == "/ui/"


@pytest.mark.parametrize("target", ["/%09/evil.example", "/\t/evil.example", "/%0a/x", "/%0d/x", "/\n/x",
                                    "/\r/x", "/%20/evil.example", "/\\evil.example", "//evil.example",
                                    "https://evil.example/", "/%00/x", "/\x7f/evil.example"])
def test_sign_in_next_never_leaves_the_site(app, people, target):
    """M2: the check is made on what the Location header carries (tabs and line breaks are not stripped after)."""
    from urllib.parse import quote, unquote

    from tests.relay.web.ui.conftest import PASSWORD, Browser

    b = Browser(app.test_client())
    b.get("/ui/sign-in")
    posted = b.post("/ui/sign-in", {"email": people["read"], "password": PASSWORD, "next": unquote(target)})
    assert posted.status_code == 302 and posted.headers["Location"] == "/ui/"
    signed_in = b.get("/ui/sign-in?next=" + quote(unquote(target), safe="/%"))
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/ui/"
    assert b.get("/ui/sign-in?next=/ui/webhooks").headers["Location"] == "/ui/webhooks"


def test_every_action_lands_in_the_audit_log(browser, runtime, httpserver):
    from relay.models import AuditEntry

    httpserver.expect_request("/hook").respond_with_data("ok")
    browser.get("/ui/secrets")
    browser.post("/ui/secrets", {"name": "Tok", "value": "secret-value-123"})
    browser.get("/ui/webhooks/new")
    assert browser.post("/ui/webhooks/new", editor_form(httpserver.url_for("/hook"))).status_code == 302
    browser.post("/ui/webhooks/test", editor_form(httpserver.url_for("/hook")))
    browser.post("/ui/tokens", {"name": "t", "role": "read"})
    browser.post("/ui/users", {"email": "new@example.com", "role": "read", "password": "another long password"})
    page = browser.get("/ui/audit").text
    with runtime.sessions() as session:
        types = set(session.scalars(select(AuditEntry.type)))
    for kind in ("user.login", "secret.created", "webhook.created", "webhook.executed", "token.created",
                 "user.created"):
        assert kind in types and kind in page, kind
    assert "secret-value-123" not in page


def test_role_denial_is_an_html_page_and_audited(as_role, runtime):
    from relay.models import AuditEntry

    writer = as_role("write")
    resp = writer.get("/ui/users")
    assert resp.status_code == 403 and resp.mimetype == "text/html"
    with runtime.sessions() as session:
        assert "auth.denied" in session.scalars(select(AuditEntry.type)).all()


def test_network_layout_points_every_edge_right_and_survives_cycles():
    from relay.web.ui.network import COLOURS, layout

    picture = layout([("web", "orders", "verified"), ("orders", "payments", "failed"), ("mobile", "orders", "changed"),
                      ("a", "b", "unknown"), ("b", "a", "verified"), ("self", "self", "verified")])
    x = {n.name: n.x for n in picture.nodes}
    assert x["web"] < x["orders"] < x["payments"] and x["mobile"] < x["orders"]
    assert {e.colour for e in picture.edges} == set(COLOURS.values())
    assert len(picture.nodes) == 7 and picture.width > 0 and picture.height > 0


def test_network_svg_escapes_names(browser, runtime):
    from relay.models import PairStateRow

    with runtime.sessions.begin() as session:
        session.add(PairStateRow(consumer='<script>"x"</script>', provider="p&q", consumer_tag="", provider_tag="",
                                 last_event_name=""))
    svg = browser.get("/ui/network.svg").text
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "p&amp;q" in svg


def test_admin_disables_and_enables_a_user(browser, people, runtime):
    from relay.models import User

    with runtime.sessions() as session:
        reader = session.scalars(select(User).where(User.email == people["read"])).one()
    browser.get("/ui/users")
    assert browser.post(f"/ui/users/{reader.id}/disable").status_code == 302
    assert "disabled" in browser.get("/ui/users").text
    assert browser.post(f"/ui/users/{reader.id}/enable").status_code == 302
    with runtime.sessions() as session:
        assert session.get(User, reader.id).disabled_at is None


def test_looking_at_pages_writes_nothing_to_the_audit_log(app, browser, runtime):
    """Form pages share their endpoint with the form's POST; only the POST is a change."""
    from sqlalchemy import func

    from relay.models import AuditEntry

    def entries():
        with runtime.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry))

    pages = [rule.rule for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("ui.") and "GET" in rule.methods and not rule.arguments]
    assert "/ui/sign-in" in pages and "/ui/webhooks/new" in pages and "/ui/tokens" in pages
    before = entries()
    for path in pages:
        # /ui/pair needs a pair; the SAML metadata is there only with SAML configured
        assert browser.get(path).status_code < 400 or path in ("/ui/pair", "/ui/sign-in/saml/metadata"), path
    assert app.test_client().get("/ui/sign-in?next=/ui/webhooks").status_code == 200  # signed out
    assert entries() == before
