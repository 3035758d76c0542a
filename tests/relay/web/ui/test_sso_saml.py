"""SAML sign-in through the relay's routes, answered by a real SAML IdP: pysaml2's own saml2.server.Server."""

import base64
import datetime
import json
import re
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.authn_context import PASSWORD
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from sqlalchemy import select

from relay.app import create_app
from relay.models import AuditEntry, User
from relay.security.saml import CLOCK_SKEW
from tests.conftest import make_settings
from tests.relay.web.ui.conftest import Browser

PUBLIC_URL = "http://localhost:8000"
SP_ENTITY = f"{PUBLIC_URL}/ui/sign-in/saml/metadata"
ACS = f"{PUBLIC_URL}/ui/sign-in/saml/acs"
IDP_ENTITY = "https://idp.example.test/saml/metadata"
OTHER_SP = "https://another-sp.example.test/metadata"
ALICE = {"mail": ["alice@example.com"], "groups": ["pact-devs", "other"]}
ROLE_MAP = (("pact-admins", "admin"), ("pact-devs", "write"), ("acme", "read"))


@pytest.fixture(scope="module")
def idp_keys(tmp_path_factory):
    """A key pair and self-signed certificate made for this test run only: no private key is ever committed."""
    if not shutil.which("xmlsec1"):
        pytest.fail("xmlsec1 is not installed (apt-get install xmlsec1)")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("saml-idp")
    keys = {}
    for name in ("idp", "impostor"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test {name}")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
        (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keys[name] = (str(folder / f"{name}.key"), str(folder / f"{name}.crt"))
    return folder, keys


def idp_config(keys: tuple[str, str], sp_metadata: str | None = None, lifetime: int = 15) -> IdPConfig:
    config = {
        "entityid": IDP_ENTITY,
        "xmlsec_binary": shutil.which("xmlsec1"),
        "key_file": keys[0],
        "cert_file": keys[1],
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [("https://idp.example.test/saml/sso", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": lifetime}, "attribute_restrictions": None}},
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
        }},
    }
    if sp_metadata:
        # The relay, and another SP with the same ACS: the IdP makes assertions for it too (the audience test).
        config["metadata"] = {"inline": [sp_metadata, sp_metadata.replace(SP_ENTITY, OTHER_SP)]}
    conf = IdPConfig()
    conf.load(config)
    return conf


class Idp:
    """pysaml2's IdP, which knows the relay from the SP metadata the relay serves."""

    def __init__(self, keys, sp_metadata: str):
        self.keys = keys
        self.sp_metadata = sp_metadata
        self.server = Server(config=idp_config(keys["idp"], sp_metadata))

    def read_request(self, location: str):
        assert location.startswith("https://idp.example.test/saml/sso?")
        query = parse_qs(urlsplit(location).query)
        return self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message

    def respond(self, in_response_to: str | None, identity=None, *, audience=SP_ENTITY, sign_response=True,
                sign_assertion=False, lifetime=15, signer="idp", name_id="alice-0001") -> str:
        server = self.server
        if lifetime != 15 or signer != "idp":
            server = Server(config=idp_config(self.keys[signer], self.sp_metadata, lifetime))
        response = server.create_authn_response(
            identity=identity or ALICE, in_response_to=in_response_to, destination=ACS, sp_entity_id=audience,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
            authn={"class_ref": PASSWORD, "authn_auth": IDP_ENTITY},
            sign_response=sign_response, sign_assertion=sign_assertion)
        return str(response)


@pytest.fixture(scope="module")
def idp_metadata(idp_keys):
    folder, keys = idp_keys
    path = folder / "idp-metadata.xml"
    path.write_bytes(create_metadata_string(None, config=idp_config(keys["idp"]), sign=False))
    return str(path)


def relay_for(idp_metadata, tmp_path, database_url, redis_url, **overrides):
    return create_app(make_settings(tmp_path, database_url, redis_url, public_url=PUBLIC_URL,
                                    saml_idp_metadata_file=idp_metadata, sso_role_map=ROLE_MAP, **overrides))


@pytest.fixture
def relay(idp_metadata, tmp_path, database_url, redis_url):
    return relay_for(idp_metadata, tmp_path, database_url, redis_url)


@pytest.fixture
def idp(relay, idp_keys):
    metadata = relay.test_client().get("/ui/sign-in/saml/metadata")
    assert metadata.status_code == 200 and metadata.mimetype == "application/samlmetadata+xml"
    return Idp(idp_keys[1], metadata.text)


def start(relay, next_path="/ui/webhooks"):
    browser = Browser(relay.test_client())
    assert 'id="sign-in-saml"' in browser.get("/ui/sign-in").text
    resp = browser.post("/ui/sign-in/saml", {"next": next_path})
    assert resp.status_code == 303, resp.text
    return browser, resp.headers["Location"]


def post_answer(browser: Browser, xml: str):
    # As the IdP's auto-submitted form does: a cross-site POST with no CSRF token of the relay's.
    return browser.client.post("/ui/sign-in/saml/acs", data={"SAMLResponse": base64.b64encode(xml.encode())})


def sign_in(relay, idp, **respond):
    browser, location = start(relay)
    request = idp.read_request(location)
    assert request.assertion_consumer_service_url == ACS and request.issuer.text == SP_ENTITY
    xml = idp.respond(request.id, **respond)
    return browser, xml, post_answer(browser, xml)


def stored(relay):
    with relay.extensions["relay"].sessions() as session:
        return session.scalar(select(User).where(User.sso_provider == "saml"))


def test_sp_metadata_names_the_entity_and_the_acs(relay):
    xml = relay.test_client().get("/ui/sign-in/saml/metadata").text
    assert f'entityID="{SP_ENTITY}"' in xml and f'Location="{ACS}"' in xml and BINDING_HTTP_POST in xml
    assert "PRIVATE KEY" not in xml


def test_a_signed_sp_initiated_sign_in_creates_the_user_with_the_mapped_role(relay, idp):
    browser, _, landing = sign_in(relay, idp)
    assert landing.status_code == 302 and landing.headers["Location"] == "/ui/webhooks", landing.text
    assert browser.get("/ui/webhooks").status_code == 200
    assert browser.get("/ui/users").status_code == 403  # write, not admin
    user = stored(relay)
    assert (user.email, user.role, user.sso_subject) == ("alice@example.com", "write", f"{IDP_ENTITY} alice-0001")
    with relay.extensions["relay"].sessions() as session:
        login = [json.loads(e.payload) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
                 if e.type == "user.login"][-1]
    assert login == {"email": "alice@example.com", "role": "write", "provider": "saml",
                     "subject": f"{IDP_ENTITY} alice-0001", "idp": IDP_ENTITY, "nameId": "alice-0001"}


def test_a_signed_assertion_in_an_unsigned_response_is_enough(relay, idp):
    _, _, landing = sign_in(relay, idp, sign_response=False, sign_assertion=True)
    assert landing.status_code == 302, landing.text
    assert stored(relay).role == "write"


def test_the_role_is_taken_again_at_each_sign_in(relay, idp):
    sign_in(relay, idp, identity={**ALICE, "groups": ["pact-admins"]})
    assert stored(relay).role == "admin"
    _, _, refused = sign_in(relay, idp, identity={**ALICE, "groups": ["nobody"]})
    assert refused.status_code == 403 and "none of your groups" in refused.text


def refused(resp, words: str):
    assert resp.status_code in (400, 403), resp.text
    assert words in resp.text, resp.text
    return True


def test_an_unsigned_response_is_refused(relay, idp):
    _, xml, resp = sign_in(relay, idp, sign_response=False, sign_assertion=False)
    assert "Signature" not in xml
    assert refused(resp, "not signed") and stored(relay) is None


def test_a_response_signed_by_another_key_is_refused(relay, idp):
    _, _, resp = sign_in(relay, idp, signer="impostor")
    assert refused(resp, "not by the IdP") and stored(relay) is None


def test_a_wrong_audience_is_refused(relay, idp):
    _, _, resp = sign_in(relay, idp, audience=OTHER_SP)
    assert refused(resp, "audience") and stored(relay) is None


def later_by(monkeypatch, seconds: int) -> None:
    """The relay's clock (as pysaml2 reads it for NotOnOrAfter) `seconds` ahead of the IdP's."""
    import saml2.time_util

    real = saml2.time_util.utc_now
    monkeypatch.setattr(saml2.time_util, "utc_now", lambda: real() + seconds)


def test_an_expired_assertion_is_refused(relay, idp, monkeypatch):
    browser, location = start(relay)
    xml = idp.respond(idp.read_request(location).id, lifetime=5)
    later_by(monkeypatch, 5 * 60 + CLOCK_SKEW + 10)
    assert refused(post_answer(browser, xml), "expired") and stored(relay) is None


def test_a_little_clock_skew_is_allowed(relay, idp, monkeypatch):
    browser, location = start(relay)
    xml = idp.respond(idp.read_request(location).id, lifetime=5)
    later_by(monkeypatch, 5 * 60 + CLOCK_SKEW - 20)
    assert post_answer(browser, xml).status_code == 302 and stored(relay).role == "write"


def test_a_replayed_response_is_refused(relay, idp):
    browser, xml, first = sign_in(relay, idp)
    assert first.status_code == 302
    assert refused(post_answer(Browser(relay.test_client()), xml), "already used")


def test_an_unknown_in_response_to_is_refused(relay, idp):
    browser, location = start(relay)
    idp.read_request(location)
    resp = post_answer(browser, idp.respond("id-the-relay-never-sent"))
    assert refused(resp, "not started here") and stored(relay) is None


def test_a_tampered_group_after_signing_is_refused(relay, idp, caplog):
    browser, location = start(relay)
    xml = idp.respond(idp.read_request(location).id)
    assert xml.count(">pact-devs<") == 1
    resp = post_answer(browser, xml.replace(">pact-devs<", ">pact-admins<"))
    assert refused(resp, "not by the IdP") and stored(relay) is None
    # Neither the assertion nor who it names reaches the page or the log.
    for leak in ("alice-0001", "alice@example.com", "pact-admins", "Assertion"):
        assert leak not in resp.text and leak not in caplog.text


def test_idp_initiated_is_refused_by_default(relay, idp):
    resp = post_answer(Browser(relay.test_client()), idp.respond(None))
    assert refused(resp, "RELAY_SAML_ALLOW_IDP_INITIATED") and stored(relay) is None


def test_idp_initiated_is_accepted_when_allowed_and_only_once(idp_metadata, idp_keys, tmp_path, database_url,
                                                              redis_url):
    relay = relay_for(idp_metadata, tmp_path, database_url, redis_url, saml_allow_idp_initiated=True)
    idp = Idp(idp_keys[1], relay.test_client().get("/ui/sign-in/saml/metadata").text)
    xml = idp.respond(None)
    landing = post_answer(Browser(relay.test_client()), xml)
    assert landing.status_code == 302 and landing.headers["Location"] == "/ui/", landing.text
    assert stored(relay).role == "write"
    assert refused(post_answer(Browser(relay.test_client()), xml), "already used")


def test_a_wrong_recipient_is_refused(relay, idp):
    browser, location = start(relay)
    request = idp.read_request(location)
    xml = idp.server.create_authn_response(
        identity=ALICE, in_response_to=request.id, destination=f"{PUBLIC_URL}/ui/elsewhere", sp_entity_id=SP_ENTITY,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="alice-0001"),
        authn={"class_ref": PASSWORD, "authn_auth": IDP_ENTITY}, sign_response=True)
    assert 'Recipient="http://localhost:8000/ui/elsewhere"' in str(xml)
    assert refused(post_answer(browser, str(xml)), "destination") and stored(relay) is None


def test_a_transient_name_id_is_refused(relay, idp):
    from saml2.saml import NAMEID_FORMAT_TRANSIENT

    browser, location = start(relay)
    request = idp.read_request(location)
    xml = idp.server.create_authn_response(
        identity=ALICE, in_response_to=request.id, destination=ACS, sp_entity_id=SP_ENTITY,
        name_id=NameID(format=NAMEID_FORMAT_TRANSIENT, text="_a1b2c3"),
        authn={"class_ref": PASSWORD, "authn_auth": IDP_ENTITY}, sign_response=True)
    assert refused(post_answer(browser, str(xml)), "transient NameID") and stored(relay) is None


def access_module():
    from relay.security import saml

    return saml


def test_signature_wrapping_is_refused(relay, idp):
    """XSW: the signed assertion hidden in the Response's Extensions, a forged copy (same ID) in its place."""
    browser, location = start(relay)
    xml = idp.respond(idp.read_request(location).id, sign_response=False, sign_assertion=True)
    protocol, assertion = re.search(r"<(\w+):Response ", xml).group(1), re.search(r"<(\w+):Assertion ", xml)
    begin, closing = assertion.start(), f"</{assertion.group(1)}:Assertion>"
    end = xml.index(closing) + len(closing)
    signed = xml[begin:end]
    forged = signed.replace(">pact-devs<", ">pact-admins<")
    wrapped = xml[:begin] + f"<{protocol}:Extensions>{signed}</{protocol}:Extensions>" + forged + xml[end:]
    assert access_module().in_response_to(base64.b64encode(wrapped.encode()).decode())  # well-formed SAML
    assert refused(post_answer(browser, wrapped), "not by the IdP") and stored(relay) is None


def test_a_solicited_assertion_is_not_taken_as_idp_initiated(idp_metadata, idp_keys, tmp_path, database_url,
                                                              redis_url):
    relay = relay_for(idp_metadata, tmp_path, database_url, redis_url, saml_allow_idp_initiated=True)
    idp = Idp(idp_keys[1], relay.test_client().get("/ui/sign-in/saml/metadata").text)
    browser, location = start(relay)
    request_id = idp.read_request(location).id
    xml = idp.respond(request_id, sign_response=False, sign_assertion=True)
    stripped = xml.replace(f' InResponseTo="{request_id}"', "", 1)  # the unsigned Response's, not the assertion's
    assert stripped.count(request_id) == 1
    assert refused(post_answer(browser, stripped), "started here earlier") and stored(relay) is None


def test_the_idp_metadata_can_come_from_a_url(idp_metadata, idp_keys, tmp_path, database_url, redis_url, httpserver):
    from pathlib import Path

    httpserver.expect_request("/saml/metadata").respond_with_data(Path(idp_metadata).read_text(),
                                                                 content_type="application/samlmetadata+xml")
    relay = create_app(make_settings(tmp_path, database_url, redis_url, public_url=PUBLIC_URL,
                                     saml_idp_metadata_url=httpserver.url_for("/saml/metadata"),
                                     sso_role_map=ROLE_MAP))
    idp = Idp(idp_keys[1], relay.test_client().get("/ui/sign-in/saml/metadata").text)
    _, _, landing = sign_in(relay, idp)
    assert landing.status_code == 302 and stored(relay).role == "write"


@pytest.mark.parametrize(("values", "message"), [
    ({"RELAY_SAML_IDP_METADATA_URL": "https://idp.example.com/md", "RELAY_SAML_IDP_METADATA_FILE": "/etc/hostname"},
     "RELAY_SAML_IDP_METADATA_URL: set it or RELAY_SAML_IDP_METADATA_FILE, not both"),
    ({"RELAY_SAML_IDP_METADATA_URL": "http://idp.example.com/md"},
     "RELAY_SAML_IDP_METADATA_URL: http:// is accepted for a loopback address only"),
    ({"RELAY_SAML_IDP_METADATA_URL": "https://user:pw@idp.example.com/md"},
     "RELAY_SAML_IDP_METADATA_URL: must be an https URL"),
    ({"RELAY_SAML_IDP_METADATA_FILE": "/nonexistent/idp.xml"}, "RELAY_SAML_IDP_METADATA_FILE: '/nonexistent/idp.xml'"),
])
def test_bad_saml_settings_are_one_line_naming_the_variable(values, message, tmp_path):
    from relay.config import ConfigError, Settings

    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"RELAY_DATA_DIR": str(tmp_path), **values})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value) and "pw@" not in str(caught.value)


def test_saml_settings(tmp_path, idp_metadata):
    from relay.config import Settings

    settings = Settings.from_env({"RELAY_DATA_DIR": str(tmp_path), "RELAY_SAML_IDP_METADATA_FILE": idp_metadata,
                                  "RELAY_SSO_ONLY": "true"})
    assert settings.saml_enabled and settings.sso_only and settings.saml_roles_attribute == "groups"
    assert not settings.saml_allow_idp_initiated
    url = Settings.from_env({"RELAY_DATA_DIR": str(tmp_path), "RELAY_SAML_ROLES_ATTRIBUTE": "memberOf",
                             "RELAY_SAML_ALLOW_IDP_INITIATED": "true",
                             "RELAY_SAML_IDP_METADATA_URL": "https://login.example.com/md.xml?appid=1"})
    assert url.saml_idp_metadata_url == "https://login.example.com/md.xml?appid=1"
    assert url.saml_roles_attribute == "memberOf" and url.saml_allow_idp_initiated
