"""The relay as the Pact Broker's clients see it: the HAL index, the broker's webhook paths, broker-only paths."""

import pytest

from relay.app import create_app
from relay.runtime import Runtime
from tests.conftest import make_settings

HAL = {"Accept": "application/hal+json"}


def hook(**extra):
    return {"events": [{"name": "contract_published"}],
            "request": {"method": "POST", "url": "https://example.org/hook"}, **extra}


@pytest.fixture
def database_url(tmp_path, sqlite_template):
    """SQLite only: these are routing and document shapes, the same on both backends."""
    import shutil

    path = tmp_path / "relay.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.mark.parametrize("accept", ["application/hal+json", "application/json",
                                    "application/hal+json, application/json, */*; q=0.2"])
def test_index_is_hal_for_hal_and_json_clients(api, accept):
    resp = api.get("/", headers={"Accept": accept})
    assert resp.status_code == 200 and resp.mimetype == "application/hal+json"
    links = resp.json["_links"]
    assert links["pb:webhooks"]["href"] == "http://localhost/webhooks"
    assert links["pb:webhook"] == {"href": "http://localhost/webhooks/{uuid}", "title": "Webhook", "templated": True}
    for rel in ("pr:status", "pr:deliveries", "pr:badge", "pr:openapi"):
        assert links[rel]["href"].startswith("http://localhost/")
    # Every untemplated relation leads somewhere real with the same token; the broker's other relations lead to
    # the relay's explanation, so that a client following them prints it.
    for rel, link in links.items():
        path = link["href"].removeprefix("http://localhost")
        if link["title"].startswith("Not in Pact Relay"):
            resp = api.get(path.replace("{", "").replace("}", ""), headers={"Accept": accept})
            assert resp.status_code == 421 and "not a Pact Broker" in resp.json["error"]["message"], rel
        elif not link.get("templated") and rel not in ("pr:events", "pr:ui"):
            assert api.get(path, headers={"Accept": accept}).status_code == 200, rel


@pytest.mark.parametrize("accept", [None, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "*/*"])
def test_browsers_are_still_sent_to_the_ui(client, accept):
    resp = client.get("/", headers={"Accept": accept} if accept else {})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/ui/")


def test_index_needs_the_bearer_token_like_every_call(client, tokens):
    assert client.get("/", headers=HAL).status_code == 401
    assert client.get("/", headers={**HAL, "Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/", headers={**HAL, "Authorization": f"Bearer {tokens['intake']}"}).status_code == 403
    assert client.get("/", headers={**HAL, "Authorization": f"Bearer {tokens['read']}"}).status_code == 200


def test_pair_path_creates_with_names_from_the_path(api):
    resp = api.post("/webhooks/provider/Bar%20Service/consumer/Foo%2FWeb", json=hook(description="pair"))
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["consumer"] == {"name": "Foo/Web"} and body["provider"] == {"name": "Bar Service"}
    assert resp.headers["Location"] == f"http://localhost/webhooks/{body['uuid']}"
    assert api.get(resp.headers["Location"]).json["consumer"] == {"name": "Foo/Web"}


def test_one_sided_paths(api):
    provider = api.post("/webhooks/provider/Bar", json=hook()).json
    consumer = api.post("/webhooks/consumer/Foo", json=hook()).json
    assert provider["provider"] == {"name": "Bar"} and "consumer" not in provider
    assert consumer["consumer"] == {"name": "Foo"} and "provider" not in consumer
    both = api.post("/webhooks/provider/Bar/consumer/Foo", json=hook()).json
    listed = api.get("/webhooks/provider/Bar").json
    assert [h["uuid"] for h in listed["webhooks"]] == [provider["uuid"], both["uuid"]]
    assert listed["_links"]["self"]["href"] == "http://localhost/webhooks/provider/Bar"
    assert [h["uuid"] for h in api.get("/webhooks/consumer/Foo").json["webhooks"]] == [consumer["uuid"], both["uuid"]]
    pair = api.get("/webhooks/provider/Bar/consumer/Foo").json
    assert [h["uuid"] for h in pair["webhooks"]] == [both["uuid"]]


def test_body_may_repeat_but_not_contradict_the_path(api):
    same = api.post("/webhooks/provider/Bar/consumer/Foo", json=hook(consumer={"name": "Foo"}))
    assert same.status_code == 201
    other = api.post("/webhooks/provider/Bar/consumer/Foo", json=hook(consumer={"name": "Other"}))
    assert other.status_code == 400 and "consumer" in other.json["errors"]
    label = api.post("/webhooks/provider/Bar", json=hook(provider={"label": "team-a"}))
    assert label.status_code == 400 and "provider" in label.json["errors"]


@pytest.mark.parametrize("path", ["/webhooks/provider/", "/webhooks/provider/Bar/consumer",
                                  "/webhooks/provider/Bar/consumer/", "/webhooks/provider/Bar/provider/Baz",
                                  "/webhooks/provider/Bar/other/Foo", "/webhooks/provider/%20"])
def test_malformed_pair_paths_say_what_is_expected(api, path):
    resp = api.post(path, json=hook())
    assert resp.status_code == 400 and "/webhooks/provider/{provider}" in resp.json["errors"]["path"][0]


@pytest.mark.parametrize("raw,name", [("%2e%2e", ".."), ("..%2F..%2Fsecrets", "../../secrets"),
                                      ("a%3Fb%23c", "a?b#c"), ("%E2%9C%93%20ok", "\u2713 ok"), ("x" * 500, "x" * 500)])
def test_hostile_names_stay_names(api, raw, name):
    resp = api.post(f"/webhooks/provider/{raw}/consumer/C", json=hook())
    assert resp.status_code == 201 and resp.json["provider"] == {"name": name}
    assert resp.headers["Location"].startswith("http://localhost/webhooks/")
    assert [h["provider"]["name"] for h in api.get(f"/webhooks/provider/{raw}/consumer/C").json["webhooks"]] == [name]


@pytest.mark.parametrize("raw,field", [("a%00b", "provider"), ("a%0D%0Ab", "provider"), ("x" * 501, "provider.name"),
                                       ("%FF", "path"), ("a%C3", "path"), ("%ED%A0%80", "path")])
def test_unstorable_names_are_400_not_500(api, raw, field):
    resp = api.post(f"/webhooks/provider/{raw}/consumer/C", json=hook())
    assert resp.status_code == 400 and field in resp.json["errors"], resp.json
    assert api.get(f"/webhooks/provider/{raw}").status_code in (200, 400)
    assert api.get("/webhooks").json["webhooks"] == []


def test_pair_paths_need_tokens_and_roles(client, tokens):
    assert client.post("/webhooks/provider/Bar", json=hook()).status_code == 401
    read = {"Authorization": f"Bearer {tokens['read']}"}
    assert client.post("/webhooks/provider/Bar", json=hook(), headers=read).status_code == 403
    assert client.get("/webhooks/provider/Bar", headers=read).status_code == 200


def test_team_uuid_is_kept_and_shown_back(api):
    team = "b7f5e1a2-46c4-4b4e-9a3c-5d1f0a3b2c11"
    created = api.post("/webhooks", json=hook(teamUuid=team))
    assert created.status_code == 201 and created.json["teamUuid"] == team
    uuid = created.json["uuid"]
    assert api.get(f"/webhooks/{uuid}").json["teamUuid"] == team
    assert "teamUuid" not in api.put(f"/webhooks/{uuid}", json=hook()).json
    for bad in (5, "../x", "a" * 101, "x\ny"):
        assert "teamUuid" in api.post("/webhooks", json=hook(teamUuid=bad)).json["errors"]


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/matrix?q[][pacticipant]=Foo&latestby=cvp", 421), ("GET", "/can-i-deploy?pacticipant=Foo&version=1", 421),
    ("POST", "/contracts/publish", 421), ("GET", "/pacts/provider/Bar/consumer/Foo/latest", 421),
    ("GET", "/pacticipants/Foo", 421), ("GET", "/pacticipants", 421), ("GET", "/environments", 421),
    ("DELETE", "/integrations", 421),
    # Methods other than GET on the badge prefixes stay 405s, explained the same way.
    ("PUT", "/pacts/provider/Bar/consumer/Foo/version/1.0.0", 405),
    ("POST", "/pacts/provider/Bar/consumer/Foo/pact-version/abc/verification-results", 405),
    ("PATCH", "/pacticipants/Foo", 405), ("PUT", "/pacticipants/Foo/versions/1/tags/main", 405),
    ("DELETE", "/matrix/provider/Bar/latest/main/consumer/Foo/latest/main/badge", 405),
])
def test_broker_only_paths_answer_in_the_brokers_error_shape(client, method, path, status):
    resp = client.open(path, method=method, json={}, headers=HAL)
    assert resp.status_code == status and resp.mimetype == "application/json"
    assert status == 421 or "GET" in resp.headers["Allow"]
    message = resp.json["error"]["message"]
    assert message.startswith("This is Pact Relay, not a Pact Broker") and "RELAY_BROKER_URL" in message


def test_broker_only_paths_name_the_configured_broker(tmp_path, database_url, redis_url):
    from relay.app import create_app

    settings = make_settings(tmp_path, database_url, redis_url, broker_url="https://broker.example.com",
                             broker_token="tok-never-shown", broker_password="pw-never-shown")
    resp = create_app(settings).test_client().post("/contracts/publish", json={})
    assert "https://broker.example.com" in resp.json["error"]["message"]
    assert resp.json["_links"]["pb:broker"]["href"] == "https://broker.example.com"
    assert "never-shown" not in resp.get_data(as_text=True) and "never-shown" not in repr(settings)


def test_badge_paths_are_untouched(client):
    resp = client.get("/pacts/provider/Bar/consumer/Foo/latest/badge.svg")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    resp = client.get("/matrix/provider/Bar/latest/main/consumer/Foo/latest/main/badge")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"


@pytest.mark.parametrize("path", ["/pacticipants/Foo/latest-version/main/can-i-deploy/to/prod/badge",
                                  "/pacticipants/Foo%2FWeb/branches/main/latest-version/can-i-deploy/to-environment/"
                                  "production/badge.svg"])
def test_can_i_deploy_badges_are_unknown_badges_not_errors(client, path):
    resp = client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml" and resp.headers["Cache-Control"] == "no-cache"
    assert "can-i-deploy: unknown" in resp.get_data(as_text=True)
    assert client.get(path, headers={"Accept": "application/json"}).json["message"] == "unknown"


def test_relay_paths_keep_their_own_404(api):
    assert api.get("/webhooks/does-not-exist-at-all").json == {"error": "no webhook 'does-not-exist-at-all'"}
    assert api.get("/nothing-here").json["error"] != ""
    assert "Pact Broker" not in api.get("/nothing-here").get_data(as_text=True)


def test_links_come_from_relay_public_url_never_from_the_host_header(tmp_path, database_url, redis_url, tokens):
    """Issue 23 #16: `Host: evil.example` put http://evil.example/... into `_links` and `Location`."""
    runtime = Runtime(make_settings(tmp_path, database_url, redis_url, public_url="https://relay.example.com/base"))
    try:
        client = create_app(runtime=runtime).test_client()
        headers = {"Authorization": f"Bearer {tokens['admin']}", "Host": "evil.example", **HAL}
        shown = [client.get("/", headers=headers).get_data(as_text=True)]
        created = client.post("/webhooks", json=hook(), headers=headers)
        assert created.status_code == 201
        assert created.headers["Location"].startswith("https://relay.example.com/base/webhooks/")
        for path in ("/webhooks", f"/webhooks/{created.json['uuid']}", "/deliveries", "/audit",
                     "/webhooks/provider/P"):
            resp = client.get(path, headers=headers)
            assert resp.status_code == 200, (path, resp.status_code)
            shown.append(resp.get_data(as_text=True))
        assert all("evil.example" not in text for text in shown)
        assert "https://relay.example.com/base/webhooks" in shown[0]
    finally:
        runtime.engine.dispose()
        runtime.redis.close()


def test_self_links_keep_the_path_as_sent(api):
    """Issue 23 #16: `%2F..%2F` in a path was decoded into `_links.self`."""
    resp = api.get("/webhooks/provider/a%2F..%2F..%2Fadmin")
    assert resp.status_code == 200
    assert resp.json["_links"]["self"]["href"].endswith("/webhooks/provider/a%2F..%2F..%2Fadmin")
    audit = api.get("/audit?actor=a%2F..%2Fb&limit=1")
    assert audit.json["_links"]["self"]["href"].endswith("/audit?actor=a%2F..%2Fb&limit=1")
