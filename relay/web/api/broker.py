"""The Pact Broker's view of the relay: the HAL index at / and a clear answer on paths only a broker serves."""

from __future__ import annotations

from flask import Blueprint, Response, json, redirect, request, url_for

from relay.security.tokens import require
from relay.web.requests import base_url, runtime

bp = Blueprint("broker", __name__)
# The broker's own index relations for what only a broker has. Advertised so that the broker's clients follow them
# and print the relay's explanation (421, naming the broker) instead of "Could not find relation" or a crash.
BROKER_RELATIONS = {
    "pb:publish-contracts": "/contracts/publish",
    "pb:publish-pact": "/pacts/provider/{provider}/consumer/{consumer}/version/{consumerApplicationVersion}",
    "pb:latest-pact-versions": "/pacts/latest",
    "pb:latest-provider-pacts": "/pacts/provider/{provider}/latest",
    "pb:latest-provider-pacts-with-tag": "/pacts/provider/{provider}/latest/{tag}",
    "pb:provider-pacts-for-verification": "/pacts/provider/{provider}/for-verification",
    "pb:pacticipants": "/pacticipants",
    "pb:pacticipant": "/pacticipants/{pacticipant}",
    "pb:pacticipant-version": "/pacticipants/{pacticipant}/versions/{version}",
    "pb:latest-version": "/pacticipants/{pacticipant}/latest-version",
    "pb:latest-tagged-version": "/pacticipants/{pacticipant}/latest-version/{tag}",
    "pb:pacticipant-version-tag": "/pacticipants/{pacticipant}/versions/{version}/tags/{tag}",
    "pb:pacticipant-branch-version": "/pacticipants/{pacticipant}/branches/{branch}/versions/{version}",
    "pb:environments": "/environments",
    "pb:environment": "/environments/{uuid}",
    "pb:integrations": "/integrations",
    "pb:can-i-deploy-pacticipant-version-to-tag": "/can-i-deploy?pacticipant={pacticipant}&version={version}&to={tag}",
    "pb:can-i-deploy-pacticipant-version-to-environment":
        "/can-i-deploy?pacticipant={pacticipant}&version={version}&environment={environment}",
}
NOT_HERE = "Not in Pact Relay: a Pact Broker resource (answers 421 with where to go instead)"
HAL = "application/hal+json"
# First-level paths that belong to a Pact Broker (publishing, verifying, the matrix, deployments, ...).
# The badge paths under /pacts, /matrix and /pacticipants are served by relay.web.api.badges; the rest of them
# reach broker_only() from the app's 404 and 405 handler.
BROKER_PATHS = ("pacts", "pacticipants", "matrix", "can-i-deploy", "contracts", "verification-results",
                "environments", "deployed-versions", "released-versions", "integrations", "groups", "dashboard",
                "hal-browser", "relationships", "labels", "doc")


def wants_hal() -> bool:
    """A HAL or JSON client (both `pact-broker` clients); a browser, or a request without Accept, gets the UI."""
    accept = request.accept_mimetypes
    return bool(accept) and accept.best_match(["text/html", HAL, "application/json"]) != "text/html"


@bp.get("/")
def root():
    if not wants_hal():
        return redirect(url_for("ui.dashboard"))
    return _index()


@require("read")
def _index():
    base = base_url()

    def link(path: str, title: str, templated: bool = False) -> dict:
        return {"href": base + path, "title": title, **({"templated": True} if templated else {})}

    doc = {
        "name": "Pact Relay",
        "_links": {
            "self": link("/", "Index"),
            # The broker's relation names for what the relay has, so the broker clients find them.
            "pb:webhooks": link("/webhooks", "Webhooks"),
            "pb:webhook": link("/webhooks/{uuid}", "Webhook", templated=True),
            "pb:pacticipant-webhooks": link("/webhooks/provider/{provider}/consumer/{consumer}",
                                            "Webhooks of a consumer and provider pair", templated=True),
            # The relay's own.
            "pr:status": link("/status", "Every pair's verification status and badge links"),
            "pr:events": link("/events", "POST Pact Broker webhook events here (intake token)"),
            "pr:deliveries": link("/deliveries", "Deliveries, newest first"),
            "pr:delivery": link("/deliveries/{id}", "Delivery", templated=True),
            "pr:webhook-presets": link("/webhooks/presets", "Ready-made request webhooks"),
            "pr:secrets": link("/secrets", "Secrets (write-only values)"),
            "pr:tokens": link("/tokens", "API tokens"),
            "pr:audit": link("/audit", "Audit log"),
            "pr:badge": link("/pacts/provider/{provider}/consumer/{consumer}/latest/badge.svg",
                             "Verification badge of the latest pact", templated=True),
            "pr:tagged-badge": link("/pacts/provider/{provider}/consumer/{consumer}/latest/{tag}/badge.svg",
                                    "Verification badge of the latest pact with a tag or branch", templated=True),
            "pr:openapi": link("/openapi.json", "OpenAPI description of this API"),
            "pr:ui": link("/ui/", "Web UI"),
            **{rel: link(path, NOT_HERE, templated="{" in path) for rel, path in BROKER_RELATIONS.items()},
        },
    }
    return Response(json.dumps(doc), mimetype=HAL)


def is_broker_path(path: str) -> bool:
    return path.lstrip("/").split("/", 1)[0] in BROKER_PATHS


def broker_only(status: int = 421) -> Response:
    """A Pact Broker resource asked of the relay: say so in the broker's error shape (never HTML or a bare 404)."""
    broker = runtime().settings.broker_url
    message = (f"This is Pact Relay, not a Pact Broker: {request.method} {request.path[:200]} is a Pact Broker "
               "resource. The relay serves webhooks (/webhooks), events (/events) and badges; ")
    message += (f"publish, verify and ask can-i-deploy at the Pact Broker, {broker}" if broker else
                "publish, verify and ask can-i-deploy at your Pact Broker (set RELAY_BROKER_URL to name it here)")
    doc = {"error": {"message": message, "reference": "pact-relay"}}
    if broker:
        doc["_links"] = {"pb:broker": {"href": broker, "title": "The Pact Broker"}}
    # 421 Misdirected Request (RFC 9110 15.5.20): this server will not answer for that resource. Not a 404: the
    # Rust pact-broker client prints the body of any 4xx but a 404, and neither client retries a 4xx. A method
    # other than GET on a badge path stays a 405 (with Allow), explained the same way.
    response = Response(json.dumps(doc), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"
    return response
