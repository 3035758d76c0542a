"""Startup checks for many hosts: a host with the wrong keys, database or Redis says which setting, in one line."""

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from redis import Redis

from relay.models import FleetRow
from relay.ops import fleet
from relay.ops.cli import main
from relay.security.secrets import save
from tests.conftest import TEST_KEYS, free_port

OTHER_KEY = Fernet.generate_key().decode()


@pytest.fixture
def host(tmp_path, database_url, redis_url):
    """The environment of one more host of the fleet the test's runtime belongs to."""
    return {"RELAY_DATA_DIR": str(tmp_path / "host"), "RELAY_DATABASE_URL": database_url,
            "RELAY_REDIS_URL": redis_url, "RELAY_ENCRYPTION_KEYS": TEST_KEYS[0]}


def start(env, command="worker"):
    args = ["worker", "--burst"] if command == "worker" else [command, "--port", str(free_port())]
    return CliRunner().invoke(main, args, env=env)


def one_line(result) -> str:
    assert result.exit_code == 1, result.output
    *logged, line = result.output.strip().splitlines()  # serve logs its steps (JSON lines) before the error
    assert "Traceback" not in result.output and all(entry.startswith("{") for entry in logged), result.output
    return line


def test_a_host_of_the_fleet_starts_and_joins_it(host, runtime):
    assert start(host).exit_code == 0
    with runtime.sessions() as session:
        row = session.get(FleetRow, 1)
    assert row is not None and not row.generated_keys
    assert Redis.from_url(host["RELAY_REDIS_URL"]).get(fleet.redis_key("deliveries")).decode() == row.fleet_id
    assert start(host).exit_code == 0


@pytest.mark.parametrize("command", ["worker", "web", "serve"])
def test_a_host_whose_keys_cannot_read_the_fleets_secrets_is_refused(host, command):
    assert start(host).exit_code == 0
    line = one_line(start({**host, "RELAY_ENCRYPTION_KEYS": OTHER_KEY}, command))
    assert line.startswith("Error: RELAY_ENCRYPTION_KEYS: no key on this host can read the fleet's secrets")


def test_the_first_host_must_read_secrets_stored_before_the_check_existed(host, runtime):
    with runtime.sessions.begin() as session:
        save(session, runtime.vault, "slackToken", "xoxb-1", None)
    line = one_line(start({**host, "RELAY_ENCRYPTION_KEYS": OTHER_KEY}))
    assert line == ("Error: RELAY_ENCRYPTION_KEYS: no key on this host can read the stored secret 'slackToken'; "
                    "set the keys the fleet's secrets were encrypted with")
    assert start(host).exit_code == 0


def test_a_host_with_generated_keys_is_refused_when_the_fleet_has_real_ones(host, tmp_path):
    assert start(host).exit_code == 0
    env = {k: v for k, v in host.items() if k != "RELAY_ENCRYPTION_KEYS"}
    line = one_line(start(env))
    assert line == (f"Error: RELAY_ENCRYPTION_KEYS is not set on this host (it generated a key in {tmp_path / 'host'})"
                    " but the fleet uses real keys; set the fleet's keys here")


def test_a_generated_key_made_real_is_required_from_then_on(host, runtime):
    env = {k: v for k, v in host.items() if k != "RELAY_ENCRYPTION_KEYS"}
    assert start(env).exit_code == 0
    with runtime.sessions() as session:
        assert session.get(FleetRow, 1).generated_keys
    generated = (runtime.settings.data_dir.parent / "host" / "encryption.key").read_text().strip()
    assert start({**host, "RELAY_ENCRYPTION_KEYS": generated, "RELAY_DATA_DIR": host["RELAY_DATA_DIR"] + "2"}
                 ).exit_code == 0
    with runtime.sessions() as session:
        assert not session.get(FleetRow, 1).generated_keys
    assert "fleet uses real keys" in one_line(start({**env, "RELAY_DATA_DIR": host["RELAY_DATA_DIR"] + "3"}))


def test_rotated_keys_keep_the_check_readable(host, cli):
    assert start(host).exit_code == 0
    assert cli("keys", "rotate", keys=f"{OTHER_KEY},{TEST_KEYS[0]}").exit_code == 0
    assert start({**host, "RELAY_ENCRYPTION_KEYS": OTHER_KEY}).exit_code == 0
    assert "no key on this host" in one_line(start(host))


@pytest.mark.parametrize("command", ["worker", "web"])
def test_a_host_on_the_shared_redis_without_the_database_is_refused(host, tmp_path, command):
    assert start(host).exit_code == 0
    env = {k: v for k, v in host.items() if k != "RELAY_DATABASE_URL"}
    line = one_line(start(env, command))
    assert line == (f"Error: RELAY_DATABASE_URL: sqlite:///{tmp_path / 'host' / 'relay.db'} holds no Pact Relay "
                    "database; point this host at the fleet's database (a new relay creates one with "
                    "`pact-relay db upgrade`)")


def test_a_host_with_another_relays_database_on_the_shared_redis_is_refused(host, tmp_path, sqlite_template):
    import shutil

    assert start(host).exit_code == 0
    other = tmp_path / "other.db"
    shutil.copy(sqlite_template, other)
    line = one_line(start({**host, "RELAY_DATABASE_URL": f"sqlite:///{other}"}))
    assert line.startswith("Error: RELAY_DATABASE_URL and RELAY_REDIS_URL belong to different relays: ")


def test_a_host_with_the_fleets_database_and_another_relays_redis_is_refused(host, runtime, tmp_path,
                                                                             sqlite_template):
    import shutil

    other = tmp_path / "other.db"
    shutil.copy(sqlite_template, other)
    assert start({**host, "RELAY_DATABASE_URL": f"sqlite:///{other}"}).exit_code == 0  # that relay claims the Redis
    line = one_line(start(host))
    assert line.startswith("Error: RELAY_DATABASE_URL and RELAY_REDIS_URL belong to different relays: ")


def test_a_database_of_an_older_version_says_to_migrate(host, tmp_path):
    from sqlalchemy import create_engine, text

    old = tmp_path / "old.db"
    with create_engine(f"sqlite:///{old}").begin() as conn:
        conn.execute(text("CREATE TABLE deliveries (id TEXT)"))
    line = one_line(start({**host, "RELAY_DATABASE_URL": f"sqlite:///{old}"}))
    assert line.endswith("is not migrated to this version; run `pact-relay db upgrade`")


def test_a_separate_web_without_redis_is_refused(host):
    env = {k: v for k, v in host.items() if k != "RELAY_REDIS_URL"}
    line = one_line(start(env, "web"))
    assert line.startswith("Error: RELAY_REDIS_URL is not set and no embedded Redis is running in ")


def test_a_host_on_an_empty_redis_while_the_fleet_runs_elsewhere_is_refused(host, runtime, redis_server,
                                                                           worker_number):
    from dataclasses import replace

    from relay.runtime import Runtime

    assert start(host).exit_code == 0
    fleet_id = Redis.from_url(host["RELAY_REDIS_URL"]).get(fleet.redis_key("deliveries")).decode()
    worker = Runtime(replace(runtime.settings, fleet_heartbeat=0.3))
    running = fleet.keep(worker, fleet_id)  # a host of the fleet, alive on the shared Redis
    other = f"{redis_server}/{(worker_number + 7) % 15 + 1}"  # an empty Redis of its own
    Redis.from_url(other).flushdb()
    try:
        line = one_line(start({**host, "RELAY_DATA_DIR": host["RELAY_DATA_DIR"] + "-b", "RELAY_REDIS_URL": other,
                               "RELAY_FLEET_HEARTBEAT": "0.5"}))
    finally:
        running.set()
        worker.engine.dispose()
    assert line == ("Error: RELAY_REDIS_URL: the fleet's other hosts, running on this database, use another Redis "
                    "(this one stays empty); point every host at the same Redis")
    assert Redis.from_url(other).get(fleet.redis_key("deliveries")) is None


def test_a_host_restarted_at_once_after_a_crash_on_an_emptied_redis_starts(host):
    """Issue 23 #9: every process killed, Redis emptied, `serve` started again at once as a supervisor does: it was
    refused (blaming the configuration) until the fleet's heartbeat was old, about a minute."""
    assert start({**host, "RELAY_FLEET_HEARTBEAT": "5"}).exit_code == 0  # the fleet, now dead (a burst worker)
    shared = Redis.from_url(host["RELAY_REDIS_URL"])
    fleet_id = shared.get(fleet.redis_key("deliveries"))
    shared.flushdb()  # a restart without persistence, a failover to an empty replica
    result = start({**host, "RELAY_FLEET_HEARTBEAT": "5"})
    assert result.exit_code == 0, result.output
    assert shared.get(fleet.redis_key("deliveries")) == fleet_id


def test_other_hosts_that_stopped_beating_are_a_dead_fleet_not_a_wrong_redis(host, runtime):
    """Issue 23 #9: another host whose heartbeat is recent but no longer advancing is dead, not on another Redis."""
    assert start({**host, "RELAY_DATA_DIR": host["RELAY_DATA_DIR"] + "-b"}).exit_code == 0  # another host, gone
    shared = Redis.from_url(host["RELAY_REDIS_URL"])
    shared.flushdb()
    result = start({**host, "RELAY_FLEET_HEARTBEAT": "0.5"})
    assert result.exit_code == 0, result.output
    assert shared.get(fleet.redis_key("deliveries")) is not None


def test_an_emptied_redis_is_claimed_again_by_the_running_hosts_and_a_new_host_joins(host, runtime):
    from dataclasses import replace

    from relay.runtime import Runtime

    assert start(host).exit_code == 0
    shared = Redis.from_url(host["RELAY_REDIS_URL"])
    fleet_id = shared.get(fleet.redis_key("deliveries"))
    shared.flushdb()  # Redis restarted without persistence
    worker = Runtime(replace(runtime.settings, fleet_heartbeat=0.3))
    running = fleet.keep(worker, fleet_id.decode())  # a worker of the fleet, still running
    try:
        result = start({**host, "RELAY_FLEET_HEARTBEAT": "0.5"})  # waits for that worker to claim the Redis again
    finally:
        running.set()
        worker.engine.dispose()
    assert result.exit_code == 0, result.output
    assert shared.get(fleet.redis_key("deliveries")) == fleet_id
