"""RELAY_REDIS_URL=redis+sentinel://...: web and a running worker follow the primary through a failover."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis

from relay.config import ConfigError
from relay.ops.embedded_redis import server_binary
from relay.runtime import redis_client
from tests.conftest import TEST_KEYS, free_port, make_settings, sample_event
from tests.e2e.conftest import BIN, ROOT, wait_for

NAME = "relaytest"


class RedisGroup:
    """A primary, a replica and one Sentinel (quorum 1) on loopback, as separate server processes."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.ports = {"primary": free_port(), "replica": free_port(), "sentinel": free_port()}
        self.procs: dict[str, subprocess.Popen] = {}
        self._server("primary")
        self._server("replica", "--replicaof", "127.0.0.1", str(self.ports["primary"]))
        conf = tmp / "sentinel.conf"
        conf.write_text(f"port {self.ports['sentinel']}\nbind 127.0.0.1\ndir {tmp}\n"
                        f"sentinel monitor {NAME} 127.0.0.1 {self.ports['primary']} 1\n"
                        f"sentinel down-after-milliseconds {NAME} 1000\n"
                        f"sentinel failover-timeout {NAME} 5000\n")
        self.procs["sentinel"] = subprocess.Popen([server_binary(), str(conf), "--sentinel"],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sentinel = Redis(port=self.ports["sentinel"], socket_connect_timeout=1, decode_responses=True)
        wait_for(lambda: self._replica_known(sentinel), timeout=30, what="the Sentinel to see primary and replica")
        self.sentinel = sentinel
        self.url = f"redis+sentinel://127.0.0.1:{self.ports['sentinel']}/{NAME}/1"

    def _server(self, role: str, *extra: str) -> None:
        port = self.ports[role]
        self.procs[role] = subprocess.Popen(
            [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _pings(port), timeout=20, what=f"the {role} Redis")

    @staticmethod
    def _replica_known(sentinel: Redis) -> bool:
        try:
            replicas = sentinel.execute_command("SENTINEL", "REPLICAS", NAME)
        except Exception:
            return False
        return any("s_down" not in str(r) and "master_link_status" in str(r) and "'ok'" in str(r)
                   or (isinstance(r, dict) and r.get("master-link-status") == "ok") for r in replicas)

    def primary_port(self) -> int:
        return int(self.sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME)[1])

    def kill_primary(self) -> None:
        self.procs["primary"].send_signal(signal.SIGKILL)
        self.procs["primary"].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def _pings(port: int) -> bool:
    try:
        return Redis(port=port, socket_connect_timeout=0.5).ping()
    except Exception:
        return False


@pytest.fixture
def redis_group(tmp_path):
    group = RedisGroup(tmp_path / "redis")
    yield group
    group.stop()


@pytest.fixture
def settings(tmp_path, database_url, redis_group):  # the app and its runtime use the Sentinel URL
    return make_settings(tmp_path, database_url, redis_group.url)


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path, sqlite_template):
    import shutil

    path = tmp_path / "relay.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"




@pytest.mark.e2e  # starts Redis servers and Sentinels
def test_a_worker_and_the_web_follow_the_primary_through_a_failover(api, httpserver, settings, redis_group,
                                                                     tmp_path):
    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post("/webhooks", json={"events": [{"name": "contract_published"}],
                                "request": {"method": "POST", "url": httpserver.url_for("/hook")}})
    env = {**os.environ, "RELAY_DATA_DIR": str(tmp_path / "worker"), "RELAY_DATABASE_URL": settings.database_url,
           "RELAY_REDIS_URL": settings.redis_url, "RELAY_ENCRYPTION_KEYS": TEST_KEYS[0],
           "RELAY_ALLOW_PRIVATE_NETWORKS": "true", "RELAY_LOG_LEVEL": "WARNING", "RELAY_SWEEP_INTERVAL": "1",
           "RELAY_SWEEP_GRACE": "1", "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([BIN, "worker"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        assert api.post("/events", json=sample_event("contract_published") | {"consumerVersionNumber": "1"}
                        ).status_code == 202
        wait_for(lambda: len(httpserver.log) == 1, timeout=60, what=lambda: f"delivery 1 ({log.read_text()})")
        first = redis_group.primary_port()
        redis_group.kill_primary()
        wait_for(lambda: redis_group.primary_port() != first, timeout=30, what="the Sentinel to fail over")
        for n in (2, 3):
            assert api.post("/events", json=sample_event("contract_published") | {"consumerVersionNumber": str(n)}
                            ).status_code == 202
        wait_for(lambda: len(httpserver.log) == 3, timeout=60, what=lambda: f"deliveries 2, 3 ({log.read_text()})")
        assert worker.poll() is None, log.read_text()  # the same worker process: it followed the new primary
        time.sleep(0.5)
        assert len(httpserver.log) == 3  # nothing sent twice
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.send_signal(signal.SIGABRT)
            worker.wait(10)
            raise AssertionError(log.read_text()[-6000:]) from None


@pytest.mark.parametrize("url", ["redis+sentinel://h1/", "redis+sentinel:///relay", "redis+sentinel://h1/r/x"])
def test_a_bad_sentinel_url_names_the_setting(url):
    with pytest.raises(ConfigError, match="^RELAY_REDIS_URL: a Sentinel URL looks like"):
        redis_client(url)
