"""Why a verification failed, read from the broker after the event is stored, off every delivery's path."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from relay.broker.client import BrokerClient, BrokerError, PactCache
from relay.broker.results import UnknownShape, failing_interactions
from relay.models import Event
from relay.pairs import failures
from relay.pairs.failures import FOUND, UNAVAILABLE, Failure
from relay.runtime import Runtime

log = logging.getLogger(__name__)
FAILED = "provider_verification_failed"


class Clients:
    """This runtime's one BrokerClient (its connections are reused across reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: BrokerClient | None = None

    def get(self, runtime: Runtime) -> BrokerClient | None:
        if not runtime.settings.broker_url:
            return None
        with self._lock:
            if self._client is None:
                self._client = BrokerClient(runtime.settings)
            return self._client


def client(runtime: Runtime) -> BrokerClient | None:
    """The runtime's broker connection, None without RELAY_BROKER_URL."""
    return runtime.cache(Clients).get(runtime)


def wanted(variables: Mapping[str, str]) -> bool:
    """Whether an event's verification result is worth reading: a failed verification with a result URL."""
    return variables.get("eventName") == FAILED and bool(variables.get("verificationResultUrl"))


def read_failure(broker: BrokerClient, pacts: PactCache, variables: Mapping[str, str]) -> Failure:
    """The failing interactions of the event's verification result, or why they cannot be known. Never raises
    for anything the broker answers."""
    url = variables.get("verificationResultUrl", "")
    try:
        result = broker.get_json(url)
    except BrokerError as exc:
        return Failure(url, UNAVAILABLE, f"details unavailable: {exc}")
    pact_url, pact, note = variables.get("pactUrl", ""), None, ""
    if pact_url:
        pact = pacts.get(pact_url)
        if pact is None:
            try:
                pact = broker.get_json(pact_url)
                pacts.put(pact_url, pact)
            except BrokerError as exc:
                note = f"the pact was not read ({exc}): requests, expected responses and some provider states unknown"
    try:
        details = failing_interactions(result, pact)
    except UnknownShape as exc:
        return Failure(url, UNAVAILABLE, f"details unavailable: {exc}")
    return Failure(url, FOUND, note, details)


def explain_event(runtime: Runtime, event_id: str) -> str:
    """Read and keep the details of a stored failed-verification event (once per result URL); one line says
    what came of it."""
    broker = client(runtime)
    if broker is None:
        return "no broker connection (RELAY_BROKER_URL unset)"
    with runtime.sessions() as session:
        event = session.get(Event, event_id)
        variables = dict(event.variables) if event is not None else {}
        if not wanted(variables):
            return "nothing to read"
        known = failures.one(session, variables["verificationResultUrl"])
        if known is not None and known.status == FOUND:
            return "already read"
    failure = read_failure(broker, runtime.cache(PactCache), variables)
    with runtime.sessions() as session:
        failures.save_once(session, failure)
    ids = {"event_id": event_id, "consumer": variables.get("consumerName"), "provider": variables.get("providerName")}
    if failure.status == FOUND:
        line = f"{len(failure.interactions)} failing interactions, {failure.mismatch_count} mismatches"
        log.info("event %s: verification result read: %s", event_id, line, extra=ids)
    else:
        line = failure.reason
        log.warning("event %s: %s", event_id, line, extra=ids)
    return line


class Reads:
    """A worker's reads of the broker, on threads of their own: a slow broker never holds up the RQ job loop
    that carries retries and swept deliveries."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="broker-read")

    def submit(self, runtime: Runtime, event_id: str, then: Callable[[Runtime, str], object] | None = None) -> None:
        """Read on a thread of the pool; `then(runtime, event_id)` afterwards, whatever came of the read."""
        self._pool.submit(_logged, runtime, event_id, then)


def _logged(runtime: Runtime, event_id: str, then: Callable[[Runtime, str], object] | None) -> None:
    try:
        explain_event(runtime, event_id)
    except Exception:
        log.exception("event %s: reading its verification result failed", event_id)
    if then is not None:
        try:
            then(runtime, event_id)
        except Exception:
            log.exception("event %s: after reading its verification result", event_id)
