"""`python -m benchmarks [--quick] [--db sqlite|postgresql|both] [--scenario N] [--checkout NAME=PATH ...]`.

Runs, prints the table, writes JSON. With `--checkout`, every scenario runs once per checkout (each with its own
virtualenv in PATH/.venv), side by side in the same run: before and after a change, on the same machine load."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.scenarios import SCENARIOS, Bench, Row, Sizes

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpu = Path("/proc/cpuinfo").read_text()
    models = [line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("model name")]
    mem = subprocess.run(["free", "-m"], capture_output=True, text=True).stdout if sys.platform == "linux" else ""
    return {"cpu": models[0] if models else platform.processor(), "cores": len(models) or None,
            "free_m": mem.strip(), "python": platform.python_version(), "kernel": platform.release()}


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def table(rows: list[Row]) -> str:
    head = ("#", "scenario", "db", "level", "metric", "relay", "bare", "ratio", "goal", "met")
    lines = [[str(r.scenario), r.name, r.db, r.level, f"{r.metric} ({r.unit})" if r.unit else r.metric,
              fmt(r.relay), fmt(r.bare), fmt(r.ratio), r.goal, {True: "yes", False: "NO", None: ""}[r.met]]
             for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    out = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
           "-+-".join("-" * w for w in widths)]
    out += [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short runs (seconds per scenario)")
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--scenario", type=int, action="append", choices=sorted(SCENARIOS),
                   help="run only this scenario (repeatable); default all")
    p.add_argument("--scale", type=float, default=1.0, help="multiply counts and durations (the smoke test: 0.1)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="a Redis database this run may flush")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="where to create and drop the benchmark's PostgreSQL databases")
    p.add_argument("--web-workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--worker-counts", type=_ints, help="W for scenario 2, e.g. 2,4,8")
    p.add_argument("--connections", type=_ints, help="load levels (connections) for scenarios 1 and 7, e.g. 1,4,16")
    p.add_argument("--rates", type=_ints, help="steady rates for scenario 3, e.g. 50,100,200")
    p.add_argument("--fanout", type=_ints, help="webhooks per event for scenario 4, e.g. 10,100,1000")
    p.add_argument("--checkout", action="append", default=[], metavar="NAME=PATH",
                   help="run the relay of another checkout too (repeatable), e.g. before=/work/wt/before")
    p.add_argument("--out", type=Path, help="JSON file to write (default benchmarks/results/<time>.json)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (args.out.parent if args.out else RESULTS) / f"run-{stamp}"  # logs, SQLite files, arrivals
    run_dir.mkdir(parents=True, exist_ok=True)
    dbs = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    scenarios = sorted(set(args.scenario or SCENARIOS))
    sizes = Sizes.make(args.quick, args.scale)
    for name, value in (("worker_counts", args.worker_counts), ("levels", args.connections),
                        ("latency_rates", args.rates), ("fanout", args.fanout)):
        if value:
            setattr(sizes, name, value)
    bench = Bench(sizes, run_dir, args.redis_url, args.pg_admin_url,
                  args.web_workers, args.threads)
    from benchmarks.stack import database

    checkouts = [tuple(c.split("=", 1)) for c in args.checkout] or [("", str(bench.root))]
    started = time.monotonic()
    try:
        for number in scenarios:
            for db in dbs:
                for name, root in checkouts:
                    label = f"{db}/{name}" if name else db
                    bench.root = Path(root).resolve()
                    print(f"scenario {number} ({SCENARIOS[number].__name__}) on {label} ...", file=sys.stderr,
                          flush=True)
                    try:
                        with database(db, run_dir, args.pg_admin_url, f"s{number}") as url:
                            SCENARIOS[number](bench, label, url)
                    except Exception as exc:  # report it in the table and go on with the next scenario
                        traceback.print_exc()
                        bench.add(Row(number, SCENARIOS[number].__name__, label, "", "ERROR", "", None,
                                      notes=f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        bench.close()
    rows = sorted(bench.rows, key=lambda r: (r.scenario, r.db))
    result = {
        "command": "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "at": stamp, "seconds": round(time.monotonic() - started, 1), "machine": machine(),
        "sizes": bench.sizes.__dict__, "web": {"workers": args.web_workers, "threads": args.threads,
                                               "class": "gthread"},
        "rows": [r.to_dict() for r in rows], "memory": bench.memory, "checkouts": dict(checkouts),
    }
    out = args.out or RESULTS / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(table(rows))
    print(f"\nJSON: {out}")
    return result


if __name__ == "__main__":
    main()
