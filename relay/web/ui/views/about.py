"""About: the version, and the one Pact Broker webhook that sends every event here, ready to copy."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version

from flask import render_template

from relay.broker.webhook import broker_webhook_json
from relay.security.tokens import create_token
from relay.web.requests import db, runtime
from relay.web.ui import access
from relay.web.ui.blueprint import bp

TOKEN_PLACEHOLDER = "<an intake token>"


def relay_version() -> str:
    try:
        return version("pact-relay")
    except PackageNotFoundError:
        return "unknown"


def _page(token: str | None = None, status: int = 200):
    doc = broker_webhook_json(runtime().settings.public_url, token or TOKEN_PLACEHOLDER)
    return render_template("about.html", version=relay_version(), webhook_json=json.dumps(doc, indent=2),
                           token_shown=token is not None), status


@bp.get("/about")
@access.login_required("read")
def about():
    return _page()


@bp.post("/about/intake-token")
@access.login_required("admin")
def about_intake_token():
    session = db()
    token, value = create_token(session, "pact-broker", "intake")
    session.flush()
    access.audit("token.created", id=token.id, name=token.name, role=token.role, expiresAt=None)
    session.commit()
    return _page(value, 201)
