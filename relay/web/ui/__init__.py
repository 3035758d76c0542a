"""The web UI: a server-rendered blueprint under /ui with its own templates, stylesheet and a little JS."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from relay.errors import NotFound
from relay.models import utcnow
from relay.security.auditing import record
from relay.web.ui import access
from relay.web.ui.blueprint import bp
from relay.web.ui.views import (  # noqa: F401 (adds routes)
    about,
    auth,
    dashboard,
    deliveries,
    saml,
    secrets,
    settings,
    sso,
    webhooks,
)


def init_app(app: Flask) -> None:
    # Globals rather than a context processor, so that imported macros see them too.
    app.jinja_env.globals.update(viewer=access.viewer, csrf_token=access.csrf_token, ago=ago)
    app.register_blueprint(bp)


@bp.before_request
def _csrf():
    access.check_csrf()


@bp.after_request
def _headers(response):
    if response.status_code in (401, 403) and response.is_json:
        response = _denied_page(response)
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "ui.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


@bp.app_template_filter("pretty_json")
def pretty_json(value) -> str:
    """JSON for a <pre>, as text (autoescaped like any other): tojson's \\u003c escapes would show literally."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def ago(value: datetime | None) -> str:
    if value is None:
        return "never"

    seconds = int((utcnow() - value).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


@bp.errorhandler(NotFound)
def _not_found(exc):
    return render_template("error.html", code=404, message=str(exc)), 404


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    messages = {403: "Your role may not do this.", 404: "There is nothing here."}
    return render_template("error.html", code=exc.code, message=messages.get(exc.code, exc.description)), exc.code


def _denied_page(response):
    """The security decorator answers 401/403 in JSON; pages get HTML, with the same audit entry."""
    reason = str((response.get_json(silent=True) or {}).get("error", ""))
    session = current_app.extensions["relay.session"]()
    session.rollback()
    record(session, "auth.denied", status=response.status_code, reason=reason[:300], endpoint=request.endpoint)
    session.commit()
    page = current_app.make_response((render_template("error.html", code=response.status_code, message=reason,
                                                      sign_in=response.status_code == 401),
                                      response.status_code))
    return page
