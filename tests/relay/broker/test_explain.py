"""A failed verification explained from the broker: read after the event is stored, shown in /status and on the pair
page; each bad broker answer leaves the delivery going out and the reason in one line."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from werkzeug import Response

from tests.conftest import pact_event
from tests.relay.broker.conftest import BROKER_TOKEN
from tests.relay.web.ui.conftest import PASSWORD, Browser

FIXTURES = Path(__file__).parents[2] / "fixtures" / "pactbroker" / "verification_results"
SHA = "5d445a4612743728dfd99ccd4210423c052bb9db"
PAIR = "/pacts/provider/Animal Profile Service/consumer/Matching Service/pact-version/" + SHA
QUOTED = PAIR.replace(" ", "%20")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def served_pact() -> dict:
    pact = fixture("pact.json")
    pact["interactions"] = [{"_id": f"{SHA[:32]}{n:08x}", **i} for n, i in enumerate(pact["interactions"])]
    return pact


def failed_event(base: str) -> dict:
    return pact_event("provider_verification_failed", pactUrl=f"{base}{QUOTED}/metadata/Y3ZuPTE",
                      verificationResultUrl=f"{base}{QUOTED}/verification-results/41")


def deliver_failed_event(api, target, drain, base: str) -> dict:
    """POST the event with one webhook subscribed, run the worker; the delivery must have gone out."""
    target.expect_request("/hook").respond_with_data("ok")
    hook = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}],
                                       "request": {"method": "POST", "url": target.url_for("/hook")}})
    assert hook.status_code == 201, hook.json
    event = api.as_role("intake").post("/events", json=failed_event(base))
    assert event.status_code == 202
    drain()
    (delivery,) = api.get("/deliveries").json["deliveries"]
    assert delivery["status"] == "succeeded" and len(target.log) == 1
    (pair,) = api.get("/status").json["pairs"]
    return pair


def serve_result(httpserver, result: dict, pact: dict | None) -> None:
    links = {"self": {"href": "ignored"}}
    httpserver.expect_request(PAIR + "/verification-results/41",
                              headers={"Authorization": f"Bearer {BROKER_TOKEN}"}) \
        .respond_with_json({**result, "_links": links}, content_type="application/hal+json")
    if pact is not None:
        httpserver.expect_request(PAIR + "/metadata/Y3ZuPTE").respond_with_json(pact)


@pytest.mark.parametrize("verifier, name", [("rust.json", "pact_verifier_cli (Pact-Rust)"),
                                            ("ruby.json", "pact-provider-verifier (Ruby)")])
def test_failing_interactions_in_status_and_on_the_pair_page(api, app, httpserver, target, drain, broker_url,
                                                             make_user, verifier, name):
    serve_result(httpserver, fixture(verifier), served_pact())
    pair = deliver_failed_event(api, target, drain, broker_url)
    failure = pair["verification"]["failure"]
    assert failure["status"] == "found" and failure["reason"] is None
    assert failure["verifier"]["name"] == name
    assert (failure["interactionCount"], failure["mismatchCount"]) == (3, 4)
    mary = failure["interactions"][0]
    assert mary["description"] == "a request for an alligator"
    assert mary["providerStates"] == ["there is an alligator named Mary"]
    assert mary["request"]["path"] == "/alligators/Mary" and mary["response"]["body"]["first_name"] == "Mary"
    assert {m["path"] for m in mary["mismatches"]} == {"$", "$.age"}
    # Tag and matrix rows name the same result: its counts, not the interactions again.
    for row in pair["tags"] + pair["matrix"]:
        assert row["verification"]["failure"]["mismatchCount"] == 4
        assert "interactions" not in row["verification"]["failure"]

    make_user("dev@example.com", "read", PASSWORD)
    browser = Browser(app.test_client()).sign_in("dev@example.com")
    page = browser.get("/ui/pair", query_string={"consumer": "Matching Service", "provider": "Animal Profile Service"})
    assert page.status_code == 200
    html = page.text
    assert "Mismatches (4)" in html and "3 failing interactions" in html
    assert "there is an alligator named Mary" in html and "/alligators/Mary" in html
    assert "first_name" in html and BROKER_TOKEN not in html


def test_the_pact_unreadable_keeps_the_mismatches(api, httpserver, target, drain, broker_url):
    serve_result(httpserver, fixture("ruby.json"), None)
    httpserver.expect_request(PAIR + "/metadata/Y3ZuPTE").respond_with_data("nope", status=500)
    failure = deliver_failed_event(api, target, drain, broker_url)["verification"]["failure"]
    assert failure["status"] == "found" and failure["mismatchCount"] == 4
    assert failure["reason"].startswith("the pact was not read (the broker answered HTTP 500)")
    assert failure["interactions"][0]["request"] is None


def stalled(release: threading.Event):
    def handler(request):
        release.wait(10)
        return Response("{}", mimetype="application/json")

    return handler


BAD_ANSWERS = {
    "401": (lambda s, r: s.expect_request(PAIR + "/verification-results/41").respond_with_json({}, status=401),
            "refused the relay's credentials (HTTP 401)"),
    "500": (lambda s, r: s.expect_request(PAIR + "/verification-results/41").respond_with_data("", status=500),
            "the broker answered HTTP 500"),
    "5 MB": (lambda s, r: s.expect_request(PAIR + "/verification-results/41").respond_with_data(b" " * 5_000_000),
             "larger than 1024 KiB"),
    "not JSON": (lambda s, r: s.expect_request(PAIR + "/verification-results/41")
                 .respond_with_data("<html>Sign in</html>", content_type="text/html"), "not JSON"),
    "unknown shape": (lambda s, r: s.expect_request(PAIR + "/verification-results/41")
                      .respond_with_json({"success": False, "testResults": {"some": "results"}}),
                      "no testResults this relay can read"),
    "slow": (lambda s, r: s.expect_request(PAIR + "/verification-results/41").respond_with_handler(stalled(r)),
             "did not answer within 0.5 s"),
}


@pytest.mark.parametrize("answer", list(BAD_ANSWERS))
def test_a_bad_broker_answer_never_holds_up_the_delivery(api, httpserver, target, drain, broker_url, answer):
    release = threading.Event()
    serve, reason = BAD_ANSWERS[answer]
    serve(httpserver, release)
    try:
        failure = deliver_failed_event(api, target, drain, broker_url)["verification"]["failure"]
    finally:
        release.set()
    assert failure["status"] == "unavailable" and "interactions" in failure and failure["interactions"] == []
    assert failure["reason"].startswith("details unavailable: ") and reason in failure["reason"]
    assert "\n" not in failure["reason"] and BROKER_TOKEN not in failure["reason"]


@pytest.mark.parametrize("broker_url", ["down"], indirect=True)
def test_a_broker_that_is_down(api, target, drain, broker_url):
    failure = deliver_failed_event(api, target, drain, broker_url)["verification"]["failure"]
    assert failure["status"] == "unavailable"
    assert failure["reason"] == "details unavailable: cannot reach the broker (ConnectionError)"


def test_a_link_to_another_origin_is_refused(api, httpserver, target, drain):
    # The event names the target's origin (as a forged or misconfigured event could): nothing is fetched there.
    failure = deliver_failed_event(api, target, drain, target.url_for("/").rstrip("/"))["verification"]["failure"]
    assert failure["status"] == "unavailable" and "not on the broker's origin" in failure["reason"]
    assert [r.path for r, _ in target.log] == ["/hook"] and httpserver.log == []


def test_readiness_reports_the_broker_without_failing_on_it(client):
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["broker"] in ("not checked yet", "ok", "unavailable: "
                                                                 "the broker answered HTTP 500")
