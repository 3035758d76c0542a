"""ID tokens the relay must refuse, signed here against a loopback discovery document and JWKS (pytest-httpserver)."""

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from relay.config import Settings
from relay.security.oidc import OidcCache, OidcError, OidcProvider

CLIENT_ID = "pact-relay"
NONCE = "the-nonce-of-this-sign-in"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key, kid):
    doc = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**doc, "kid": kid, "use": "sig", "alg": "RS256"}


class Idp:
    """A discovery document and a JWKS served on loopback; `keys` is what the JWKS currently holds."""

    def __init__(self, server):
        self.server = server
        self.issuer = server.url_for("").rstrip("/")
        self.key = rsa_key()
        self.keys = [jwk(self.key, "k1")]
        server.expect_request("/.well-known/openid-configuration").respond_with_json({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256", "none"]})
        server.expect_request("/jwks").respond_with_handler(self._jwks)
        self.jwks_fetches = 0

    def _jwks(self, request):
        from werkzeug import Response

        self.jwks_fetches += 1
        return Response(json.dumps({"keys": self.keys}), content_type="application/json")

    def claims(self, **changes):
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "alice", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": NONCE, "email": "alice@example.com", "email_verified": True, "groups": ["pact-devs"]}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, key=None, kid="k1", alg="RS256", **changes):
        return jwt.encode(self.claims(**changes), key or self.key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def idp(httpserver):
    return Idp(httpserver)


@pytest.fixture
def provider(idp):
    settings = Settings.from_env({"RELAY_OIDC_ISSUER": idp.issuer, "RELAY_OIDC_CLIENT_ID": CLIENT_ID,
                                  "RELAY_OIDC_CLIENT_SECRET": "s3cret"}, secret_key="x")
    return OidcProvider(settings, OidcCache(), jwks_cooldown=0)


def refused(provider, token, nonce=NONCE) -> str:
    with pytest.raises(OidcError) as caught:
        provider.validate(token, nonce)
    return str(caught.value)


def test_a_good_token_passes_and_names_the_identity(idp, provider):
    claims = provider.validate(idp.token(), NONCE)
    identity = provider.identity(claims)
    assert (identity.provider, identity.subject, identity.email) == ("oidc", f"{idp.issuer} alice", "alice@example.com")
    assert identity.groups == ("pact-devs",) and identity.details == {"issuer": idp.issuer, "sub": "alice"}


def test_alg_none_is_refused(idp, provider):
    unsigned = jwt.encode(idp.claims(), None, algorithm="none", headers={"kid": "k1"})
    assert "algorithm 'none'" in refused(provider, unsigned)


def test_hmac_keyed_with_the_public_key_is_refused(idp, provider):
    public_pem = idp.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(idp.claims()).encode())
    import hashlib
    import hmac

    signature = hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest()
    forged = (header + b"." + body + b"." + jwt.utils.base64url_encode(signature)).decode()
    assert "algorithm 'HS256'" in refused(provider, forged)


def test_a_token_signed_by_another_key_is_refused(idp, provider):
    assert "Signature verification failed" in refused(provider, idp.token(key=rsa_key()))


def test_a_key_of_another_type_under_the_providers_kid_is_refused(idp, provider):
    assert "not valid" in refused(provider, idp.token(key=ec.generate_private_key(ec.SECP256R1()), alg="ES256"))


@pytest.mark.parametrize(("changes", "message"), [
    ({"aud": "another-client"}, "Audience doesn't match"),
    ({"iss": "https://evil.example.com"}, "Invalid issuer"),
    ({"exp": int(time.time()) - 3600}, "the ID token has expired"),
    ({"iat": None}, 'Token is missing the "iat" claim'),
    ({"nonce": None}, 'Token is missing the "nonce" claim'),
    ({"nonce": "another-sign-in"}, "nonce is not this sign-in's"),
    ({"aud": ["another-client", CLIENT_ID]}, "issued to another client"),
])
def test_claims_that_do_not_check_out_are_refused(idp, provider, changes, message):
    assert message in refused(provider, idp.token(**changes))


def test_a_rotated_key_is_fetched_again(idp, provider):
    provider.validate(idp.token(), NONCE)
    assert idp.jwks_fetches == 1
    new_key = rsa_key()
    idp.keys = [jwk(new_key, "k2")]
    provider.validate(idp.token(key=new_key, kid="k2"), NONCE)
    assert idp.jwks_fetches == 2


def test_an_unverified_email_is_no_identity(idp, provider):
    identity = provider.identity(provider.validate(idp.token(email_verified=False), NONCE))
    assert identity.email is None and identity.name == f"oidc:{idp.issuer} alice"


def test_a_provider_calling_itself_otherwise_is_refused_naming_the_setting(httpserver):
    httpserver.expect_request("/.well-known/openid-configuration").respond_with_json({"issuer": "https://other"})
    settings = Settings.from_env({"RELAY_OIDC_ISSUER": httpserver.url_for("").rstrip("/"),
                                  "RELAY_OIDC_CLIENT_ID": CLIENT_ID, "RELAY_OIDC_CLIENT_SECRET": "s"}, secret_key="x")
    with pytest.raises(OidcError, match="set RELAY_OIDC_ISSUER to exactly that"):
        OidcProvider(settings, OidcCache()).metadata()
