"""UI fixtures: a test client signed in with a token of a given role, and the page's CSRF token."""

from __future__ import annotations

import re

import pytest

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


class Browser:
    """The Flask test client with a cookie jar, signed in, posting forms with the page's CSRF token."""

    def __init__(self, client):
        self.client = client
        self.csrf = ""

    def get(self, path, **kwargs):
        resp = self.client.get(path, **kwargs)
        if resp.mimetype == "text/html" and CSRF.search(resp.text):
            self.csrf = csrf_of(resp.text)
        return resp

    def post(self, path, data=None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.client.post(path, data=data, **kwargs)

    def sign_in(self, email: str, password: str = PASSWORD):
        self.get("/ui/sign-in")
        resp = self.post("/ui/sign-in", {"email": email, "password": password})
        assert resp.status_code == 302, resp.text
        self.get("/ui/")
        return self


@pytest.fixture
def people(runtime) -> dict[str, str]:
    """One web user per role: role → e-mail; every password is PASSWORD."""
    from relay.security.users import create_user

    with runtime.sessions.begin() as session:
        return {role: create_user(session, f"{role}@example.com", role, PASSWORD).email
                for role in ("admin", "write", "read")}


@pytest.fixture
def browser(app, people):
    return Browser(app.test_client()).sign_in(people["admin"])


@pytest.fixture
def as_role(app, people):
    return lambda role: Browser(app.test_client()).sign_in(people[role])
