"""GET /metrics: Prometheus text format; a read token unless RELAY_PUBLIC_METRICS is set."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from relay.ops import metrics
from relay.security.tokens import require
from relay.web.requests import runtime

bp = Blueprint("metrics", __name__)


def _render() -> Response:
    return Response(metrics.render(runtime()), content_type=CONTENT_TYPE_LATEST)


_protected = require("read")(_render)


@bp.get("/metrics")
def scrape():
    return _render() if runtime().settings.public_metrics else _protected()


scrape.relay_permission = "read"  # what the role rules see; RELAY_PUBLIC_METRICS=true lifts it
