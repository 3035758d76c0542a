"""Fixtures for the worker tests: the e2e ones (a real relay process tree, a recording sink, a fresh database)."""

from tests.e2e.conftest import fresh_pg_url, relay_factory, sink  # noqa: F401 -- shared with e2e
