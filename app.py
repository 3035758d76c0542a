"""The WSGI entry point for gunicorn: `gunicorn app:app`."""

from relay.app import create_app

app = create_app(configure_logging=True)
