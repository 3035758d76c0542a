"""Percentiles and rates over recorded samples."""

from __future__ import annotations


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max by the nearest-rank method; None for an empty sample."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]

    return {"p50": round(rank(50), 2), "p95": round(rank(95), 2), "p99": round(rank(99), 2),
            "max": round(ordered[-1], 2), "n": len(ordered)}


def steady_rate(times: list[float], low: float = 0.1, high: float = 0.9) -> float | None:
    """Events per second between the low and high fractions of the arrivals: ignores start-up and tail."""
    if len(times) < 3:
        return None
    ordered = sorted(times)
    i, j = int(len(ordered) * low), max(int(len(ordered) * high) - 1, int(len(ordered) * low) + 1)
    j = min(j, len(ordered) - 1)
    span = ordered[j] - ordered[i]
    return (j - i) / span if span > 0 else None
