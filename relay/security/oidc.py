"""OpenID Connect sign-in: discovery, the authorization code flow with PKCE (Authlib), the ID token checked (PyJWT)."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from relay.config import LOOPBACK_HOSTS, Settings
from relay.security.sso import Identity

# Only signatures made with a private key: a token signed with `none` or with an HMAC keyed by the provider's
# public key (which anyone can fetch) must never pass, whatever its header says.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
TIMEOUT = (3.0, 10.0)
DISCOVERY_TTL = 3600.0
LEEWAY = 60  # seconds of clock skew allowed between the relay and the provider
MAX_DOCUMENT = 256 * 1024


class OidcError(Exception):
    """A sign-in through the provider that failed; the message is safe to show and names what to fix."""


@dataclass(frozen=True)
class Pending:
    """What the relay keeps between sending a person to the provider and their return: used once."""

    state: str
    nonce: str
    verifier: str


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    return session


class OidcCache:
    """A runtime cache: the provider's discovery document and its JWKS client (which refetches a rotated key)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.discovered: tuple[float, dict] | None = None
        self.jwks: jwt.PyJWKClient | None = None


class OidcProvider:
    """One configured provider (RELAY_OIDC_*); the caller keeps Pending between `start` and `finish`."""

    def __init__(self, settings: Settings, cache: OidcCache, jwks_cooldown: float = 30.0):
        self.settings = settings
        self.issuer = settings.oidc_issuer or ""
        self.cache = cache
        self.jwks_cooldown = jwks_cooldown

    def metadata(self) -> dict:
        with self.cache.lock:
            if self.cache.discovered and time.monotonic() - self.cache.discovered[0] < DISCOVERY_TTL:
                return self.cache.discovered[1]
        doc = self._discover()
        with self.cache.lock:
            self.cache.discovered = (time.monotonic(), doc)
            self.cache.jwks = jwt.PyJWKClient(doc["jwks_uri"], cache_jwk_set=True, lifespan=300, timeout=TIMEOUT[1],
                                              cooldown_duration=self.jwks_cooldown)
        return doc

    def _discover(self) -> dict:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            resp = http().get(url, timeout=TIMEOUT, allow_redirects=False)
            doc = resp.json() if resp.status_code == 200 and len(resp.content) <= MAX_DOCUMENT else None
        except (requests.RequestException, ValueError) as exc:
            raise OidcError(f"cannot read the provider's discovery document ({type(exc).__name__}); check "
                            "RELAY_OIDC_ISSUER") from None
        if not isinstance(doc, dict):
            raise OidcError(f"the provider's discovery document is unusable (HTTP {resp.status_code}); check "
                            "RELAY_OIDC_ISSUER")
        # OpenID Connect Discovery 1.0 §4.3: the document's issuer must be exactly the one configured.
        if doc.get("issuer") != self.issuer:
            raise OidcError(f"the provider calls itself {str(doc.get('issuer'))[:200]!r}; set RELAY_OIDC_ISSUER to "
                            "exactly that")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(name), str) or not self._trusted_url(doc[name]):
                raise OidcError(f"the provider's {name} is missing or not https; check RELAY_OIDC_ISSUER")
        return doc

    def _trusted_url(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS
                                           and urlsplit(self.issuer).scheme == "http")

    def algorithms(self) -> list[str]:
        offered = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        return [alg for alg in ASYMMETRIC if alg in offered]

    def _client(self, redirect_uri: str) -> OAuth2Session:
        client = OAuth2Session(self.settings.oidc_client_id, self.settings.oidc_client_secret,
                               scope=" ".join(self.settings.oidc_scopes), redirect_uri=redirect_uri,
                               code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
        client.trust_env = False
        return client

    def start(self, redirect_uri: str, pending: Pending) -> str:
        """The provider's authorization URL for this sign-in (state, nonce, PKCE S256 challenge)."""
        url, _ = self._client(redirect_uri).create_authorization_url(
            self.metadata()["authorization_endpoint"], state=pending.state, nonce=pending.nonce,
            code_verifier=pending.verifier)
        return url

    def finish(self, redirect_uri: str, code: str, pending: Pending) -> Identity:
        """Trade the code (with the PKCE verifier) for tokens and return the identity the ID token vouches for."""
        client = self._client(redirect_uri)
        try:
            token = client.fetch_token(self.metadata()["token_endpoint"], code=code, code_verifier=pending.verifier,
                                       timeout=TIMEOUT, allow_redirects=False)
        except AuthlibBaseError as exc:
            hint = (" (check RELAY_OIDC_CLIENT_ID and RELAY_OIDC_CLIENT_SECRET)"
                    if exc.error in ("invalid_client", "unauthorized_client") else "")
            raise OidcError(f"the provider refused the sign-in code: {str(exc.error)[:80]}{hint}") from None
        except (requests.RequestException, ValueError) as exc:
            raise OidcError(f"cannot reach the provider's token endpoint ({type(exc).__name__})") from None
        if not token.get("id_token"):
            raise OidcError("the provider sent no ID token; RELAY_OIDC_SCOPES must include openid")
        return self.identity(self.validate(token["id_token"], pending.nonce))

    def validate(self, id_token: str, nonce: str) -> dict:
        """The ID token's claims once its signature (a JWKS key, an asymmetric algorithm the provider offers),
        iss, aud, exp, iat and nonce all check out; OidcError otherwise."""
        try:
            alg = jwt.get_unverified_header(id_token).get("alg")
        except jwt.InvalidTokenError:
            raise OidcError("the ID token is malformed") from None
        allowed = self.algorithms()
        if alg not in allowed:
            raise OidcError(f"the ID token's algorithm {str(alg)[:20]!r} is not one the provider signs with")
        jwks = self.cache.jwks
        try:
            key = jwks.get_signing_key_from_jwt(id_token)
            claims = jwt.decode(id_token, key, algorithms=[alg], audience=self.settings.oidc_client_id,
                                issuer=self.issuer, leeway=LEEWAY,
                                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]})
        except jwt.PyJWKClientConnectionError:
            raise OidcError("cannot read the provider's signing keys (jwks_uri)") from None
        except jwt.ExpiredSignatureError:
            raise OidcError("the ID token has expired; if this repeats, check the relay's clock") from None
        except jwt.ImmatureSignatureError:
            raise OidcError("the ID token is issued in the future; check the relay's clock") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise OidcError(f"the ID token is not valid: {_reason(exc)}") from None
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise OidcError("the ID token's nonce is not this sign-in's")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.oidc_client_id:
            raise OidcError("the ID token was issued to another client (azp)")
        return claims

    def identity(self, claims: dict) -> Identity:
        email = claims.get("email") if claims.get("email_verified") is True else None
        groups = claims.get(self.settings.oidc_roles_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        groups = tuple(str(g) for g in groups if isinstance(g, str | int))[:1000]
        subject = f"{claims['iss']} {claims['sub']}"
        return Identity("oidc", subject[:600], email.strip().lower() if isinstance(email, str) else None, groups,
                        {"issuer": str(claims["iss"])[:300], "sub": str(claims["sub"])[:300]})


def _reason(exc: Exception) -> str:
    # PyJWT's messages name the failed check (audience, issuer, signature) and never the token itself.
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
