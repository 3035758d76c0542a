"""The UI's one seam to the security module: who is signed in, roles, CSRF and the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, current_app, request

from relay.security import sessions
from relay.security.auditing import record
from relay.security.github import GithubProvider
from relay.security.oidc import OidcCache, OidcError, OidcProvider, Pending
from relay.security.saml import SamlCache, SamlError, SamlProvider, SamlResult, in_response_to
from relay.security.sessions import CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, LoginRefused
from relay.security.sso import Identity, SsoRefused
from relay.security.tokens import GRANTS

__all__ = ["LoginRefused", "Pending", "SamlResult", "SsoError", "SsoRefused", "Viewer", "audit", "check_csrf",
           "csrf_token", "in_response_to", "login_required", "saml_provider", "sign_in", "sign_in_page", "sign_in_sso",
           "sign_out", "sso_provider", "viewer"]

# A provider's failure the person can act on (unreachable, misconfigured, a token that does not check out).
SsoError = (OidcError, SamlError)
# The IdP's POST to the ACS is cross-site by design and carries no CSRF token: its protection is the IdP's
# signature, the audience and recipient, and the single-use request ID it answers.
CSRF_EXEMPT = ("ui.saml_acs",)


@dataclass(frozen=True)
class Viewer:
    """Who is signed in, and what their role lets them do (templates hide what it may not)."""

    name: str
    role: str

    def can(self, permission: str) -> bool:
        return permission in GRANTS.get(self.role, ())


def viewer() -> Viewer | None:
    user, _ = sessions.current_user()
    return Viewer(user.email, user.role) if user is not None else None


def sign_in(email: str, password: str) -> Viewer:
    """Rate-limited, audited sign-in with a fresh session; raises LoginRefused."""
    user = sessions.login(email, password)
    return Viewer(user.email, user.role)


def sign_in_sso(identity: Identity) -> Viewer:
    """The person an identity provider vouched for, signed in with the role their groups map to; SsoRefused."""
    user = sessions.login_sso(identity)
    return Viewer(user.email, user.role)


def sso_provider(name: str) -> OidcProvider | GithubProvider | None:
    """The configured identity provider of that name, or None."""
    runtime = current_app.extensions["relay"]
    if name == "oidc" and runtime.settings.oidc_enabled:
        return OidcProvider(runtime.settings, runtime.cache(OidcCache))
    if name == "github" and runtime.settings.github_enabled:
        return GithubProvider(runtime.settings)
    return None


def saml_provider(entity_id: str, acs_url: str) -> SamlProvider | None:
    """The configured SAML IdP (RELAY_SAML_IDP_METADATA_*) for the relay at `entity_id`, or None."""
    runtime = current_app.extensions["relay"]
    if not runtime.settings.saml_enabled:
        return None
    return SamlProvider(runtime.settings, runtime.cache(SamlCache), entity_id, acs_url)


def sign_in_page() -> dict:
    """What the sign-in page offers: the configured providers, and whether the password form is the main way."""
    settings = current_app.extensions["relay"].settings
    ways = [name for name, on in (("oidc", settings.oidc_enabled), ("github", settings.github_enabled),
                                  ("saml", settings.saml_enabled)) if on]
    return {"providers": ways, "sso_only": settings.sso_only}


def sign_out() -> None:
    sessions.logout()


def login_required(permission: str = "read"):
    """Signed in (a GET without a session goes to the sign-in page), role grants `permission`, CSRF checked."""
    return sessions.login_required(permission, login_endpoint="ui.sign_in")


csrf_token = sessions.csrf_token


def check_csrf() -> None:
    """Every unsafe UI request, sign-in included, carries the session's token (form field or header)."""
    if request.method in SAFE_METHODS or request.endpoint in CSRF_EXEMPT:
        return
    if not sessions.csrf_ok(request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)):
        abort(400, "the form expired or came from another site; reload the page and try again")


def audit(type: str, **payload) -> None:
    """An audit entry in the request's transaction: the view's commit stores it with the change."""
    record(current_app.extensions["relay.session"](), type, **payload)
