"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from relay.broker.client import Reachability
from relay.broker.explain import client
from relay.web.requests import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    rt = runtime()
    checks = {}
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        rt.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    doc = {"status": "ready" if ready else "not ready", "checks": checks}
    broker = client(rt)
    if broker is not None:
        # Reported, never a reason to be unready: without the broker only the failure details are missing.
        # Public like the rest of the probe, so the broker's address is not shown, only whether it answers.
        doc["broker"] = rt.cache(Reachability).check(broker)
    return jsonify(doc), 200 if ready else 503
