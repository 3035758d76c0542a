"""Badge text as the Pact Broker builds it, and SVG badges checked as XML and as rendered images."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import cairosvg
import pytest
from PIL import Image

from relay.pairs import badges
from relay.pairs.badges import COLOURS, STATES, badge_json, badge_text, etag, fit_text, render_badge, text_width

SVG = "{http://www.w3.org/2000/svg}"
NAMES = [
    "Matching Service", "ünïcødé Sérvice", "中文服务", "emoji 😀🚀 svc", "a/b/c", "with  many   spaces",
    "ctrl\x00\x01\x07\x1b[31mred\x7f\x9f", "tab\tnew\nline", "<script>alert('x')</script>", 'q"uo\'te & amp;',
    "bidi\u202eevil\u202c", "\ud800lone surrogate", "\ufffe\uffff", "x" * 1000, "Ж" * 1000, "😀" * 1000,
    "", " ", "\x00", "e\u0301\u0301\u0301", "]]><!--", "&#0;", "y" * 100_000, "\u0301" * 5000,
]


# ---- text ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("Foo Thing-Bar_baz", "ftbb"), ("FooBar", "fb"), ("fooBarBaz", "fbb"), ("HTTPServer", "hs"),
    ("foo", "foo"), ("Foo", "foo"), ("Foo  Bar", "fb"), ("-Foo", "f"), ("Foo-", "foo-"), ("", ""),
    ("Foo2Bar", "fb"), ("ABC", "abc"),
])
def test_initials_as_the_broker_does_them(name, expected):
    assert badge_text(name, "P", label="consumer", initials=True) == f"{expected} pact"


def test_badge_text_variants():
    c, p = "Matching Service", "Animal-Profile Service"
    assert badge_text(c, p) == "matching service/animal-profile service pact"
    assert badge_text(c, p, label="consumer") == "matching service pact"
    assert badge_text(c, p, label="PROVIDER") == "animal-profile service pact"
    assert badge_text(c, p, label="other") == "matching service/animal-profile service pact"
    assert badge_text(c, p, initials=True) == "ms/aps pact"
    assert badge_text(c, p, initials=True, consumer_tag="Prod", provider_tag="main") == "ms (prod)/aps (main) pact"
    assert badge_text("a/b", "C D") == "a/b/c d pact"


def test_text_width_uses_the_font_table():
    # DejaVu Sans 11 px advances: 'i' 569/2048 em, 'm' 1995/2048 em; unknown wide glyphs take a full em.
    assert text_width("i") == pytest.approx(569 * 11 / 2048)
    assert text_width("mm") == pytest.approx(2 * 1995 * 11 / 2048)
    assert text_width("中") == pytest.approx(11) and text_width("😀") == pytest.approx(11)
    assert text_width("e\u0301") == text_width("e")
    assert text_width("W") > text_width("w") > text_width("l") > 0


def test_clean_and_truncate():
    assert fit_text("a\x00b\x07c\td\n\ne") == "abc d e"
    assert fit_text("bidi\u202eevil") == "bidievil"
    long = fit_text("x" * 1000)
    assert long.endswith("\u2026") and text_width(long) <= badges.MAX_TEXT_WIDTH
    assert text_width(long) > badges.MAX_TEXT_WIDTH - 15
    assert fit_text("short") == "short"


# ---- SVG -----------------------------------------------------------------------------------------------------------

def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("state", STATES)
def test_any_name_gives_a_valid_bounded_svg(name, state):
    left = badge_text(name, name)
    svg = render_badge(left, state)
    root = parse(svg)
    width = int(root.get("width"))
    assert root.get("height") == "20" and 0 < width <= badges.MAX_TEXT_WIDTH + 100
    title = root.find(f"{SVG}title").text
    assert title == root.get("aria-label") and title.endswith(f": {state}")
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[1] == fit_text(left) and texts[3] == state
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff\u202a-\u202e]", svg)


def test_xml_special_characters_are_escaped_not_dropped():
    root = parse(render_badge("<a & 'b' \"c\">", "failed"))
    assert [t.text for t in root.iter(f"{SVG}text")][1] == "<a & 'b' \"c\">"


def test_layout_matches_measured_widths():
    left = "matching service/animal profile service pact"
    root = parse(render_badge(left, "changed"))
    rects = root.findall(f"{SVG}g/{SVG}rect")
    left_w, right_w = int(rects[0].get("width")), int(rects[1].get("width"))
    assert left_w == pytest.approx(text_width(left) + 2 * badges.PADDING, abs=1)
    assert right_w == pytest.approx(text_width("changed") + 2 * badges.PADDING, abs=1)
    assert int(root.get("width")) == left_w + right_w and rects[1].get("fill") == "#fe7d37"
    assert rects[0].get("fill") == "#555"


def test_unknown_state_renders_unknown():
    assert ">unknown</text>" in render_badge("x pact", "bogus") and "#9f9f9f" in render_badge("x pact", "bogus")


def test_ids_do_not_clash_between_badges():
    a, b = render_badge("a pact", "verified"), render_badge("b pact", "verified")
    assert set(re.findall(r'id="(\w+)"', a)).isdisjoint(re.findall(r'id="(\w+)"', b))


def test_etag_is_stable_and_content_sensitive():
    svg = render_badge("a pact", "verified")
    assert etag(svg) == etag(svg.encode()) == etag(render_badge("a pact", "verified"))
    assert etag(svg) != etag(render_badge("a pact", "failed"))
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag(svg))


def test_badge_json():
    assert badge_json("a/b pact", "failed") == (
        '{"schemaVersion":1,"label":"a/b pact","message":"failed","color":"red"}'
    )


# ---- rendered images -----------------------------------------------------------------------------------------------

def png(svg: str, scale: float) -> Image.Image:
    return Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg.encode(), scale=scale))).convert("RGB")


def ink_columns(svg: str, scale: float, x0: float, x1: float) -> list[float]:
    """Columns (in badge px) between x0 and x1 holding white text pixels, with both boxes painted black."""
    dark = re.sub(r'fill="#[0-9a-f]{3,6}"(?=/>)', 'fill="#000"', svg)
    image = png(dark, scale).convert("L")
    pixels = image.load()
    return [x / scale for x in range(int(x0 * scale), int(x1 * scale))
            if any(pixels[x, y] > 60 for y in range(image.height))]


def hex_rgb(colour: str) -> tuple[int, ...]:
    colour = colour.lstrip("#")
    colour = "".join(c * 2 for c in colour) if len(colour) == 3 else colour
    return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("left", ["matching service/animal profile service pact", "ftbb/x pact", "WWW mmm iii pact",
                                  "sérvice ÅØ/ΑΒΓ жзи pact"])
def test_text_lies_inside_its_box(left, state):
    svg = render_badge(left, state)
    root = parse(svg)
    rects = root.findall(f"{SVG}g/{SVG}rect")
    left_w, right_w = int(rects[0].get("width")), int(rects[1].get("width"))
    for scale in (2, 4):
        for text, x0, box_w in ((left, 0, left_w), (state, left_w, right_w)):
            centre, text_w = x0 + box_w / 2, text_width(text)
            ink = ink_columns(svg, scale, x0, x0 + box_w)
            # Nothing beyond the measured width (1 px of anti-aliasing). No gap beyond glyph side bearings and
            # the few per cent by which Verdana, which the table also covers, is wider than DejaVu Sans here.
            assert centre - text_w / 2 - 1 <= min(ink) and max(ink) + 1 / scale <= centre + text_w / 2 + 1
            assert max(ink) + 1 / scale - min(ink) >= 0.97 * text_w - 3
    # At 1x, hinting moves glyphs by up to a pixel or two; they still stay clear of the box edges.
    ink = ink_columns(svg, 1, 0, left_w + right_w)
    assert min(ink) >= 2 and max(ink) <= left_w + right_w - 2
    assert not [x for x in ink if left_w - 2 < x < left_w + 2]


@pytest.mark.parametrize("state", STATES)
def test_box_colours_in_the_image(state):
    svg = render_badge("a/b pact", state)
    rects = parse(svg).findall(f"{SVG}g/{SVG}rect")
    left_w, right_w = int(rects[0].get("width")), int(rects[1].get("width"))
    image = png(svg, 1)
    # Points clear of the text: above it at the box centre, and beside it at mid-height; the gloss gradient
    # shifts colours by up to 10 %.
    points = [(left_w + right_w / 2, 3, COLOURS[state]), (left_w / 2, 3, badges.LABEL_COLOUR)]
    beside = [(2, badges.LABEL_COLOUR), (left_w - 2, badges.LABEL_COLOUR),
              (left_w + 2, COLOURS[state]), (left_w + right_w - 3, COLOURS[state])]
    points += [(x, y, c) for y in (3, 10) for x, c in beside]
    for x, y, colour in points:
        got = image.getpixel((int(x), y))
        assert max(abs(a - b) for a, b in zip(got, hex_rgb(colour), strict=True)) <= 24, (x, y, got, colour)
    # The rounded corners are transparent.
    assert Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg.encode()))).convert("RGBA").getpixel((0, 0))[3] < 128


@pytest.mark.parametrize("name", ["x" * 1000, "中文服务 " * 100, "😀" * 1000, "ctrl\x00\x1b name"])
def test_hostile_names_render_as_images(name):
    svg = render_badge(badge_text(name, name), "unknown")
    image = png(svg, 1)
    assert image.height == 20 and image.width == int(parse(svg).get("width"))
