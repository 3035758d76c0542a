"""Request helpers shared by the API and the UI: the runtime, the database session, bodies, paging."""

from __future__ import annotations

import functools
from typing import Any

from flask import Response, current_app, request
from werkzeug.routing import BaseConverter
from werkzeug.wsgi import LimitedStream

from relay import jsonlimits
from relay.delivery import queue
from relay.errors import PayloadError
from relay.runtime import Runtime


class RestOfPath(BaseConverter):
    """The rest of the path, even empty, with newlines or '//' (the view reads the names from raw_path())."""

    regex = r"[\s\S]*"
    part_isolating = False


def runtime() -> Runtime:
    return current_app.extensions["relay"]


def db():
    return current_app.extensions["relay.session"]()


def base_url() -> str:
    """The relay's own base URL for links: RELAY_PUBLIC_URL when set; else the Host header, which a client picks."""
    settings = runtime().settings
    return settings.public_url if settings.public_url_set else request.host_url.rstrip("/")


def self_url(query: bool = True) -> str:
    """This request's URL for a `self` link: the path exactly as sent, so `%2F..%2F` is never decoded into it."""
    path, _, rest = raw_path().partition("?")
    if runtime().settings.public_url_set:
        path = path.removeprefix(request.script_root)  # RELAY_PUBLIC_URL names any prefix itself
    return base_url() + path + (f"?{rest}" if query and rest else "")


def raw_path() -> str:
    """The path as sent, still percent-encoded: WSGI servers decode %2F in PATH_INFO, which would split a name."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return raw if raw else request.script_root + request.path


def body_bytes() -> bytes:
    """The whole body. Werkzeug cuts a chunked body at the size limit without a word: make that a 413."""
    data = request.get_data()
    stream = request.stream
    if request.content_length is None and isinstance(stream, LimitedStream) and stream.is_exhausted:
        stream.read(1)  # raises RequestEntityTooLarge when more was sent
    return data


def json_body() -> Any:
    if not request.is_json:
        raise PayloadError.one("body", "send JSON with Content-Type: application/json", status=415)
    try:
        data = jsonlimits.loads(body_bytes())
    except (jsonlimits.TooDeep, jsonlimits.DuplicateKey) as exc:
        raise PayloadError.one("body", str(exc)) from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        data = None
    if data is None:
        raise PayloadError.one("body", "is not valid JSON")
    problem = nul_problem(data)
    if problem:
        raise PayloadError.one("body", problem)
    return data


def nul_problem(value: Any) -> str | None:
    """A NUL character anywhere in the document (PostgreSQL cannot store one); jsonlimits bounds the depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return "must not contain NUL characters"
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def limit_arg(default: int = 50, maximum: int = 500) -> int:
    raw = request.args.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:  # int('²') raises
        raise PayloadError.one("limit", f"must be a whole number from 1 to {maximum}")
    return int(raw)


def enqueue_after_response(response: Response, delivery_ids: list[str]) -> Response:
    """Queue the deliveries once the response has gone out: the sender waits for durability, not for Redis.

    Creating the RQ jobs costs about 0.15 ms each, 150 ms for an event that fans out to 1,000 webhooks.
    Should this process die between the response and the enqueue, the sweeper queues them when due."""
    if delivery_ids:
        response.call_on_close(functools.partial(queue.enqueue_fresh, runtime(), delivery_ids))
    return response
