"""Many hosts, one relay: 2 web and 3 worker hosts, each in a network namespace of its own, reach a PostgreSQL and
a Redis that this test starts on a virtual network. Under load a web host and a worker host are SIGKILLed, another
worker host is cut off the network for 10 s, and all come back; then every delivery is accounted for.

Opt-in (root, network namespaces, about two minutes): `python -m pytest -m slow tests/reliability/test_fleet_hosts.py
-s`. FLEET_EVENTS and FLEET_RATE change the load; the figures it prints are in docs/SCALING.md."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
import pytest
import requests

from relay.ops.embedded_redis import launch
from tests.conftest import TEST_KEYS
from tests.e2e.conftest import BIN, ROOT, Sink, wait_for
from tests.reliability.tools import Broker, metric_value

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

NET = "198.18.0"  # RFC 2544's range for testing network devices: no real host uses it
SERVICES = f"{NET}.1"  # PostgreSQL, Redis and the target, on the bridge in the test's own namespace
EVENTS = int(os.environ.get("FLEET_EVENTS", "300"))
RATE = float(os.environ.get("FLEET_RATE", "10"))  # events per second
LEASE = 4  # seconds: shorter than the cut, so the cut host's leases run out
CUT = 10.0
RETRY = 2  # RELAY_RETRY_SCHEDULE, seconds; every tenth version's first attempt is answered 500
LATE_LIMIT = 10.0  # seconds a due retry may start late on a shared 2-core machine


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
            pytest.skip(f"cannot make a network bridge here: {getattr(exc, 'stderr', '') or exc}")
        ip("addr", "add", f"{SERVICES}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add(self, name: str, number: int) -> tuple[str, str]:
        ns, outside, inside = f"prf{self.tag}-{name}", f"prh{self.tag}{number}", f"prn{self.tag}{number}"
        try:
            ip("netns", "add", ns)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"the kernel refuses network namespaces here: {exc.stderr.strip()}")
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
            pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql")
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


@pytest.fixture
def fleet(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    net = Network()
    started: list = []
    try:
        hosts = {name: net.add(name, n) for n, name in enumerate(["web1", "web2", "worker1", "worker2", "worker3"])}
        pg = Postgres()
        started.append(pg)
        redis_dir = tmp_path / "redis"
        redis_dir.mkdir()
        from redis import Redis

        redis = launch(["--port", "56379", "--bind", SERVICES, "--protected-mode", "no"], redis_dir,
                       Redis(host=SERVICES, port=56379, socket_connect_timeout=1), timeout=20)
        started.append(redis)
        yield net, hosts, pg, f"redis://{SERVICES}:56379/0"
    finally:
        for thing in reversed(started):
            if isinstance(thing, Postgres):
                thing.stop()
            else:
                thing.terminate()
                thing.wait(10)
        net.close()


def paced(broker: Broker, versions: list[str], rate: float, threads: int = 6) -> threading.Thread:
    """Send event i at start + i / rate (the broker retries each on errors), in the background."""
    start = time.monotonic()

    def send(chunk: list[tuple[int, str]]) -> None:
        for i, version in chunk:
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            broker.send(version, give_up_after=180)

    indexed = list(enumerate(versions))
    senders = [threading.Thread(target=send, args=(indexed[k::threads],)) for k in range(threads)]

    def run() -> None:
        for s in senders:
            s.start()
        for s in senders:
            s.join()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.timeout(900)
def test_two_web_and_three_worker_hosts_lose_nothing_through_kills_and_a_network_cut(fleet, tmp_path):
    net, addresses, pg, redis_url = fleet
    env = {**os.environ, "RELAY_DATABASE_URL": pg.url, "RELAY_REDIS_URL": redis_url,
           "RELAY_ENCRYPTION_KEYS": TEST_KEYS[0], "RELAY_SECRET_KEY": "fleet-test-secret",
           "RELAY_ALLOW_PRIVATE_NETWORKS": "true", "RELAY_LEASE_SECONDS": str(LEASE), "RELAY_SWEEP_INTERVAL": "1",
           "RELAY_SWEEP_GRACE": "1", "RELAY_RETRY_SCHEDULE": " ".join([str(RETRY)] * 6), "RELAY_RATE_LIMIT": "0",
           "RELAY_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), "RELAY_DATA_DIR": str(tmp_path / "admin")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    admin = lambda *args: subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    assert admin("db", "upgrade").returncode == 0
    token = admin("tokens", "create", "--name", "fleet", "--role", "admin").stdout.strip()
    hosts = {name: Host(name, n, ns, address, env, tmp_path)
             for n, (name, (ns, address)) in enumerate(addresses.items())}
    for host in hosts.values():
        host.start()
    for host in hosts.values():
        wait_for(host.ready, timeout=120, what=f"{host.name} ready (log: {host.log})")

    failed_first: set[str] = set()

    def behaviour(n: int, req: dict) -> tuple[int, float]:  # a 100 ms target; every tenth version fails once
        version = json.loads(req["body"])["version"]
        if version.endswith("0") and version not in failed_first:
            failed_first.add(version)
            req["status"] = 500
            return 500, 0.1
        req["status"] = 200
        return 200, 0.1

    sink = Sink(host=SERVICES)
    sink.behaviour = behaviour
    front = Front([hosts["web1"], hosts["web2"]], token)
    resp = requests.post(f"{hosts['web1'].url}/webhooks", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                         json={"description": "fleet", "events": [{"name": "contract_published"}],
                               "request": {"method": "POST", "url": sink.url + "/hook", "sign": True,
                                           "headers": {"Content-Type": "application/json"},
                                           "body": {"version": "${pactbroker.consumerVersionNumber}"}}})
    assert resp.status_code == 201, resp.text

    broker = Broker(front)
    versions = [f"9.0.{i}" for i in range(EVENTS)]
    began, began_at = time.monotonic(), time.time()
    sending = paced(broker, versions, RATE)
    faults: dict[str, float] = {}
    lease_lost = 0.0
    try:
        wait_for(lambda: len(broker.accepted) >= EVENTS * 0.2, timeout=120, what="20% accepted")
        hosts["web1"].kill()
        faults["web1 killed"] = time.time()
        time.sleep(3)
        hosts["web1"].start()

        wait_for(lambda: len(sink.requests) >= EVENTS * 0.35, timeout=120, what="35% arrived")
        lease_lost += metric_value(hosts["worker1"].metrics(), "pact_relay_delivery_attempts_total",
                                   result="lease-lost")
        hosts["worker1"].kill()
        faults["worker1 killed"] = time.time()
        time.sleep(3)
        hosts["worker1"].start()

        wait_for(lambda: len(sink.requests) >= EVENTS * 0.5, timeout=120, what="50% arrived")
        net.cut(hosts["worker2"].number, up=False)
        faults["worker2 cut"] = time.time()
        time.sleep(CUT)
        net.cut(hosts["worker2"].number, up=True)
        faults["worker2 back"] = time.time()

        sending.join(300)
        assert not sending.is_alive() and broker.unexpected == [], broker.unexpected[:5]
        assert set(broker.accepted) == set(versions)
        sent_in = time.monotonic() - began

        def statuses() -> Counter:
            with psycopg.connect(pg.url) as conn:
                return Counter(dict(conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status")))

        wait_for(lambda: statuses() == Counter({"succeeded": EVENTS}), timeout=240,
                 what=lambda: f"every row final: {statuses()}")
        done_in = time.monotonic() - began
        for name in ("worker1", "worker2", "worker3"):
            wait_for(hosts[name].ready, timeout=60, what=f"{name} back")
            lease_lost += metric_value(hosts[name].metrics(), "pact_relay_delivery_attempts_total",
                                       result="lease-lost")
        with psycopg.connect(pg.url) as conn:
            attempts = conn.execute("SELECT d.id, a.number, a.at FROM attempts a JOIN deliveries d "
                                    "ON d.id = a.delivery_id ORDER BY d.id, a.number").fetchall()
    finally:
        for host in hosts.values():
            host.kill(signal.SIGTERM)
        sink.close()

    # 0 lost: every version reached the target and was answered 200.
    assert {json.loads(r["body"])["version"] for r in sink.requests if r.get("status") == 200} == set(versions)

    # Every send is either a recorded attempt or an explained repeat.
    recorded: dict[str, list[float]] = defaultdict(list)
    for delivery, _number, at in attempts:
        recorded[delivery].append(at.timestamp())
    by_delivery: dict[str, list[dict]] = defaultdict(list)
    for r in sink.requests:
        by_delivery[r["headers"]["webhook-id"]].append(r)
    assert set(by_delivery) == set(recorded)
    worker_of = {h.address: h.name for h in hosts.values()}
    reasons: Counter = Counter()
    on_lost_lease: list[str] = []
    for delivery, sends in by_delivery.items():
        spare = sorted(sends, key=lambda r: r["at"])
        for at in sorted(recorded[delivery]):  # each recorded attempt takes the arrival nearest before its record
            match = min(spare, key=lambda r, at=at: abs(at - r["at"]))
            spare.remove(match)
        for extra in spare:
            host, started = worker_of.get(extra["client"], extra["client"]), int(extra["headers"]["webhook-timestamp"])
            if host == "worker1" and started <= faults["worker1 killed"]:
                reasons["in flight when its host was killed"] += 1
            elif host == "worker2" and faults["worker2 cut"] - LEASE - 1 <= started < faults["worker2 cut"] + LEASE:
                reasons["in flight when its host was cut off; its lease ran out"] += 1
            elif host == "worker2" and faults["worker2 cut"] <= started <= faults["worker2 back"] + LEASE:
                on_lost_lease.append(f"{delivery} started at {started} by the cut host")
            else:
                reasons["finished after its lease ran out on a loaded machine"] += 1
    assert on_lost_lease == []  # the cut host never sent on a lease it had lost
    assert reasons["finished after its lease ran out on a loaded machine"] <= lease_lost, (reasons, lease_lost)

    # Due retries on time: the second attempt of each delivery whose first was answered 500. A retry that fell due
    # while the host holding it (or RQ's scheduler lock) was killed or cut off waits for the lease to run out.
    outages = [(faults["worker1 killed"] - 1, faults["worker1 killed"] + 10),
               (faults["worker2 cut"] - 1, faults["worker2 back"] + LEASE)]
    late, late_in_outage = [], []
    for times in (sorted(v) for v in recorded.values() if len(v) > 1):
        due = times[0] + RETRY
        (late_in_outage if any(a <= due <= b for a, b in outages) else late).append(times[1] - due)
    assert len(late) + len(late_in_outage) == len([v for v in versions if v.endswith("0")])
    assert min(late + late_in_outage) >= -0.5  # never early
    assert max(late, default=0) <= LATE_LIMIT and max(late_in_outage, default=0) <= CUT + LEASE + LATE_LIMIT, \
        (sorted(late), sorted(late_in_outage))
    print(f"\nfleet: 2 web + 3 worker hosts, {EVENTS} events at {RATE:g}/s; accepted in {sent_in:.1f}s, all final "
          f"in {done_in:.1f}s; broker answers {dict(broker.answers)}; sends {len(sink.requests)}, recorded "
          f"attempts {len(attempts)}, lost 0; repeats {dict(reasons)}; lease-lost counted {lease_lost:.0f}; "
          f"retries late by median {statistics.median(late):.2f}s, max {max(late, default=0):.2f}s "
          f"({len(late)}), due during an outage: max {max(late_in_outage, default=0):.2f}s ({len(late_in_outage)}); "
          f"faults at "
          f"{ {k: round(v - began_at, 1) for k, v in faults.items()} }s")

