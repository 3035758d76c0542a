"""Where the relay sends (the worker's delivery job, the execute button), every library's connections are checked."""

import json

import pytest

import integrations
from relay.app import create_app
from relay.delivery.runner import run_delivery
from relay.runtime import Runtime
from tests.conftest import LOOPBACK_REFUSED, PUBLIC_ADDRESS, make_settings, sample_event
from tests.integrations.conftest import SECRETS, saveable
from tests.integrations.fakes import TARGETS, app_key_pem


@pytest.fixture(scope="module")
def app_key() -> str:
    return app_key_pem()


@pytest.fixture
def strict(tmp_path, database_url, redis_url):
    """The same database, with internal addresses refused as in production."""
    rt = Runtime(make_settings(tmp_path, database_url, redis_url, allow_private_networks=False,
                               allowed_schemes=("http", "https")))
    yield rt
    rt.engine.dispose()


def rebinding_hook(api, httpserver, name, app_key) -> str:
    kind, config, _ = TARGETS[name]
    config = config(f"http://rebind.test:{httpserver.port}")
    secrets = {**SECRETS, "AppKey": app_key}
    if "webhook_url" in config:  # a secret field is a reference to a whole secret or a literal, not a mix
        secrets["SlackHook"] = config["webhook_url"].replace("${user.SlackHookPath}", SECRETS["SlackHookPath"])
        config["webhook_url"] = "${user.SlackHook}"
    for secret, value in secrets.items():
        assert api.post("/secrets", json={"name": secret, "value": value}).status_code in (200, 201)
    doc = {kind: config}
    created = api.post("/webhooks", json={"events": [{"name": "provider_verification_failed"}], **doc})
    assert created.status_code == 201, created.json
    return created.json["uuid"]


@pytest.mark.parametrize("name", TARGETS)
def test_the_delivery_job_fails_a_rebinding_target_for_good(api, strict, httpserver, rebinding, app_key, name):
    uuid = rebinding_hook(api, httpserver, name, app_key)
    event = api.post("/events", json=sample_event("provider_verification_failed")).json["event"]
    (delivery,) = api.get(f"/webhooks/{uuid}/deliveries").json["deliveries"]
    assert run_delivery(strict, delivery["id"]) == "failed"  # not "retrying": nothing to wait for
    (delivery,) = api.get(f"/webhooks/{uuid}/deliveries").json["deliveries"]
    assert delivery["event"] == event and delivery["attempts"][0]["error"] == LOOPBACK_REFUSED
    assert rebinding[0] == PUBLIC_ADDRESS and httpserver.log == []


@pytest.mark.parametrize("name", ["github token (PyGithub)", "slack webhook (slack-sdk)", "jenkins (python-jenkins)"])
def test_execute_refuses_a_rebinding_target(api, strict, tokens, httpserver, rebinding, app_key, name):
    uuid = rebinding_hook(api, httpserver, name, app_key)
    client = create_app(runtime=strict).test_client()
    resp = client.post(f"/webhooks/{uuid}/execute", headers={"Authorization": f"Bearer {tokens['write']}"})
    assert resp.status_code == 200
    assert resp.json["success"] is False and resp.json["error"] == LOOPBACK_REFUSED
    assert rebinding[0] == PUBLIC_ADDRESS and httpserver.log == []
    assert not any(value in json.dumps(resp.json) for value in SECRETS.values())


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "https://10.0.0.1/x", "https://[::1]/", "http://127.1:8080/",
                                 "https://2130706433/", "https://0x7f.0.0.1/", "https://169.254.169.254/latest",
                                 "https://[::ffff:10.0.0.1]/", "https://192.168.1.1/pacts"])
@pytest.mark.parametrize("kind", sorted(integrations.REGISTRY))
def test_a_literal_internal_address_is_refused_at_save(strict, tokens, url, kind):
    """L6: with private networks disallowed, a literal internal address is a 400 naming the field and the reason."""
    field, doc = saveable(kind)
    doc[field] = url
    client = create_app(runtime=strict).test_client()
    resp = client.post("/webhooks", json={"events": [{"name": "contract_published"}], kind: doc},
                       headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert resp.status_code == 400, resp.json
    (message,) = resp.json["errors"][f"{kind}.{field}"]
    assert message.startswith("refused: ") and "(set RELAY_ALLOW_PRIVATE_NETWORKS=true to allow)" in message
    public = client.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                            kind: {**doc, field: "https://ci.example.com/"}},
                         headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert public.status_code == 201, public.json
