"""The network picture: a layered layout whose edges never pass through another service's box."""

from __future__ import annotations

import re

from relay.web.ui.network import NODE_H, NODE_W, label_lines, layout

ISSUE = [("Checkout Web", "Billing API"), ("Billing API", "Payment API"), ("Checkout Web", "Payment API"),
         ("Checkout Web", "Users API"), ("Mobile App", "Users API"), ("Mobile App", "Orders API"),
         ("Orders API", "Payment API"), ("Orders API", "Inventory API"), ("Web App", "Orders API"),
         ("Admin UI", "Users API"), ("Billing API", "Ledger API")]


def inside(box, x0, x1, y0, y1) -> bool:
    """Does the rectangle [x0,x1]×[y0,y1] (a segment's hull) overlap the box's interior?"""
    return x0 < box.x + NODE_W - 1 and x1 > box.x + 1 and y0 < box.y + NODE_H - 1 and y1 > box.y + 1


def test_no_edge_passes_through_another_services_box():
    picture = layout([(c, p, "verified") for c, p in ISSUE])
    boxes = {n.name: n for n in picture.nodes}
    for edge in picture.edges:
        others = [b for name, b in boxes.items() if name not in (edge.consumer, edge.provider)]
        for (x0, y0), (x1, y1) in zip(edge.points, edge.points[1:], strict=False):
            # a bezier between two points stays inside their bounding box (its control points share their x/y)
            hull = (min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1))
            assert not any(inside(b, *hull) for b in others), (edge.consumer, edge.provider, (x0, y0), (x1, y1))
    checkout_payment = next(e for e in picture.edges if (e.consumer, e.provider) == ("Checkout Web", "Payment API"))
    assert len(checkout_payment.points) > 2  # routed through the Billing API column, beside its box


def test_long_names_are_readable_without_hovering():
    assert label_lines("Orders API") == ("Orders API",)
    assert label_lines("Customer Notification Preferences Service") == ("Customer Notification", "Preferences Service")
    assert label_lines("x" * 60)[1].endswith("…") and len(label_lines("x" * 60)[1]) == 22


def test_nodes_and_edges_link_to_their_pages(browser, api):
    for consumer, provider in ISSUE[:3]:
        event = {"eventName": "contract_published", "consumerName": consumer, "providerName": provider,
                 "consumerVersionNumber": "1", "pactUrl": "https://broker.example.com/pacts/x"}
        assert api.post("/events", json=event).status_code == 202
    page = browser.get("/ui/network").text
    assert 'href="/ui/?q=Billing+API"' in page
    assert 'href="/ui/pair?consumer=Checkout+Web&amp;provider=Payment+API"' in page
    assert re.search(r'<a class="edge"[^>]*aria-label="Checkout Web depends on Payment API: unknown"', page)
    assert browser.get("/ui/?q=Billing+API").status_code == 200
