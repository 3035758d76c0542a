"""Can I deploy, asked of the broker: after each contract or verification event, and for a badge at most the broker
timeout (the last answer, else `unknown`, when it takes longer)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from redis.exceptions import RedisError
from sqlalchemy import select

from relay.broker.client import BrokerClient, BrokerError
from relay.broker.explain import client
from relay.models import Delivery, Event, Webhook
from relay.pairs import deploy
from relay.pairs.deploy import UNKNOWN, Answer, Question
from relay.runtime import Runtime

log = logging.getLogger(__name__)
FRESH = 60.0  # seconds a kept answer serves a badge before it is asked again (events ask at once)

def ask(broker: BrokerClient, question: Question) -> Answer:
    """The broker's answer; any failure of the broker is an `unknown` answer saying why, never an error."""
    try:
        doc = broker.get_json(broker.base_url + question.path())
    except BrokerError as exc:
        return Answer(UNKNOWN, f"can-i-deploy unavailable: {exc}", 0.0)
    return deploy.summary_answer(doc)


def _keep(runtime: Runtime, question: Question, answer: Answer) -> None:
    if not answer.at:
        return  # the broker did not answer: keep the last answer it gave
    try:
        deploy.store(runtime.redis, question, answer)
    except RedisError as exc:
        log.warning("can-i-deploy answer not kept (%s)", type(exc).__name__)


class Asks:
    """This runtime's questions in flight, one read each however many badges wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="can-i-deploy")
        self._flying: dict[str, Future] = {}

    def start(self, runtime: Runtime, broker: BrokerClient, question: Question) -> Future:
        key = question.key()
        with self._lock:
            future = self._flying.get(key)
            if future is None:
                future = self._flying[key] = self._pool.submit(self._ask, runtime, broker, question)
            return future

    def _ask(self, runtime: Runtime, broker: BrokerClient, question: Question) -> Answer:
        try:
            answer = ask(broker, question)
            _keep(runtime, question, answer)
            return answer
        finally:
            with self._lock:
                self._flying.pop(question.key(), None)


def answer(runtime: Runtime, question: Question) -> Answer:
    """For a badge: the kept answer at once (asking again behind it), else the broker's within its timeout, else
    `unknown` with the reason."""
    broker = client(runtime)
    if broker is None:
        return Answer(UNKNOWN, "no Pact Broker connection (RELAY_BROKER_URL)")
    try:
        kept = deploy.stored(runtime.redis, question)
    except RedisError:
        kept = None
    if kept is not None:
        if time.time() - kept.at > FRESH:
            runtime.cache(Asks).start(runtime, broker, question)
        return kept
    future = runtime.cache(Asks).start(runtime, broker, question)
    try:
        return future.result(timeout=runtime.settings.broker_timeout)
    except FutureTimeout:
        return Answer(UNKNOWN, f"the broker did not answer within {runtime.settings.broker_timeout:g} s")


def after_event(runtime: Runtime, variables: Mapping[str, str], webhook_configs: list[Mapping]) -> int:
    """Ask again what the event may have changed: the questions lately asked about its consumer and provider, and
    those of its GitHub statuses; returns how many were asked."""
    broker = client(runtime)
    if broker is None or variables.get("eventName") not in deploy.EVENTS:
        return 0
    wanted = {q.key(): q for q in filter(None, (deploy.status_question(c, variables) for c in webhook_configs))}
    try:
        for name in {variables.get("consumerName", ""), variables.get("providerName", "")} - {""}:
            wanted.update((q.key(), q) for q in deploy.asked(runtime.redis, name))
    except RedisError:
        pass
    for question in wanted.values():
        _keep(runtime, question, ask(broker, question))
    return len(wanted)


def after_event_id(runtime: Runtime, event_id: str) -> int:
    """after_event for a stored event, with the configs of the GitHub webhooks it is delivered to."""
    with runtime.sessions() as session:
        event = session.get(Event, event_id)
        if event is None:
            return 0
        variables = dict(event.variables)
        configs = list(session.scalars(select(Webhook.config).join(Delivery, Delivery.webhook_uuid == Webhook.uuid)
                                       .where(Delivery.event_id == event_id, Webhook.kind == "github")))
    return after_event(runtime, variables, configs)
