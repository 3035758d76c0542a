"""The JSON API, one blueprint per resource."""

from __future__ import annotations

import functools
import logging
from typing import Any

from flask import Response, current_app, request

from relay.errors import PayloadError
from relay.runtime import Runtime

log = logging.getLogger(__name__)


def runtime() -> Runtime:
    return current_app.extensions["relay"]


def db():
    return current_app.extensions["relay.session"]()


def base_url() -> str:
    return request.host_url.rstrip("/")


def json_body() -> Any:
    if not request.is_json:
        raise PayloadError.one("body", "send JSON with Content-Type: application/json", status=415)
    data = request.get_json(silent=True)
    if data is None:
        raise PayloadError.one("body", "is not valid JSON")
    return data


def limit_arg(default: int = 50, maximum: int = 500) -> int:
    raw = request.args.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise PayloadError.one("limit", f"must be a whole number from 1 to {maximum}")
    return int(raw)


def enqueue_now(delivery_ids: list[str], rt: Runtime | None = None) -> None:
    """Queue fresh deliveries after their commit; if Redis is away the sweeper sends them later."""
    from workers.queue import enqueue

    rt = rt or runtime()
    try:
        enqueue(rt.redis, rt.settings.queue_name, [(d, 0) for d in delivery_ids], rt.settings.lease_seconds)
    except Exception as exc:
        log.warning("%d deliveries stored, enqueue failed (%s); the sweeper will send them",
                    len(delivery_ids), type(exc).__name__)


def enqueue_after_response(response: Response, delivery_ids: list[str]) -> Response:
    """Queue the deliveries once the response has gone out: the sender waits for durability, not for Redis.

    Creating the RQ jobs costs about 0.15 ms each, 150 ms for an event that fans out to 1,000 webhooks.
    Should this process die between the response and the enqueue, the sweeper queues them when due."""
    if delivery_ids:
        response.call_on_close(functools.partial(enqueue_now, delivery_ids, runtime()))
    return response
