"""The RQ job: hand delivery ids to this worker's dispatcher, or run them one by one where there is none."""

from __future__ import annotations

from relay.broker import deploy
from relay.broker.explain import Reads, explain_event
from relay.delivery import details, queue
from relay.delivery.runner import run_delivery
from relay.runtime import Runtime
from workers.worker import job_runtime


def deliver(*delivery_ids: str) -> str:
    """RQ entry point; takes ids, never objects, so a job survives any restart."""
    runtime = job_runtime()
    dispatcher = runtime.dispatcher
    if dispatcher is not None and not dispatcher.stopping.is_set():
        taken = dispatcher.submit(list(delivery_ids))
        return f"{taken} of {len(delivery_ids)} handed to the dispatcher"
    return ", ".join(run_delivery(runtime, delivery_id) for delivery_id in delivery_ids)


def explain(event_id: str) -> str:
    """RQ entry point: read why the event's verification failed; in a worker with a dispatcher, on a thread of its
    own so the job loop goes on at once."""
    runtime = job_runtime()
    if runtime.dispatcher is not None and not runtime.dispatcher.stopping.is_set():
        runtime.cache(Reads).submit(runtime, event_id, then=after_read)
        return "reading"
    try:
        return explain_event(runtime, event_id)
    finally:
        after_read(runtime, event_id)


def after_read(runtime: Runtime, event_id: str) -> None:
    """After why it failed: can I deploy (its own reads, each bounded), then the event's waiting sends may go."""
    try:
        deploy.after_event_id(runtime, event_id)
    finally:
        queue.mark_read(runtime.redis, event_id)
        details.wake(runtime, event_id)
