"""Badge URLs: the Pact Broker's badge paths parsed and built, and the signatures private badges need."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode, urlsplit

from itsdangerous import BadSignature, Signer

from relay.pairs.deploy import Question
from relay.pairs.state import UNTAGGED, PairKey

KINDS = ("latest", "tag", "untagged", "matrix")
BADGE_FILES = ("badge", "badge.svg")
SIGNATURE_SALT = "pact-relay.badge-url"


@dataclass(frozen=True)
class BadgeRef:
    """Which badge a path asks for; tags are '' where the kind has none."""

    kind: str
    consumer: str
    provider: str
    consumer_tag: str = ""
    provider_tag: str = ""

    def content_key(self) -> PairKey:
        """The row whose pact content and (except for matrix badges) verification decide the badge."""
        tag = {"latest": "", "untagged": UNTAGGED}.get(self.kind, self.consumer_tag)
        return PairKey(self.consumer, self.provider, tag)

    def matrix_key(self) -> PairKey | None:
        """The row holding the verification of a matrix badge; None for the other kinds."""
        if self.kind != "matrix":
            return None
        return PairKey(self.consumer, self.provider, self.consumer_tag, self.provider_tag)

    def path(self) -> str:
        p, c = _segment(self.provider), _segment(self.consumer)
        if self.kind == "matrix":
            return (f"/matrix/provider/{p}/latest/{_segment(self.provider_tag)}"
                    f"/consumer/{c}/latest/{_segment(self.consumer_tag)}/badge.svg")
        tail = {"latest": "latest", "untagged": "latest-untagged"}.get(self.kind) or (
            f"latest/{_segment(self.consumer_tag)}")
        return f"/pacts/provider/{p}/consumer/{c}/{tail}/badge.svg"

    def signed_value(self) -> bytes:
        # Names, not their encoding, are signed: '%20' and ' ', 'badge' and 'badge.svg' share one signature.
        parts = [self.kind, self.consumer, self.provider, self.consumer_tag, self.provider_tag]
        return json.dumps(parts).encode()  # unambiguous whatever the names hold


def _segment(name: str) -> str:
    return quote(name, safe="")


def parse(raw_path: str) -> BadgeRef | None:
    """The badge a request path (still percent-encoded, so that %2F stays inside a name) asks for."""
    parts = path_segments(raw_path)
    for start in range(len(parts)):
        # Anything before the badge path is the prefix the app is mounted under.
        if parts[start] in ("pacts", "matrix") and parts[start + 1:start + 2] == ["provider"]:
            return _match(parts[start:])
    return None


def is_can_i_deploy_badge(raw_path: str) -> bool:
    return deploy_badge(raw_path) is not None


@dataclass(frozen=True)
class DeployBadge:
    """A can-i-deploy badge: the question it shows the answer to."""

    question: Question

    def path(self) -> str:
        return self.question.path() + "/badge"

    def signed_value(self) -> bytes:
        # A kind no pact badge has: a signature for one kind of badge never opens another.
        return json.dumps(["can-i-deploy", *json.loads(self.question.key())]).encode()


def deploy_badge(raw_path: str) -> DeployBadge | None:
    """The broker's can-i-deploy badges: /pacticipants/<P>/latest-version/<tag>/can-i-deploy/to/<tag>/badge
    and /pacticipants/<P>/branches/<b>/latest-version/can-i-deploy/to-environment/<env>/badge."""
    p = path_segments(raw_path)
    p = p[p.index("pacticipants"):] if "pacticipants" in p else []
    if not p or p[-1] not in BADGE_FILES:
        return None
    if len(p) == 8 and (p[2], p[4], p[5]) == ("latest-version", "can-i-deploy", "to"):
        return DeployBadge(Question("tag", p[1], p[3], p[6], False))
    if len(p) == 9 and (p[2], p[4], p[5], p[6]) == ("branches", "latest-version", "can-i-deploy", "to-environment"):
        return DeployBadge(Question("branch", p[1], p[3], p[7], True))
    return None


def path_segments(raw_path: str, strict: bool = False) -> list[str]:
    """The decoded segments of a request path as sent: a name holding %2F stays one segment. `strict`: bytes that
    are not UTF-8 raise UnicodeDecodeError instead of becoming U+FFFD (for names that are stored)."""
    if not raw_path.startswith("/"):
        raw_path = urlsplit(raw_path).path  # an absolute-form request target
    raw_path = raw_path.split("?", 1)[0]
    return [unquote(s, errors="strict" if strict else "replace") for s in raw_path.split("/")]


def _match(p: list[str]) -> BadgeRef | None:
    if not p or p[-1] not in BADGE_FILES:
        return None
    if p[0] == "matrix":
        if len(p) == 10 and (p[3], p[5], p[7]) == ("latest", "consumer", "latest"):
            return BadgeRef("matrix", p[6], p[2], p[8], p[4])
        return None
    if len(p) < 6 or p[3] != "consumer":
        return None
    consumer, provider, tail = p[4], p[2], p[5:-1]
    if tail == ["latest"]:
        return BadgeRef("latest", consumer, provider)
    if tail == ["latest-untagged"]:
        return BadgeRef("untagged", consumer, provider)
    if len(tail) == 2 and tail[0] == "latest":
        return BadgeRef("tag", consumer, provider, tail[1])
    return None


def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt=SIGNATURE_SALT, digest_method=hashlib.sha256)


def sign(secret_key: str, ref: BadgeRef | DeployBadge) -> str:
    """A stable signature for the badge (no expiry: README links live for years); reveals no key."""
    return _signer(secret_key).get_signature(ref.signed_value()).decode()


def verify(secret_key: str, ref: BadgeRef | DeployBadge, signature: str) -> bool:
    try:
        return _signer(secret_key).verify_signature(ref.signed_value(), signature.encode("utf-8", "replace"))
    except BadSignature:
        return False


def url(base: str, ref: BadgeRef | DeployBadge, secret_key: str | None = None, label: str | None = None,
        initials: bool = False) -> str:
    """The absolute badge URL; signed when a secret key is given (private badges)."""
    query = {}
    if label:
        query["label"] = label
    if initials:
        query["initials"] = "true"
    if secret_key:
        query["sig"] = sign(secret_key, ref)
    return base.rstrip("/") + ref.path() + (f"?{urlencode(query)}" if query else "")
