"""The network picture: services in columns by dependency depth, consumer→provider edges coloured by state."""

from __future__ import annotations

from dataclasses import dataclass

COLOURS = {"verified": "#2e7d32", "changed": "#e65100", "failed": "#c62828", "unknown": "#757575"}
NODE_W, NODE_H = 180, 36
COL_GAP, ROW_GAP, MARGIN = 110, 22, 20
MAX_LABEL = 24


@dataclass(frozen=True)
class Node:
    name: str
    label: str
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    consumer: str
    provider: str
    state: str
    colour: str
    path: str


@dataclass(frozen=True)
class Picture:
    width: float
    height: float
    nodes: list[Node]
    edges: list[Edge]


def _depths(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest consumer chain above each service, so every edge points right; cycles are cut at len(names)."""
    depth = dict.fromkeys(names, 0)
    for _ in range(len(names)):
        changed = False
        for consumer, provider in edges:
            if consumer != provider and depth[provider] < depth[consumer] + 1 <= len(names):
                depth[provider] = depth[consumer] + 1
                changed = True
        if not changed:
            break
    return depth


def layout(pairs: list[tuple[str, str, str]]) -> Picture:
    """pairs: (consumer, provider, state)."""
    names = sorted({n for c, p, _ in pairs for n in (c, p)}, key=str.lower)
    depth = _depths(names, [(c, p) for c, p, _ in pairs])
    columns: dict[int, list[str]] = {}
    for name in names:
        columns.setdefault(depth[name], []).append(name)
    nodes: dict[str, Node] = {}
    for col, members in sorted(columns.items()):
        for row, name in enumerate(members):
            label = name if len(name) <= MAX_LABEL else name[:MAX_LABEL - 1] + "…"
            nodes[name] = Node(name, label, MARGIN + col * (NODE_W + COL_GAP), MARGIN + row * (NODE_H + ROW_GAP))
    edges = []
    for consumer, provider, state in pairs:
        a, b = nodes[consumer], nodes[provider]
        x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
        x2, y2 = b.x, b.y + NODE_H / 2
        if x2 <= x1:  # same column (a cycle was cut, or a self-dependency): loop around the right side
            bend = x1 + 50
            path = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {b.x + NODE_W:.0f},{y2:.0f}"
        else:
            mid = (x1 + x2) / 2
            path = f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2 - 6:.0f},{y2:.0f}"
        edges.append(Edge(consumer, provider, state, COLOURS.get(state, COLOURS["unknown"]), path))
    width = MARGIN * 2 + (max(columns, default=0) + 1) * NODE_W + max(columns, default=0) * COL_GAP + 60
    height = MARGIN * 2 + max((len(m) for m in columns.values()), default=1) * (NODE_H + ROW_GAP)
    return Picture(width, height, list(nodes.values()), edges)
