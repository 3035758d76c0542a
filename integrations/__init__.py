"""The registry of integration kinds, by the name a webhook uses for them."""

from __future__ import annotations

from integrations.base import Integration
from integrations.bitbucket import Bitbucket
from integrations.github import GitHubStatus
from integrations.gitlab import GitLab
from integrations.http import HttpRequest
from integrations.jenkins import Jenkins
from integrations.slack import Slack
from integrations.teams import Teams
from integrations.travis import Travis

REGISTRY: dict[str, Integration] = {}


def register(integration: Integration) -> None:
    if integration.name in REGISTRY:
        raise ValueError(f"integration {integration.name!r} registered twice")
    REGISTRY[integration.name] = integration


def get(name: str) -> Integration:
    return REGISTRY[name]


def with_capability(capability: str) -> tuple[str, ...]:
    """The kinds declaring `capability` (integrations.base.DEBOUNCE, SUPERSEDE, ONLY_FAILURES), sorted."""
    return tuple(sorted(name for name, integration in REGISTRY.items() if capability in integration.capabilities))


register(HttpRequest())
register(GitHubStatus())
register(Slack())
register(Jenkins())
register(Travis())
register(Teams())
register(GitLab())
register(Bitbucket())
