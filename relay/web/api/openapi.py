"""GET /openapi.json: the hand-written OpenAPI 3.1 description of the API (relay/openapi.yaml)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)
SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"


@cache
def spec() -> dict:
    return yaml.safe_load(SPEC.read_text())


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec())
