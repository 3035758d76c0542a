"""Redaction of secret values and credential headers in anything logged, stored or returned."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

SECRET_MASK = "********"
HEADER_MASK = "**********"
# A header whose name holds one of these words carries a credential as far as the relay can tell (X-Functions-Key,
# Ocp-Apim-Subscription-Key, Authentication, X-Hub-Signature, ...): sealed at rest and masked wherever shown.
SENSITIVE_WORDS = ("key", "token", "secret", "auth", "password", "signature", "session", "cookie")
SENSITIVE_HEADER = re.compile("|".join(SENSITIVE_WORDS), re.I)
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words everywhere


def is_sensitive_header(name: str) -> bool:
    return bool(SENSITIVE_HEADER.search(name))


def _json(ascii_only: bool):
    return lambda text: json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def _latin1_misread(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


# Every spelling is built from these steps, so a new way of writing a secret is a new step, never a new special case.
# Out: how the relay itself writes a value (templating: URL and form encoding, JSON with and without ensure_ascii,
# basic auth's base64). Read: how a target's answer may have read those bytes (UTF-8 taken as Latin-1, the HTTP
# default). Echo: how the answer may have written them back (verbatim or inside JSON, either way).
OUT = (lambda t: t, lambda t: quote_plus(t, safe=""), lambda t: quote(t, safe=""), lambda t: quote_plus(t, safe="/"),
       quote, _json(True), _json(False), lambda t: base64.b64encode(t.encode()).decode().rstrip("="))
READ = (lambda t: t, _latin1_misread)
ECHO = (lambda t: t, _json(True), _json(False))


def spellings(value: str) -> set[str]:
    """Every spelling of a value the relay produces or reads back: OUT, then READ, then ECHO."""
    return {echo(read(out(value))) for out in OUT for read in READ for echo in ECHO}


class Redactor:
    """Replaces every known secret value in each of its `spellings`."""

    def __init__(self, values: Iterable[str] = ()):
        self._values = [v for v in values if v and len(v) >= MIN_SECRET_LENGTH]
        forms = {form for value in self._values for form in spellings(value)}
        self._pattern = (re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
                         if forms else None)

    def add_basic_auth(self, *pairs: tuple[str, str]) -> Redactor:
        """Also catch the base64 `user:password` credential of each basic-auth pair (Latin-1 as requests
        sends it, and UTF-8)."""
        extra = set()
        for username, password in pairs:
            if not password:
                continue
            for encoding in ("latin-1", "utf-8"):
                try:
                    extra.add(base64.b64encode(f"{username}:{password}".encode(encoding)).decode())
                except UnicodeEncodeError:
                    continue
        return Redactor([*self._values, *sorted(extra)]) if extra else self

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


# Credentials with a recognisable shape are masked even when their value was never seen by this process.
SHAPES = (
    (re.compile(r"\b(prt_)[A-Za-z0-9_-]{16,}"), r"\1" + SECRET_MASK),
    (re.compile(r"\b(whsec_)[A-Za-z0-9+/=_-]{16,}"), r"\1" + SECRET_MASK),
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2" + SECRET_MASK),
)


class KnownSecrets:
    """The secret values this process has encrypted or decrypted, for masking free text such as log lines.

    They are in this process's memory anyway while it works with them; keeping the most recent ones
    (bounded) lets a log filter mask a value that reaches a message through an exception or a library.
    """

    def __init__(self, limit: int = 10_000):
        self._values: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()
        self._redactor: Redactor | None = Redactor()

    def add(self, value: str | None) -> None:
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                return
            self._values[value] = None
            while len(self._values) > self._limit:
                self._values.popitem(last=False)
            self._redactor = None

    def redactor(self) -> Redactor:
        with self._lock:
            if self._redactor is None:
                self._redactor = Redactor(list(self._values))
            return self._redactor

    def text(self, value: str) -> str:
        value = self.redactor().text(value) or ""
        for pattern, replacement in SHAPES:
            value = pattern.sub(replacement, value)
        return value


# Where a database session carries its runtime's KnownSecrets (Session.info), for the audit log's masking.
SESSION_KEY = "relay.known_secrets"


def session_known_secrets(info: dict) -> KnownSecrets:
    """The KnownSecrets of the runtime that made a session; an empty one (shapes only) for any other session."""
    return info.get(SESSION_KEY) or KnownSecrets()
