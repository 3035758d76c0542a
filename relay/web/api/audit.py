"""GET /audit: the audit log in the Pactflow audit API's shape; read-only, admin only, no way to change it."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, jsonify, request

from relay.errors import PayloadError
from relay.security import audit
from relay.security.tokens import require
from relay.web.requests import base_url, db, limit_arg, self_url

bp = Blueprint("audit", __name__)
FILTERS = ("type", "actor", "since", "until")


def _time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))  # a "+" in a query string arrives as a space
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
        raise PayloadError.one(name, "must be an ISO 8601 date or date and time, e.g. 2030-01-31T12:00:00Z")


@bp.get("/audit")
@require("admin")
def index():
    limit = limit_arg(default=100, maximum=1000)
    after = request.args.get("from") or None
    types = [t for t in request.args.get("type", "").split(",") if t] or None
    result = audit.page(db(), limit, after_uuid=after, types=types, actor=request.args.get("actor") or None,
                        since=_time("since"), until=_time("until"))
    if result is None:
        raise PayloadError.one("from", "no audit event has this uuid")
    rows, more = result
    kept = {k: request.args[k] for k in (*FILTERS, "limit") if request.args.get(k)}
    links = {"self": {"href": self_url()}}
    if more:
        links["next"] = {"href": f"{base_url()}/audit?{urlencode({**kept, 'from': rows[-1].uuid})}"}
    return jsonify({"events": [audit.to_json(e) for e in rows], "_links": links})
