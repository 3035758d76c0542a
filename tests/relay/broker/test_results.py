"""Failing interactions out of the results the real Rust and Ruby verifiers published (fixtures recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.broker.results import RUBY, UnknownShape, failing_interactions, verifier

RESULTS = Path(__file__).parents[2] / "fixtures" / "pactbroker" / "verification_results"
MARY, KEN, ALL = "a request for an alligator", "a request for a missing alligator", "a request for all alligators"


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def served_pact() -> dict:
    """The pact as the loopback broker served it to the verifiers: each interaction with the broker's _id."""
    pact = load("pact.json")
    pact["interactions"] = [{"_id": f"5d445a4612743728dfd99ccd4210423c{n:08x}", **i}
                            for n, i in enumerate(pact["interactions"])]
    return pact


def by_description(details: dict) -> dict[str, dict]:
    return {i["description"]: i for i in details["interactions"]}


def test_rust_result_with_states_request_and_response_from_the_pact():
    details = failing_interactions(load("rust.json"), served_pact())
    assert details["verifier"] == {"name": "pact_verifier_cli (Pact-Rust)", "version": "1.3.5"}
    found = by_description(details)
    assert list(found) == [MARY, KEN, ALL]
    mary = found[MARY]
    assert mary["providerStates"] == ["there is an alligator named Mary"]
    assert mary["request"] == {"method": "GET", "path": "/alligators/Mary", "headers": {"Accept": "application/json"}}
    assert mary["response"]["body"] == {"name": "Mary", "first_name": "Mary", "age": 73}
    # The Rust verifier lists a body's mismatches in no fixed order.
    assert sorted(mary["mismatches"], key=lambda m: m["path"]) == [
        {"attribute": "body", "path": "$", "expected": None, "actual": None,
         "message": "Actual map is missing the following keys: first_name"},
        {"attribute": "body", "path": "$.age", "expected": None, "actual": None,
         "message": "Expected '73' (String) to be equal to 73 (Integer)"}]
    assert found[KEN]["mismatches"][0]["attribute"] == "status"
    assert found[KEN]["mismatches"][0]["message"] == "expected 404 but was 200"
    assert details["truncated"] is False


def test_rust_result_matched_by_description_when_the_pact_has_no_ids():
    details = failing_interactions(load("rust.json"), load("pact.json"))
    assert by_description(details)[ALL]["providerStates"] == ["there are alligators"]


def test_ruby_result_grouped_by_interaction_with_paths_and_status():
    result = load("ruby.json")
    assert verifier(result) == {"name": RUBY, "version": None}
    details = failing_interactions(result, served_pact())
    found = by_description(details)
    assert list(found) == [MARY, KEN, ALL]
    mary = found[MARY]
    assert mary["providerStates"] == ["there is an alligator named Mary"]
    assert [(m["attribute"], m["path"]) for m in mary["mismatches"]] == [("body", "$"), ("body", "$.age")]
    assert mary["mismatches"][0]["message"] == (
        'Could not find key "first_name" (keys present are: name, firstName, age) at $')
    assert mary["request"]["path"] == "/alligators/Mary" and mary["response"]["status"] == 200
    (status,) = found[KEN]["mismatches"]
    assert (status["attribute"], status["expected"], status["actual"]) == ("status", "404", "200")
    assert found[ALL]["mismatches"][0]["path"] == "$[0]"


def test_without_the_pact_the_mismatches_stay_and_the_rest_is_unknown():
    details = failing_interactions(load("ruby.json"), None)
    mary = by_description(details)[MARY]
    assert mary["request"] is None and mary["response"] is None and len(mary["mismatches"]) == 2
    rust = by_description(failing_interactions(load("rust.json"), None))
    assert rust[MARY]["providerStates"] == [] and len(rust[MARY]["mismatches"]) == 2


def test_the_recorded_broker_exchange_shape_is_unknown():
    # The broker documentation's own example carries {"some": "results"}: neither verifier's format.
    doc = json.loads((RESULTS.parent / "broker-api" / "verification_result_published.json").read_text())
    result = doc["request"]["body"] if "request" in doc else doc
    with pytest.raises(UnknownShape):
        failing_interactions(result, None)


def test_bounded_counts_and_sizes():
    result = {"testResults": [{"interactionDescription": f"i{n}", "success": False,
                               "mismatches": [{"attribute": "body", "description": "x" * 5000}] * 30}
                              for n in range(60)]}
    details = failing_interactions(result, {"interactions": [{"description": "i0", "request": {"body": "y" * 9000}}]})
    assert len(details["interactions"]) == 50 and details["truncated"] is True
    first = details["interactions"][0]
    assert len(first["mismatches"]) == 20 and len(first["mismatches"][0]["message"]) == 2000
    assert first["request"] == {"body": "(too large to show)"}
