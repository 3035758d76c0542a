"""Sign in through a real OpenID Connect provider (panva's oidc-provider on loopback) via the relay's own routes."""

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from sqlalchemy import select

from relay.app import create_app
from relay.models import AuditEntry, User
from tests.conftest import free_port, make_settings
from tests.relay.web.ui.conftest import Browser

ROOT = Path(__file__).resolve().parents[4]
MODULE = ROOT / ".ci-tools" / "idp" / "node_modules" / "oidc-provider" / "lib" / "index.js"
CONFIG = ROOT / "tests" / "fixtures" / "idp" / "oidc-provider.mjs"
PUBLIC_URL = "http://localhost:8000"
CLIENT_ID, CLIENT_SECRET = "pact-relay", "an-oidc-client-secret-value"
ACCOUNTS = {
    "alice": {"email": "alice@example.com", "email_verified": True, "name": "Alice", "groups": ["pact-devs", "x"]},
    "mallory": {"email": "alice@example.com", "email_verified": False, "groups": ["acme"]},
}


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    if not MODULE.exists():
        if os.environ.get("CI"):
            pytest.fail("oidc-provider is not installed: run tools/install-test-idp")
        pytest.skip("oidc-provider is not installed: run tools/install-test-idp")
    accounts = tmp_path_factory.mktemp("idp") / "accounts.json"
    accounts.write_text(json.dumps(ACCOUNTS))
    port = free_port()
    env = {**os.environ, "IDP_MODULE": str(MODULE), "IDP_PORT": str(port), "IDP_CLIENT_ID": CLIENT_ID,
           "IDP_CLIENT_SECRET": CLIENT_SECRET, "IDP_REDIRECT_URI": f"{PUBLIC_URL}/ui/sign-in/oidc/callback",
           "IDP_ACCOUNTS": str(accounts)}
    proc = subprocess.Popen(["node", str(CONFIG)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # waits for the provider to listen (or for it to exit)
    assert line.startswith("listening"), proc.stderr.read()
    yield {"issuer": f"http://127.0.0.1:{port}", "accounts": accounts}
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def relay(idp, tmp_path, database_url, redis_url):
    idp["accounts"].write_text(json.dumps(ACCOUNTS))
    return create_app(make_settings(
        tmp_path, database_url, redis_url, public_url=PUBLIC_URL, oidc_issuer=idp["issuer"], oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET, oidc_scopes=("openid", "email", "profile", "groups"),
        sso_role_map=(("pact-admins", "admin"), ("pact-devs", "write"), ("acme", "read"))))


def start(browser: Browser, next_path="/ui/webhooks"):
    page = browser.get("/ui/sign-in")
    assert 'id="sign-in-oidc"' in page.text
    resp = browser.post("/ui/sign-in/oidc", {"next": next_path})
    assert resp.status_code == 303, resp.text
    return resp.headers["Location"]


def at_the_provider(url: str, login: str, person: requests.Session) -> str:
    """Through the provider's own login and consent pages, as a person would; returns the relay callback URL."""
    while not url.startswith(PUBLIC_URL):
        resp = person.get(url, allow_redirects=False)
        if resp.status_code in (302, 303):
            url = urljoin(url, resp.headers["Location"])
            continue
        assert resp.status_code == 200, resp.text
        action = urljoin(url, re.search(r'<form[^>]*action="([^"]+)"', resp.text).group(1))
        form = {"prompt": "login", "login": login, "password": "any"} if 'name="login"' in resp.text \
            else {"prompt": "consent"}
        resp = person.post(action, data=form, allow_redirects=False)
        url = urljoin(action, resp.headers["Location"])
    return url


def sign_in(relay, login: str, next_path="/ui/webhooks"):
    browser = Browser(relay.test_client())
    callback = at_the_provider(start(browser, next_path), login, requests.Session())
    return browser, callback, browser.get(callback[len(PUBLIC_URL):])


def stored(relay, **where):
    with relay.extensions["relay"].sessions() as session:
        return session.scalar(select(User).filter_by(**where))


def audit(relay):
    with relay.extensions["relay"].sessions() as session:
        return [(e.type, json.loads(e.payload)) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def test_the_authorization_request_carries_state_nonce_and_pkce(relay, idp):
    url = start(Browser(relay.test_client()))
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{idp['issuer']}/auth?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["nonce"][0] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/ui/sign-in/oidc/callback"]
    assert CLIENT_SECRET not in url


def test_first_sign_in_creates_the_user_with_the_mapped_role(relay, idp):
    browser, _, landing = sign_in(relay, "alice")
    assert landing.status_code == 302 and landing.headers["Location"] == "/ui/webhooks"
    assert browser.get("/ui/webhooks").status_code == 200
    user = stored(relay, email="alice@example.com")
    assert (user.role, user.sso_provider, user.sso_subject) == ("write", "oidc", f"{idp['issuer']} alice")
    login = [p for t, p in audit(relay) if t == "user.login"][-1]
    assert login == {"email": "alice@example.com", "role": "write", "provider": "oidc",
                     "subject": f"{idp['issuer']} alice", "issuer": idp["issuer"], "sub": "alice"}


def test_removed_from_the_mapped_group_no_access_at_the_next_sign_in(relay, idp):
    first, _, _ = sign_in(relay, "alice")
    assert first.get("/ui/webhooks").status_code == 200
    idp["accounts"].write_text(json.dumps({**ACCOUNTS, "alice": {**ACCOUNTS["alice"], "groups": ["x"]}}))
    _, _, again = sign_in(relay, "alice")
    assert again.status_code == 403 and "none of your groups" in again.text
    assert first.get("/ui/webhooks").status_code == 302  # the open session ended too


def test_an_unverified_email_does_not_claim_alices_user(relay, idp):
    sign_in(relay, "alice")
    _, _, landing = sign_in(relay, "mallory")
    assert landing.status_code == 302
    assert stored(relay, email="alice@example.com").sso_subject == f"{idp['issuer']} alice"
    assert stored(relay, sso_subject=f"{idp['issuer']} mallory").email == f"oidc:{idp['issuer']} mallory"


def test_the_answer_is_used_once_and_only_in_the_browser_that_started(relay, idp):
    browser, callback, landing = sign_in(relay, "alice")
    assert landing.status_code == 302
    replay = browser.get(callback[len(PUBLIC_URL):])
    assert replay.status_code == 400 and "already used" in replay.text
    other = Browser(relay.test_client())
    started = start(other)
    stolen = at_the_provider(started, "alice", requests.Session())
    elsewhere = Browser(relay.test_client())
    elsewhere.get("/ui/sign-in")
    assert elsewhere.get(stolen[len(PUBLIC_URL):]).status_code == 400  # login CSRF: not this browser's state


def test_a_mismatched_state_is_refused(relay, idp):
    browser = Browser(relay.test_client())
    callback = at_the_provider(start(browser), "alice", requests.Session())
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    assert browser.get(forged[len(PUBLIC_URL):]).status_code == 400
    assert stored(relay, email="alice@example.com") is None


@pytest.mark.parametrize("target", ["//evil.example.com/", "https://evil.example.com/", "/\t/evil.example.com"])
def test_next_cannot_leave_the_relay(relay, idp, target):
    _, _, landing = sign_in(relay, "alice", next_path=target)
    assert landing.status_code == 302 and landing.headers["Location"] == "/ui/"


def test_a_wrong_client_secret_names_the_setting_and_shows_no_secret(idp, tmp_path, database_url, redis_url, caplog):
    relay = create_app(make_settings(
        tmp_path, database_url, redis_url, public_url=PUBLIC_URL, oidc_issuer=idp["issuer"], oidc_client_id=CLIENT_ID,
        oidc_client_secret="the-wrong-client-secret", sso_role_map=(("pact-devs", "write"),)))
    _, callback, landing = sign_in(relay, "alice")
    assert landing.status_code == 502 and "RELAY_OIDC_CLIENT_SECRET" in landing.text
    code = parse_qs(urlsplit(callback).query)["code"][0]
    for text in (landing.text, caplog.text):
        assert "the-wrong-client-secret" not in text and code not in text
