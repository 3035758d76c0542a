"""Verification state of a consumer/provider pair: a pure function of the Pact Broker events received."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import NamedTuple

CONTENT_EVENTS = frozenset({
    "contract_published", "contract_content_changed", "contract_requiring_verification_published",
})
VERIFICATION_EVENTS = frozenset({
    "provider_verification_published", "provider_verification_succeeded", "provider_verification_failed",
})
# Stored as the consumer tag of the row that follows consumer versions without any tag (/latest-untagged/badge).
# Pact Broker tag names are free text, so a real tag could in theory collide; the leading colon makes it unlikely.
UNTAGGED = ":untagged"

_PACT_SHA = re.compile(r"/pact-version/([^/?#]+)")
_VERIFICATION_NUMBER = re.compile(r"/verification-results/(\d+)(?:[/?#]|$)")
MAX_VERIFICATION_NUMBER = 2**63 - 1  # the column is a BIGINT
_SUCCESS = {"githubVerificationStatus": "success", "gitlabVerificationStatus": "success",
            "bitbucketVerificationStatus": "SUCCESSFUL", "azureDevOpsVerificationStatus": "succeeded"}
_FAILURE = {"githubVerificationStatus": "failure", "gitlabVerificationStatus": "failed",
            "bitbucketVerificationStatus": "FAILED", "azureDevOpsVerificationStatus": "failed"}


class PairKey(NamedTuple):
    """One stored row: '' for a tag means any; UNTAGGED follows consumer versions without tags."""

    consumer: str
    provider: str
    consumer_tag: str = ""
    provider_tag: str = ""


@dataclass(frozen=True)
class PairState:
    """What the relay knows about one PairKey; every field maps to one column."""

    consumer: str
    provider: str
    consumer_tag: str = ""
    provider_tag: str = ""
    # The latest pact content: its pact-version sha, permalink and consumer version, and when it arrived.
    pact_sha: str = ""
    pact_url: str = ""
    pact_at: datetime | None = None
    consumer_version: str = ""
    consumer_branch: str = ""
    # The latest verification result.
    verification_success: bool | None = None
    verification_sha: str = ""
    verification_number: int | None = None
    verification_url: str = ""
    verification_at: datetime | None = None
    verified_consumer_version: str = ""
    provider_version: str = ""
    provider_branch: str = ""
    # The newest event seen for this row, whether or not it changed the state above.
    last_event_at: datetime | None = None
    last_event_name: str = ""

    @property
    def key(self) -> PairKey:
        return PairKey(self.consumer, self.provider, self.consumer_tag, self.provider_tag)

    def to_dict(self) -> dict:
        """JSON-ready: datetimes as ISO 8601, plus the derived state."""
        data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}
        data["state"] = status(self)
        return data


def new_state(key: PairKey) -> PairState:
    """The state of a row before any event: 'unknown'."""
    return PairState(*key)


def _split(value: str) -> list[str]:
    # The broker joins lists with ', '; keep order, drop blanks and repeats.
    seen: dict[str, None] = {}
    for item in (value or "").split(","):
        item = item.strip()
        if item:
            seen.setdefault(item, None)
    return list(seen)


def consumer_tags(variables: Mapping[str, str]) -> list[str]:
    """Consumer tags and branch of the event's consumer version, UNTAGGED when it has no tag."""
    tags = _split(variables.get("consumerVersionTags", ""))
    scopes = tags or [UNTAGGED]
    branch = (variables.get("consumerVersionBranch") or "").strip()
    if branch and branch not in scopes:
        scopes.append(branch)
    return scopes


def provider_tags(variables: Mapping[str, str]) -> list[str]:
    """Provider tags and branch of the verifying provider version."""
    tags = _split(variables.get("providerVersionTags", ""))
    branch = (variables.get("providerVersionBranch") or "").strip()
    if branch and branch not in tags:
        tags.append(branch)
    return tags


def keys_for(variables: Mapping[str, str]) -> list[PairKey]:
    """Every row an event updates, in a stable order; none for test events or events without a pair.

    Content events update the rows without a provider tag. Verification events also update one matrix row
    per consumer tag/branch x provider tag/branch; matrix rows keep only the verification, so read them with
    combine(content_row, matrix_row).
    """
    name = variables.get("eventName", "")
    consumer, provider = variables.get("consumerName", ""), variables.get("providerName", "")
    if not consumer or not provider or name not in CONTENT_EVENTS | VERIFICATION_EVENTS:
        return []
    ctags = consumer_tags(variables)
    keys = [PairKey(consumer, provider)] + [PairKey(consumer, provider, c) for c in ctags]
    if name in VERIFICATION_EVENTS:
        keys += [PairKey(consumer, provider, c, p) for c in ctags for p in provider_tags(variables)]
    return keys


def pact_sha(url: str) -> str:
    """The pact-version sha in a pactUrl or verificationResultUrl, '' when absent."""
    match = _PACT_SHA.search(url or "")
    return match.group(1) if match else ""


def verification_number(url: str) -> int | None:
    """The n of a verificationResultUrl ending in verification-results/<n>; None when absent or beyond 64 bits
    (intake refuses such a URL: `verification_number_too_large`)."""
    match = _VERIFICATION_NUMBER.search(url or "")
    if not match or len(match.group(1)) > len(str(MAX_VERIFICATION_NUMBER)):
        return None  # int() refuses more than 4,300 digits; no broker numbers its results past 64 bits
    number = int(match.group(1))
    return number if number <= MAX_VERIFICATION_NUMBER else None


def verification_number_too_large(url: str) -> bool:
    return _VERIFICATION_NUMBER.search(url or "") is not None and verification_number(url) is None


def verification_success(variables: Mapping[str, str]) -> bool | None:
    """Success of a verification event; None when the event does not say."""
    name = variables.get("eventName", "")
    if name == "provider_verification_succeeded":
        return True
    if name == "provider_verification_failed":
        return False
    if any(variables.get(k) == v for k, v in _SUCCESS.items()):
        return True
    if any(variables.get(k) == v for k, v in _FAILURE.items()):
        return False
    return None


def _is_newer_content(state: PairState, sha: str, at: datetime) -> bool:
    if not state.pact_sha or state.pact_at is None:
        return True
    # The sha breaks ties of equal times so that the result does not depend on arrival order.
    return (at, sha) > (state.pact_at, state.pact_sha)


def _is_newer_verification(state: PairState, url: str, sha: str, number: int | None, at: datetime) -> bool:
    if state.verification_success is None or state.verification_at is None:
        return True
    if url and url == state.verification_url:
        return False  # the same result again (e.g. both _published and _succeeded fire for one result)
    if sha and sha == state.verification_sha and number is not None and state.verification_number is not None:
        # Results of one pact version are numbered in order, so a late delivery of an older one loses.
        return number > state.verification_number
    return (at, number or 0, url) > (state.verification_at, state.verification_number or 0, state.verification_url)


def apply(state: PairState, variables: Mapping[str, str], received_at: datetime) -> PairState:
    """The state after one event; the same object when the event changes nothing (older, duplicate, test)."""
    if (variables.get("consumerName"), variables.get("providerName")) != (state.consumer, state.provider):
        raise ValueError("event is for another consumer/provider pair")
    name = variables.get("eventName", "")
    changes: dict = {}
    if state.last_event_at is None or (received_at, name) > (state.last_event_at, state.last_event_name):
        changes.update(last_event_at=received_at, last_event_name=name)
    if name in CONTENT_EVENTS:
        sha = pact_sha(variables.get("pactUrl", ""))
        if sha and _is_newer_content(state, sha, received_at):
            changes.update(
                pact_sha=sha, pact_url=variables.get("pactUrl", ""), pact_at=received_at,
                consumer_version=variables.get("consumerVersionNumber", ""),
                consumer_branch=variables.get("consumerVersionBranch", ""),
            )
    elif name in VERIFICATION_EVENTS:
        success = verification_success(variables)
        url = variables.get("verificationResultUrl", "")
        sha = pact_sha(url) or pact_sha(variables.get("pactUrl", ""))
        number = verification_number(url)
        if success is not None and sha and _is_newer_verification(state, url, sha, number, received_at):
            changes.update(
                verification_success=success, verification_sha=sha, verification_number=number,
                verification_url=url, verification_at=received_at,
                verified_consumer_version=variables.get("consumerVersionNumber", ""),
                provider_version=variables.get("providerVersionNumber", ""),
                provider_branch=variables.get("providerVersionBranch", ""),
            )
    return replace(state, **changes) if changes else state


def combine(content: PairState, verification: PairState) -> PairState:
    """A matrix badge's state: the content of the consumer-tag row judged by the matrix row's verification."""
    fields = ("verification_success", "verification_sha", "verification_number", "verification_url",
              "verification_at", "verified_consumer_version", "provider_version", "provider_branch")
    merged = replace(content, provider_tag=verification.provider_tag,
                     **{f: getattr(verification, f) for f in fields})
    latest = max((s for s in (content, verification) if s.last_event_at), key=lambda s: s.last_event_at, default=None)
    if latest is not None:
        merged = replace(merged, last_event_at=latest.last_event_at, last_event_name=latest.last_event_name)
    return merged


def status(state: PairState | None) -> str:
    """verified, changed, failed or unknown, as the Pact Broker's badge decides it."""
    # Follows PactBroker::Verifications::PseudoBranchStatus: the latest verification decides; a success only
    # counts as 'verified' for the content it verified.
    if state is None or state.verification_success is None:
        return "unknown"
    if not state.verification_success:
        return "failed"
    # Without a known publication (e.g. the relay was installed after it) the verified content is the latest seen.
    if state.pact_sha and state.pact_sha != state.verification_sha:
        return "changed"
    return "verified"
