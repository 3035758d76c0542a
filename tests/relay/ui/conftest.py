"""UI fixtures: a test client signed in with a token of a given role, and the page's CSRF token."""

from __future__ import annotations

import re

import pytest

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

    def sign_in(self, token: str):
        self.get("/ui/sign-in")
        resp = self.post("/ui/sign-in", {"token": token})
        assert resp.status_code == 302, resp.text
        self.get("/ui/")
        return self


@pytest.fixture
def browser(app, tokens):
    return Browser(app.test_client()).sign_in(tokens["admin"])


@pytest.fixture
def as_role(app, tokens):
    return lambda role: Browser(app.test_client()).sign_in(tokens[role])
