"""The WSGI entry point for gunicorn's factory form: `gunicorn 'app:create_app()'`; importing it does no I/O."""

from flask import Flask

from relay.app import create_app as build


def create_app() -> Flask:
    """The app with the relay's JSON logging, as `pact-relay web` and `serve` run it."""
    return build(configure_logging=True)
