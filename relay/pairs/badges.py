"""Pact verification badges: left text as the Pact Broker builds it, drawn as flat-style SVG with measured text."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from functools import lru_cache
from html import escape
from math import ceil

from relay.pairs.fontwidths import RANGES, UNITS_PER_EM

STATES = ("verified", "changed", "failed", "unknown")
COLOURS = {"verified": "#4c1", "changed": "#fe7d37", "failed": "#e05d44", "unknown": "#9f9f9f"}
COLOUR_NAMES = {"verified": "brightgreen", "changed": "orange", "failed": "red", "unknown": "lightgrey"}
LABEL_COLOUR = "#555"
FONT_SIZE = 11
FONT_FAMILY = "Verdana,Geneva,DejaVu Sans,sans-serif"
HEIGHT = 20
PADDING = 5
MAX_TEXT_WIDTH = 400.0
MAX_NOTICE_WIDTH = 200.0
ELLIPSIS = "\u2026"
# Longer input cannot fit MAX_TEXT_WIDTH anyway (no glyph is narrower than 1 px), so cut it before any work.
MAX_INPUT_CHARS = 2 * int(MAX_TEXT_WIDTH)

_UNITS = {start + i: w for start, widths in RANGES for i, w in enumerate(widths) if w >= 0}
_WIDE_UNITS = UNITS_PER_EM
# Glyphs outside DejaVu Sans come from whichever fallback font the viewer has; assume a full em so text
# overflows nowhere (the textLength attribute lets browsers close any gap this leaves).
_FALLBACK_UNITS = UNITS_PER_EM
# Bidi embedding/override/isolate controls could make a name display as something else.
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
_SPACES = re.compile(r"\s+")
_SPLIT_SEPARATORS = re.compile(r"[\s_\-]")
_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_WORD = re.compile(r"([a-z\d])([A-Z])")


def _char_units(ch: str) -> int:
    units = _UNITS.get(ord(ch))
    if units is not None:
        return units
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return _WIDE_UNITS
    return _FALLBACK_UNITS


def clean_text(text: str) -> str:
    """Text safe for XML and unambiguous on screen: no controls, bidi overrides or noncharacters, one space."""
    text = str(text)[:MAX_INPUT_CHARS]
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\t\n\r\v\f":
            kept.append(" ")
        elif category in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS or ch in "\ufffe\uffff":
            continue
        else:
            kept.append(ch)
    return _SPACES.sub(" ", "".join(kept)).strip()


def text_width(text: str) -> float:
    """Rendered width in px of text at 11 px, never less than Verdana's or DejaVu Sans' advance."""
    return sum(_char_units(ch) for ch in text) * FONT_SIZE / UNITS_PER_EM


def fit_text(text: str, max_width: float = MAX_TEXT_WIDTH) -> str:
    """Cleaned text, cut with an ellipsis where it would grow wider than max_width."""
    text = clean_text(text)
    if text_width(text) <= max_width:
        return text
    budget = max_width * UNITS_PER_EM / FONT_SIZE - _char_units(ELLIPSIS)
    used = 0
    for i, ch in enumerate(text):
        used += _char_units(ch)
        if used > budget:
            return text[:i].rstrip() + ELLIPSIS
    return text


def _ruby_split(parts: list[str]) -> list[str]:
    # Ruby's String#split drops trailing empty fields but keeps leading and inner ones; the broker counts them.
    while parts and not parts[-1]:
        parts.pop()
    return parts


def _prepare_name(name: str, initials: bool, tag: str | None) -> str:
    # Mirrors PactBroker::Badges::Service#prepare_name:
    # https://github.com/pact-foundation/pact_broker/blob/master/lib/pact_broker/badges/service.rb
    suffix = f" ({tag})" if tag else ""
    if initials:
        parts = _ruby_split(_SPLIT_SEPARATORS.split(name))
        if len(parts) == 1:
            camel = _CAMEL_WORD.sub(r"\1_\2", _CAMEL_ACRONYM.sub(r"\1_\2", name)).replace("-", "_")
            parts = _ruby_split(camel.split("_"))
        if len(parts) > 1:
            return "".join(p[0] for p in parts if p).lower() + suffix
    return name.lower() + suffix


def badge_text(
    consumer: str,
    provider: str,
    label: str | None = None,
    initials: bool = False,
    consumer_tag: str | None = None,
    provider_tag: str | None = None,
) -> str:
    """The left text: '<consumer>/<provider> pact', or one side with label=consumer|provider, lower-cased.

    Tags are given only for matrix badges, where the broker appends ' (<tag>)' to each name.
    """
    consumer_name = _prepare_name(consumer, initials, consumer_tag)
    provider_name = _prepare_name(provider, initials, provider_tag)
    which = (label or "").lower()
    title = consumer_name if which == "consumer" else provider_name if which == "provider" else (
        f"{consumer_name}/{provider_name}"
    )
    return f"{title} pact".lower()


def _fmt(number: float) -> str:
    return f"{number:.1f}".rstrip("0").rstrip(".")


def render_badge(left: str, state: str) -> str:
    """A flat-style SVG badge; any state other than the four known ones renders as 'unknown'."""
    state = state if state in COLOURS else "unknown"
    # Cut before the cache so that huge names cannot make the cache keys huge.
    return render_svg(str(left)[:MAX_INPUT_CHARS], state, COLOURS[state])


def render_notice(left: str, message: str) -> str:
    """A lightgrey badge saying why no state is shown (e.g. a private badge without its signature)."""
    return render_svg(str(left)[:MAX_INPUT_CHARS], fit_text(message, MAX_NOTICE_WIDTH) or "unknown", COLOURS["unknown"])


DEPLOY_COLOURS = {"yes": COLOURS["verified"], "no": COLOURS["failed"], "unknown": COLOURS["unknown"]}
DEPLOY_COLOUR_NAMES = {"yes": "brightgreen", "no": "red", "unknown": "lightgrey"}


def render_deploy(left: str, state: str, reason: str = "") -> str:
    """A can-i-deploy badge as the broker draws it: yes, no or unknown; the reason in its title (the tooltip)."""
    state = state if state in DEPLOY_COLOURS else "unknown"
    return render_svg(str(left)[:MAX_INPUT_CHARS], state, DEPLOY_COLOURS[state], clean_text(reason)[:300])


def deploy_json(left: str, state: str, reason: str = "") -> str:
    state = state if state in DEPLOY_COLOURS else "unknown"
    return json.dumps({"schemaVersion": 1, "label": fit_text(left) or "can-i-deploy", "message": state,
                       "color": DEPLOY_COLOUR_NAMES[state], "reason": reason or None},
                      ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=4096)
def render_svg(left: str, message: str, colour: str, note: str = "") -> str:
    left = fit_text(left) or "pact"
    left_text_w, right_text_w = text_width(left), text_width(message)
    left_w = ceil(left_text_w) + 2 * PADDING
    right_w = ceil(right_text_w) + 2 * PADDING
    width = left_w + right_w
    title = escape(f"{left}: {message}" + (f" ({note})" if note else ""), quote=True)
    left_xml, right_xml = escape(left, quote=True), escape(message, quote=True)
    # Ids are derived from the content so that several badges inlined in one HTML page do not clash.
    uid = hashlib.sha256(f"{left}\0{message}".encode()).hexdigest()[:8]
    texts = []
    for text, centre, text_w in ((left_xml, left_w / 2, left_text_w), (right_xml, left_w + right_w / 2, right_text_w)):
        attrs = f'x="{_fmt(centre)}" textLength="{_fmt(text_w)}"'
        texts.append(f'<text {attrs} y="15" fill="#010101" fill-opacity=".3" aria-hidden="true">{text}</text>')
        texts.append(f'<text {attrs} y="14">{text}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<linearGradient id="g{uid}" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="c{uid}"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#c{uid})"><rect width="{left_w}" height="{HEIGHT}" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{left_w}" width="{right_w}" height="{HEIGHT}" fill="{colour}"/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#g{uid})"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="{FONT_FAMILY}" text-rendering="geometricPrecision" '
        f'font-size="{FONT_SIZE}">{"".join(texts)}</g></svg>'
    )


def badge_json(left: str, state: str) -> str:
    """The JSON twin of a badge, in the shields.io endpoint schema so it can also feed a shields badge."""
    return _json(str(left)[:MAX_INPUT_CHARS], state if state in COLOURS else "unknown")


@lru_cache(maxsize=4096)
def _json(left: str, state: str) -> str:
    return json.dumps(
        {"schemaVersion": 1, "label": fit_text(left) or "pact", "message": state, "color": COLOUR_NAMES[state]},
        ensure_ascii=False, separators=(",", ":"),
    )


def etag(body: str | bytes) -> str:
    """A strong ETag (quoted) for a rendered badge; equal bodies always give equal tags."""
    data = body.encode() if isinstance(body, str) else body
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
