"""GET /openapi.json: the OpenAPI 3.1 description of the API (relay/web/openapi.yaml), with each typed
integration's config schema generated from the fields it declares."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, jsonify

import integrations
from integrations.base import Integration

bp = Blueprint("openapi", __name__)
SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"
KINDS = {"str": {"type": "string"}, "map": {"type": "object"}, "bool": {"type": "boolean"},
         "int": {"type": "integer"}}


def config_schema(integration: Integration) -> dict[str, Any]:
    """An integration's config as JSON Schema: its declared fields, which are required, which are secret."""
    properties = {}
    for name, field in integration.fields.items():
        schema: dict[str, Any] = dict(KINDS[field.kind])
        notes = [field.help] if field.help else []
        if field.template and field.kind in ("str", "map"):
            notes.append("a template")
        if field.secret:
            schema["writeOnly"] = True  # a ${user.NAME} reference or a literal, encrypted at rest, never returned
            notes.append("secret")
        if notes:
            schema["description"] = "; ".join(notes)
        properties[name] = schema
    required = [name for name, field in integration.fields.items() if field.required]
    return {"type": "object", "description": integration.title, "properties": properties,
            **({"required": required} if required else {})}


@cache
def spec() -> dict:
    doc = yaml.safe_load(SPEC.read_text())
    schemas = doc["components"]["schemas"]
    for name, integration in integrations.REGISTRY.items():
        if name == "request":  # the Pact Broker-compatible request: RequestConfig in the YAML
            continue
        schemas[f"{name.capitalize()}Config"] = config_schema(integration)
        schemas["WebhookInput"]["properties"][name] = {"$ref": f"#/components/schemas/{name.capitalize()}Config"}
        schemas["Webhook"]["properties"][name] = {"type": "object", "description": integration.title}
    return doc


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec())
