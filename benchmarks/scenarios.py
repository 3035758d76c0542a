"""The seven scenarios, each measuring the relay and the bare stack it stands on in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import stack
from benchmarks.stats import percentiles, steady_rate

EVENT = {
    "eventName": "contract_published", "consumerName": "Matching Service", "providerName": "Animal Profile Service",
    "consumerVersionNumber": "@SEQ@", "consumerVersionBranch": "main", "consumerVersionTags": "prod",
    "consumerLabels": "web", "pactUrl": "https://broker.example.com/pacts/provider/Animal%20Profile%20Service/"
    "consumer/Matching%20Service/pact-version/5d445a4612743728dfd99ccd4210423c052bb9db",
    "githubVerificationStatus": "pending", "buildUrl": "https://ci.example.com/builds/1234",
}
BADGE_PATH = "/pacts/provider/Animal%20Profile%20Service/consumer/Matching%20Service/latest/badge"


@dataclass
class Sizes:
    """How much load each scenario puts on; --quick shrinks everything, --scale shrinks further."""

    duration: float = 10.0
    levels: tuple[int, ...] = (1, 4, 16)
    deliveries: int = 4000
    worker_counts: tuple[int, ...] = (2, 4, 8)
    latency_rates: tuple[int, ...] = (50, 100, 200)
    latency_seconds: float = 20.0
    fanout: tuple[int, ...] = (10, 100, 1000)
    storm_seconds: float = 60.0
    storm_rate: int = 50
    slow_fanout: int = 1000
    dead_pending: int = 500
    healthy_seconds: float = 10.0
    in_flight: int = 500

    @classmethod
    def make(cls, quick: bool, scale: float) -> Sizes:
        s = cls(duration=3.0, deliveries=1000, latency_seconds=5.0, storm_seconds=8.0, storm_rate=40) if quick \
            else cls()
        if scale != 1.0:
            s.duration = max(0.5, s.duration * scale)
            s.deliveries = max(20, int(s.deliveries * scale))
            s.latency_seconds = max(0.5, s.latency_seconds * scale)
            s.fanout = tuple(max(2, int(n * scale)) for n in s.fanout)
            s.storm_seconds = max(1.0, s.storm_seconds * scale)
            s.slow_fanout = max(10, int(s.slow_fanout * scale))
            s.dead_pending = max(10, int(s.dead_pending * scale))
            s.healthy_seconds = max(1.0, s.healthy_seconds * scale)
            s.in_flight = max(10, int(s.in_flight * scale))
        return s


@dataclass
class Row:
    scenario: int
    name: str
    db: str
    level: str
    metric: str
    unit: str
    relay: float | None
    bare: float | None = None
    goal: str = ""
    met: bool | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.relay is None or not self.bare:
            return None
        return round(self.relay / self.bare, 3)

    def to_dict(self) -> dict:
        return {**self.__dict__, "ratio": self.ratio}


@dataclass
class Bench:
    sizes: Sizes
    run_dir: Path
    redis_url: str
    pg_admin_url: str
    web_workers: int = 2
    threads: int = 4
    rows: list[Row] = field(default_factory=list)
    bare_cache: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    root: Path = stack.ROOT  # the checkout whose relay runs (`--checkout`)

    def __post_init__(self) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.procs = stack.Processes(self.run_dir / "logs")
        self.sink = stack.Sink(self.procs, self.run_dir)

    def close(self) -> None:
        self.procs.stop_all()

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def relay(self, db: str, url: str, **env) -> stack.Relay:
        stack.flush_redis(self.redis_url)
        relay = stack.Relay(self.procs, self.run_dir / f"data-{db}", url, self.redis_url, self.web_workers,
                            self.threads, {k: str(v) for k, v in env.items()}, root=self.root)
        relay.prepare()
        return relay

    def load(self, spec: dict) -> dict:
        """Run the loader in its own process on 127.0.0.1 and return its JSON."""
        stamp = time.monotonic_ns()
        spec_path, out_path = self.run_dir / f"load-{stamp}.json", self.run_dir / f"load-{stamp}.out.json"
        spec_path.write_text(json.dumps({"host": "127.0.0.1", **spec}))
        subprocess.run([sys.executable, "-m", "benchmarks.loader", str(spec_path), str(out_path)],
                       env=stack.child_env(), cwd=stack.ROOT, check=True)
        result = json.loads(out_path.read_text())
        spec_path.unlink()
        out_path.unlink()
        return result

    def events_spec(self, port: int, token: str | None, run: str) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return {"port": port, "method": "POST", "path": "/events", "headers": headers, "body": json.dumps(EVENT),
                "run": run, "expect": [202]}

    def hook(self, index: int = 0, prefix: str = "", consumer: str | None = None) -> dict:
        """A webhook to the sink; `prefix` picks its behaviour there (`/slow/250`, `/dead`)."""
        hook = {"description": f"bench {index}", "events": [{"name": "contract_published"}],
                "request": {"method": "POST",
                            "url": f"{self.sink.base}{prefix}/hook/{index}?v=${{pactbroker.consumerVersionNumber}}",
                            "headers": {"Content-Type": "application/json"},
                            "body": {"event": "${pactbroker.eventName}", "consumer": "${pactbroker.consumerName}",
                                     "version": "${pactbroker.consumerVersionNumber}"}}}
        if consumer:
            hook["consumer"] = {"name": consumer}
        return hook

    def hooks(self, relay: stack.Relay, indexes, **kwargs) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: relay.api("POST", "/webhooks", self.hook(i, **kwargs)), indexes))

    def bare_web(self):
        port = stack.free_port()
        proc = self.procs.start("bare-web", stack.bare_gunicorn_argv(port, self.redis_url, self.web_workers,
                                                                     self.threads), stack.child_env())
        stack.wait_http(f"http://127.0.0.1:{port}{BADGE_PATH}", proc=proc)
        return proc, port


# 1. Intake throughput ------------------------------------------------------------------------------------------

def intake(bench: Bench, db: str, url: str) -> None:
    s = bench.sizes
    if "intake" not in bench.bare_cache:
        stack.flush_redis(bench.redis_url)
        proc, port = bench.bare_web()
        bare = {}
        for c in s.levels:
            bare[c] = bench.load({**bench.events_spec(port, None, f"bare{c}"), "concurrency": c,
                                  "duration": s.duration, "expect": [202]})
        bench.bare_cache["intake"] = bare
        bench.procs.stop(proc)
    bare = bench.bare_cache["intake"]
    relay = bench.relay(db, url)
    relay.start_web()
    relay.api("POST", "/webhooks", bench.hook(0))
    for c in s.levels:
        result = bench.load({**bench.events_spec(relay.port, relay.token, f"i{c}"), "concurrency": c,
                             "duration": s.duration})
        best = c == s.levels[-1]
        bench.add(Row(1, "intake", db, f"{c} connections", "accepted events/s", "ev/s", round(result["rps"], 1),
                      round(bare[c]["rps"], 1), "≥60% of bare and ≥1000/s" if best else "",
                      (result["rps"] >= 1000 and result["rps"] >= 0.6 * bare[c]["rps"]) if best else None,
                      f"p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms "
                      f"(bare p50 {bare[c]['latency_ms']['p50']} ms); statuses {result['statuses']}"))
    bench.memory.setdefault(db, {})["web_after_intake"] = web_memory(relay.web.pid)
    relay.stop()


def web_memory(pid: int) -> dict:
    tree = stack.process_tree(pid)
    return {"master": stack.memory(pid), "workers": [stack.memory(p) for p in tree[1:]]}


# 2. Delivery throughput (and 6. memory) -----------------------------------------------------------------------

def bare_rq(bench: Bench, workers: int, count: int) -> dict:
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer
    from rq.suspension import resume, suspend

    stack.flush_redis(bench.redis_url)
    redis = Redis.from_url(bench.redis_url)
    procs = [bench.procs.start(f"bare-worker-{i + 1}", [sys.executable, "-m", "benchmarks.bare", "--redis-url",
                                                        bench.redis_url, "--queue", "bare"], stack.child_env())
             for i in range(workers)]
    stack.wait_workers(bench.redis_url, workers, procs)
    time.sleep(0.3)
    idle = [stack.memory(p.pid) for p in procs]
    suspend(redis)
    q = Queue("bare", connection=redis, serializer=JSONSerializer)
    q.enqueue_many([Queue.prepare_data("benchmarks.bare.noop", job_id=f"noop-{i}", result_ttl=0, timeout=60)
                    for i in range(count)])
    time.sleep(1.5)  # every worker has taken at most one job and now waits on the suspension flag
    samples = []
    resume(redis)
    while True:
        left = q.count
        samples.append((time.monotonic(), left))
        if left == 0:
            break
        time.sleep(0.005)
    # Jobs dequeued at each sample time stand in for completion times (a no-op finishes as it is taken).
    done_times = []
    total = samples[0][1]
    for t, left in samples:
        done_times += [t] * (total - left - len(done_times))
    peak = [stack.memory(p.pid) for p in procs]
    for p in procs:
        bench.procs.stop(p)
    redis.close()
    return {"rate": steady_rate(done_times), "idle": idle, "peak": peak, "count": count}


def delivery(bench: Bench, db: str, url: str) -> None:
    from redis import Redis
    from rq.suspension import resume, suspend

    s = bench.sizes
    relay = bench.relay(db, url)
    relay.start_web()
    relay.api("POST", "/webhooks", bench.hook(0))
    mem = bench.memory.setdefault(db, {})
    mem["web_idle"] = web_memory(relay.web.pid)
    redis = Redis.from_url(bench.redis_url)
    for w in s.worker_counts:
        key = f"rq{w}"
        if key not in bench.bare_cache:
            bench.bare_cache[key] = bare_rq(bench, w, s.deliveries)
        bare = bench.bare_cache[key]
        stack.flush_redis(bench.redis_url)
        relay.start_workers(w)
        time.sleep(0.3)
        idle = [stack.memory(p.pid) for p in relay.workers]
        suspend(redis)
        bench.sink.control("reset")
        bench.load({**bench.events_spec(relay.port, relay.token, f"d{w}"), "concurrency": 8, "count": s.deliveries,
                    "duration": 600, "warmup": 0})
        time.sleep(1.5)
        resume(redis)
        stats = bench.sink.wait_for(s.deliveries, timeout=60 + s.deliveries / 20)
        arrivals = bench.sink.arrivals(bench.run_dir / "arrivals.json")
        rate = steady_rate([a[0] for a in arrivals])
        peak = [stack.memory(p.pid) for p in relay.workers]
        mem[f"workers_{w}"] = {"idle": idle, "peak": peak, "bare_idle": bare["idle"], "bare_peak": bare["peak"]}
        best = w == max(s.worker_counts)
        bench.add(Row(2, "delivery", db, f"W={w}", "deliveries queue → sink", "/s", round(rate or 0, 1),
                      round(bare["rate"] or 0, 1), "≥60% of bare RQ; ≥400/s at best W" if best else "",
                      None, f"{stats['ok']}/{s.deliveries} delivered"))
        relay.stop_workers()
    mem["web_after_intake"] = web_memory(relay.web.pid)
    relay.stop()
    redis.close()
    rows = [r for r in bench.rows if r.scenario == 2 and r.db == db]
    best = max(rows, key=lambda r: r.relay or 0)
    best.goal = "≥60% of bare RQ; ≥400/s at best W"
    best.met = (best.relay or 0) >= 400 and (best.ratio or 0) >= 0.6
    for r in rows:
        if r is not best:
            r.goal, r.met = "", None


def memory(bench: Bench, db: str, url: str) -> None:
    if db not in bench.memory or not any(k.startswith("workers_") for k in bench.memory[db]):
        delivery(bench, db, url)
        bench.rows = [r for r in bench.rows if not (r.scenario == 2 and r.db == db)]
    mem = bench.memory[db]

    def worst(items, key):
        return max(i[key] for i in items) if items else None

    first = f"workers_{bench.sizes.worker_counts[0]}"
    bench.add(Row(6, "memory", db, "idle", "RSS per worker", "MB", worst(mem[first]["idle"], "rss_mb"),
                  worst(mem[first]["bare_idle"], "rss_mb"), "≤80 MB per idle worker",
                  worst(mem[first]["idle"], "rss_mb") <= 80))
    for w in bench.sizes.worker_counts:
        m = mem[f"workers_{w}"]
        bench.add(Row(6, "memory", db, f"under delivery, W={w}", "peak RSS per worker", "MB",
                      worst(m["peak"], "peak_mb"), worst(m["bare_peak"], "peak_mb")))
    for label, key in (("web idle", "web_idle"), ("web after load", "web_after_intake")):
        web = mem.get(key)
        if web:
            bench.add(Row(6, "memory", db, label, "peak RSS per web worker (master)", "MB",
                          worst(web["workers"], "peak_mb"), None, notes=f"master {web['master']['peak_mb']} MB"))


# 3. End-to-end latency -----------------------------------------------------------------------------------------

def latency(bench: Bench, db: str, url: str, workers: int = 2) -> None:
    s = bench.sizes
    relay = bench.relay(db, url)
    relay.start_web()
    relay.api("POST", "/webhooks", bench.hook(0))
    relay.start_workers(workers)
    for rate in s.latency_rates:
        bench.sink.control("reset")
        count = max(5, int(rate * s.latency_seconds))
        run = f"l{rate}"
        result = bench.load({**bench.events_spec(relay.port, relay.token, run), "rate": rate, "count": count,
                             "connections": 8})
        bench.sink.wait_for(count, timeout=30 + count / 20, settle=0.2)
        arrivals = {target.rsplit("v=", 1)[-1]: t for t, target, status in
                    bench.sink.arrivals(bench.run_dir / "arrivals.json") if status < 300}
        lat = [max(0.0, arrivals[k] - t) * 1000 for k, t in result["responses"].items() if k in arrivals]
        p = percentiles(lat)
        goal = rate == 50
        bench.add(Row(3, "latency", db, f"{rate} ev/s", "intake response → sink p50", "ms", p["p50"], None,
                      "p50 ≤ 20 ms" if goal else "", (p["p50"] or 1e9) <= 20 if goal else None,
                      f"p95 {p['p95']}, p99 {p['p99']}, max {p['max']} ms; {p['n']}/{count} arrived; "
                      f"intake p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms"))
        bench.add(Row(3, "latency", db, f"{rate} ev/s", "intake response → sink p99", "ms", p["p99"], None,
                      "p99 ≤ 100 ms" if goal else "", (p["p99"] or 1e9) <= 100 if goal else None))
    relay.stop()


# 4. Fan-out ----------------------------------------------------------------------------------------------------

def fanout(bench: Bench, db: str, url: str, workers: int = 4) -> None:
    from concurrent.futures import ThreadPoolExecutor

    s = bench.sizes
    relay = bench.relay(db, url)
    relay.start_web()
    relay.start_workers(workers)
    made = 0
    for level in s.fanout:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: relay.api("POST", "/webhooks", bench.hook(i)), range(made, level)))
        made = level
        bench.sink.control("reset")
        run = f"f{level}"
        result = bench.load({**bench.events_spec(relay.port, relay.token, run), "rate": 1, "count": 1,
                             "connections": 1})
        responded = result["responses"][f"{run}-0"]
        stats = bench.sink.wait_for(level, timeout=60 + level / 10)
        arrivals = [t for t, _, status in bench.sink.arrivals(bench.run_dir / "arrivals.json") if status < 300]
        all_in = (max(arrivals) - responded) if len(arrivals) >= level else None
        goal = level == max(s.fanout)
        intake_ms = result["latency_ms"]["max"]
        bench.add(Row(4, "fan-out", db, f"{level} webhooks", "intake response time", "ms", intake_ms, None,
                      "≤ 250 ms at 1000" if goal else "", intake_ms <= 250 if goal and level >= 1000 else None))
        bench.add(Row(4, "fan-out", db, f"{level} webhooks", "all delivered after response", "s",
                      round(all_in, 3) if all_in is not None else None, None, "≤ 5 s at 1000" if goal else "",
                      (all_in is not None and all_in <= 5) if goal and level >= 1000 else None,
                      f"{stats['ok']}/{level} arrived; {workers} workers; "
                      f"{level / all_in if all_in else 0:.0f} deliveries/s"))
    relay.stop()


# 5. Retry storm ------------------------------------------------------------------------------------------------

def retry_storm(bench: Bench, db: str, url: str, workers: int = 2) -> None:
    from sqlalchemy import create_engine, text

    s = bench.sizes
    window = s.storm_seconds
    # Doubling delays summing to ~2x the failure window: every delivery's last attempt falls after recovery.
    schedule = " ".join(f"{window / 64 * 2 ** i:.3f}" for i in range(7))
    relay = bench.relay(db, url, RELAY_RETRY_SCHEDULE=schedule)
    relay.start_web()
    relay.api("POST", "/webhooks", bench.hook(0))
    relay.start_workers(workers)
    bench.sink.control("reset", fail=0.5)
    count = int(s.storm_rate * window)
    started = time.monotonic()
    load = bench.load({**bench.events_spec(relay.port, relay.token, "s"), "rate": s.storm_rate, "count": count,
                       "connections": 8})
    # Only an accepted event is the relay's to deliver; anything else is reported, not counted as lost.
    accepted = [k for k, t in load["responses"].items() if load["statuses_by_key"].get(k) in (200, 202)]
    time.sleep(max(0.0, window - (time.monotonic() - started)))
    bench.sink.control("fail", ratio=0)
    recovered = time.monotonic()
    bench.sink.wait_for(len(accepted), timeout=window * 3 + 60)
    time.sleep(min(2.0, window / 4))  # anything sent after success would show up here
    arrivals = bench.sink.arrivals(bench.run_dir / "arrivals.json")
    by_key: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for t, target, status in arrivals:
        by_key[target.rsplit("v=", 1)[-1]].append((t, status))
    lost = [k for k in accepted if not any(st < 300 for _, st in by_key.get(k, []))]
    after_success = 0
    for sends in by_key.values():
        sends.sort()
        first_ok = next((i for i, (_, st) in enumerate(sends) if st < 300), None)
        if first_ok is not None:
            after_success += len(sends) - first_ok - 1
    succeeded_after = sorted(t for t, _, st in arrivals if st < 300 and t >= recovered)
    drain = len(succeeded_after) / (succeeded_after[-1] - recovered) if len(succeeded_after) > 1 else None
    per_second = defaultdict(int)
    for t in succeeded_after:
        per_second[int(t - recovered)] += 1
    engine = create_engine(url if not url.startswith("postgresql://") else
                           "postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status")).all())
    engine.dispose()
    relay.stop()
    failed_503 = sum(1 for a in arrivals if a[2] >= 500)
    bench.add(Row(5, "retry storm", db, f"{count} events, {window:.0f} s at 50% 503", "lost deliveries", "",
                  len(lost), None, "0 lost", not lost,
                  f"{len(accepted)}/{count} accepted (intake statuses {load['statuses']}); {len(arrivals)} sends, "
                  f"{failed_503} answered 503; database: {states}; schedule {schedule}"))
    bench.add(Row(5, "retry storm", db, "", "sent after success", "", after_success, None, "0", after_success == 0))
    bench.add(Row(5, "retry storm", db, "after recovery", "backlog drain rate (mean / peak 1 s)", "deliveries/s",
                  round(drain, 1) if drain else None, None,
                  notes=f"peak {max(per_second.values()) if per_second else 0}/s; "
                        f"{len(succeeded_after)} delivered after recovery, last "
                        f"{(succeeded_after[-1] - recovered) if succeeded_after else 0:.1f} s after it "
                        "(retries wait for their schedule)"))


# 7. Badges -----------------------------------------------------------------------------------------------------

def badges(bench: Bench, db: str, url: str) -> None:
    s = bench.sizes
    relay = bench.relay(db, url)
    relay.start_web()
    relay.api("POST", "/events", {k: (v if k != "consumerVersionNumber" else "1.0.0") for k, v in EVENT.items()})
    probe = bench.load({"port": relay.port, "path": BADGE_PATH, "rate": 1, "count": 1, "connections": 1})
    if set(probe["statuses"]) - {"200"}:
        bench.add(Row(7, "badges", db, "", "badge requests/s", "req/s", None, None, "≥70% of bare", None,
                      f"PENDING: {BADGE_PATH} answered {probe['statuses']} (badge routes not on this branch yet)"))
        relay.stop()
        return
    if "badges" not in bench.bare_cache:
        proc, port = bench.bare_web()
        bench.bare_cache["badges"] = {c: bench.load({"port": port, "path": BADGE_PATH, "concurrency": c,
                                                     "duration": s.duration, "expect": [200]}) for c in s.levels}
        bench.procs.stop(proc)
    bare = bench.bare_cache["badges"]
    for c in s.levels:
        result = bench.load({"port": relay.port, "path": BADGE_PATH, "concurrency": c, "duration": s.duration,
                             "expect": [200]})
        best = c == s.levels[-1]
        bench.add(Row(7, "badges", db, f"{c} connections", "badge requests/s", "req/s", round(result["rps"], 1),
                      round(bare[c]["rps"], 1), "≥70% of bare" if best else "",
                      (result["rps"] >= 0.7 * bare[c]["rps"]) if best else None,
                      f"p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms"))
    relay.stop()


# 8.-10. The delivery engine (issue 13): slow targets, a dead target beside a healthy one, sends in flight ------

def slow_fanout(bench: Bench, db: str, url: str, workers: int = 2) -> None:
    """One event to N webhooks on one host that answers each request after 250 ms."""
    s = bench.sizes
    relay = bench.relay(db, url)
    relay.start_web()
    bench.hooks(relay, range(s.slow_fanout), prefix="/slow/250")
    relay.start_workers(workers)
    bench.sink.control("reset")
    result = bench.load({**bench.events_spec(relay.port, relay.token, "sf"), "rate": 1, "count": 1,
                         "connections": 1})
    responded = result["responses"]["sf-0"]
    stats = bench.sink.wait_for(s.slow_fanout, timeout=240)
    arrivals = sorted(t for t, _, status in bench.sink.arrivals(bench.run_dir / "arrivals.json") if status < 300)
    relay.stop()
    all_in = arrivals[-1] - responded if len(arrivals) >= s.slow_fanout else None
    goal = s.slow_fanout >= 1000
    bench.add(Row(8, "slow fan-out", db, f"{s.slow_fanout} webhooks, 250 ms target, W={workers}",
                  "all arrived after intake response", "s", round(all_in, 2) if all_in is not None else None,
                  None, "≤ 5 s at 1000", (all_in is not None and all_in <= 5) if goal else None,
                  f"{stats['ok']}/{s.slow_fanout} arrived (waited ≤ 240 s); half arrived after "
                  f"{arrivals[len(arrivals) // 2] - responded if arrivals else 0:.2f} s; at most "
                  f"{stats['max_inflight']} requests in flight at the sink; intake {result['latency_ms']['max']} ms"))


def dead_target(bench: Bench, db: str, url: str, workers: int = 2) -> None:
    """A target that never answers holds N pending deliveries; how soon do a healthy target's deliveries go out?"""
    s = bench.sizes
    relay = bench.relay(db, url)
    relay.start_web()
    relay.api("POST", "/webhooks", bench.hook(0, prefix="/dead", consumer="Dead Consumer"))
    relay.api("POST", "/webhooks", bench.hook(1, consumer=EVENT["consumerName"]))
    relay.start_workers(workers)
    bench.sink.control("reset")
    dead = {**bench.events_spec(relay.port, relay.token, "dead"),
            "body": json.dumps({**EVENT, "consumerName": "Dead Consumer"})}
    bench.load({**dead, "rate": 250, "count": s.dead_pending, "connections": 8})
    time.sleep(1.0)
    rate = 20
    count = int(rate * s.healthy_seconds)
    result = bench.load({**bench.events_spec(relay.port, relay.token, "ok"), "rate": rate, "count": count,
                         "connections": 4})
    wait, deadline = 30.0, time.monotonic() + 30.0
    while True:
        arrivals = {target.rsplit("v=", 1)[-1]: t for t, target, status in
                    bench.sink.arrivals(bench.run_dir / "arrivals.json") if status < 300 and "/hook/1" in target}
        if len(arrivals) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    stats = bench.sink.stats()
    relay.stop()
    lat = [max(0.0, arrivals[k] - t) * 1000 for k, t in result["responses"].items() if k in arrivals]
    p = percentiles(lat)
    complete = p["n"] == count
    bench.add(Row(9, "dead target", db, f"{s.dead_pending} pending at a dead target, {rate} ev/s healthy",
                  "healthy intake response → sink p99", "ms", p["p99"] if complete else None, None,
                  "p99 ≤ 200 ms", complete and (p["p99"] or 1e9) <= 200,
                  f"{p['n']}/{count} healthy arrived within {wait:.0f} s after the last; p50 {p['p50']}, "
                  f"max {p['max']} ms; at most {stats['max_inflight_per_target']} requests in flight at one "
                  f"target (the dead one), {stats['max_inflight']} overall"))


def in_flight(bench: Bench, db: str, url: str) -> None:
    """One worker allowed N sends in flight, N webhooks at a target answering after 5 s: its memory then."""
    s = bench.sizes
    relay = bench.relay(db, url, RELAY_SEND_CONCURRENCY=s.in_flight, RELAY_HOST_CONCURRENCY=s.in_flight)
    relay.start_web()
    bench.hooks(relay, range(s.in_flight), prefix="/slow/5000")
    relay.start_workers(1)
    time.sleep(1.0)
    idle = stack.memory(relay.workers[0].pid)
    bench.sink.control("reset")
    bench.load({**bench.events_spec(relay.port, relay.token, "m"), "rate": 1, "count": 1, "connections": 1})
    deadline = time.monotonic() + 4.5
    most = 0
    while time.monotonic() < deadline:
        most = max(most, bench.sink.stats()["inflight"])
        time.sleep(0.05)
    busy = stack.memory(relay.workers[0].pid)
    relay.stop()
    bench.add(Row(10, "memory in flight", db, "1 worker, idle", "RSS", "MB", idle["rss_mb"], None,
                  "≤ 80 MB", idle["rss_mb"] <= 80))
    bench.add(Row(10, "memory in flight", db, f"1 worker, {s.in_flight} sends allowed in flight",
                  "peak RSS", "MB", busy["peak_mb"], None, f"≤ 150 MB with {s.in_flight} in flight",
                  most >= s.in_flight and busy["peak_mb"] <= 150,
                  f"{most} requests were in flight at the sink at once (measured 4.5 s after the event)"))


def _statuses(bench: Bench, db: str, url: str) -> None:
    from benchmarks.statuses import statuses  # its own module: it brings a GitHub stand-in

    statuses(bench, db, url)


SCENARIOS = {1: intake, 2: delivery, 3: latency, 4: fanout, 5: retry_storm, 6: memory, 7: badges,
             8: slow_fanout, 9: dead_target, 10: in_flight, 11: _statuses}
