"""Web UI sessions: login, rate limiting, cookie flags and lifetime, forged cookies, CSRF, logout."""

import hashlib
import time

import pytest
from flask import Blueprint, jsonify
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from relay.models import AuditEntry, User
from relay.security import sessions
from relay.security.sessions import login_required
from tests.conftest import make_settings

EMAIL = "ada@example.com"


def sign_in(client, password, email=EMAIL, address="10.0.0.1"):
    return client.post("/login", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def audit_types(runtime):
    with runtime.sessions() as session:
        return [e.type for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


@pytest.fixture
def guarded_app(app):
    """A UI-like blueprint with the decorator the UI uses."""
    bp = Blueprint("ui_probe", __name__)

    @bp.route("/ui-probe", methods=["GET", "POST"])
    @login_required("admin")
    def probe():
        return jsonify({"ok": True})

    @bp.get("/ui-probe-login")
    @login_required("read", login_endpoint="ui_probe.login_page")
    def needs_login():
        return "hi"

    @bp.get("/ui-login")
    def login_page():
        return "login form"

    app.register_blueprint(bp)
    return app


def test_login_sets_a_hardened_cookie_and_audits(client, make_user, runtime):
    password = make_user(EMAIL.upper(), "admin")
    response = sign_in(client, password, email=" Ada@Example.com ")
    assert response.status_code == 200 and response.json["email"] == EMAIL and response.json["csrfToken"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{sessions.COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie and "Secure" not in cookie  # http public URL in tests
    assert client.get("/session").json["email"] == EMAIL
    assert audit_types(runtime)[-1] == "user.login"
    with runtime.sessions() as session:
        user = session.scalar(select(User).where(User.email == EMAIL))
    assert user.password_hash.startswith("$argon2id$") and password not in user.password_hash
    assert user.last_login_at is not None


def test_secure_cookie_flag_behind_https(tmp_path, database_url, redis_url, make_user):
    from relay.app import create_app

    app = create_app(make_settings(tmp_path, database_url, redis_url, public_url="https://relay.example.com"))
    password = make_user(EMAIL)
    assert "Secure" in sign_in(app.test_client(), password).headers["Set-Cookie"]


def test_wrong_password_and_unknown_user_are_the_same_401_and_audited(client, make_user, runtime):
    make_user(EMAIL)
    wrong = sign_in(client, "not the password at all")
    unknown = sign_in(client, "whatever password", email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json == {"error": "wrong e-mail or password"}
    assert audit_types(runtime)[-2:] == ["user.login_failed", "user.login_failed"]
    assert "Set-Cookie" not in wrong.headers


def test_five_failures_in_fifteen_minutes_then_429_per_account_and_address(client, make_user, runtime):
    password = make_user(EMAIL)
    for _ in range(sessions.MAX_FAILURES):
        assert sign_in(client, "wrong password!!").status_code == 401
    throttled = sign_in(client, password)
    assert throttled.status_code == 429 and 800 < int(throttled.headers["Retry-After"]) <= 900
    assert "too many failed sign-ins" in throttled.json["error"]
    assert audit_types(runtime)[-1] == "user.login_throttled"
    assert sign_in(client, password, address="10.0.0.2").status_code == 200  # another address
    digest = hashlib.sha256(f"{EMAIL}|10.0.0.1".encode()).hexdigest()
    assert 0 < runtime.redis.ttl(f"relay:login-failures:{digest}") <= sessions.FAILURE_WINDOW


def test_success_resets_the_failure_count(client, make_user):
    password = make_user(EMAIL)
    for _ in range(sessions.MAX_FAILURES - 1):
        sign_in(client, "wrong password!!")
    assert sign_in(client, password).status_code == 200
    for _ in range(sessions.MAX_FAILURES - 1):
        sign_in(client, "wrong password!!")
    assert sign_in(client, password).status_code == 200


def test_login_input_errors(client):
    assert client.post("/login", json={"email": EMAIL}).json["errors"] == {"password": ["is required"]}
    assert client.post("/login", data="email=a", content_type="application/x-www-form-urlencoded"
                       ).status_code == 415


def test_forged_and_tampered_cookies_are_refused_and_audited(client, make_user, runtime):
    sign_in(client, make_user(EMAIL))
    real = client.get_cookie(sessions.COOKIE).value
    for forged in ("garbage", real[:-2] + ("AA" if not real.endswith("AA") else "BB")):
        client.set_cookie(sessions.COOKIE, forged)
        refused = client.get("/session")
        assert refused.status_code == 401 and "invalid or has expired" in refused.json["error"]
    assert audit_types(runtime)[-1] == "auth.denied"


def test_idle_expiry_of_the_signed_cookie(app, client, make_user):
    sign_in(client, make_user(EMAIL))
    interface = SecureCookieSessionInterface()
    data = interface.get_signing_serializer(app).loads(client.get_cookie(sessions.COOKIE).value)

    class ThreeHoursAgo(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - 3 * 3600

    stale = URLSafeTimedSerializer(app.secret_key, salt=interface.salt, serializer=interface.serializer,
                                   signer=ThreeHoursAgo,
                                   signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1})
    client.set_cookie(sessions.COOKIE, stale.dumps(data))
    assert client.get("/session").status_code == 401


def test_absolute_lifetime(client, make_user):
    sign_in(client, make_user(EMAIL))
    with client.session_transaction() as session:
        session["iat"] = int(time.time() - sessions.ABSOLUTE.total_seconds() - 1)
    expired = client.get("/session")
    assert expired.status_code == 401 and "expired" in expired.json["error"]


def test_csrf_is_required_on_unsafe_methods(guarded_app, make_user, runtime):
    client = guarded_app.test_client()
    csrf = sign_in(client, make_user(EMAIL)).json["csrfToken"]
    assert client.get("/ui-probe").status_code == 200
    missing = client.post("/ui-probe")
    assert missing.status_code == 403 and "CSRF" in missing.json["error"]
    assert client.post("/ui-probe", headers={"X-CSRF-Token": csrf + "x"}).status_code == 403
    assert client.post("/ui-probe", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.post("/ui-probe", data={"csrf_token": csrf}).status_code == 200
    assert client.post("/logout").status_code == 403
    assert audit_types(runtime)[-1] == "auth.denied"


def test_login_required_checks_the_role_and_redirects_when_asked(guarded_app, make_user):
    client = guarded_app.test_client()
    redirect = client.get("/ui-probe-login")
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith("/ui-login?next=")
    assert redirect.headers["Location"] == "/ui-login?next=/ui-probe-login"  # no stray '?' of an empty query
    assert client.get("/ui-probe-login?x=1").headers["Location"] == "/ui-login?next=/ui-probe-login?x%3D1"
    sign_in(client, make_user("reader@example.com", "read"), email="reader@example.com")
    assert client.get("/ui-probe-login").status_code == 200
    denied = client.get("/ui-probe")
    assert denied.status_code == 403 and "read user may not" in denied.json["error"]


def test_logout_ends_every_copy_of_the_session(client, app, make_user, runtime):
    csrf = sign_in(client, make_user(EMAIL)).json["csrfToken"]
    copied = client.get_cookie(sessions.COOKIE).value
    assert client.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/session").status_code == 401
    thief = app.test_client()
    thief.set_cookie(sessions.COOKIE, copied)
    assert thief.get("/session").status_code == 401
    assert "user.logout" in audit_types(runtime)


def test_disabled_users_cannot_sign_in(client, make_user, runtime):
    password = make_user(EMAIL)
    with runtime.sessions.begin() as session:
        from relay.models import utcnow

        session.scalar(select(User).where(User.email == EMAIL)).disabled_at = utcnow()
    assert sign_in(client, password).status_code == 401


def last_source(runtime):
    with runtime.sessions() as session:
        return session.scalar(select(AuditEntry.source).order_by(AuditEntry.seq.desc()).limit(1))


@pytest.mark.parametrize("hops, expected", [(0, "10.0.0.1"), (1, "203.0.113.9"), (2, "198.51.100.7")])
def test_forwarded_client_address_is_believed_only_from_trusted_proxies(
        tmp_path, database_url, redis_url, make_user, runtime, hops, expected):
    from relay.app import create_app

    app = create_app(make_settings(tmp_path, database_url, redis_url, trusted_proxies=hops))
    make_user(EMAIL)
    forwarded = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https"}
    response = app.test_client().post("/login", json={"email": EMAIL, "password": "not the password"},
                                      headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert response.status_code == 401
    assert last_source(runtime) == expected  # 0 hops: a client cannot claim an address by sending the header


def test_trusted_proxies_setting_is_checked():
    from relay.config import ConfigError, Settings

    assert Settings.from_env({}).trusted_proxies == 0
    assert Settings.from_env({"RELAY_TRUSTED_PROXIES": " 2 "}).trusted_proxies == 2
    for bad in ("-1", "one", "1.5", "99"):
        with pytest.raises(ConfigError, match="RELAY_TRUSTED_PROXIES"):
            Settings.from_env({"RELAY_TRUSTED_PROXIES": bad})


# The promises themselves (12 hours, 5 tries), not the module's constants, so changing those fails here.
def test_no_session_outlives_twelve_hours(client, make_user):
    sign_in(client, make_user(EMAIL))
    with client.session_transaction() as session:
        session["iat"] = int(time.time() - 12 * 3600 - 60)
    expired = client.get("/session")
    assert expired.status_code == 401 and "expired" in expired.json["error"]


def test_the_sixth_try_after_five_failures_is_429(client, make_user):
    password = make_user(EMAIL)
    for _ in range(5):
        assert sign_in(client, "wrong password!!").status_code == 401
    assert sign_in(client, password).status_code == 429


def test_new_e_mails_from_one_address_are_refused_before_hashing_past_its_budget(client, make_user, runtime):
    """Issue 23 #5: each new e-mail was a fresh account budget, so one address could buy argon2 hashes without
    end (eight in parallel took intake from 0.01 s to 1.11 s). The address has a budget of its own."""
    password = make_user(EMAIL)
    for n in range(sessions.MAX_ADDRESS_FAILURES):
        assert sign_in(client, "wrong password!!", email=f"guess{n}@example.com").status_code == 401
    refused = sign_in(client, password)  # the right password too: nothing is checked past the budget
    assert refused.status_code == 429 and 800 < int(refused.headers["Retry-After"]) <= 900
    assert "from your address" in refused.json["error"]
    assert audit_types(runtime)[-1] == "user.login_throttled"
    assert sign_in(client, password, address="10.0.0.2").status_code == 200  # another address


def test_successful_sign_ins_do_not_spend_the_address_budget(client, make_user):
    password = make_user(EMAIL)
    for _ in range(sessions.MAX_ADDRESS_FAILURES + 2):
        assert sign_in(client, password).status_code == 200
    assert sign_in(client, "wrong password!!").status_code == 401
