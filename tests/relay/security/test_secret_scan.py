"""End to end: use every kind of secret, then find none of them in any stored row, log line or API response."""

import base64
import json
import logging
import secrets
import zlib
from urllib.parse import quote, quote_plus

from sqlalchemy import inspect, text
from werkzeug import Response

from tests.conftest import sample_event


def spellings(value: str) -> set[str]:
    """Every way the scan looks for a value: plain, URL-, JSON- (once and twice) and base64-encoded."""
    once = json.dumps(value)[1:-1]
    return {value, quote_plus(value, safe=""), quote(value, safe=""), quote_plus(value, safe="/"), quote(value), once,
            json.dumps(once)[1:-1], base64.b64encode(value.encode()).decode().rstrip("=")}


def echo(status):
    def handler(request):
        return Response(json.dumps({"url": request.url, "headers": dict(request.headers),
                                    "body": request.get_data(as_text=True)}), status=status)
    return handler


def database_text(runtime) -> list[str]:
    out = []
    with runtime.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    out.append(str(value))
                    if isinstance(value, (dict, list)):
                        out.append(json.dumps(value))
    return out


def redis_text(redis) -> list[str]:
    out = []
    for key in redis.scan_iter():
        kind = redis.type(key)
        values = (redis.hvals(key) if kind == b"hash" else redis.lrange(key, 0, -1) if kind == b"list"
                  else redis.zrange(key, 0, -1) if kind == b"zset" else redis.smembers(key) if kind == b"set"
                  else [redis.get(key)])
        for value in [key, *values]:
            try:
                value = zlib.decompress(value)
            except (zlib.error, TypeError):
                pass
            out.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return out


def test_no_secret_in_rows_logs_or_responses(app, api, client, runtime, cli, drain, httpserver, caplog, capsys,
                                             tokens):
    caplog.set_level(logging.DEBUG)
    responses: list[str] = []

    @app.after_request
    def keep(response):
        responses.append(response.get_data(as_text=True) + "\n" + str(response.headers))
        return response

    def fresh(label, extra=""):
        return f"{label}-{secrets.token_hex(8)}{extra}"

    url_key = fresh("url key/", "+&=")  # needs URL-encoding
    body_secret = fresh('body"', "\\")  # needs JSON-escaping
    cli_secret = fresh("cli")
    header_literal = fresh("header")
    password_literal = fresh("password")
    user_password = fresh("user password")
    wrong_password = fresh("wrong password")
    outputs = []

    outputs.append(cli("users", "create", "ops@example.com", "--role", "admin", "--password-stdin",
                       input=user_password + "\n").output)
    outputs.append(cli("secrets", "set", "CliSecret", input=cli_secret).output)
    assert api.post("/secrets", json={"name": "UrlKey", "value": url_key}).status_code == 201
    assert api.put("/secrets/BodySecret", json={"value": body_secret, "description": "b"}).status_code == 201

    httpserver.expect_request("/hook").respond_with_handler(echo(200))
    httpserver.expect_request("/flaky").respond_with_handler(echo(500))
    signed = api.post("/webhooks", json={"events": [{"name": "contract_published"}], "request": {
        "method": "POST", "url": httpserver.url_for("/hook") + "?key=${user.UrlKey}",
        "headers": {"X-Api-Key": header_literal, "X-Cli": "${user.CliSecret}", "Content-Type": "application/json"},
        "username": "svc", "password": password_literal, "sign": True,
        "body": {"secret": "${user.BodySecret}", "consumer": "${pactbroker.consumerName}"}}}).json
    signing_secret = signed["signingSecret"]
    flaky = api.post("/webhooks", json={"events": [{"name": "contract_published"}], "request": {
        "method": "PUT", "url": httpserver.url_for("/flaky"),
        "headers": {"Authorization": "Bearer ${user.UrlKey}"}, "body": "raw ${user.BodySecret} ${user.CliSecret}"}}
    ).json
    api.get("/webhooks")
    api.get(f"/webhooks/{signed['uuid']}")

    event = api.as_role("intake").post("/events", json=sample_event("contract_published")).json
    assert event["deliveries"] == 2
    drain()
    delivered = api.get(f"/webhooks/{signed['uuid']}/deliveries").json["deliveries"][0]
    assert delivered["status"] == "succeeded"
    assert api.get(f"/webhooks/{flaky['uuid']}/deliveries").json["deliveries"][0]["status"] == "retrying"
    assert api.post(f"/webhooks/{signed['uuid']}/execute").json["success"] is True
    assert api.post(f"/webhooks/{flaky['uuid']}/execute").json["success"] is False
    assert api.post(f"/deliveries/{delivered['id']}/replay").status_code == 202
    drain()
    api.get("/deliveries")
    api.get(f"/deliveries/{delivered['id']}")

    created = api.post("/tokens", json={"name": "temporary", "role": "read"}).json
    client.get("/secrets", headers={"Authorization": f"Bearer {created['token']}"})
    api.delete(f"/tokens/{created['id']}")
    client.get("/secrets", headers={"Authorization": f"Bearer {created['token']}"})
    api.get("/tokens")

    assert client.post("/login", json={"email": "ops@example.com", "password": wrong_password}).status_code == 401
    signed_in = client.post("/login", json={"email": "ops@example.com", "password": user_password})
    client.post("/logout", headers={"X-CSRF-Token": signed_in.json["csrfToken"]})
    api.get("/audit?limit=1000")
    for command in (("audit", "verify"), ("secrets", "list"), ("tokens", "list"), ("users", "list")):
        outputs.append(cli(*command).output)

    # The secrets really were used: the target saw every one of them.
    seen = " ".join(r.query_string.decode() + str(dict(r.headers)) + r.get_data(as_text=True)
                    for r, _ in httpserver.log)
    basic = base64.b64encode(f"svc:{password_literal}".encode()).decode()
    for used in (quote_plus(url_key, safe=""), json.dumps(body_secret)[1:-1], cli_secret, header_literal, basic):
        assert used in seen

    captured = capsys.readouterr()
    logs = [caplog.text, captured.out, captured.err, *(r.getMessage() for r in caplog.records)]
    places = {"database": database_text(runtime), "redis": redis_text(runtime.redis), "logs": logs,
              "cli": outputs}
    shown_once = {signing_secret: 1, created["token"]: 1}  # in the one response that created each
    never = [url_key, body_secret, cli_secret, header_literal, password_literal, user_password, wrong_password,
             f"svc:{password_literal}", *tokens.values()]
    leaks = []
    for value in [*never, *shown_once]:
        for form in spellings(value):
            for place, texts in places.items():
                leaks += [(place, value, form) for t in texts if form in t]
            in_responses = sum(form in r for r in responses)
            if in_responses > (shown_once.get(value, 0) if form == value else 0):
                leaks.append(("responses", value, form))
    assert leaks == []
    assert len(responses) > 20 and len(caplog.records) > 5
