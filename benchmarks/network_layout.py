"""Layered-graph layout libraries compared on the network picture: box hits, crossings, time.

Run with `python -m benchmarks.network_layout`; grandalf is measured too when installed (`pip install grandalf`).
Each candidate's layers become columns, positions in a layer rows, and an edge spanning several columns is routed
through its dummy points, as relay/web/ui/network.py draws it.
"""

from __future__ import annotations

import random
import statistics
import time

from relay.web.ui.network import COL_GAP, NODE_H, NODE_W, ROW_GAP

ISSUE = [("Checkout Web", "Billing API"), ("Billing API", "Payment API"), ("Checkout Web", "Payment API"),
         ("Checkout Web", "Users API"), ("Mobile App", "Users API"), ("Mobile App", "Orders API"),
         ("Orders API", "Payment API"), ("Orders API", "Inventory API"), ("Web App", "Orders API"),
         ("Admin UI", "Users API"), ("Billing API", "Ledger API")]


def random_dag(services: int, pairs: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    names = [f"svc-{i:02d}" for i in range(services)]
    edges: set[tuple[str, str]] = set()
    while len(edges) < pairs:
        a, b = sorted(rng.sample(range(services), 2))
        edges.add((names[a], names[b]))
    return sorted(edges)


def columns_to_picture(layer: dict[str, int], pos: dict[str, float], dummies: dict[tuple[str, str], list],
                       pairs) -> tuple[dict[str, tuple[float, float]], list[list[tuple[float, float]]]]:
    """Boxes (top-left) and polylines in the relay's geometry; dummies: edge → [(layer, pos)]."""
    low = min([*pos.values(), *(p for d in dummies.values() for _, p in d)], default=0)
    x = {n: layer[n] * (NODE_W + COL_GAP) for n in layer}
    y = {n: (pos[n] - low) * (NODE_H + ROW_GAP) for n in pos}
    lines = []
    for a, b in pairs:
        line = [(x[a] + NODE_W, y[a] + NODE_H / 2)]
        for lay, p in dummies.get((a, b), []):
            dy = (p - low) * (NODE_H + ROW_GAP) + NODE_H / 2
            line += [(lay * (NODE_W + COL_GAP), dy), (lay * (NODE_W + COL_GAP) + NODE_W, dy)]
        line.append((x[b], y[b] + NODE_H / 2))
        lines.append(line)
    return {n: (x[n], y[n]) for n in layer}, lines


def run_relay(pairs):
    """What the relay draws: igraph's Sugiyama layout, as relay/web/ui/network.py turns it into boxes and paths."""
    from relay.web.ui.network import layout

    picture = layout([(a, b, "verified") for a, b in pairs])
    lines = {(e.consumer, e.provider): list(e.points) for e in picture.edges}
    return {n.name: (n.x, n.y) for n in picture.nodes}, [lines[p] for p in pairs]


def run_grandalf(pairs):
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    class View:
        w, h = 1, 1
        xy = (0, 0)

    names = sorted({n for p in pairs for n in p})
    vertices = {n: Vertex(n) for n in names}
    edges = [Edge(vertices[a], vertices[b]) for a, b in pairs]
    graph = Graph(list(vertices.values()), edges)
    layer, pos, dummies = {}, {}, {}
    for component in graph.C:
        for v in component.sV:
            v.view = View()
        sug = SugiyamaLayout(component)
        sug.init_all()
        sug.draw()
        offset = max(pos.values(), default=-1) + 1
        for v in component.sV:
            layer[v.data] = sug.grx[v].rank
            pos[v.data] = offset + v.view.xy[0]
        for e in component.sE:
            ranks = sug.ctrls.get(e, {})
            dummies[(e.v[0].data, e.v[1].data)] = [(r, offset + d.view.xy[0]) for r, d in sorted(ranks.items())]
    # grandalf positions are in view units: normalise each layer's order to slot numbers
    slots = {}
    for lay in set(layer.values()) | {r for d in dummies.values() for r, _ in d}:
        members = sorted([p for n, p in pos.items() if layer[n] == lay]
                         + [p for d in dummies.values() for r, p in d if r == lay])
        slots.update({(lay, p): i for i, p in enumerate(members)})
    pos = {n: slots[(layer[n], p)] for n, p in pos.items()}
    dummies = {k: [(r, slots[(r, p)]) for r, p in v] for k, v in dummies.items()}
    return columns_to_picture(layer, pos, dummies, pairs)


def run_columns(pairs):
    """The relay's own layout before this change: columns by depth, no routing."""
    names = sorted({n for p in pairs for n in p})
    depth = dict.fromkeys(names, 0)
    for _ in names:
        for a, b in pairs:
            depth[b] = max(depth[b], depth[a] + 1)
    rows: dict[int, int] = {}
    pos = {}
    for n in names:
        pos[n] = rows.get(depth[n], 0)
        rows[depth[n]] = pos[n] + 1
    return columns_to_picture(depth, pos, {}, pairs)


def _cross(p, q, r, s) -> bool:
    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (v > 1e-9) - (v < -1e-9)

    return orient(p, q, r) * orient(p, q, s) < 0 and orient(r, s, p) * orient(r, s, q) < 0


def _hits_box(p, q, box) -> bool:
    x, y = box
    x0, y0, x1, y1 = x + 1, y + 1, x + NODE_W - 1, y + NODE_H - 1
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    inside = any(x0 < px < x1 and y0 < py < y1 for px, py in (p, q))
    return inside or any(_cross(p, q, corners[i], corners[(i + 1) % 4]) for i in range(4))


def measure(pairs, boxes, lines) -> tuple[int, int]:
    hits = crossings = 0
    for (a, b), line in zip(pairs, lines, strict=True):
        for name, box in boxes.items():
            if name not in (a, b) and any(_hits_box(p, q, box) for p, q in zip(line, line[1:], strict=False)):
                hits += 1
    segs = [(i, p, q) for i, line in enumerate(lines) for p, q in zip(line, line[1:], strict=False)]
    for i, (e, p, q) in enumerate(segs):
        for f, r, s in segs[i + 1:]:
            if e != f and not set(pairs[e]) & set(pairs[f]) and _cross(p, q, r, s):
                crossings += 1
    return hits, crossings


def main() -> None:
    graphs = {"issue (10 services, 11 pairs)": ISSUE, "random (30 services, 60 pairs)": random_dag(30, 60, 7),
              "random (60 services, 150 pairs)": random_dag(60, 150, 11)}
    for name, run in (("columns (before)", run_columns), ("igraph (chosen)", run_relay),
                      ("grandalf", run_grandalf)):
        try:
            run(ISSUE)
        except ImportError:
            print(f"{name}: not installed")
            continue
        for title, pairs in graphs.items():
            times = []
            for _ in range(5):
                began = time.perf_counter()
                boxes, lines = run(pairs)
                times.append((time.perf_counter() - began) * 1000)
            hits, crossings = measure(pairs, boxes, lines)
            print(f"{name:17} {title:32} edges through other boxes {hits:3}  crossings {crossings:4}  "
                  f"median {statistics.median(times):7.2f} ms")


if __name__ == "__main__":
    main()
