"""Renders per second of relay.pairs.badges.render_badge: uncached (distinct names), cached, and with the ETag."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.pairs.badges import badge_text, etag, render_badge, render_svg  # noqa: E402


def rate(label: str, fn, count: int) -> None:
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    elapsed = time.perf_counter() - start
    print(f"{label:<34} {count / elapsed:>12,.0f} renders/s  ({elapsed * 1e6 / count:.1f} us each)")


def main(count: int = 20000) -> None:
    states = ("verified", "changed", "failed", "unknown")
    render_svg.cache_clear()
    rate("uncached, distinct names", lambda i: render_badge(badge_text(f"Consumer {i}", "Provider Service"),
                                                           states[i % 4]), count)
    rate("uncached, 1000-char name", lambda i: render_svg.__wrapped__("x" * 1000 + str(i), "failed", "#e05d44"),
         count // 10)
    left = badge_text("Matching Service", "Animal Profile Service")
    rate("cached", lambda i: render_badge(left, states[i % 4]), count * 10)
    rate("cached + etag", lambda i: etag(render_badge(left, states[i % 4])), count * 10)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
