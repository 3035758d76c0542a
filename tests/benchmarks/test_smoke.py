"""The benchmark suite runs end to end in seconds and produces figures; no timing is asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_quick_run_produces_figures(tmp_path, redis_url):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--scale", "0.05", "--db", "sqlite",
                    "--scenario", "1", "--scenario", "2", "--scenario", "3", "--worker-counts", "1",
                    "--connections", "2", "--rates", "20", "--web-workers", "1", "--threads", "2",
                    "--redis-url", redis_url, "--out", str(out)], cwd=ROOT, check=True, timeout=240)
    result = json.loads(out.read_text())
    rows = {(r["scenario"], r["metric"]): r for r in result["rows"]}
    assert {1, 2, 3} <= {scenario for scenario, _ in rows}
    assert not [r for r in result["rows"] if r["metric"] == "ERROR"]
    intake = rows[(1, "accepted events/s")]
    delivery = rows[(2, "deliveries queue → sink")]
    for row in (intake, delivery):
        assert row["relay"] > 0 and row["bare"] > 0 and row["ratio"] is not None
    assert rows[(3, "intake response → sink p50")]["relay"] is not None
    assert result["machine"]["cpu"] and result["command"].startswith("python -m benchmarks")
