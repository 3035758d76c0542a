"""Sign in with GitHub through the relay's routes, pytest-httpserver playing GitHub Enterprise's endpoints."""

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select
from werkzeug import Response

from relay.app import create_app
from relay.models import AuditEntry, User
from tests.conftest import make_settings
from tests.relay.web.ui.conftest import Browser

PUBLIC_URL = "http://localhost:8000"
CLIENT_ID, CLIENT_SECRET = "Iv1.relay", "a-github-client-secret-value"
TOKEN = "gho_the-access-token"


class GitHub:
    """authorize → access_token → /api/v3/user, /user/orgs, /user/teams, as GitHub documents them."""

    def __init__(self, server):
        self.server = server
        self.orgs = ["acme"]
        self.teams = [("acme", "pact-admins")]
        self.token_requests = []
        server.expect_request("/login/oauth/authorize").respond_with_handler(self.authorize)
        server.expect_request("/login/oauth/access_token", method="POST").respond_with_handler(self.access_token)
        for path, answer in (("/user", self.user), ("/user/orgs", self.user_orgs), ("/user/teams", self.user_teams)):
            server.expect_request(f"/api/v3{path}").respond_with_handler(self.api(answer))

    def authorize(self, request):
        args = request.args
        assert args["client_id"] == CLIENT_ID and args["scope"] == "read:org"
        assert args["code_challenge_method"] == "S256" and args["code_challenge"]
        target = args["redirect_uri"] + "?" + urlencode({"code": "the-code", "state": args["state"]})
        return Response(status=302, headers={"Location": target})

    def access_token(self, request):
        form = request.form
        self.token_requests.append(dict(form))
        if form.get("client_secret") != CLIENT_SECRET:
            return Response(json.dumps({"error": "incorrect_client_credentials"}), content_type="application/json")
        assert form["code"] == "the-code" and form["code_verifier"]
        return Response(json.dumps({"access_token": TOKEN, "token_type": "bearer", "scope": "read:org"}),
                        content_type="application/json")

    def api(self, answer):
        def handler(request):
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return Response(json.dumps({"message": "Bad credentials"}), status=401)
            return Response(json.dumps(answer()), content_type="application/json")

        return handler

    def user(self):
        return {"login": "octocat", "id": 583231, "email": None}

    def user_orgs(self):
        return [{"login": org, "id": 1} for org in self.orgs]

    def user_teams(self):
        return [{"slug": slug, "organization": {"login": org}} for org, slug in self.teams]


@pytest.fixture
def github(httpserver):
    return GitHub(httpserver)


def relay_for(github, tmp_path, database_url, redis_url, secret=CLIENT_SECRET):
    return create_app(make_settings(
        tmp_path, database_url, redis_url, public_url=PUBLIC_URL, github_client_id=CLIENT_ID,
        github_client_secret=secret, github_base_url=github.server.url_for("").rstrip("/"),
        sso_role_map=(("acme/pact-admins", "admin"), ("acme", "read"))))


@pytest.fixture
def relay(github, tmp_path, database_url, redis_url):
    return relay_for(github, tmp_path, database_url, redis_url)


def sign_in(relay, github, next_path="/ui/webhooks"):
    import requests

    browser = Browser(relay.test_client())
    assert 'id="sign-in-github"' in browser.get("/ui/sign-in").text
    start = browser.post("/ui/sign-in/github", {"next": next_path})
    assert start.status_code == 303
    assert CLIENT_SECRET not in start.headers["Location"]
    at_github = requests.get(start.headers["Location"], allow_redirects=False)
    callback = at_github.headers["Location"]
    assert callback.startswith(f"{PUBLIC_URL}/ui/sign-in/github/callback?")
    return browser, browser.get(callback[len(PUBLIC_URL):])


def stored(relay):
    with relay.extensions["relay"].sessions() as session:
        return session.scalar(select(User).where(User.sso_provider == "github"))


def test_org_team_membership_gives_the_role(relay, github):
    browser, landing = sign_in(relay, github)
    assert landing.status_code == 302 and landing.headers["Location"] == "/ui/webhooks"
    assert browser.get("/ui/users").status_code == 200  # admin, from acme/pact-admins
    user = stored(relay)
    assert (user.email, user.role, user.sso_subject) == ("github:octocat", "admin", "583231")
    with relay.extensions["relay"].sessions() as session:
        login = [json.loads(e.payload) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
                 if e.type == "user.login"][-1]
    assert login == {"email": "github:octocat", "role": "admin", "provider": "github", "subject": "583231",
                     "login": "octocat", "id": "583231"}


def test_membership_is_read_again_at_each_sign_in(relay, github):
    sign_in(relay, github)
    github.teams = []
    browser, _ = sign_in(relay, github)
    assert stored(relay).role == "read" and browser.get("/ui/users").status_code == 403
    github.orgs = []
    _, refused = sign_in(relay, github)
    assert refused.status_code == 403 and "none of your groups" in refused.text


def test_a_wrong_client_secret_names_the_setting(github, tmp_path, database_url, redis_url, caplog):
    relay = relay_for(github, tmp_path, database_url, redis_url, secret="the-wrong-github-secret")
    _, landing = sign_in(relay, github)
    assert landing.status_code == 502 and "RELAY_GITHUB_CLIENT_SECRET" in landing.text
    assert "the-wrong-github-secret" not in landing.text + caplog.text
    assert stored(relay) is None


def test_the_callback_is_single_use(relay, github):
    browser, landing = sign_in(relay, github)
    assert landing.status_code == 302
    state = parse_qs(urlsplit(github.server.log[0][0].url).query)["state"][0]
    again = browser.get("/ui/sign-in/github/callback?" + urlencode({"code": "the-code", "state": state}))
    assert again.status_code == 400 and len(github.token_requests) == 1
