"""`python -m benchmarks.report RUN.json [BEFORE.json]`: a run as a Markdown table, optionally beside an earlier one."""

from __future__ import annotations

import json
import sys


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def key(row: dict) -> tuple:
    return row["scenario"], row["db"], row["level"], row["metric"]


def markdown(result: dict, before: dict | None = None) -> str:
    earlier = {key(r): r for r in (before or {}).get("rows", [])}
    head = ["#", "db", "level", "metric", "relay", "bare", "relay/bare", "goal", "met", "notes"]
    if before:
        head[5:5] = ["before"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        cells = [str(r["scenario"]), r["db"], r["level"], f"{r['metric']} ({r['unit']})" if r["unit"] else r["metric"],
                 fmt(r["relay"]), fmt(r["bare"]), fmt(r["ratio"]), r["goal"],
                 {True: "yes", False: "**no**", None: ""}[r["met"]], r["notes"].replace("|", "/")]
        if before:
            cells[5:5] = [fmt(earlier.get(key(r), {}).get("relay"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    result = json.load(open(sys.argv[1]))
    before = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None
    print(markdown(result, before))


if __name__ == "__main__":
    main()
