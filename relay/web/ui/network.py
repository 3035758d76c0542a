"""The network picture: a layered layout (igraph's Sugiyama) with services in columns and routed edges."""

from __future__ import annotations

from dataclasses import dataclass

import igraph

COLOURS = {"verified": "#2e7d32", "changed": "#e65100", "failed": "#c62828", "unknown": "#757575"}
NODE_W, NODE_H = 180, 44
COL_GAP, ROW_GAP, MARGIN = 110, 22, 20
LINE = 22  # characters per label line; two lines, so names are readable without hovering (touch)

Point = tuple[float, float]


@dataclass(frozen=True)
class Node:
    name: str
    lines: tuple[str, ...]
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    consumer: str
    provider: str
    state: str
    colour: str
    points: tuple[Point, ...]  # the polyline the path follows: box side, dummy columns, box side

    @property
    def path(self) -> str:
        """Straight across a column (at the edge's own slot), an S-curve inside each gap between columns."""
        (x, y), *rest = self.points
        out = [f"M{x:.0f},{y:.0f}"]
        for nx, ny in rest:
            if ny == y:
                out.append(f"L{nx:.0f},{ny:.0f}")
            else:
                mid = (x + nx) / 2
                out.append(f"C{mid:.0f},{y:.0f} {mid:.0f},{ny:.0f} {nx:.0f},{ny:.0f}")
            x, y = nx, ny
        return " ".join(out)


@dataclass(frozen=True)
class Picture:
    width: float
    height: float
    nodes: list[Node]
    edges: list[Edge]


def label_lines(name: str) -> tuple[str, ...]:
    """At most two lines of LINE characters, broken between words where possible; … when cut."""
    if len(name) <= LINE:
        return (name,)
    cut = name.rfind(" ", 0, LINE + 1)
    first, rest = (name[:cut], name[cut + 1:]) if cut > 0 else (name[:LINE], name[LINE:])
    return first, rest if len(rest) <= LINE else rest[:LINE - 1] + "…"


def layout(pairs: list[tuple[str, str, str]]) -> Picture:
    """pairs: (consumer, provider, state). Layers become columns left to right, consumers before providers."""
    names = sorted({n for c, p, _ in pairs for n in (c, p)}, key=str.lower)
    if not names:
        return Picture(0, 0, [], [])
    index = {n: i for i, n in enumerate(names)}
    linked = [(c, p, s) for c, p, s in pairs if c != p]
    graph = igraph.Graph(n=len(names), edges=[(index[c], index[p]) for c, p, _ in linked], directed=True)
    placed = graph.layout_sugiyama()
    layer = {n: round(placed.coords[i][1]) for n, i in index.items()}
    slot = {n: placed.coords[i][0] for n, i in index.items()}
    routes = [[(round(y), x) for x, y in points] for points in placed.edge_routing]
    low = min([*slot.values(), *(s for r in routes for _, s in r)])
    high = max([*slot.values(), *(s for r in routes for _, s in r)])

    def col_x(n: int) -> float:
        return MARGIN + n * (NODE_W + COL_GAP)

    def row_y(s: float) -> float:
        return MARGIN + (s - low) * (NODE_H + ROW_GAP)

    nodes = {n: Node(n, label_lines(n), col_x(layer[n]), row_y(slot[n])) for n in names}
    edges = []
    for (consumer, provider, state), route in zip(linked, routes, strict=True):
        a, b = nodes[consumer], nodes[provider]
        forward = layer[consumer] < layer[provider]  # a cycle makes igraph reverse one of its edges
        points: list[Point] = [(a.x + NODE_W if forward else a.x, a.y + NODE_H / 2)]
        for lay, s in sorted(route, reverse=not forward):
            y = row_y(s) + NODE_H / 2
            near, far = (col_x(lay), col_x(lay) + NODE_W) if forward else (col_x(lay) + NODE_W, col_x(lay))
            points += [(near, y), (far, y)]
        points.append((b.x - 6 if forward else b.x + NODE_W + 6, b.y + NODE_H / 2))  # room for the arrowhead
        edges.append(Edge(consumer, provider, state, COLOURS.get(state, COLOURS["unknown"]), tuple(points)))
    for consumer, provider, state in pairs:
        if consumer == provider:  # a service that depends on itself: a loop on its right side
            a = nodes[consumer]
            right, top, bottom = a.x + NODE_W, a.y + 8, a.y + NODE_H - 8
            edges.append(Edge(consumer, provider, state, COLOURS.get(state, COLOURS["unknown"]),
                              ((right, top), (right + 30, top), (right + 30, bottom), (right + 6, bottom))))
    columns = max(layer.values()) + 1
    width = MARGIN * 2 + columns * NODE_W + (columns - 1) * COL_GAP + 40
    height = MARGIN * 2 + (high - low) * (NODE_H + ROW_GAP) + NODE_H
    return Picture(width, height, list(nodes.values()), edges)
