"""Pair state from Pact Broker event sequences: ordering, duplicates, tags and the badge it yields."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.pairs import badges
from relay.pairs.state import (
    UNTAGGED,
    PairKey,
    PairState,
    apply,
    combine,
    keys_for,
    new_state,
    pact_sha,
    status,
    verification_number,
)

EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "pactbroker" / "events"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SHA_A = "5d445a4612743728dfd99ccd4210423c052bb9db"
SHA_B = "b" * 40


def sample(name: str) -> dict[str, str]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def event(name: str, sha: str = SHA_A, n: int | None = None, **overrides: str) -> dict[str, str]:
    """A fixture event for content sha (and verification number n)."""
    variables = sample(name)
    variables["pactUrl"] = variables["pactUrl"].replace(SHA_A, sha)
    if variables["verificationResultUrl"]:
        url = variables["verificationResultUrl"].replace(SHA_A, sha)
        variables["verificationResultUrl"] = url.rsplit("/", 1)[0] + f"/{n if n is not None else 1}"
    variables.update(overrides)
    return variables


def run(events: list[tuple[dict[str, str], datetime]], key: PairKey | None = None) -> PairState:
    first = events[0][0]
    state = new_state(key or PairKey(first["consumerName"], first["providerName"]))
    for variables, at in events:
        state = apply(state, variables, at)
    return state


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


PUBLISH_A = (event("contract_published"), at(0))
VERIFY_A_OK = (event("provider_verification_succeeded", n=1), at(1))
PUBLISH_B = (event("contract_content_changed", SHA_B), at(2))
VERIFY_B_FAIL = (event("provider_verification_failed", SHA_B, n=1), at(3))
VERIFY_B_OK = (event("provider_verification_succeeded", SHA_B, n=2), at(4))


def test_fixture_urls_parse():
    assert pact_sha(sample("contract_published")["pactUrl"]) == SHA_A
    assert verification_number(sample("provider_verification_failed")["verificationResultUrl"]) == 42
    assert verification_number("https://b/pacts/x/verification-results/7?x=1") == 7
    assert verification_number("") is None


@pytest.mark.parametrize(("events", "expected"), [
    ([], "unknown"),
    ([PUBLISH_A], "unknown"),
    ([PUBLISH_A, VERIFY_A_OK], "verified"),
    ([PUBLISH_A, VERIFY_A_OK, PUBLISH_B], "changed"),
    ([PUBLISH_A, VERIFY_A_OK, PUBLISH_B, VERIFY_B_FAIL], "failed"),
    ([PUBLISH_A, VERIFY_A_OK, PUBLISH_B, VERIFY_B_FAIL, VERIFY_B_OK], "verified"),
    # A failure stays 'failed' after new content, as in the Pact Broker: the latest verification failed.
    ([PUBLISH_A, VERIFY_B_FAIL, PUBLISH_B], "failed"),
    # Re-publishing content that was verified before makes the badge green again.
    ([PUBLISH_A, VERIFY_A_OK, PUBLISH_B, (event("contract_published"), at(5))], "verified"),
    # Only a verification: the relay never saw the publication, the verified content is all it knows.
    ([VERIFY_A_OK], "verified"),
])
def test_sequence_state(events, expected):
    state = run(events) if events else new_state(PairKey("Matching Service", "Animal Profile Service"))
    assert status(state) == expected


def test_sequence_records_versions_and_times():
    state = run([PUBLISH_A, VERIFY_A_OK, PUBLISH_B, VERIFY_B_FAIL])
    assert state.pact_sha == SHA_B and state.pact_at == at(2)
    assert state.consumer_version == "1.0.1569369168" and state.consumer_branch == "main"
    assert state.verification_success is False and state.verification_sha == SHA_B
    assert state.verification_number == 1 and state.verification_at == at(3)
    assert state.verification_url.endswith(f"pact-version/{SHA_B}/verification-results/1")
    assert state.provider_version == "1.0.0" and state.provider_branch == "main"
    assert state.last_event_at == at(3) and state.last_event_name == "provider_verification_failed"
    data = state.to_dict()
    assert data["state"] == "failed" and data["pact_at"] == at(2).isoformat()
    json.dumps(data)


@pytest.mark.parametrize("expected", ["verified", "changed", "failed"])
def test_badge_for_sequence(expected):
    events = {"verified": [PUBLISH_A, VERIFY_A_OK], "changed": [PUBLISH_A, VERIFY_A_OK, PUBLISH_B],
              "failed": [PUBLISH_A, VERIFY_B_FAIL]}[expected]
    state = run(events)
    left = badges.badge_text(state.consumer, state.provider)
    svg = badges.render_badge(left, status(state))
    assert f">{expected}</text>" in svg and badges.COLOURS[expected] in svg
    assert ">matching service/animal profile service pact</text>" in svg
    right_width = badges.text_width(expected)
    assert f'textLength="{round(right_width, 1):g}"' in svg


SEQUENCE = [PUBLISH_A, VERIFY_A_OK, PUBLISH_B, VERIFY_B_FAIL, VERIFY_B_OK,
            (event("provider_verification_published", SHA_B, n=2), at(4))]


def test_any_arrival_order_gives_the_same_state():
    expected = run(SEQUENCE)
    for order in itertools.permutations(SEQUENCE):
        assert run(list(order)) == expected


def test_duplicates_change_nothing():
    state = run([PUBLISH_A, VERIFY_A_OK, PUBLISH_B])
    for variables, when in [PUBLISH_A, VERIFY_A_OK, PUBLISH_B]:
        assert apply(state, variables, when) is state


def test_published_and_succeeded_for_one_result_are_one_verification():
    published = (event("provider_verification_published", n=1), at(1) + timedelta(milliseconds=5))
    state = run([PUBLISH_A, VERIFY_A_OK, published])
    assert state.verification_at == at(1) and status(state) == "verified"


def test_late_delivery_of_an_older_result_for_the_same_content_loses():
    late_failure = (event("provider_verification_failed", SHA_B, n=1), at(10))
    state = run([PUBLISH_A, PUBLISH_B, VERIFY_B_OK, late_failure])
    assert status(state) == "verified" and state.verification_number == 2


def test_older_publication_never_overwrites_newer_content():
    state = run([PUBLISH_B, VERIFY_B_OK, (event("contract_published"), at(-5))])
    assert state.pact_sha == SHA_B and status(state) == "verified"
    assert state.last_event_at == at(4)


def test_equal_times_are_resolved_without_regard_to_arrival():
    a, b = (event("contract_published"), at(0)), (event("contract_published", SHA_B), at(0))
    assert run([a, b]) == run([b, a])


def test_test_events_and_unknown_states_change_nothing():
    state = run([PUBLISH_A, VERIFY_A_OK])
    test = dict(VERIFY_A_OK[0], eventName="test")
    assert apply(state, test, at(0)) is state
    silent = dict(event("provider_verification_published", SHA_B, n=3), githubVerificationStatus="",
                  gitlabVerificationStatus="", bitbucketVerificationStatus="", azureDevOpsVerificationStatus="")
    assert apply(state, silent, at(0)).verification_sha == SHA_A


def test_apply_refuses_another_pair():
    with pytest.raises(ValueError):
        apply(new_state(PairKey("A", "B")), PUBLISH_A[0], at(0))


def test_keys_for_content_event():
    variables = event("contract_published", consumerVersionTags="prod, feat-x, prod", consumerVersionBranch="main")
    assert keys_for(variables) == [
        PairKey("Matching Service", "Animal Profile Service"),
        PairKey("Matching Service", "Animal Profile Service", "prod"),
        PairKey("Matching Service", "Animal Profile Service", "feat-x"),
        PairKey("Matching Service", "Animal Profile Service", "main"),
    ]


def test_keys_for_untagged_and_branch_equal_to_tag():
    untagged = event("contract_published", consumerVersionTags="", consumerVersionBranch="")
    assert [k.consumer_tag for k in keys_for(untagged)] == ["", UNTAGGED]
    same = event("contract_published", consumerVersionTags="main", consumerVersionBranch="main")
    assert [k.consumer_tag for k in keys_for(same)] == ["", "main"]


def test_keys_for_verification_includes_matrix_rows():
    keys = keys_for(event("provider_verification_succeeded", providerVersionTags="test, prod"))
    matrix = [(k.consumer_tag, k.provider_tag) for k in keys if k.provider_tag]
    assert matrix == [("prod", "test"), ("prod", "prod"), ("prod", "main"),
                      ("main", "test"), ("main", "prod"), ("main", "main")]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("variables", [
    {"eventName": "test", "consumerName": "A", "providerName": "B"},
    {"eventName": "contract_published", "consumerName": "", "providerName": "B"},
    {"eventName": "nonsense", "consumerName": "A", "providerName": "B"},
    {},
])
def test_keys_for_events_that_touch_no_row(variables):
    assert keys_for(variables) == []


def test_rows_follow_their_tags():
    """A publication on a feature tag changes only that tag's rows; prod stays verified."""
    prod = {"consumerVersionTags": "prod", "consumerVersionBranch": ""}
    feat = {"consumerVersionTags": "feat", "consumerVersionBranch": "feat"}
    events = [(event("contract_published", **prod), at(0)),
              (event("provider_verification_succeeded", n=1, **prod), at(1)),
              (event("contract_published", SHA_B, **feat), at(2))]
    rows: dict[PairKey, PairState] = {}
    for variables, when in events:
        for key in keys_for(variables):
            rows[key] = apply(rows.get(key) or new_state(key), variables, when)
    base = ("Matching Service", "Animal Profile Service")
    assert status(rows[PairKey(*base)]) == "changed"
    assert status(rows[PairKey(*base, "prod")]) == "verified"
    assert status(rows[PairKey(*base, "feat")]) == "unknown"
    matrix = rows[PairKey(*base, "prod", "test")]
    assert status(combine(rows[PairKey(*base, "prod")], matrix)) == "verified"
    assert status(combine(rows[PairKey(*base, "feat")], new_state(PairKey(*base, "feat", "test")))) == "unknown"


def test_combine_takes_content_from_one_row_and_verification_from_the_other():
    content = run([PUBLISH_A, VERIFY_A_OK, PUBLISH_B])
    verification = run([VERIFY_B_FAIL], PairKey("Matching Service", "Animal Profile Service", "", "test"))
    merged = combine(content, verification)
    assert merged.pact_sha == SHA_B and merged.provider_tag == "test"
    assert status(merged) == "failed" and merged.last_event_at == at(3)
