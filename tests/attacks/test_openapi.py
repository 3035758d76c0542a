"""The OpenAPI description is served, covers every route, and schemathesis finds no 500s and no response off it."""

import re

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from relay.web.api.openapi import spec

schema = schemathesis.pytest.from_fixture("api_schema")
# Endpoints that are not JSON API operations: the web UI's pages and files.
NOT_API = ("static", "home", "ui.")


@pytest.fixture
def database_url(tmp_path, sqlite_template):
    """SQLite only: the API's behaviour does not depend on the backend, and this keeps the run to seconds."""
    import shutil

    path = tmp_path / "relay.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(tmp_path, database_url, redis_url):
    """Schemathesis sends hundreds of requests with bad credentials from one address: the throttle that
    turns those into 429s after a while is tested in test_limits.py, not here."""
    from tests.conftest import make_settings

    return make_settings(tmp_path, database_url, redis_url, auth_failure_limit=0)


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_openapi_is_served(client):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.json["openapi"].startswith("3.")


def test_every_route_is_described(app):
    described = {(re.sub(r"\{[^}]+\}", "{}", path), method.upper())
                 for path, item in spec()["paths"].items() for method in item if method != "parameters"}
    routes = {(re.sub(r"<[^>]+>", "{}", rule.rule), method) for rule in app.url_map.iter_rules()
              if not rule.endpoint.startswith(NOT_API) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes - described == set(), "routes missing from relay/openapi.yaml"
    assert described - routes == set(), "relay/openapi.yaml describes routes that do not exist"


@schema.parametrize()
@hypothesis.settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case, tokens):
    # Left out: whether a schema-valid webhook is accepted depends on more than a schema can say (stored
    # secrets, template names, allowed schemes), and unknown query parameters are ignored on purpose, as
    # the Pact Broker does. Every response must still be documented and match its schema, and none a 500.
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens['admin']}"},
                           excluded_checks=[positive_data_acceptance, negative_data_rejection])


def test_presets_is_not_a_webhook_uuid(api):
    assert api.put("/webhooks/presets", json={}).status_code == 405
    assert "PUT" not in api.options("/webhooks/presets").headers["Allow"]
    assert api.get("/webhooks/presets-but-longer-than-16").status_code == 404
