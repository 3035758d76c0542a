"""Badges over HTTP: real events posted to /events, then the Pact Broker badge paths fetched."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from relay.app import create_app
from relay.pairs import badges, badgeurls
from relay.runtime import Runtime
from tests.conftest import make_settings, pact_event

SHA_B = "b" * 40
C, P = "Matching Service", "Animal Profile Service"
LATEST = "/pacts/provider/Animal%20Profile%20Service/consumer/Matching%20Service/latest/badge"


def post(api, variables, **headers):
    resp = api.as_role("intake").post("/events", data=json.dumps(variables),
                                      headers={"Content-Type": "application/json", **headers})
    assert resp.status_code in (200, 202), resp.json
    return resp


def right_text(svg: str) -> str:
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    return texts[-1]


def left_text(svg: str) -> str:
    return [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")][0]


def fetch(client, path, **headers):
    resp = client.get(path, headers=headers)
    assert resp.status_code == 200, (path, resp.status_code, resp.data[:200])
    assert resp.mimetype == "image/svg+xml" and resp.headers["Cache-Control"] == "no-cache"
    return resp.get_data(as_text=True)


def state_of(client, path) -> str:
    return right_text(fetch(client, path))


def test_a_pair_through_its_life(client, api):
    assert state_of(client, LATEST) == "unknown"
    steps = [
        (pact_event("contract_published"), "unknown"),
        (pact_event("provider_verification_succeeded", n=1), "verified"),
        (pact_event("contract_content_changed", SHA_B), "changed"),
        (pact_event("provider_verification_failed", SHA_B, n=1), "failed"),
        (pact_event("provider_verification_succeeded", SHA_B, n=2), "verified"),
    ]
    for variables, expected in steps:
        post(api, variables)
        svg = fetch(client, LATEST)
        assert right_text(svg) == expected
        assert badges.COLOURS[expected] in svg
        assert left_text(svg) == "matching service/animal profile service pact"
        width = int(ET.fromstring(svg).get("width"))
        assert width >= badges.text_width(left_text(svg)) + badges.text_width(expected) + 4 * badges.PADDING
        assert svg == badges.render_badge("matching service/animal profile service pact", expected)


def test_late_and_repeated_events_never_go_back(client, api):
    post(api, pact_event("contract_published"))
    post(api, pact_event("provider_verification_succeeded", n=2))
    # The broker retried an older result's webhook: result 1 of the same content arrives after result 2.
    post(api, pact_event("provider_verification_failed", n=1))
    assert state_of(client, LATEST) == "verified"
    # The same request again is answered from the first, and a re-delivery under a new key changes nothing.
    assert post(api, pact_event("provider_verification_succeeded", n=2)).status_code == 200
    post(api, pact_event("provider_verification_succeeded", n=2), **{"Idempotency-Key": "redelivery"})
    post(api, pact_event("provider_verification_published", n=2))
    assert state_of(client, LATEST) == "verified"
    post(api, pact_event("contract_content_changed", SHA_B))
    post(api, pact_event("contract_content_changed", SHA_B), **{"Idempotency-Key": "again"})
    assert state_of(client, LATEST) == "changed"


BASE = "/pacts/provider/Animal%20Profile%20Service/consumer/Matching%20Service"
MATRIX = "/matrix/provider/Animal%20Profile%20Service/latest/{pt}/consumer/Matching%20Service/latest/{ct}/badge"


@pytest.mark.parametrize("suffix", ["", ".svg"])
def test_every_badge_path(client, api, suffix):
    # Sample verification: consumer tag prod, branch main; provider tag test, branch main.
    post(api, pact_event("contract_published"))
    post(api, pact_event("provider_verification_failed", n=1))
    post(api, pact_event("contract_published", SHA_B, consumerVersionTags="", consumerVersionBranch=""))
    post(api, pact_event("provider_verification_succeeded", SHA_B, n=1, consumerVersionTags="",
                         consumerVersionBranch="", providerVersionTags="", providerVersionBranch="dev"))
    expected = {
        f"{BASE}/latest/badge": "verified",
        f"{BASE}/latest/prod/badge": "failed",
        f"{BASE}/latest/main/badge": "failed",
        f"{BASE}/latest/nope/badge": "unknown",
        f"{BASE}/latest-untagged/badge": "verified",
        MATRIX.format(pt="test", ct="prod"): "failed",
        MATRIX.format(pt="main", ct="main"): "failed",
        MATRIX.format(pt="dev", ct="prod"): "unknown",
        MATRIX.format(pt="prod", ct="test"): "unknown",
    }
    for path, state in expected.items():
        assert state_of(client, path + suffix) == state, path
    svg = fetch(client, MATRIX.format(pt="test", ct="prod") + suffix)
    assert left_text(svg) == "matching service (prod)/animal profile service (test) pact"


def test_etag_and_304(client, api):
    post(api, pact_event("contract_published"))
    first = client.get(LATEST)
    tag = first.headers["ETag"]
    assert tag.startswith('"') and first.headers["Vary"] == "Accept"
    again = client.get(LATEST, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
    assert again.headers["Cache-Control"] == "no-cache"
    assert client.get(LATEST, headers={"If-None-Match": "*"}).status_code == 304
    post(api, pact_event("provider_verification_succeeded", n=1))
    changed = client.get(LATEST, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert right_text(changed.get_data(as_text=True)) == "verified"


def test_json_twin(client, api):
    post(api, pact_event("contract_published"))
    post(api, pact_event("provider_verification_failed", n=1))
    resp = client.get(LATEST + "?label=consumer", headers={"Accept": "application/json"})
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.json == {"schemaVersion": 1, "label": "matching service pact", "message": "failed", "color": "red"}
    assert resp.headers["ETag"] != client.get(LATEST + "?label=consumer").headers["ETag"]
    assert client.get(LATEST, headers={"Accept": "application/json",
                                       "If-None-Match": resp.headers["ETag"]}).status_code == 200
    # What browsers send for <img> still gets the SVG.
    img = client.get(LATEST, headers={"Accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"})
    assert img.mimetype == "image/svg+xml"


@pytest.mark.parametrize(("query", "left"), [
    ("", "matching service/animal profile service pact"),
    ("?label=consumer", "matching service pact"),
    ("?label=provider&initials=true", "aps pact"),
    ("?initials=true", "ms/aps pact"),
    ("?label=bogus&initials=no", "matching service/animal profile service pact"),
])
def test_label_and_initials(client, query, left):
    assert left_text(fetch(client, LATEST + query)) == left


ODD = ["with space", "a/b/c", "ünïcødé 中文 😀", "per%cent+plus", "consumer", "latest", "..", "?&#="]


@pytest.mark.parametrize("name", ODD)
def test_odd_names_round_trip(client, api, name):
    other = f"{name} provider"
    post(api, pact_event("contract_published", consumerName=name, providerName=other))
    post(api, pact_event("provider_verification_succeeded", n=1, consumerName=name, providerName=other))
    url = badgeurls.url("", badgeurls.BadgeRef("latest", name, other))
    assert state_of(client, url) == "verified"
    assert state_of(client, badgeurls.url("", badgeurls.BadgeRef("tag", name, other, "prod"))) == "verified"
    matrix = badgeurls.url("", badgeurls.BadgeRef("matrix", name, other, "prod", "test"))
    assert state_of(client, matrix) == "verified"


@pytest.mark.parametrize("path", [
    "/pacts/provider/" + "x" * 300 + "/consumer/C/latest/badge",
    "/pacts/provider/" + "%F0%9F%98%80" * 600 + "/consumer/C/latest/badge.svg",
    "/pacts/provider/a%00b/consumer/C/latest/badge",
    "/pacts/provider/a%0Ab%1B[31m/consumer/C/latest/badge",
    "/pacts/provider/%FF%FE/consumer/C/latest/badge",
    "/pacts/provider/%ED%A0%80/consumer/C/latest/badge",
    "/pacts/provider//consumer//latest/badge",
    "/pacts/provider/P/consumer/C/latest/" + "t" * 5000 + "/badge",
    "/matrix/provider/P/latest/%00/consumer/C/latest/%0A/badge.svg",
    "/pacts/provider/%3Cscript%3E/consumer/%22%27%26/latest/badge",
    "/pacts/provider/Animal%20Profile%20Service/consumer/Nobody/latest/badge",
])
def test_bad_input_gets_a_valid_unknown_badge(client, path):
    svg = fetch(client, path)
    assert right_text(svg) == "unknown"
    assert ET.fromstring(svg).get("height") == "20"
    assert client.get(path, headers={"Accept": "application/json"}).json["message"] == "unknown"


@pytest.mark.parametrize("path", [
    "/pacts/provider/P/consumer/C/latest/nope", "/pacts/provider/P/consumer/C/badge", "/pacts/provider/P",
    "/matrix/provider/P/latest/x/consumer/C/badge",
])
def test_paths_that_are_no_badge_are_404(client, path):
    resp = client.get(path)
    assert resp.status_code == 404 and "badge" in resp.json["error"]


def test_long_names_and_tags_in_events_are_accepted_without_state(client, api):
    long = "n" * 300
    post(api, pact_event("provider_verification_succeeded", consumerName=long))
    post(api, pact_event("provider_verification_succeeded", n=1, consumerVersionTags=",".join(["t" * 300] * 3)))
    assert state_of(client, badgeurls.url("", badgeurls.BadgeRef("latest", long, P))) == "unknown"
    assert state_of(client, LATEST) == "verified"


@pytest.fixture
def private_client(tmp_path, database_url, redis_url, api):
    settings = make_settings(tmp_path, database_url, redis_url, private_badges=True,
                             public_url="https://relay.example.com")
    runtime = Runtime(settings)
    app = create_app(runtime=runtime)
    yield app.test_client()
    runtime.engine.dispose()


def test_private_badges_need_their_signature(private_client, api):
    post(api, pact_event("contract_published"))
    post(api, pact_event("provider_verification_succeeded", n=1))
    ref = badgeurls.BadgeRef("latest", C, P)
    signed = badgeurls.url("", ref, "test-secret-key")
    sig = signed.rsplit("sig=", 1)[1]
    assert "test-secret-key" not in signed and len(sig) == 43
    assert state_of(private_client, signed) == "verified"
    assert state_of(private_client, signed.replace("/badge.svg", "/badge")) == "verified"
    assert state_of(private_client, signed + "&label=consumer&initials=true") == "verified"

    unsigned = private_client.get(LATEST)
    assert unsigned.status_code == 403 and unsigned.mimetype == "image/svg+xml"
    assert right_text(unsigned.get_data(as_text=True)) == "signature required"
    assert unsigned.headers["Cache-Control"] == "no-cache"
    forged = private_client.get(f"{LATEST}?sig={sig[:-2]}xx")
    assert forged.status_code == 403 and right_text(forged.get_data(as_text=True)) == "invalid signature"
    # A signature is for one badge only: not another tag, kind or pair.
    for other in (badgeurls.BadgeRef("tag", C, P, "prod"), badgeurls.BadgeRef("untagged", C, P),
                  badgeurls.BadgeRef("latest", P, C)):
        assert private_client.get(f"{other.path()}?sig={sig}").status_code == 403
    wrong_key = badgeurls.url("", ref, "another-key")
    assert private_client.get(wrong_key).status_code == 403
    as_json = private_client.get(LATEST, headers={"Accept": "application/json"})
    assert as_json.status_code == 403 and "signature required" in as_json.json["errors"]["sig"][0]
    assert b"verified" not in unsigned.data + forged.data + as_json.data


def test_public_badges_ignore_a_signature(client, api):
    post(api, pact_event("provider_verification_succeeded", n=1))
    assert state_of(client, LATEST + "?sig=whatever") == "verified"
