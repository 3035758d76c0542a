"""Hosts on a virtual network for the fleet tests and figures: a bridge, one network namespace per relay process,
and a PostgreSQL server of the test's own on the bridge (the machine's listens on loopback only)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from redis import Redis

from relay.ops.embedded_redis import launch
from tests.conftest import TEST_KEYS
from tests.e2e.conftest import BIN, ROOT

NET = "198.18.0"  # RFC 2544's range for testing network devices: no real host uses it
SERVICES = f"{NET}.1"  # PostgreSQL, Redis and the target, on the bridge in the test's own namespace


class Unavailable(Exception):
    """This machine cannot make the virtual network (not root, or the kernel refuses); the message says why."""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Network:
    """A bridge in this namespace holding SERVICES, and one namespace per host joined to it by a veth pair."""

    def __init__(self):
        self.tag = str(os.getpid() % 100000)
        self.bridge = f"prf{self.tag}"
        self.namespaces: list[str] = []
        try:
            ip("link", "add", self.bridge, "type", "bridge")
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            raise Unavailable(f"cannot make a network bridge here: {getattr(exc, 'stderr', '') or exc}")
        ip("addr", "add", f"{SERVICES}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add(self, name: str, number: int) -> tuple[str, str]:
        ns, outside, inside = f"prf{self.tag}-{name}", f"prh{self.tag}{number}", f"prn{self.tag}{number}"
        try:
            ip("netns", "add", ns)
        except subprocess.CalledProcessError as exc:
            raise Unavailable(f"the kernel refuses network namespaces here: {exc.stderr.strip()}")
        self.namespaces.append(ns)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", ns)
        ip("link", "set", outside, "master", self.bridge, "up")
        address = f"{NET}.{10 + number}"
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", inside)
        ip("-n", ns, "link", "set", inside, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        return ns, address

    def cut(self, number: int, up: bool) -> None:
        ip("link", "set", f"prh{self.tag}{number}", "up" if up else "down")

    def close(self) -> None:
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class Postgres:
    """A PostgreSQL server of the test's own listening on the bridge (the machine's listens on loopback only)."""

    def __init__(self, port: int = 55432):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise Unavailable("no PostgreSQL server binaries in /usr/lib/postgresql")
        self.bin = bins[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="relay-fleet-pg-"))
        owner = pwd.getpwnam("postgres")
        os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._as_postgres("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        with (self.dir / "data" / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {NET}.0/24 trust\n")  # the hosts of the virtual network only
        options = (f"-c listen_addresses={SERVICES} -p {port} -k {self.dir} -c max_connections=300 "
                   "-c fsync=off -c synchronous_commit=off")
        self._as_postgres("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-o", options, "-w",
                          "start")
        self.url = f"postgresql://postgres@{SERVICES}:{port}/postgres"

    def _as_postgres(self, program: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / program), *args], check=True,
                       capture_output=True, timeout=120)

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class Host:
    """One relay process (`pact-relay web` or `worker`) as the only thing running in its namespace."""

    def __init__(self, name: str, number: int, ns: str, address: str, env: dict[str, str], logs: Path):
        self.name, self.number, self.ns, self.address = name, number, ns, address
        self.role = "web" if name.startswith("web") else "worker"
        self.env = {**env, "RELAY_DATA_DIR": str(logs / name)}
        if self.role == "worker":
            self.env |= {"RELAY_METRICS_PORT": "9100", "RELAY_METRICS_HOST": address}
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{8000 if self.role == 'web' else 9100}"

    def start(self) -> Host:
        args = ["web", "--host", self.address, "--port", "8000", "--web-workers", "2"] if self.role == "web" \
            else ["worker"]
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, BIN, *args], env=self.env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            path = "/readyz" if self.role == "web" else "/metrics"
            return requests.get(self.url + path, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=5).text

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Front:
    """What a load balancer does for the broker: each try goes to the next web host."""

    def __init__(self, hosts: list[Host], token: str):
        self.hosts, self.token, self.turn = hosts, token, 0

    @property
    def url(self) -> str:
        self.turn += 1
        return self.hosts[self.turn % len(self.hosts)].url

    def admin_token(self) -> str:
        return self.token


@contextmanager
def services(tmp: Path, names: list[str]) -> Iterator[tuple[Network, dict[str, tuple[str, str]], str, str]]:
    """The network with a namespace per name, and PostgreSQL and Redis on the bridge: (network, {name: (namespace,
    address)}, database URL, Redis URL). Everything is stopped and removed on the way out."""
    if os.geteuid() != 0:
        raise Unavailable("network namespaces need root")
    net = Network()
    stops: list = []
    try:
        addresses = {name: net.add(name, n) for n, name in enumerate(names)}
        pg = Postgres()
        stops.append(pg.stop)
        (tmp / "redis").mkdir(parents=True, exist_ok=True)
        redis = launch(["--port", "56379", "--bind", SERVICES, "--protected-mode", "no"], tmp / "redis",
                       Redis(host=SERVICES, port=56379, socket_connect_timeout=1), timeout=20)
        stops.append(lambda: (redis.terminate(), redis.wait(10)))
        yield net, addresses, pg.url, f"redis://{SERVICES}:56379/0"
    finally:
        for stop in reversed(stops):
            stop()
        net.close()


def relay_env(tmp: Path, database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """The environment every host of the fleet shares (each Host adds its own data directory)."""
    env = {**os.environ, "RELAY_DATABASE_URL": database_url, "RELAY_REDIS_URL": redis_url,
           "RELAY_ENCRYPTION_KEYS": TEST_KEYS[0], "RELAY_SECRET_KEY": "fleet-test-secret",
           "RELAY_ALLOW_PRIVATE_NETWORKS": "true", "RELAY_RATE_LIMIT": "0", "RELAY_LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT), "RELAY_DATA_DIR": str(tmp / "admin"), **settings}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def admin_token(env: dict[str, str]) -> str:
    """Migrate the fleet's database and make an admin token, as an operator would from any machine."""
    def run(*args: str) -> str:
        done = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    run("db", "upgrade")
    return run("tokens", "create", "--name", "fleet", "--role", "admin")


def signed_webhook(web_url: str, token: str, target: str) -> None:
    resp = requests.post(f"{web_url}/webhooks", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                         json={"description": "fleet", "events": [{"name": "contract_published"}],
                               "request": {"method": "POST", "url": target, "sign": True,
                                           "headers": {"Content-Type": "application/json"},
                                           "body": {"version": "${pactbroker.consumerVersionNumber}"}}})
    assert resp.status_code == 201, resp.text
