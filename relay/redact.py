"""Redaction of secret values and credential headers in anything logged, stored or returned."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

SECRET_MASK = "********"
HEADER_MASK = "**********"
SENSITIVE_HEADER = re.compile(r"authori[sz]ation|token|secret|api[-_]?key|password|cookie", re.I)
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words everywhere


def is_sensitive_header(name: str) -> bool:
    return bool(SENSITIVE_HEADER.search(name))


class Redactor:
    """Replaces every known secret value, in its plain, URL-, JSON- and base64-encoded spellings."""

    def __init__(self, values: Iterable[str] = ()):
        forms: set[str] = set()
        for value in values:
            if not value or len(value) < MIN_SECRET_LENGTH:
                continue
            forms.update({value, quote_plus(value, safe=""), quote(value, safe=""), json.dumps(value)[1:-1],
                          base64.b64encode(value.encode()).decode().rstrip("=")})
        self._pattern = (re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
                         if forms else None)
        self._values = [v for v in values if v and len(v) >= MIN_SECRET_LENGTH]

    def add_basic_auth(self, username: str, password: str) -> Redactor:
        """Also catch the base64 `user:password` credential of a basic-auth header."""
        if not password:
            return self
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        return Redactor([*self._values, pair])

    def text(self, value: str | None) -> str | None:
        if value is None or self._pattern is None:
            return value
        return self._pattern.sub(SECRET_MASK, value)

    def headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {k: (HEADER_MASK if is_sensitive_header(k) else self.text(str(v))) for k, v in (headers or {}).items()}

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: (self.headers(v) if k == "headers" and isinstance(v, dict) else self.data(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value
