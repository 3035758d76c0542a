"""GET /openapi.json: relay/web/openapi.yaml, with each typed integration's schema read from its declaration."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, jsonify

import integrations
from integrations.base import Field, Integration

bp = Blueprint("openapi", __name__)
SPEC = Path(__file__).resolve().parent.parent / "openapi.yaml"
TEMPLATED = {"$ref": "#/components/schemas/Templated"}


def field_schema(spec: Field) -> dict[str, Any]:
    if spec.kind == "bool":
        schema: dict[str, Any] = {"type": "boolean"}
    elif spec.kind == "int":
        schema = {"type": "integer"}
    elif spec.kind == "map" and spec.template:
        schema = {"type": "object", "additionalProperties": TEMPLATED}
    elif spec.kind == "map":
        schema = {"type": "object"}
    elif spec.kind == "json":
        schema = {"type": ["string", "object", "array"]}
    else:
        schema = dict(TEMPLATED) if spec.template else {"type": "string"}
    notes = [spec.help] if spec.help else []
    if spec.secret:
        notes.append("secret: a ${user.NAME} reference or a literal stored encrypted; shown as **********")
    if spec.default not in (None, {}, ""):
        notes.append(f"default: {spec.default}")
    if notes:
        # A $ref with siblings is fine in OpenAPI 3.1 (JSON Schema 2020-12)
        schema["description"] = "; ".join(notes)
    return schema


def config_schema(integration: Integration) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object", "description": f"{integration.title} (see docs/integrations.md).",
        "properties": {name: field_schema(spec) for name, spec in integration.fields.items()}}
    required = [name for name, spec in integration.fields.items() if spec.required and spec.default is None]
    if required:
        schema["required"] = required
    if integration.sample:
        schema["examples"] = [integration.sample]
    return schema


def with_integrations(document: dict[str, Any]) -> dict[str, Any]:
    """The typed webhooks' schemas (input and output) from the registered integrations' declarations."""
    schemas = document["components"]["schemas"]
    for name, integration in sorted(integrations.REGISTRY.items()):
        if name == "request":  # the Pact Broker's own shape, described by hand as RequestConfig
            continue
        component = f"{name.capitalize()}Config"
        schemas[component] = config_schema(integration)
        schemas["WebhookInput"]["properties"][name] = {"$ref": f"#/components/schemas/{component}"}
        schemas["Webhook"]["properties"][name] = {"type": "object"}
    return document


@cache
def spec() -> dict:
    return with_integrations(yaml.safe_load(SPEC.read_text()))


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec())
