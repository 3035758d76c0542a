"""/webhooks: Pact Broker JSON accepted unchanged, validation per field, secrets never echoed, execute."""

import json

import pytest
from sqlalchemy import select

from relay.models import Webhook
from tests.conftest import FIXTURES

BROKER = FIXTURES / "pactbroker" / "broker-api"


def broker_exchange(name):
    return json.loads((BROKER / f"{name}.json").read_text())


def hook(url="https://example.org/hook", **request):
    return {"description": "d", "events": [{"name": "contract_published"}],
            "request": {"method": "POST", "url": url, **request}}


def test_broker_webhook_json_is_accepted_unchanged(api, runtime):
    exchange = broker_exchange("docs_webhooks_webhooks_post")
    resp = api.post("/webhooks", json=exchange["request"]["body"])
    assert resp.status_code == 201, resp.json
    expected = exchange["response"]["body"]
    body = resp.json
    for key in ("description", "enabled", "events"):
        assert body[key] == expected[key]
    assert body["request"]["password"] == "**********" == expected["request"]["password"]
    assert body["request"]["username"] == "username" and body["request"]["body"] == expected["request"]["body"]
    assert resp.headers["Location"].endswith(f"/webhooks/{body['uuid']}")
    assert set(expected["_links"]) <= set(body["_links"])
    with runtime.sessions() as session:
        stored = session.get(Webhook, body["uuid"])
    assert "password" not in json.dumps(stored.config).replace('"password"', "")


def test_broker_put_with_client_uuid_upserts(api):
    exchange = broker_exchange("docs_webhooks_webhook_put")
    uuid = exchange["request"]["path"].rsplit("/", 1)[1]
    first = api.put(f"/webhooks/{uuid}", json=exchange["request"]["body"])
    again = api.put(f"/webhooks/{uuid}", json={**exchange["request"]["body"], "description": "changed"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert api.get(f"/webhooks/{uuid}").json["description"] == "changed"


def test_consumer_and_provider_filters_round_trip(api):
    doc = {**hook(), "consumer": {"name": "Foo"}, "provider": {"label": "team-a"}}
    body = api.post("/webhooks", json=doc).json
    assert body["consumer"] == {"name": "Foo"} and body["provider"] == {"label": "team-a"}


def test_default_event_is_contract_content_changed(api):
    doc = hook()
    del doc["events"]
    assert api.post("/webhooks", json=doc).json["events"] == [{"name": "contract_content_changed"}]


@pytest.mark.parametrize("doc,field,message", [
    ({**hook(), "events": [{"name": "nope"}]}, "events[0].name", "must be one of"),
    ({**hook(), "events": []}, "events", "non-empty list"),
    ({**hook(), "events": "contract_published"}, "events", "non-empty list"),
    (hook(method="TRACE"), "request.method", "must be one of"),
    (hook(url="ftp://example.org/x"), "request.url", "absolute http(s) URL"),
    (hook(url="/relative"), "request.url", "absolute http(s) URL"),
    (hook(url="https://${pactbroker.consumerName}.example.org/"), "request.url", "may not contain a template"),
    (hook(url="https://example.org/${pactbroker.nope}"), "request.url", "unknown variable ${pactbroker.nope}"),
    (hook(headers={"Authorization": "Bearer ${user.missing}"}), "request.headers", "secret ${user.missing}"),
    (hook(headers={"X": 1}), "request.headers", "object of string values"),
    (hook(body={"x": "${pactbroker.consumerName2}"}), "request.body", "unknown variable"),
    (hook(password="p"), "request.username", "is required when a password is given"),
    (hook(url="https://bob:hunter2@ci.example.org/x"), "request.url", "must not carry credentials"),
    (hook(url="https://${user.Token}@ci.example.org/x"), "request.url", "must not carry credentials"),
    (hook(headers={"X-A\nInjected": "v"}), "request.headers", "is not a header name"),
    (hook(headers={"Bad Name": "v"}), "request.headers", "is not a header name"),
    (hook(headers={"": "v"}), "request.headers", "is not a header name"),
    (hook(headers={"X-A": "v\r\nInjected: 1"}), "request.headers", "line break"),
    (hook(headers={"Authorization": "Bearer x\nInjected: 1"}), "request.headers", "line break"),
    (hook(extra=1), "request.extra", "unknown field"),
    ({"description": "d", "events": [{"name": "contract_published"}]}, "request", "a webhook needs one of"),
    ({**hook(), "consumer": {"name": "a", "label": "b"}}, "consumer", 'must be {"name"'),
    ({**hook(), "consumer": "Foo"}, "consumer", 'must be {"name"'),
    ({**hook(), "enabled": "yes"}, "enabled", "true or false"),
    ({**hook(), "description": 5}, "description", "must be a string"),
    ({**hook(), "bogus": 1}, "bogus", "unknown field"),
    ({**hook(), "timeout": {"read": 0}}, "timeout.read", "between 0 and 120"),
    ([], "body", "must be a JSON object"),
])
def test_invalid_webhooks_are_400_per_field_and_not_stored(api, runtime, doc, field, message):
    resp = api.post("/webhooks", json=doc)
    assert resp.status_code == 400, resp.json
    assert any(message in m for m in resp.json["errors"][field]), resp.json
    with runtime.sessions() as session:
        assert session.scalars(select(Webhook)).all() == []


def test_put_with_invalid_uuid_is_400(api):
    resp = api.put("/webhooks/short", json=hook())
    assert resp.status_code == 400 and "uuid" in resp.json["errors"]
    assert api.put("/webhooks/has%20space%20in%20it!!", json=hook()).status_code == 400


def test_a_trailing_newline_never_passes_a_pattern(api, runtime):
    """Issue 23 #11: `^...$` with re.match accepts a trailing newline; every pattern must match the whole value."""
    put = api.put("/webhooks/AAAAAAAAAAAAAAAAAAAA%0A", json=hook())
    assert put.status_code == 400 and "uuid" in put.json["errors"], put.json
    team = api.post("/webhooks", json={**hook(), "teamUuid": "t\n"})
    assert team.status_code == 400 and "teamUuid" in team.json["errors"], team.json
    header = api.post("/webhooks", json=hook(headers={"X-Name\n": "v"}))
    assert header.status_code == 400, header.json
    secret = api.post("/secrets", json={"name": "Trail\n", "value": "a-value-1234"})
    assert secret.status_code == 400 and "name" in secret.json["errors"], secret.json
    with runtime.sessions() as session:
        assert session.scalars(select(Webhook)).all() == []


def test_unknown_webhook_is_404(api):
    assert api.get("/webhooks/aaaaaaaaaaaaaaaaaaaa").status_code == 404
    assert api.delete("/webhooks/aaaaaaaaaaaaaaaaaaaa").status_code == 404


def test_masked_values_sent_back_keep_the_stored_secret(api, runtime):
    created = api.post("/webhooks", json=hook(username="u", password="hunter22",
                                              headers={"Authorization": "Bearer abc123xyz", "Accept": "x"})).json
    assert created["request"]["headers"] == {"Authorization": "**********", "Accept": "x"}
    updated = api.put(f"/webhooks/{created['uuid']}", json={**hook(), "request": created["request"]})
    assert updated.status_code == 200
    with runtime.sessions() as session:
        config = session.get(Webhook, created["uuid"]).config
    assert runtime.vault.unseal(config["password"]) == "hunter22"
    assert runtime.vault.unseal(config["headers"]["Authorization"]) == "Bearer abc123xyz"
    assert "hunter22" not in json.dumps(config) and "abc123xyz" not in json.dumps(config)


def test_mask_without_a_stored_value_is_an_error(api):
    resp = api.post("/webhooks", json=hook(username="u", password="**********"))
    assert resp.status_code == 400 and "request.password" in resp.json["errors"]


def test_list_and_delete(api):
    uuid = api.post("/webhooks", json=hook()).json["uuid"]
    listing = api.get("/webhooks").json
    assert [w["uuid"] for w in listing["webhooks"]] == [uuid]
    assert listing["_links"]["pb:webhooks"][0]["href"].endswith(uuid)
    assert api.delete(f"/webhooks/{uuid}").status_code == 204
    assert api.get("/webhooks").json["webhooks"] == []


def test_roles(api):
    assert api.as_role("read").post("/webhooks", json=hook()).status_code == 403
    assert api.as_role("read").get("/webhooks").status_code == 200
    assert api.as_role("write").post("/webhooks", json=hook()).status_code == 201


def test_signing_secret_is_shown_once(api):
    created = api.post("/webhooks", json=hook(sign=True)).json
    assert created["signingSecret"].startswith("whsec_")
    assert "signingSecret" not in api.get(f"/webhooks/{created['uuid']}").json


def test_execute_sends_once_and_returns_redacted_exchange(api, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    api.post("/secrets", json={"name": "ciToken", "value": "sup3r-s3cret"})
    created = api.post("/webhooks", json=hook(url=httpserver.url_for("/hook"),
                                              headers={"X-Token": "${user.ciToken}"},
                                              body={"secret": "${user.ciToken}", "c": "${pactbroker.consumerName}"}))
    resp = api.post(f"/webhooks/{created.json['uuid']}/execute")
    assert resp.status_code == 200 and resp.json["success"] is True
    (request, _), = httpserver.log
    assert request.headers["X-Token"] == "sup3r-s3cret"
    assert json.loads(request.data) == {"secret": "sup3r-s3cret", "c": "Example Consumer"}
    assert "sup3r-s3cret" not in json.dumps(resp.json)
    assert resp.json["request"]["headers"]["X-Token"] == "**********"
    assert json.loads(resp.json["request"]["body"])["secret"] == "********"
    assert resp.json["response"]["status"] == 200


CREDENTIAL_HEADERS = {"X-Functions-Key": "fnkey-0123456789abcdef", "Ocp-Apim-Subscription-Key": "apim-0123456789abc",
                      "Authentication": "authn-0123456789abc", "X-Hub-Signature": "sha1=sig0123456789abc",
                      "X-Session": "sess-0123456789abc", "X-Csrf-Cookie": "cookie-0123456789abc"}


def test_headers_named_like_credentials_are_secrets_everywhere(api, runtime, httpserver):
    """Issue 23 #17: literal values of X-Functions-Key, Ocp-Apim-Subscription-Key and Authentication were stored
    plain and shown in the API, the UI, the audit log and attempts."""
    httpserver.expect_request("/hook").respond_with_data("ok")
    created = api.post("/webhooks", json=hook(url=httpserver.url_for("/hook"),
                                              headers={**CREDENTIAL_HEADERS, "Accept": "text/plain"}))
    assert created.status_code == 201, created.json
    masked = {**{name: "**********" for name in CREDENTIAL_HEADERS}, "Accept": "text/plain"}
    assert created.json["request"]["headers"] == masked
    assert sorted(created.json["warnings"]) == sorted(f"request.headers.{name}" for name in CREDENTIAL_HEADERS)
    assert "warnings" not in api.get(f"/webhooks/{created.json['uuid']}").json
    with runtime.sessions() as session:
        stored = session.get(Webhook, created.json["uuid"]).config["headers"]
    assert {k: runtime.vault.unseal(v) for k, v in stored.items() if k != "Accept"} == CREDENTIAL_HEADERS
    executed = api.post(f"/webhooks/{created.json['uuid']}/execute").json
    (request, _), = httpserver.log
    assert all(request.headers[name] == value for name, value in CREDENTIAL_HEADERS.items())
    assert {k: v for k, v in executed["request"]["headers"].items() if k in masked} == masked
    shown = json.dumps([executed, api.get("/audit?limit=1000").json, api.get("/webhooks").json,
                        api.get(f"/webhooks/{created.json['uuid']}/deliveries").json])
    with runtime.engine.connect() as conn:
        rows = " ".join(str(v) for table in ("webhooks", "audit_log", "attempts")
                        for row in conn.exec_driver_sql(f"SELECT * FROM {table}") for v in row)
    assert [v for v in CREDENTIAL_HEADERS.values() if v in shown or v in rows] == []
