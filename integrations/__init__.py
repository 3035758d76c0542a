"""The registry of integration kinds, by the name a webhook uses for them."""

from __future__ import annotations

from integrations.base import Integration
from integrations.http import HttpRequest

REGISTRY: dict[str, Integration] = {}


def register(integration: Integration) -> None:
    if integration.name in REGISTRY:
        raise ValueError(f"integration {integration.name!r} registered twice")
    REGISTRY[integration.name] = integration


def get(name: str) -> Integration:
    return REGISTRY[name]


register(HttpRequest())
