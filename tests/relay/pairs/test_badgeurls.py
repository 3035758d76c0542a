"""Badge paths parsed and built, and their signatures."""

from __future__ import annotations

import pytest

from relay.pairs.badgeurls import BadgeRef, parse, sign, url, verify
from relay.pairs.state import UNTAGGED, PairKey

P = "/pacts/provider/Animal%20Profile/consumer/Matching"


@pytest.mark.parametrize(("path", "ref"), [
    (f"{P}/latest/badge", BadgeRef("latest", "Matching", "Animal Profile")),
    (f"{P}/latest/badge.svg?label=x", BadgeRef("latest", "Matching", "Animal Profile")),
    (f"{P}/latest/prod/badge", BadgeRef("tag", "Matching", "Animal Profile", "prod")),
    (f"{P}/latest/feat%2Fx/badge.svg", BadgeRef("tag", "Matching", "Animal Profile", "feat/x")),
    (f"{P}/latest-untagged/badge", BadgeRef("untagged", "Matching", "Animal Profile")),
    ("/matrix/provider/a%2Fb/latest/main/consumer/%C3%A9/latest/prod/badge",
     BadgeRef("matrix", "é", "a/b", "prod", "main")),
    (f"/mounted/under{P}/latest/badge", BadgeRef("latest", "Matching", "Animal Profile")),
    (f"http://relay.example.com{P}/latest/badge?x", BadgeRef("latest", "Matching", "Animal Profile")),
    ("/pacts/provider//consumer/%FF/latest/badge", BadgeRef("latest", "\ufffd", "")),
    ("/pacts/provider/a+b/consumer/c/latest/badge", BadgeRef("latest", "c", "a+b")),
])
def test_parse(path, ref):
    assert parse(path) == ref


@pytest.mark.parametrize("path", [f"{P}/latest", f"{P}/latest/a/b/badge", f"{P}/badge", "/pacts/provider/x",
                                  "/matrix/provider/p/latest/t/consumer/c/badge", "/", "", "/pacts"])
def test_not_badges(path):
    assert parse(path) is None


NAMES = ["plain", "with space", "a/b", "ünï 中文 😀", "%2F", "?#&=+", "..", "latest", "badge"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["latest", "tag", "untagged", "matrix"])
def test_built_paths_parse_back(name, kind):
    tags = {"tag": (name, ""), "matrix": (name, name)}.get(kind, ("", ""))
    ref = BadgeRef(kind, name, f"{name}2", *tags)
    assert parse(ref.path()) == ref
    assert parse(url("https://relay.example.com/", ref, "k", "consumer", True)) == ref


def test_keys():
    assert BadgeRef("latest", "c", "p").content_key() == PairKey("c", "p")
    assert BadgeRef("untagged", "c", "p").content_key() == PairKey("c", "p", UNTAGGED)
    matrix = BadgeRef("matrix", "c", "p", "ct", "pt")
    assert matrix.content_key() == PairKey("c", "p", "ct") and matrix.matrix_key() == PairKey("c", "p", "ct", "pt")
    assert BadgeRef("tag", "c", "p", "t").matrix_key() is None


def test_signatures():
    ref = BadgeRef("latest", "c", "p")
    sig = sign("key", ref)
    assert sig == sign("key", ref) and verify("key", ref, sig)
    assert "key" not in sig and len(sig) == 43
    assert not verify("other", ref, sig)
    assert not verify("key", BadgeRef("latest", "p", "c"), sig)
    assert not verify("key", BadgeRef("tag", "c", "p", ""), sig)
    # Names are signed unambiguously: a NUL inside a name is not a separator.
    assert sign("key", BadgeRef("latest", "a", "b\x00c")) != sign("key", BadgeRef("latest", "a\x00b", "c"))
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    for bad in ("", "x", sig[:-1], flipped, "é" * 43, "\ud800"):
        assert not verify("key", ref, bad)


def test_url():
    ref = BadgeRef("tag", "Matching Service", "a/b", "prod")
    assert url("https://r.example.com/", ref) == \
        "https://r.example.com/pacts/provider/a%2Fb/consumer/Matching%20Service/latest/prod/badge.svg"
    signed = url("https://r.example.com", ref, "key", label="provider", initials=True)
    assert signed.endswith(f"badge.svg?label=provider&initials=true&sig={sign('key', ref)}")
