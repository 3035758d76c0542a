"""The `pact-relay` command line: tokens, migrations, the broker webhook, badge URLs, and one-line errors."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from relay.broker.webhook import broker_webhook_json
from relay.models import AuditEntry, Token
from relay.ops.cli import main
from relay.pairs.badgeurls import BadgeRef, parse, verify
from relay.templating import VARIABLES


@pytest.fixture
def env(tmp_path, database_url):
    return {"RELAY_DATA_DIR": str(tmp_path / "data"), "RELAY_DATABASE_URL": database_url}


def run(env, *args, input=None):
    return CliRunner().invoke(main, list(args), env=env, input=input)


def test_tokens_create_prints_once_and_stores_a_hash(env, runtime):
    result = run(env, "tokens", "create", "--name", "ci", "--role", "intake")
    assert result.exit_code == 0, result.output
    value = result.output.strip()
    assert value.startswith("prt_") and len(value) > 40
    with runtime.sessions() as session:
        token = session.scalars(select(Token).where(Token.name == "ci")).one()
    assert token.role == "intake" and value not in token.token_hash


@pytest.mark.parametrize("args,message", [
    (["tokens", "create", "--name", "x", "--role", "root"], "Invalid value for '--role'"),
    (["tokens", "create", "--name", " ", "--role", "read"], "name must be 1 to 200 characters"),
    (["broker-webhook", "--relay-url", "relay.example.com"], "--relay-url must start with http"),
])
def test_bad_arguments_fail_with_one_line(env, args, message):
    result = run(env, *args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["db", "upgrade"], ["web"], ["worker"], ["serve"]])
def test_bad_setting_is_one_line(tmp_path, command):
    result = run({"RELAY_DATA_DIR": str(tmp_path), "RELAY_RETRY_SCHEDULE": "soon"}, *command)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: RELAY_RETRY_SCHEDULE: 'soon' must be seconds separated by spaces"


def test_bad_encryption_key_is_one_line(tmp_path):
    result = run({"RELAY_DATA_DIR": str(tmp_path), "RELAY_ENCRYPTION_KEYS": "not-a-key"},
                 "tokens", "create", "--name", "a", "--role", "read")
    assert result.exit_code == 1 and "RELAY_ENCRYPTION_KEYS" in result.output and "Traceback" not in result.output


def test_db_upgrade_is_idempotent(env):
    assert run(env, "db", "upgrade").exit_code == 0
    assert run(env, "db", "upgrade").output.strip() == "database is up to date"


def test_broker_webhook_prints_a_webhook_carrying_every_variable(env):
    result = run(env, "broker-webhook", "--relay-url", "https://relay.example.com/", "--token", "prt_x")
    doc = json.loads(result.output)
    assert doc["request"]["url"] == "https://relay.example.com/events"
    assert doc["request"]["headers"]["Authorization"] == "Bearer prt_x"
    assert doc["request"]["body"] == {name: f"${{pactbroker.{name}}}" for name in VARIABLES}
    assert len(doc["events"]) == 6


def test_broker_webhook_json_is_accepted_by_the_relay_itself(api):
    """What we ask the broker to store is valid broker webhook JSON: the relay's own /webhooks takes it."""
    doc = broker_webhook_json("https://relay.example.com", "prt_x")
    assert api.post("/webhooks", json=doc).status_code == 201


def test_broker_webhook_creates_it_in_the_broker(env, httpserver):
    httpserver.expect_request("/webhooks", method="POST", headers={"Authorization": "Bearer brk"}) \
        .respond_with_json({}, status=201, headers={"Location": "http://broker/webhooks/abc"})
    result = run(env, "broker-webhook", "--relay-url", "https://relay.example.com", "--token", "prt_x",
                 "--broker-url", httpserver.url_for("/"), "--broker-token", "brk")
    assert result.exit_code == 0 and "created http://broker/webhooks/abc" in result.output
    (request, _), = httpserver.log
    assert json.loads(request.data)["request"]["headers"]["Authorization"] == "Bearer prt_x"


def test_broker_webhook_without_token_makes_an_intake_token(env, runtime):
    result = run(env, "broker-webhook", "--relay-url", "https://relay.example.com")
    value = json.loads(result.output)["request"]["headers"]["Authorization"].split()[1]
    with runtime.sessions() as session:
        assert session.scalars(select(Token.role).where(Token.name == "pact-broker")).one() == "intake"
        entry = session.scalars(select(AuditEntry).where(AuditEntry.type == "token.created")).one()
    assert value.startswith("prt_")
    assert json.loads(entry.payload)["name"] == "pact-broker" and entry.actor_type == "cli"
    assert value not in entry.payload


def test_broker_rejection_is_reported(env, httpserver):
    httpserver.expect_request("/webhooks").respond_with_data("no", status=401)
    result = run(env, "broker-webhook", "--relay-url", "https://r", "--token", "t", "--broker-url",
                 httpserver.url_for("/"))
    assert result.exit_code == 1 and "the broker answered HTTP 401" in result.output


def test_worker_without_redis_says_how_to_fix_it(env):
    result = run(env, "worker", "--burst")
    assert result.exit_code == 1 and "RELAY_REDIS_URL is not set" in result.output


def test_worker_with_unreachable_redis_is_one_line(env):
    result = run({**env, "RELAY_REDIS_URL": "redis://127.0.0.1:1/0"}, "worker", "--burst")
    assert result.exit_code == 1 and result.output.startswith("Error: cannot reach Redis")


def test_worker_burst_drains_the_queue(env, redis_url, api, httpserver):
    from tests.conftest import sample_event

    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                "request": {"method": "POST", "url": httpserver.url_for("/hook")}})
    api.post("/events", json=sample_event("contract_published"))
    result = run({**env, "RELAY_REDIS_URL": redis_url, "RELAY_ALLOW_PRIVATE_NETWORKS": "true",
                  "RELAY_ENCRYPTION_KEYS": "MpMLmDCCjBk0zXW-ZDRCt09wZJ2Zc7Vfaj0b-RDt5gA="}, "worker", "--burst")
    assert result.exit_code == 0, result.output
    assert len(httpserver.log) == 1


def badge_url(tmp_path, *args, **env):
    environ = {"RELAY_DATA_DIR": str(tmp_path), "RELAY_PUBLIC_URL": "https://relay.example.com/", **env}
    return CliRunner().invoke(main, ["badges", "url", *args], env=environ)


def test_public_badge_url(tmp_path):
    result = badge_url(tmp_path, "--consumer", "Matching Service", "--provider", "a/b")
    assert result.exit_code == 0, result.output
    assert result.output == ("https://relay.example.com/pacts/provider/a%2Fb/consumer/Matching%20Service"
                             "/latest/badge.svg\n")
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize(("args", "ref"), [
    (["--tag", "prod"], BadgeRef("tag", "C", "P", "prod")),
    (["--untagged"], BadgeRef("untagged", "C", "P")),
    (["--tag", "prod", "--provider-tag", "main"], BadgeRef("matrix", "C", "P", "prod", "main")),
])
def test_private_badge_urls_are_signed(tmp_path, args, ref):
    result = badge_url(tmp_path, "--consumer", "C", "--provider", "P", *args, "--label", "provider", "--initials",
                 RELAY_PRIVATE_BADGES="true", RELAY_SECRET_KEY="cli-secret")
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert parse(url) == ref and "label=provider&initials=true&sig=" in url and "cli-secret" not in url
    assert verify("cli-secret", ref, url.rsplit("sig=", 1)[1])


@pytest.mark.parametrize(("args", "message"), [
    (["--consumer", "", "--provider", "P"], "--consumer must not be empty"),
    (["--consumer", "C", "--provider", "P", "--provider-tag", "x"], "--provider-tag needs --tag"),
    (["--consumer", "C", "--provider", "P", "--tag", "t", "--untagged"], "exclude each other"),
    (["--consumer", "C" * 300, "--provider", "P"], "at most 255 characters"),
])
def test_bad_badge_options_fail_with_one_line(tmp_path, args, message):
    result = badge_url(tmp_path, *args)
    assert result.exit_code == 1 and message in result.output and result.output.count("\n") == 1


@pytest.mark.parametrize("command", ["serve", "web"])
def test_a_taken_port_is_one_line_and_starts_nothing(tmp_path, command):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run({"RELAY_DATA_DIR": str(tmp_path)}, command, "--port", str(port))
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; "
                                     "stop what uses it or choose another --port")
    assert not (tmp_path / "redis.sock").exists()


UNREACHABLE = [
    ({"RELAY_DATA_DIR": "/proc/no-such-dir"}, "Error: RELAY_DATA_DIR: cannot create /proc/no-such-dir: "),
    ({"RELAY_DATABASE_URL": "postgresql://bob:pw@127.0.0.1:1/x"}, "Error: cannot reach the database: "),
    ({"RELAY_DATABASE_URL": "mysql://x/y"}, "Error: RELAY_DATABASE_URL: 'mysql' is not supported"),
    ({"RELAY_DATABASE_URL": "not a url"}, "Error: RELAY_DATABASE_URL: not a database URL"),
]
REDIS_DOWN = ({"RELAY_REDIS_URL": "redis://:pw@127.0.0.1:1/0"}, "Error: cannot reach Redis at redis://127.0.0.1:1/0: ")


@pytest.mark.parametrize("command, setting, message", [("serve", *case) for case in [*UNREACHABLE, REDIS_DOWN]]
                         + [("tokens", *case) for case in UNREACHABLE])  # tokens create needs no Redis
def test_what_cannot_be_reached_is_one_line(tmp_path, setting, message, command):
    from tests.conftest import free_port

    args = ["serve", "--port", str(free_port())] if command == "serve" else ["tokens", "create", "--name", "a",
                                                                             "--role", "read"]
    result = run({"RELAY_DATA_DIR": str(tmp_path / "data"), **setting}, *args)
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(message) and "pw" not in last and "Traceback" not in result.output
