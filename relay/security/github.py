"""Sign in with GitHub (an OAuth app's web flow, Authlib): the user, their orgs and org/teams read at each sign-in."""

from __future__ import annotations

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from relay.config import Settings
from relay.security.oidc import TIMEOUT, OidcError, Pending
from relay.security.sso import Identity

# read:org lets /user/teams and /user/orgs list private memberships too; nothing else is asked for.
SCOPE = "read:org"
PER_PAGE = 100


class GithubProvider:
    """github.com, or GitHub Enterprise Server at RELAY_GITHUB_BASE_URL (its API under /api/v3)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.base = settings.github_base_url
        self.api = "https://api.github.com" if self.base == "https://github.com" else self.base + "/api/v3"

    def _client(self, redirect_uri: str) -> OAuth2Session:
        client = OAuth2Session(self.settings.github_client_id, self.settings.github_client_secret, scope=SCOPE,
                               redirect_uri=redirect_uri, code_challenge_method="S256",
                               token_endpoint_auth_method="client_secret_post")
        client.trust_env = False
        return client

    def start(self, redirect_uri: str, pending: Pending) -> str:
        url, _ = self._client(redirect_uri).create_authorization_url(
            self.base + "/login/oauth/authorize", state=pending.state, code_verifier=pending.verifier)
        return url

    def finish(self, redirect_uri: str, code: str, pending: Pending) -> Identity:
        client = self._client(redirect_uri)
        try:
            client.fetch_token(self.base + "/login/oauth/access_token", code=code, code_verifier=pending.verifier,
                               timeout=TIMEOUT, allow_redirects=False, headers={"Accept": "application/json"})
        except AuthlibBaseError as exc:
            hint = (" (check RELAY_GITHUB_CLIENT_ID and RELAY_GITHUB_CLIENT_SECRET)"
                    if exc.error in ("incorrect_client_credentials", "invalid_client") else "")
            raise OidcError(f"GitHub refused the sign-in code: {str(exc.error)[:80]}{hint}") from None
        except (requests.RequestException, ValueError) as exc:
            raise OidcError(f"cannot reach GitHub's token endpoint ({type(exc).__name__}); check "
                            "RELAY_GITHUB_BASE_URL") from None
        user = self._get(client, "/user")
        orgs = self._get(client, "/user/orgs")
        teams = self._get(client, "/user/teams")
        try:
            groups = [o["login"] for o in orgs] + [f"{t['organization']['login']}/{t['slug']}" for t in teams]
            login, uid = str(user["login"]), str(user["id"])
        except (KeyError, TypeError):
            raise OidcError("GitHub's answer about the user is not what its API documents") from None
        return Identity("github", uid, None, tuple(groups), {"login": login, "id": uid}, handle=login)

    def _get(self, client: OAuth2Session, path: str):
        try:
            resp = client.get(self.api + path, params={"per_page": PER_PAGE} if path != "/user" else None,
                              headers={"Accept": "application/vnd.github+json"}, timeout=TIMEOUT,
                              allow_redirects=False)
        except requests.RequestException as exc:
            raise OidcError(f"cannot reach GitHub's API ({type(exc).__name__}); check RELAY_GITHUB_BASE_URL") from None
        if resp.status_code != 200:
            raise OidcError(f"GitHub's API answered HTTP {resp.status_code} for {path}")
        try:
            return resp.json()
        except ValueError:
            raise OidcError(f"GitHub's API answer for {path} is not JSON") from None
