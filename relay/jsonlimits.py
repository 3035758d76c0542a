"""JSON parsing that refuses deep nesting before the parser recurses into it, and a key given twice."""

from __future__ import annotations

import json
import re
from typing import Any

# Webhook documents are a few levels deep; no body the relay accepts needs more.
MAX_DEPTH = 32
# Python refuses to turn longer digit strings into an int (ValueError deep in the parser, a 500).
MAX_INT_DIGITS = 4300
# A string token (escapes included) or one bracket: brackets inside strings are skipped whole.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class TooDeep(ValueError):
    """The document nests deeper than allowed."""


class DuplicateKey(ValueError):
    """An object holds the same key twice: parsers disagree on which wins, so the relay picks none."""

    def __init__(self, key: str):
        super().__init__(f"{key[:100]!r} appears twice in one object")
        self.key = key


def _deeper_than(text: str, limit: int) -> bool:
    if text.count("[") + text.count("{") <= limit:  # fewer openers than the limit: cannot nest deeper
        return False
    depth = 0
    for token in _TOKENS.finditer(text):
        char = token[0][0]
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def loads(data: bytes | str, limit: int = MAX_DEPTH) -> Any:
    """`json.loads`, but a document nested deeper than `limit` raises TooDeep without being parsed.

    The C parser recurses once per level: deep enough, it raises RecursionError, and while that deep any
    garbage-collector callback that runs has no stack left either.
    """
    # Decoded as json.loads decodes bytes (UTF-8, -16 or -32), so the scan sees the characters the parser sees.
    text = data if isinstance(data, str) else data.decode(json.detect_encoding(data), "surrogatepass")
    if _deeper_than(text, limit):
        raise TooDeep(f"nests deeper than {limit} levels")
    return json.loads(text, parse_int=_int, object_pairs_hook=_object)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        raise DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return obj


def _int(digits: str) -> int | float:
    # Beyond the limit the number is kept as a float (inf): still a number, so the field that holds it is
    # reported as wrongly typed or out of range, instead of the whole body failing with a 500.
    return int(digits) if len(digits) <= MAX_INT_DIGITS else float(digits)
