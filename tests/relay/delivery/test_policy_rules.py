"""The pure rules: breaker verdicts and cool-downs, rate-limit answers, supersede and debounce choices."""

from datetime import UTC, datetime, timedelta

import pytest

from relay.delivery import breaker, ratelimits, supersede
from relay.delivery.supersede import Sibling
from relay.intake.webhooks import target_json
from relay.models import TargetState

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_cooldown_doubles_from_30_s_to_10_min():
    steps, current = [], 0.0
    for _ in range(8):
        current = breaker.next_cooldown(current)
        steps.append(current)
    assert steps == [30, 60, 120, 240, 480, 600, 600, 600]


@pytest.mark.parametrize("ok,retryable,status,internal,counts", [
    (False, True, None, False, True),    # connection error, timeout
    (False, True, 500, False, False),    # the target answered: the request failed, and a sender chose it
    (False, True, 502, False, True),     # a gateway or the target itself says it is down
    (False, True, 503, False, True),
    (False, True, 504, False, True),
    (False, True, 521, False, True),
    (False, True, 429, False, False),    # a rate limit: the target is well, only busy
    (False, True, 408, False, False),
    (False, False, 404, False, False),   # a 4xx is the configuration's fault
    (True, False, 200, False, False),
    (False, True, None, True, False),    # a bug of ours
])
def test_what_counts_as_a_failure(ok, retryable, status, internal, counts):
    assert breaker.counts_as_failure(ok, retryable, status, internal) is counts


def test_verdicts():
    assert breaker.verdict(None, T0).go
    assert breaker.verdict(TargetState(failures=3, paused_since=None), T0).go
    paused = TargetState(failures=5, paused_since=T0, next_probe_at=at(30), cooldown=30.0, reason="HTTP 500")
    waiting = breaker.verdict(paused, at(10))
    assert not waiting.go and waiting.until == at(30) and "5 consecutive failures: HTTP 500" in waiting.reason
    probe = breaker.verdict(paused, at(30))
    assert probe.go and probe.probe
    paused.probe_until = at(90)
    busy = breaker.verdict(paused, at(31))
    assert not busy.go and busy.until == at(90)  # one probe at a time


def test_breaker_json_follows_the_shared_contract():
    assert target_json(None) == {"state": "active"}
    doc = target_json(TargetState(failures=5, paused_since=T0, next_probe_at=at(30), reason="timeout"))
    assert doc == {"state": "paused", "paused": {"reason": "5 consecutive failures; last: timeout",
                                                 "since": "2026-12-01T03:00:00+00:00",
                                                 "nextProbeAt": "2026-12-01T03:00:30+00:00"}}


NOW = 1_800_000_000.0


@pytest.mark.parametrize("status,headers,seconds", [
    (429, {"Retry-After": "30"}, 30),                                   # Slack, any target
    (429, {}, ratelimits.DEFAULT_HOLD),
    (403, {"retry-after": "60", "x-ratelimit-remaining": "4000"}, 60),  # GitHub secondary limit
    (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 900)}, 900),  # GitHub primary
    (403, {}, None),                                                    # a plain 403: no permission, no hold
    (503, {"Retry-After": "5"}, 5),
    (503, {}, None),
    (201, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 42)}, 42),  # the last allowed one
    (201, {"x-ratelimit-remaining": "17", "x-ratelimit-reset": str(int(NOW) + 42)}, None),
    (200, {}, None),
    (None, {"Retry-After": "5"}, None),
    (429, {"Retry-After": "99999999999"}, ratelimits.MAX_HOLD),
    (429, {"Retry-After": "-3"}, ratelimits.DEFAULT_HOLD),              # not delta-seconds: the default
    (201, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9" * 40}, None),
])
def test_hold_seconds(status, headers, seconds):
    assert ratelimits.hold_seconds(status, headers, now=NOW) == seconds


def test_limit_keys_name_host_and_credentials_without_showing_them():
    key = ratelimits.limit_key("k", "https://API.github.com/repos/a/b/statuses/1", ["ghp_secret"])
    assert key == ratelimits.limit_key("k", "https://api.github.com/other", ["ghp_secret"])
    assert key != ratelimits.limit_key("k", "https://api.github.com/other", ["ghp_other"])
    assert key != ratelimits.limit_key("k", "https://ghe.example.com/api/v3", ["ghp_secret"])
    assert "ghp_secret" not in key and len(key) == 40


def sib(name: str, seconds: float, status: str = "pending", key="k", leased: bool = False) -> Sibling:
    return Sibling(name, at(seconds), status, key, leased)


def test_a_newer_due_or_sent_status_supersedes_and_the_newest_wins():
    me, now = sib("a", 0), at(100)
    choice = supersede.newest_status(me, [sib("b", 1), sib("c", 2, "retrying"), sib("d", 3, key="other")], now)
    assert choice.successor.id == "c" and choice.reason == supersede.SUPERSEDED
    assert supersede.newest_status(me, [sib("b", 1, "succeeded")], now).successor.id == "b"
    assert supersede.newest_status(me, [sib("b", 1, "failed")], now) is supersede.SEND  # a failed one replaced nothing
    assert supersede.newest_status(me, [sib("z", -1)], now) is supersede.SEND  # older ones never supersede


def test_an_older_status_in_flight_makes_the_newer_wait():
    choice = supersede.newest_status(sib("b", 1), [sib("a", 0, leased=True)], at(100))
    assert choice.successor is None and choice.until is None and "being sent" in choice.reason
    assert supersede.newest_status(sib("b", 1), [sib("a", 0, leased=False)], at(100)) is supersede.SEND


def test_a_status_sent_a_moment_ago_spaces_the_next():
    sent = Sibling("a", at(0), "succeeded", "k", sent_at=at(10))
    choice = supersede.newest_status(sib("b", 5), [sent], at(11))
    assert choice.until == at(10 + supersede.STATUS_SPACING) and "every 2 s" in choice.reason
    assert supersede.newest_status(sib("b", 5), [sent], at(13)) is supersede.SEND
    assert supersede.newest_status(sib("b", 5), [Sibling("a", at(0), "succeeded", "other", sent_at=at(10))],
                                   at(11)) is supersede.SEND


def test_debounce_waits_for_the_window_then_only_the_newest_goes():
    first = sib("a", 0)
    waiting = supersede.debounced(first, [], 30, at(1))
    assert waiting.until == at(30) and "debounce of 30 s" in waiting.reason
    assert supersede.debounced(first, [sib("b", 10)], 30, at(31)).successor.id == "b"
    newest = sib("c", 20)
    group = [sib("a", 0, "superseded"), sib("b", 10)]
    assert supersede.debounced(newest, group, 30, at(25)).until == at(30)  # the burst began at 0: no later
    assert supersede.debounced(newest, group, 30, at(30)) is supersede.SEND
    assert supersede.debounced(sib("z", 40), [sib("c", 20, "succeeded")], 30, at(41)).until == at(70)


def test_burst_key_is_consumer_provider_and_branch():
    v = {"consumerName": "C", "providerName": "P", "consumerVersionBranch": "main", "consumerVersionNumber": "1"}
    assert supersede.burst_key(v) == supersede.burst_key({**v, "consumerVersionNumber": "2"})
    assert supersede.burst_key(v) != supersede.burst_key({**v, "consumerVersionBranch": "feat"})
