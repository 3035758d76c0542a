"""Can I deploy: the questions the relay asks the Pact Broker and the answers it keeps in Redis, shared by processes."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from urllib.parse import quote, urlencode

from redis import Redis

YES, NO, UNKNOWN = "yes", "no", "unknown"
KINDS = ("tag", "branch", "version")
KEEP = 7 * 24 * 3600  # seconds an answer is kept without being asked again
PREFIX = "pact-relay:can-i-deploy:"
# The events after which the relay asks again: the answers they may change.
EVENTS = ("contract_published", "contract_content_changed", "contract_requiring_verification_published",
          "provider_verification_published", "provider_verification_succeeded", "provider_verification_failed")


@dataclass(frozen=True)
class Question:
    """Can `pacticipant` at `ref` (the latest version with a tag or on a branch, or a version) go to `to`
    (a tag, or with `environment` an environment)?"""

    kind: str
    pacticipant: str
    ref: str
    to: str
    environment: bool

    def path(self) -> str:
        """The broker's resource that answers it, relative to its base URL."""
        p, r, t = (quote(s, safe="") for s in (self.pacticipant, self.ref, self.to))
        if self.kind == "tag":
            return f"/pacticipants/{p}/latest-version/{r}/can-i-deploy/to/{t}"
        if self.kind == "branch":
            return f"/pacticipants/{p}/branches/{r}/latest-version/can-i-deploy/to-environment/{t}"
        target = {"environment": self.to} if self.environment else {"to": self.to}
        return "/can-i-deploy?" + urlencode({"pacticipant": self.pacticipant, "version": self.ref, **target})

    def key(self) -> str:
        return json.dumps([self.kind, self.pacticipant, self.ref, self.to, self.environment])

    @classmethod
    def from_key(cls, key: str | bytes) -> Question:
        kind, pacticipant, ref, to, environment = json.loads(key)
        return cls(kind, pacticipant, ref, to, environment)


@dataclass(frozen=True)
class Answer:
    """`yes`, `no` or `unknown`; the broker's reason (or why it is not known); when it was read (epoch seconds)."""

    state: str
    reason: str
    at: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def summary_answer(doc: dict) -> Answer:
    """The answer in a can-i-deploy or matrix document of the broker: its `summary.deployable` (true, false or
    null when some verification is missing) and `summary.reason`."""
    summary = doc.get("summary")
    if not isinstance(summary, dict) or summary.get("deployable", "absent") not in (True, False, None):
        return Answer(UNKNOWN, "the broker's answer has no can-i-deploy summary", time.time())
    deployable = summary["deployable"]
    reason = str(summary.get("reason") or "")[:1000]
    return Answer(YES if deployable is True else NO if deployable is False else UNKNOWN, reason, time.time())


def stored(redis: Redis, question: Question) -> Answer | None:
    raw = redis.get(PREFIX + question.key())
    if raw is None:
        return None
    try:
        return Answer(**json.loads(raw))
    except (TypeError, ValueError):
        return None


def store(redis: Redis, question: Question, answer: Answer) -> None:
    """Keep the answer, and remember the question under its pacticipant so the next event about it asks again."""
    pipe = redis.pipeline(transaction=False)
    pipe.set(PREFIX + question.key(), json.dumps(answer.to_dict()), ex=KEEP)
    pipe.sadd(PREFIX + "asked:" + question.pacticipant, question.key())
    pipe.expire(PREFIX + "asked:" + question.pacticipant, KEEP)
    pipe.execute()


def asked(redis: Redis, pacticipant: str) -> list[Question]:
    """The questions asked lately about a pacticipant (badges shown, statuses set)."""
    return [Question.from_key(k) for k in redis.smembers(PREFIX + "asked:" + pacticipant)]


def status_question(github: Mapping, variables: Mapping[str, str]) -> Question | None:
    """The question a GitHub webhook's `can_i_deploy` option asks for the event's version of its pacticipant."""
    option = github.get("can_i_deploy")
    if not isinstance(option, Mapping):
        return None
    side = option.get("pacticipant") or "consumer"
    name, version = variables.get(f"{side}Name", ""), variables.get(f"{side}VersionNumber", "")
    if not name or not version:
        return None
    if option.get("to_environment"):
        return Question("version", name, version, str(option["to_environment"]), True)
    if option.get("to"):
        return Question("version", name, version, str(option["to"]), False)
    return None


def status_variables(question: Question, answer: Answer | None) -> dict | None:
    """What the GitHub integration gets under integrations.base.CAN_I_DEPLOY."""
    if answer is None:
        return None
    to = f"environment {question.to}" if question.environment else f"tag {question.to}"
    return {"state": answer.state, "reason": answer.reason, "to": to}
