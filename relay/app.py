"""The Flask application factory: wires settings, database sessions, blueprints and error pages."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from relay.config import Settings
from relay.errors import NotFound, PayloadError
from relay.ops import logredact, logs
from relay.runtime import Runtime
from relay.security import auditing, sessions
from relay.security.ratelimit import Limiter
from relay.web import ui
from relay.web.api import (
    audit,
    badges,
    deliveries,
    events,
    health,
    metrics,
    openapi,
    secrets,
    status,
    tokens,
    webhooks,
)
from relay.web.api import sessions as login

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None,
               configure_logging: bool = False) -> Flask:
    runtime = runtime or Runtime(settings or Settings.from_env())
    if configure_logging:  # the gunicorn entry point; tests keep pytest's log capture
        logs.configure(runtime.settings)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=runtime.settings.secret_key, MAX_CONTENT_LENGTH=runtime.settings.max_body_bytes,
                      JSON_SORT_KEYS=False)
    app.json.sort_keys = False
    if hops := runtime.settings.trusted_proxies:
        # The client's address (audit log, sign-in throttling) and scheme as the proxies saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.extensions["relay"] = runtime
    app.extensions["relay.session"] = lambda: _session(runtime)
    app.extensions["relay.limiter"] = Limiter(lambda: runtime.redis, runtime.settings.rate_limit,
                                              runtime.settings.rate_window)
    app.extensions["relay.auth_failures"] = Limiter(lambda: runtime.redis, runtime.settings.auth_failure_limit,
                                                    runtime.settings.rate_window)
    app.teardown_appcontext(_close_session)
    _error_handlers(app)

    logredact.install(runtime.known_secrets)
    sessions.init_app(app)
    auditing.init_app(app)
    for module in (health, metrics, openapi, events, webhooks, deliveries, secrets, badges, status, tokens, audit,
                   login):
        app.register_blueprint(module.bp)

    ui.init_app(app)
    return app


def _session(runtime: Runtime):
    if "db" not in g:
        g.db = runtime.sessions()
    return g.db


def _close_session(_exc) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(PayloadError)
    def payload_error(exc: PayloadError):
        return jsonify({"errors": exc.errors}), exc.status

    @app.errorhandler(NotFound)
    def not_found(exc: NotFound):
        return jsonify({"error": str(exc)}), 404

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError):
        log.error("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        response = jsonify({"error": "database unavailable; nothing was stored, try again"})
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(ClientDisconnected)
    @app.errorhandler(TimeoutError)
    def slow_client(exc: Exception):
        # The web server's read deadline (relay.ops.webserver) cut a client that sent its body too slowly.
        response = jsonify({"error": "the request body did not arrive in time, or not all of it"})
        response.status_code = 408
        response.headers["Connection"] = "close"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {413: f"request body larger than {app.config['MAX_CONTENT_LENGTH'] // 1024} KiB"}
        response = jsonify({"error": messages.get(exc.code, exc.description)})
        response.status_code = exc.code or 500
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("unhandled error")
        return jsonify({"error": "internal error; see the relay's log"}), 500
