"""GET /status: every pair with its state, versions, times and working badge links."""

from __future__ import annotations

import json

import pytest

from relay.app import create_app
from relay.runtime import Runtime
from tests.conftest import SAMPLE_SHA, make_settings, pact_event

C, P = "Matching Service", "Animal Profile Service"


def post(api, variables):
    resp = api.as_role("intake").post("/events", data=json.dumps(variables),
                                      headers={"Content-Type": "application/json"})
    assert resp.status_code == 202, resp.json


def test_status_lists_each_pair_with_tags_matrix_and_links(api, client):
    post(api, pact_event("contract_published"))
    post(api, pact_event("provider_verification_failed", n=7))
    post(api, pact_event("contract_published", consumerName="Other", providerName=P, consumerVersionTags="",
                         consumerVersionBranch=""))
    resp = api.as_role("read").get("/status")
    assert resp.status_code == 200
    pairs = resp.json["pairs"]
    assert [(p["consumer"], p["provider"]) for p in pairs] == [(C, P), ("Other", P)]
    main = pairs[0]
    assert main["state"] == "failed"
    assert main["pact"]["sha"] == SAMPLE_SHA and main["pact"]["consumerVersion"] == "1.0.1569369168"
    assert main["pact"]["consumerBranch"] == "main" and main["pact"]["publishedAt"]
    verification = main["verification"]
    assert verification["success"] is False and verification["number"] == 7
    assert verification["providerVersion"] == "1.0.0" and verification["providerBranch"] == "main"
    assert main["lastEvent"]["name"] == "provider_verification_failed"
    links = main["_links"]
    assert links["badge"]["href"] == ("http://localhost:8000/pacts/provider/Animal%20Profile%20Service/consumer/"
                                      "Matching%20Service/latest/badge.svg")
    assert links["pact"]["href"].startswith("https://broker.example.com/pacts/")
    assert links["verification"]["href"].endswith("/verification-results/7")
    assert {t["consumerTag"] for t in main["tags"]} == {"prod", "main"}
    assert {(m["consumerTag"], m["providerTag"]) for m in main["matrix"]} == {
        ("prod", "test"), ("prod", "main"), ("main", "test"), ("main", "main")}
    assert all(m["state"] == "failed" for m in main["matrix"])
    other = pairs[1]
    assert other["state"] == "unknown" and other["verification"] is None
    assert [t["untagged"] for t in other["tags"]] == [True] and other["tags"][0]["consumerTag"] is None
    assert other["tags"][0]["_links"]["badge"]["href"].endswith("/latest-untagged/badge.svg")
    # Every badge link the dashboard shows answers with the state it lists.
    for entry in [main, *main["tags"], *main["matrix"], other, *other["tags"]]:
        path = entry["_links"]["badge"]["href"].removeprefix("http://localhost:8000")
        badge = client.get(path, headers={"Accept": "application/json"})
        assert badge.status_code == 200 and badge.json["message"] == entry["state"], path


def test_filters_and_limit(api):
    for consumer in ("B", "A", "C"):
        post(api, pact_event("contract_published", consumerName=consumer, providerName="X"))
    post(api, pact_event("contract_published", consumerName="A", providerName="Y"))
    names = lambda resp: [(p["consumer"], p["provider"]) for p in resp.json["pairs"]]  # noqa: E731
    assert names(api.get("/status")) == [("A", "X"), ("A", "Y"), ("B", "X"), ("C", "X")]
    assert names(api.get("/status?consumer=A")) == [("A", "X"), ("A", "Y")]
    assert names(api.get("/status?provider=X&limit=2")) == [("A", "X"), ("B", "X")]
    assert names(api.get("/status?consumer=A&provider=Y")) == [("A", "Y")]
    assert names(api.get("/status?consumer=nobody")) == []


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=x", "limit"), ("limit=100000", "limit"),
    ("consumer=", "consumer"), ("provider=" + "x" * 300, "provider"), ("consumer=%00", "consumer"),
])
def test_bad_filters_are_400(api, query, field):
    resp = api.get(f"/status?{query}")
    assert resp.status_code == 400 and field in resp.json["errors"]


def test_status_needs_a_read_token(api, client):
    assert client.get("/status").status_code == 401
    assert api.as_role("intake").get("/status").status_code == 403
    assert api.as_role("write").get("/status").status_code == 200


def test_private_status_links_are_signed_and_work(tmp_path, database_url, redis_url, api, tokens):
    post(api, pact_event("provider_verification_succeeded", n=1))
    settings = make_settings(tmp_path, database_url, redis_url, private_badges=True,
                             public_url="https://relay.example.com/base")
    runtime = Runtime(settings)
    try:
        client = create_app(runtime=runtime).test_client()
        resp = client.get("/status", headers={"Authorization": f"Bearer {tokens['read']}"})
        pair = resp.json["pairs"][0]
        href = pair["_links"]["badge"]["href"]
        assert href.startswith("https://relay.example.com/base/pacts/provider/") and "?sig=" in href
        assert "test-secret-key" not in resp.get_data(as_text=True)
        for entry in [pair, *pair["tags"], *pair["matrix"]]:
            path = entry["_links"]["badge"]["href"].removeprefix("https://relay.example.com/base")
            badge = client.get(path, headers={"Accept": "application/json"})
            assert badge.status_code == 200 and badge.json["message"] == "verified"
            assert client.get(path.split("?")[0]).status_code == 403
    finally:
        runtime.engine.dispose()
