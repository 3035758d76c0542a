"""Issue 23 #12: odd query parameters and unstorable text are a 400 on every route, never a 500."""

import pytest
from sqlalchemy import select

from relay.models import Webhook


@pytest.fixture
def hook(api) -> str:
    made = api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                       "request": {"method": "POST", "url": "https://ci.example.com/a"}})
    assert made.status_code == 201, made.json
    return made.json["uuid"]


@pytest.mark.parametrize("query", ["limit=%C2%B2", "limit=%D9%A3", "limit=%EF%BC%91"])  # ², Arabic-Indic 3, fullwidth 1
@pytest.mark.parametrize("path", ["/deliveries", "/status", "/audit", "/webhooks/{hook}/deliveries"])
def test_a_non_ascii_number_is_a_400(api, hook, path, query):
    resp = api.get(path.format(hook=hook) + "?" + query)
    assert resp.status_code == 400, resp.json
    assert "limit" in resp.json["errors"]


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
@pytest.mark.parametrize("name", ["since", "until"])
def test_an_audit_time_beyond_what_utc_can_hold_is_a_400(api, name, value):
    resp = api.get("/audit", query_string={name: value})
    assert resp.status_code == 400, resp.json
    assert name in resp.json["errors"]


@pytest.mark.parametrize("text", ["\ud800", "a\u0000b"])
@pytest.mark.parametrize("field", ["description", "consumer", "provider", "request.body"])
def test_unstorable_text_in_a_webhook_is_a_400(api, runtime, field, text):
    doc = {"events": [{"name": "contract_published"}], "request": {"method": "POST", "url": "https://ci.example.com/a"}}
    if field == "description":
        doc["description"] = text
    elif field == "request.body":
        doc["request"]["body"] = {"key": text}
    else:
        doc[field] = {"name": text}
    resp = api.post("/webhooks", json=doc)
    assert resp.status_code == 400, resp.json
    # NUL in any JSON body was already refused as a whole ("body"); a lone surrogate is named by its field.
    assert any(k.startswith(field) or (k == "body" and "\x00" in text) for k in resp.json["errors"]), resp.json
    with runtime.sessions() as session:
        assert session.scalars(select(Webhook)).all() == []
