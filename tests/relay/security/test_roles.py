"""Every route of the app, called with every role, no token and a signed-in user, gets the status its rule says."""

import re

import pytest

from relay.security.tokens import GRANTS as CODE_GRANTS

# The role rules, written out here rather than read from relay.security.tokens, so a wrong entry there fails.
GRANTS = {"admin": {"admin", "write", "read", "intake"}, "write": {"write", "read"}, "read": {"read"},
          "intake": {"intake"}}

# The rule for every (method, route). A route missing here fails test_every_route_has_a_rule.
# public: anyone; session: a signed-in web UI user (any role); otherwise the token permission needed.
RULES = {
    ("GET", "/static/<path:filename>"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/metrics"): "read",  # public with RELAY_PUBLIC_METRICS=true
    ("POST", "/login"): "public",
    ("POST", "/logout"): "session",
    ("GET", "/session"): "session",
    ("POST", "/events"): "intake",
    ("GET", "/webhooks"): "read",
    ("GET", "/webhooks/presets"): "read",
    ("POST", "/webhooks"): "write",
    ("GET", "/webhooks/<webhook:uuid>"): "read",
    ("PUT", "/webhooks/<webhook:uuid>"): "write",
    ("DELETE", "/webhooks/<webhook:uuid>"): "write",
    ("POST", "/webhooks/<webhook:uuid>/execute"): "write",
    ("POST", "/webhooks/<webhook:uuid>/resume"): "write",
    ("GET", "/webhooks/<webhook:uuid>/deliveries"): "read",
    ("GET", "/webhooks/provider/<rest:_rest>"): "read",
    ("POST", "/webhooks/provider/<rest:_rest>"): "write",
    ("GET", "/webhooks/consumer/<rest:_rest>"): "read",
    ("POST", "/webhooks/consumer/<rest:_rest>"): "write",
    ("GET", "/deliveries"): "read",
    ("GET", "/deliveries/<delivery_id>"): "read",
    ("POST", "/deliveries/<delivery_id>/replay"): "write",
    ("GET", "/secrets"): "read",
    ("POST", "/secrets"): "write",
    ("GET", "/secrets/<name>"): "read",
    ("PUT", "/secrets/<name>"): "write",
    ("DELETE", "/secrets/<name>"): "write",
    ("GET", "/tokens"): "admin",
    ("POST", "/tokens"): "admin",
    ("GET", "/tokens/<int:token_id>"): "admin",
    ("DELETE", "/tokens/<int:token_id>"): "admin",
    ("POST", "/tokens/<int:token_id>/revoke"): "admin",
    ("GET", "/audit"): "admin",
    ("GET", "/status"): "read",
    ("GET", "/pacts/provider/<rest:_rest>"): "public",
    ("GET", "/matrix/provider/<rest:_rest>"): "public",
    ("GET", "/pacticipants/<rest:_rest>"): "public",
    # The web UI: "ui:<permission>" pages need a signed-in user whose role grants it; tokens never open them.
    ("GET", "/"): "public",
    ("GET", "/ui/static/<path:filename>"): "public",
    ("GET", "/ui/sign-in"): "public",
    ("POST", "/ui/sign-in"): "public",
    ("POST", "/ui/sign-out"): "public",
    ("POST", "/ui/sign-in/<provider>"): "public",  # single sign-on: off to the identity provider
    ("GET", "/ui/sign-in/<provider>/callback"): "public",
    ("POST", "/ui/sign-in/saml"): "public",
    ("POST", "/ui/sign-in/saml/acs"): "public",  # the IdP's signed answer is the credential
    ("GET", "/ui/sign-in/saml/metadata"): "public",  # for the IdP's administrator
    ("GET", "/ui/"): "ui:read",
    ("GET", "/ui/pair"): "ui:read",
    ("GET", "/ui/network"): "ui:read",
    ("GET", "/ui/network.svg"): "ui:read",
    ("GET", "/ui/webhooks"): "ui:read",
    ("GET", "/ui/webhooks/new"): "ui:write",
    ("POST", "/ui/webhooks/new"): "ui:write",
    ("POST", "/ui/webhooks/test"): "ui:write",
    ("GET", "/ui/webhooks/<uuid>"): "ui:read",
    ("POST", "/ui/webhooks/<uuid>"): "ui:write",
    ("POST", "/ui/webhooks/<uuid>/delete"): "ui:write",
    ("POST", "/ui/webhooks/<uuid>/resume"): "ui:write",
    ("GET", "/ui/deliveries"): "ui:read",
    ("GET", "/ui/deliveries/<delivery_id>"): "ui:read",
    ("GET", "/ui/deliveries/<delivery_id>/live"): "ui:read",
    ("POST", "/ui/deliveries/<delivery_id>/replay"): "ui:write",
    ("GET", "/ui/secrets"): "ui:read",
    ("POST", "/ui/secrets"): "ui:write",
    ("POST", "/ui/secrets/<name>/delete"): "ui:write",
    ("GET", "/ui/tokens"): "ui:admin",
    ("POST", "/ui/tokens"): "ui:admin",
    ("POST", "/ui/tokens/<int:token_id>/revoke"): "ui:admin",
    ("GET", "/ui/users"): "ui:admin",
    ("POST", "/ui/users"): "ui:admin",
    ("POST", "/ui/users/<int:user_id>/disable"): "ui:admin",
    ("POST", "/ui/users/<int:user_id>/enable"): "ui:admin",
    ("POST", "/ui/users/<int:user_id>/role"): "ui:admin",
    ("POST", "/ui/users/<int:user_id>/password"): "ui:admin",
    ("GET", "/ui/audit"): "ui:admin",
    ("GET", "/ui/about"): "ui:read",
    ("POST", "/ui/about/intake-token"): "ui:admin",
}
# Without a session a page redirects to the sign-in form (GET) or is refused (POST: no CSRF token, or 401).
UI_CLOSED = (302, 400, 401)
ROLES = ("admin", "write", "read", "intake")
DENIED = (401, 403)


def routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def concrete(rule) -> str:
    values = {"int": "99999", "default": "does-not-exist-0123456789"}
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: values.get(m.group(1) or "default", values["default"]), rule.rule)


def call(client, method, path, headers=None):
    return client.open(path, method=method, headers=headers or {}, json={} if method != "GET" else None)


def test_every_route_has_a_rule(app):
    found = {(method, rule.rule) for method, rule in routes(app)}
    assert found - set(RULES) == set(), "new routes need a rule in RULES (and a guard in the view)"
    assert set(RULES) - found == set(), "RULES names routes that no longer exist"


def test_every_guarded_view_declares_its_guard(app):
    for method, rule in routes(app):
        expected = RULES[(method, rule.rule)]
        view = app.view_functions[rule.endpoint]
        if expected == "public":
            assert not hasattr(view, "relay_permission"), rule.rule
        elif expected.startswith("ui:"):
            assert view.relay_login and view.relay_permission == expected[3:], rule.rule
        elif expected == "session":
            assert getattr(view, "relay_login", False), rule.rule
        else:
            assert view.relay_permission == expected, rule.rule


def test_every_route_with_every_role(app, client, tokens):
    for method, rule in routes(app):
        expected = RULES[(method, rule.rule)]
        path = concrete(rule)
        anonymous = call(client, method, path).status_code
        if expected == "public":
            assert anonymous not in DENIED, (method, path)
        elif expected.startswith("ui:"):
            assert anonymous in UI_CLOSED, (method, path, anonymous)
        else:
            assert anonymous == 401, (method, path, anonymous)
        for role in ROLES:
            status = call(client, method, path, {"Authorization": f"Bearer {tokens[role]}"}).status_code
            if expected == "public":
                assert status not in DENIED, (role, method, path, status)
            elif expected.startswith("ui:"):
                assert status in UI_CLOSED, (role, method, path, status)
            elif expected == "session":
                assert status == 401, (role, method, path, status)
            elif expected in GRANTS[role]:
                assert status not in DENIED, (role, method, path, status)
            else:
                assert status == 403, (role, method, path, status)


@pytest.mark.parametrize("user_role", ["admin", "write", "read"])
def test_a_session_opens_ui_routes_only(app, client, make_user, user_role):
    password = make_user(f"{user_role}@example.com", user_role)
    signed_in = client.post("/login", json={"email": f"{user_role}@example.com", "password": password})
    csrf = {"X-CSRF-Token": signed_in.json["csrfToken"]}
    for method, rule in routes(app):
        expected = RULES[(method, rule.rule)]
        if (method, rule.rule) in (("POST", "/logout"), ("POST", "/ui/sign-out")):
            continue
        status = call(client, method, concrete(rule), csrf).status_code
        if expected.startswith("ui:"):
            wanted = expected[3:] in GRANTS[user_role]
            assert (status not in DENIED) if wanted else status == 403, (user_role, method, rule.rule, status)
        elif expected == "session":
            assert status not in DENIED, (method, rule.rule, status)
        elif expected != "public":
            # The JSON API takes tokens only: a session cookie (a CSRF risk) never authorizes it.
            assert status == 401, (method, rule.rule, status)
    assert client.post("/logout", headers=csrf).status_code == 204


def test_the_code_grants_exactly_the_documented_roles():
    assert CODE_GRANTS == GRANTS
