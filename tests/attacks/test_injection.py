"""Template injection through event values, end to end through a real worker: no secret, no split header, valid JSON."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import sample_event

SECRET = "sup3r-s3cret-value"
HOSTILE = [
    "${user.apiKey}",
    "x${user.apiKey}y ${pactbroker.providerName}",
    'quote " and \\" and \\u0022 }',
    "line\nbreak",
    "crlf\r\nX-Injected: yes",
    "%0d%0aX-Injected: yes",
    "</script><script>alert(1)</script>",
    "${${user.apiKey}}",
    "\u2028\u2029\t\x7f",
    "服务 Ünïcode ✓",
]


@pytest.fixture
def hook(api, httpserver):
    assert api.post("/secrets", json={"name": "apiKey", "value": SECRET}).status_code == 201
    httpserver.expect_request("/hook").respond_with_data("ok")
    resp = api.post("/webhooks", json={
        "events": [{"name": "contract_published"}],
        "request": {"method": "POST", "url": httpserver.url_for("/hook") + "?c=${pactbroker.consumerName}",
                    "headers": {"Content-Type": "application/json", "X-Consumer": "${pactbroker.consumerName}",
                                "X-Key": "${user.apiKey}"},
                    "body": {"consumer": "${pactbroker.consumerName}", "both": "${pactbroker.consumerName}/x",
                             "list": ["${pactbroker.consumerName}"]}}})
    assert resp.status_code == 201, resp.json
    return resp.json


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_data_never_templates(api, hook, httpserver, drain, value):
    event = {**sample_event("contract_published"), "consumerName": value}
    assert api.post("/events", json=event).status_code == 202
    drain()
    (delivery,) = api.get("/deliveries").json["deliveries"]
    if any(c in value for c in "\r\n"):
        # A header would be split: the attempt is refused before anything leaves, and fails for good.
        assert delivery["status"] == "failed" and not httpserver.log
        assert "line break" in delivery["attempts"][0]["error"]
    else:
        assert delivery["status"] == "succeeded"
        (request, _), = httpserver.log
        body = json.loads(request.data)
        assert body == {"consumer": value, "both": f"{value}/x", "list": [value]}
        assert request.headers["X-Consumer"].encode("latin-1").decode("utf-8") == value  # sent as UTF-8
        assert parse_qs(urlsplit(request.url).query, keep_blank_values=True)["c"] == [value]
        assert SECRET not in request.data.decode() + request.url + request.headers["X-Consumer"]
        assert request.headers["X-Key"] == SECRET  # the template's own reference still works
    stored = json.dumps(delivery)
    assert SECRET not in stored
    assert "********" in stored or delivery["status"] == "failed"


def test_nul_characters_are_refused_at_intake(api, hook):
    event = {**sample_event("contract_published"), "consumerName": "a\x00b"}
    resp = api.post("/events", json=event)
    assert resp.status_code == 400 and "NUL" in resp.json["errors"]["consumerName"][0]
    assert api.get("/deliveries").json["deliveries"] == []
