"""Waiting without spending an attempt: a delivery that may not go yet is put back, due at a later time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from relay.delivery import queue
from relay.models import Delivery
from relay.runtime import Runtime


def wait_until(session: Session, delivery_id: str, owner: str, until: datetime, reason: str,
               now: datetime) -> bool:
    """Release the lease and make the delivery due at `until`, its attempts untouched; the caller commits and
    then calls `schedule`. False when the lease was lost meanwhile."""
    return bool(session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
        .values(next_attempt_at=until, lease_until=None, lease_owner=None, reason=reason[:1000], updated_at=now)
    ).rowcount)


def schedule(runtime: Runtime, delivery_id: str, attempts_made: int, until: datetime, now: datetime) -> None:
    """Queue the job that takes the delivery up again at `until`; the sweeper covers a failure here."""
    delay = max(0.0, (until - now).total_seconds())
    # Its own job id: the job running now still holds the attempt's id until it returns.
    job_id = f"{queue.job_id(delivery_id, attempts_made)}_w{int(until.timestamp() * 1000)}"
    queue.queue(runtime.redis, runtime.settings.queue_name).enqueue_in(
        timedelta(seconds=delay), queue.JOB, delivery_id, job_id=job_id,
        job_timeout=int(runtime.settings.lease_seconds), result_ttl=0, failure_ttl=3600)
