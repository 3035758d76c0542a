"""SAML 2.0 service provider (pysaml2 with xmlsec1): the relay's metadata, AuthnRequests and checked responses."""

from __future__ import annotations

import base64
import binascii
import calendar
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.time_util import str_to_time

from relay.config import Settings
from relay.security.sso import Identity

logger = logging.getLogger(__name__)
# pysaml2 logs whole responses, assertions and NameIDs at debug and info: bearer credentials stay out of the logs.
logging.getLogger("saml2").setLevel(logging.WARNING)

CLOCK_SKEW = 60  # seconds the relay's and the IdP's clocks may differ by
METADATA_TTL = 3600.0
MAX_METADATA = 1024 * 1024
MAX_RESPONSE = 512 * 1024  # a base64 SAMLResponse far larger than any real sign-in is refused unread
TIMEOUT = (3.0, 10.0)
EMAIL_ATTRIBUTES = ("mail", "email", "emailAddress", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")

# pysaml2 raises many exception types, some of them bare Exception; each known one gets a reason a person can act on.
REASONS = {
    "SignatureError": "it is not signed, or not by the IdP in RELAY_SAML_IDP_METADATA_*",
    "SigverError": "it is not signed, or not by the IdP in RELAY_SAML_IDP_METADATA_*",
    "IncorrectlySigned": "its signature does not check out against the IdP's certificate",
    "MissingKey": "its signer is not the IdP in RELAY_SAML_IDP_METADATA_*",
    "ResponseLifetimeExceed": "it has expired; if this repeats, check the relay's clock",
    "ToEarly": "it is not valid yet; check the relay's clock",
    "UnsolicitedResponse": "it answers no sign-in started here",
    "VerificationError": "its audience, recipient or conditions are not this relay's",
    "StatusError": "the IdP did not sign the person in",
    "InvalidAssertion": "it must carry exactly one assertion",
}


class SamlError(Exception):
    """A SAML sign-in that failed; the message is safe to show (never the XML) and says what to fix."""


@dataclass(frozen=True)
class SamlResult:
    """A response that checked out: who signed in, and the assertion's ID, remembered until `expires` (epoch s)."""

    identity: Identity
    assertion_id: str
    expires: int


class SamlCache:
    """A runtime cache: the IdP's metadata (read again hourly) and the pysaml2 configuration built from it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.loaded: tuple[float, SPConfig] | None = None


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc credentials from the environment
    return session


def in_response_to(saml_response: str) -> str | None:
    """The request the (not yet checked) response claims to answer, to take its record before pysaml2 checks it."""
    try:
        xml = _decode(saml_response)
        message = samlp.response_from_string(xml)
    except Exception:  # noqa: BLE001 -- anything unparseable is simply not a response
        raise SamlError("the identity provider's answer is not a SAML response") from None
    if message is None:
        raise SamlError("the identity provider's answer is not a SAML response")
    return message.in_response_to or None


def _decode(saml_response: str) -> str:
    if not saml_response or len(saml_response) > MAX_RESPONSE:
        raise SamlError("the identity provider's answer is missing or too large")
    try:
        return base64.b64decode(saml_response, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SamlError("the identity provider's answer is not base64 SAML") from None


class SamlProvider:
    """The one IdP of RELAY_SAML_IDP_METADATA_*, for the relay at `entity_id` whose ACS is `acs_url`."""

    def __init__(self, settings: Settings, cache: SamlCache, entity_id: str, acs_url: str):
        self.settings = settings
        self.cache = cache
        self.entity_id = entity_id
        self.acs_url = acs_url

    def _config(self, idp_metadata: str | None) -> SPConfig:
        xmlsec = shutil.which("xmlsec1")
        if not xmlsec:
            raise SamlError("SAML sign-in needs the xmlsec1 program; install it (Debian: apt-get install xmlsec1)")
        sp = {
            "endpoints": {"assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]},
            "allow_unsolicited": self.settings.saml_allow_idp_initiated,
            # The response, the assertion or both signed: IdPs differ in which they sign, and either protects
            # the assertion; neither is refused.
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,
            "authn_requests_signed": False,
            "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_EMAILADDRESS],
            "name_id_format_allow_create": True,
        }
        config = {
            "entityid": self.entity_id,
            "xmlsec_binary": xmlsec,
            "accepted_time_diff": CLOCK_SKEW,
            "allow_unknown_attributes": True,
            "service": {"sp": sp},
        }
        if idp_metadata is not None:
            config["metadata"] = {"inline": [idp_metadata]}
        conf = SPConfig()
        try:
            conf.load(config)
        except Exception as exc:  # noqa: BLE001 -- pysaml2 raises what its XML parser raises
            raise SamlError(f"the IdP metadata is unusable ({type(exc).__name__}); check RELAY_SAML_IDP_METADATA_*") \
                from None
        return conf

    def metadata(self) -> str:
        """The relay's own SP metadata (entity ID, ACS with the POST binding, NameID formats), unsigned."""
        return create_metadata_string(None, config=self._config(None), sign=False).decode()

    def config(self) -> SPConfig:
        with self.cache.lock:
            if self.cache.loaded and time.monotonic() - self.cache.loaded[0] < METADATA_TTL:
                return self.cache.loaded[1]
        conf = self._config(self._read_metadata())
        idps = conf.metadata.identity_providers()
        if len(idps) != 1:
            raise SamlError(f"the IdP metadata describes {len(idps)} identity providers; RELAY_SAML_IDP_METADATA_* "
                            "must describe exactly one")
        if not conf.metadata.single_sign_on_service(idps[0], BINDING_HTTP_REDIRECT):
            raise SamlError("the IdP offers no HTTP-Redirect single sign-on service; enable it at the IdP")
        with self.cache.lock:
            self.cache.loaded = (time.monotonic(), conf)
        return conf

    def _read_metadata(self) -> str:
        if self.settings.saml_idp_metadata_file:
            try:
                return Path(self.settings.saml_idp_metadata_file).read_text("utf-8")[:MAX_METADATA]
            except OSError as exc:
                raise SamlError(f"cannot read RELAY_SAML_IDP_METADATA_FILE ({type(exc).__name__})") from None
        try:
            resp = http().get(self.settings.saml_idp_metadata_url, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise SamlError(f"cannot read the IdP metadata ({type(exc).__name__}); check "
                            "RELAY_SAML_IDP_METADATA_URL") from None
        if resp.status_code != 200 or len(resp.content) > MAX_METADATA:
            raise SamlError(f"the IdP metadata is unusable (HTTP {resp.status_code}); check "
                            "RELAY_SAML_IDP_METADATA_URL")
        return resp.text

    def idp(self) -> str:
        return self.config().metadata.identity_providers()[0]

    def start(self) -> tuple[str, str]:
        """A new AuthnRequest: its ID (which the answer must be in response to) and the IdP URL to send it to."""
        conf = self.config()
        client = Saml2Client(conf)
        request_id, info = client.prepare_for_authenticate(entityid=self.idp(), relay_state="",
                                                           binding=BINDING_HTTP_REDIRECT)
        return request_id, dict(info["headers"])["Location"]

    def finish(self, saml_response: str, request_id: str | None) -> SamlResult:
        """The identity in a response the IdP signed, to this relay, in time and answering `request_id` (None: an
        IdP-initiated response, taken only when RELAY_SAML_ALLOW_IDP_INITIATED is true); SamlError otherwise."""
        if request_id is None and not self.settings.saml_allow_idp_initiated:
            raise SamlError("sign-ins started at the identity provider are off here; start from the relay's "
                            "sign-in page (or set RELAY_SAML_ALLOW_IDP_INITIATED=true)")
        client = Saml2Client(self.config())
        outstanding = {request_id: "/"} if request_id else {}
        try:
            resp = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding=outstanding)
        except Exception as exc:  # noqa: BLE001 -- pysaml2 raises bare Exception for some checks
            reason = REASONS.get(type(exc).__name__, "it did not pass the checks")
            if "AudienceRestriction" in str(exc):
                reason = "it is for another service provider (audience)"
            logger.warning("SAML response refused: %s", type(exc).__name__)
            raise SamlError(f"the identity provider's answer was refused: {reason}") from None
        if resp is None or resp.assertion is None:
            raise SamlError("the identity provider's answer was refused: its destination is not this relay's ACS")
        assertion = resp.assertion
        self._check(assertion, request_id)
        return SamlResult(self.identity(resp), str(assertion.id), self._expires(assertion))

    def _check(self, assertion, request_id: str | None) -> None:
        # pysaml2 lets an assertion without an AudienceRestriction through; a bearer assertion must name its SP.
        audiences = [a.text.strip() for r in (assertion.conditions.audience_restriction if assertion.conditions
                                              else []) for a in r.audience if a.text]
        if self.entity_id not in audiences:
            raise SamlError("the identity provider's answer was refused: it is for another service provider "
                            "(audience)")
        answers = {c.subject_confirmation_data.in_response_to for c in assertion.subject.subject_confirmation
                   if c.subject_confirmation_data is not None}
        if request_id is None and answers - {None}:
            # A signed assertion made for an SP-initiated sign-in, its unsigned Response stripped of InResponseTo.
            raise SamlError("the identity provider's answer was refused: it answers a sign-in started here earlier")

    @staticmethod
    def _expires(assertion) -> int:
        ends = [assertion.conditions.not_on_or_after] if assertion.conditions else []
        ends += [c.subject_confirmation_data.not_on_or_after for c in assertion.subject.subject_confirmation
                 if c.subject_confirmation_data is not None]
        stamps = [calendar.timegm(str_to_time(end)) for end in ends if end]
        return (max(stamps) if stamps else int(time.time()) + 3600) + CLOCK_SKEW

    def identity(self, resp) -> Identity:
        name_id = resp.name_id
        if name_id is None or not (name_id.text or "").strip():
            raise SamlError("the identity provider's answer names no one (NameID)")
        if name_id.format == NAMEID_FORMAT_TRANSIENT:
            raise SamlError("the IdP sent a transient NameID; configure it to send a persistent or e-mail NameID")
        idp = resp.assertion.issuer.text.strip() if resp.assertion.issuer is not None else self.idp()
        groups, email = [], None
        wanted = self.settings.saml_roles_attribute
        for statement in resp.assertion.attribute_statement:
            for attribute in statement.attribute:
                values = [str(v.text).strip() for v in attribute.attribute_value if v.text]
                if wanted in (attribute.name, attribute.friendly_name):
                    groups += values
                elif values and email is None and ({attribute.name, attribute.friendly_name} & set(EMAIL_ATTRIBUTES)):
                    email = values[0]
        if email is None and name_id.format == NAMEID_FORMAT_EMAILADDRESS:
            email = name_id.text
        subject = f"{idp} {name_id.text.strip()}"
        email = email.strip().lower() if email and "@" in email else None
        return Identity("saml", subject[:600], email, tuple(groups)[:1000],
                        {"idp": idp[:300], "nameId": name_id.text.strip()[:300]})

