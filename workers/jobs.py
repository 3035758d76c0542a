"""The RQ job: hand delivery ids to this worker's dispatcher, or run them one by one where there is none."""

from __future__ import annotations

from relay.delivery.runner import run_delivery
from workers.worker import job_runtime


def deliver(*delivery_ids: str) -> str:
    """RQ entry point; takes ids, never objects, so a job survives any restart."""
    runtime = job_runtime()
    dispatcher = runtime.dispatcher
    if dispatcher is not None and not dispatcher.stopping.is_set():
        taken = dispatcher.submit(list(delivery_ids))
        return f"{taken} of {len(delivery_ids)} handed to the dispatcher"
    return ", ".join(run_delivery(runtime, delivery_id) for delivery_id in delivery_ids)
