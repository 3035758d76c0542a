"""Single sign-on roles and settings: the role map, users made and re-roled at each sign-in, SSO-only, audit."""

import json

import pytest
from flask import Blueprint, jsonify, request
from sqlalchemy import select

from relay.app import create_app
from relay.config import ConfigError, Settings
from relay.models import AuditEntry, User
from relay.security import sessions
from relay.security.sso import Identity, SsoRefused, role_for
from tests.conftest import make_settings

ROLE_MAP = (("pact-admins", "admin"), ("pact-devs", "write"), ("acme", "read"))
ISSUER = "https://idp.example.com"


def env(**values):
    return Settings.from_env({k: v for k, v in values.items()}, secret_key="x")


@pytest.mark.parametrize(("values", "message"), [
    ({"RELAY_SSO_ROLE_MAP": "pact-admins=root"}, "RELAY_SSO_ROLE_MAP: 'pact-admins=root' must be group=role"),
    ({"RELAY_SSO_ROLE_MAP": "pact-admins"}, "RELAY_SSO_ROLE_MAP: 'pact-admins' must be group=role"),
    ({"RELAY_SSO_DEFAULT_ROLE": "intake"}, "RELAY_SSO_DEFAULT_ROLE: 'intake' must be one of admin, write, read"),
    ({"RELAY_SSO_SESSION_HOURS": "0"}, "RELAY_SSO_SESSION_HOURS: '0' must be hours"),
    ({"RELAY_SSO_SESSION_HOURS": "soon"}, "RELAY_SSO_SESSION_HOURS: 'soon' must be hours"),
    ({"RELAY_SSO_ONLY": "true"}, "RELAY_SSO_ONLY: needs a way in"),
    ({"RELAY_OIDC_ISSUER": "http://idp.example.com", "RELAY_OIDC_CLIENT_ID": "c", "RELAY_OIDC_CLIENT_SECRET": "s"},
     "RELAY_OIDC_ISSUER: http:// is accepted for a loopback address only"),
    ({"RELAY_OIDC_ISSUER": ISSUER, "RELAY_OIDC_CLIENT_ID": "c"}, "RELAY_OIDC_CLIENT_SECRET: required"),
    ({"RELAY_OIDC_CLIENT_ID": "c"}, "RELAY_OIDC_ISSUER: required"),
    ({"RELAY_OIDC_ISSUER": ISSUER, "RELAY_OIDC_CLIENT_ID": "c", "RELAY_OIDC_CLIENT_SECRET": "s",
      "RELAY_OIDC_SCOPES": "email"}, "RELAY_OIDC_SCOPES: must include openid"),
    ({"RELAY_GITHUB_CLIENT_ID": "c"}, "RELAY_GITHUB_CLIENT_SECRET: required"),
    ({"RELAY_GITHUB_CLIENT_ID": "c", "RELAY_GITHUB_CLIENT_SECRET": "s", "RELAY_GITHUB_BASE_URL": "ftp://gh"},
     "RELAY_GITHUB_BASE_URL: must be an https URL"),
])
def test_bad_settings_are_one_line_naming_the_variable(values, message):
    with pytest.raises(ConfigError) as caught:
        env(**values)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_settings_defaults_and_secrets_stay_out_of_repr():
    settings = env(RELAY_OIDC_ISSUER="http://127.0.0.1:9000/", RELAY_OIDC_CLIENT_ID="relay",
                   RELAY_OIDC_CLIENT_SECRET="oidc-secret-value", RELAY_GITHUB_CLIENT_ID="gh",
                   RELAY_GITHUB_CLIENT_SECRET="gh-secret-value", RELAY_SSO_ROLE_MAP="a=admin, acme/devs = write")
    assert settings.oidc_issuer == "http://127.0.0.1:9000/" and settings.oidc_scopes == ("openid", "email", "profile")
    assert settings.oidc_roles_claim == "groups" and settings.sso_session_hours == 12
    assert settings.sso_role_map == (("a", "admin"), ("acme/devs", "write"))
    assert settings.github_base_url == "https://github.com" and not settings.sso_only
    assert "secret-value" not in repr(settings)


def test_the_highest_mapped_role_wins_and_no_group_means_no_access():
    settings = env(RELAY_SSO_ROLE_MAP="pact-admins=admin,pact-devs=write,acme=read")
    assert role_for(["acme", "pact-admins", "pact-devs"], settings) == "admin"
    assert role_for(["ACME", "other"], settings) == "read"
    assert role_for(["other"], settings) is None
    assert role_for(["other"], env(RELAY_SSO_DEFAULT_ROLE="read")) == "read"


@pytest.fixture
def sso_app(tmp_path, database_url, redis_url):
    """The relay with a probe route that signs in whatever identity it is given, as a provider's callback does."""
    app = create_app(make_settings(tmp_path, database_url, redis_url, sso_role_map=ROLE_MAP, sso_session_hours=2.0,
                                   oidc_issuer=ISSUER, oidc_client_id="c", oidc_client_secret="s"))
    probe = Blueprint("sso_probe", __name__)

    @probe.post("/sso-probe")
    def sign_in():
        body = request.get_json()
        try:
            user = sessions.login_sso(Identity("oidc", body["subject"], body.get("email"), tuple(body["groups"]),
                                               {"issuer": ISSUER, "sub": body["subject"]}))
        except SsoRefused as refused:
            return jsonify({"error": str(refused)}), 403
        return jsonify({"email": user.email, "role": user.role})

    @probe.get("/whoami")
    def whoami():
        user, reason = sessions.current_user()
        return jsonify({"email": user.email if user else None, "reason": reason})

    app.register_blueprint(probe)
    return app


def sso(client, subject="sub-1", email="ada@example.com", groups=("pact-devs",)):
    return client.post("/sso-probe", json={"subject": subject, "email": email, "groups": list(groups)})


def audit(app):
    with app.extensions["relay"].sessions() as session:
        return [(e.type, json.loads(e.payload)) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def user_row(app, email):
    with app.extensions["relay"].sessions() as session:
        return session.scalar(select(User).where(User.email == email))


def test_first_sign_in_creates_the_user_and_audits_the_identity(sso_app):
    client = sso_app.test_client()
    assert sso(client).json == {"email": "ada@example.com", "role": "write"}
    assert client.get("/whoami").json["email"] == "ada@example.com"
    user = user_row(sso_app, "ada@example.com")
    assert (user.sso_provider, user.sso_subject, user.last_login_at is not None) == ("oidc", "sub-1", True)
    assert not user.break_glass and user.password_hash == "!sso"
    entries = audit(sso_app)
    assert [t for t, _ in entries] == ["user.created", "user.login"]
    assert entries[1][1] == {"email": "ada@example.com", "role": "write", "provider": "oidc", "subject": "sub-1",
                             "issuer": ISSUER, "sub": "sub-1"}


def test_the_role_is_taken_again_at_every_sign_in(sso_app):
    client = sso_app.test_client()
    sso(client, groups=["acme"])
    assert sso(client, groups=["acme", "pact-admins"]).json["role"] == "admin"
    assert sso(client, email="ada.lovelace@example.com", groups=["acme"]).json == {
        "email": "ada.lovelace@example.com", "role": "read"}
    with sso_app.extensions["relay"].sessions() as session:
        assert session.scalar(select(User).where(User.sso_subject == "sub-1")).role == "read"
        assert len(list(session.scalars(select(User)))) == 1


def test_removed_from_the_group_no_access_and_open_sessions_end(sso_app):
    signed_in = sso_app.test_client()
    sso(signed_in)
    assert signed_in.get("/whoami").json["email"] == "ada@example.com"
    refused = sso(sso_app.test_client(), groups=["somewhere-else"])
    assert refused.status_code == 403 and "none of your groups" in refused.json["error"]
    assert signed_in.get("/whoami").json["email"] is None
    types = [t for t, p in audit(sso_app)]
    assert types[-1] == "user.login_failed"


def test_no_mapped_group_creates_nobody(sso_app):
    assert sso(sso_app.test_client(), groups=[]).status_code == 403
    assert user_row(sso_app, "ada@example.com") is None


def test_unverified_email_never_claims_an_existing_user(sso_app, make_user):
    make_user("ada@example.com", "admin")
    client = sso_app.test_client()
    assert sso(client, email=None, groups=["acme"]).json == {"email": "oidc:sub-1", "role": "read"}
    assert user_row(sso_app, "ada@example.com").sso_provider is None


def test_a_verified_email_joins_a_local_user_once(sso_app, make_user):
    make_user("ada@example.com", "admin")
    assert sso(sso_app.test_client(), groups=["acme"]).json == {"email": "ada@example.com", "role": "read"}
    other = sso(sso_app.test_client(), subject="someone-else", groups=["acme"])
    assert other.status_code == 403 and "another identity" in other.json["error"]


def test_a_break_glass_user_is_never_joined_to_an_identity(sso_app, runtime):
    from relay.security.users import create_user

    with runtime.sessions.begin() as session:
        create_user(session, "ada@example.com", "admin", "a long break-glass password", break_glass=True)
    refused = sso(sso_app.test_client(), groups=["pact-admins"])
    assert refused.status_code == 403 and "break-glass" in refused.json["error"]
    user = user_row(sso_app, "ada@example.com")
    assert user.sso_provider is None and user.role == "admin"


def test_sso_sessions_end_within_the_configured_hours(sso_app):
    client = sso_app.test_client()
    sso(client)
    with client.session_transaction() as session:
        assert session["exp"] - session["iat"] == 2 * 3600
        session["exp"] = session["iat"] - 1
    assert client.get("/whoami").json == {"email": None, "reason": "your session has expired; sign in again"}


def test_sso_only_turns_passwords_off_but_for_break_glass_users(tmp_path, database_url, redis_url, runtime):
    from relay.security.users import create_user

    app = create_app(make_settings(tmp_path, database_url, redis_url, sso_only=True, oidc_issuer=ISSUER,
                                   oidc_client_id="c", oidc_client_secret="s"))
    with app.extensions["relay"].sessions.begin() as session:
        create_user(session, "ada@example.com", "admin", "correct horse battery")
        create_user(session, "root@example.com", "admin", "correct horse battery", break_glass=True)
    client = app.test_client()
    refused = client.post("/login", json={"email": "ada@example.com", "password": "correct horse battery"})
    assert refused.status_code == 403 and "password sign-in is turned off" in refused.json["error"]
    wrong = client.post("/login", json={"email": "ada@example.com", "password": "not the password"})
    assert wrong.status_code == 401
    assert client.post("/login", json={"email": "root@example.com", "password": "correct horse battery"}).status_code \
        == 200


def test_break_glass_users_from_the_command_line(cli, runtime):
    result = cli("users", "create", "root@example.com", "--role", "admin", "--break-glass", "--password-stdin",
                 input="a long enough password\n")
    assert result.exit_code == 0 and "created admin break-glass user root@example.com" in result.output
    with runtime.sessions() as session:
        assert session.scalar(select(User).where(User.email == "root@example.com")).break_glass
    assert "password, break-glass" in cli("users", "list").output
