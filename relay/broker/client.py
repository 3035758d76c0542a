"""The read-only connection to the Pact Broker: its own origin only, with its credentials, bounded in size and time."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from urllib.parse import urlsplit

import requests

from relay.config import Settings

MAX_BYTES = 1024 * 1024
CONNECT_TIMEOUT = 2.0
DEFAULT_PORTS = {"http": 80, "https": 443}


class BrokerError(Exception):
    """Why an answer of the broker cannot be used, in one line that never holds a credential."""


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; None when it has none (relative, another scheme, a bad port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


class BrokerClient:
    """GETs JSON from RELAY_BROKER_URL's origin. Every failure is a BrokerError: callers carry on without."""

    def __init__(self, settings: Settings):
        if not settings.broker_url:
            raise ValueError("no broker configured")
        self.base_url = settings.broker_url
        self.origin = origin(settings.broker_url)
        self._token = settings.broker_token
        self._auth = ((settings.broker_username, settings.broker_password or "")
                      if settings.broker_username and not settings.broker_token else None)
        self._local = threading.local()
        self.read_timeout = settings.broker_timeout
        self.connect_timeout = min(CONNECT_TIMEOUT, settings.broker_timeout)
        # A broker that trickles bytes could keep each read under the read timeout for ever: the whole answer
        # gets twice as long.
        self.total_timeout = 2 * settings.broker_timeout

    def __repr__(self) -> str:
        return f"BrokerClient({self.base_url!r})"

    def owns(self, url: str) -> bool:
        """Whether `url` is on the broker's own origin: only those are fetched, and only they get its credentials."""
        return bool(url) and origin(url) == self.origin and not urlsplit(url).username

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # no proxy or .netrc credentials from the environment
            session.headers["Accept"] = "application/hal+json, application/json"
            if self._token:
                session.headers["Authorization"] = f"Bearer {self._token}"
            session.auth = self._auth
        return session

    def get_json(self, url: str) -> dict:
        """The JSON object at `url`, or BrokerError."""
        if not self.owns(url):
            raise BrokerError(f"not on the broker's origin ({_shown(url)}); not fetched")
        deadline = time.monotonic() + self.total_timeout
        try:
            with self._session().get(url, timeout=(self.connect_timeout, self.read_timeout), stream=True,
                                     allow_redirects=False) as resp:
                if resp.status_code in (401, 403):
                    raise BrokerError(f"the broker refused the relay's credentials (HTTP {resp.status_code}); "
                                      "check RELAY_BROKER_TOKEN or RELAY_BROKER_USERNAME/RELAY_BROKER_PASSWORD")
                if resp.status_code != 200:
                    raise BrokerError(f"the broker answered HTTP {resp.status_code}")
                declared = resp.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > MAX_BYTES:
                    raise BrokerError(f"the broker's answer is larger than {MAX_BYTES // 1024} KiB")
                body = bytearray()
                for chunk in resp.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise BrokerError(f"the broker's answer is larger than {MAX_BYTES // 1024} KiB")
                    if time.monotonic() > deadline:
                        raise BrokerError(f"the broker took more than {self.total_timeout:g} s to answer")
        except requests.Timeout:
            raise BrokerError(f"the broker did not answer within {self.read_timeout:g} s") from None
        except requests.RequestException as exc:
            raise BrokerError(f"cannot reach the broker ({type(exc).__name__})") from None
        try:
            doc = json.loads(bytes(body))
        except ValueError:
            raise BrokerError("the broker's answer is not JSON") from None
        if not isinstance(doc, dict):
            raise BrokerError("the broker's answer is not a JSON object")
        return doc

    def reachable(self) -> str:
        """'ok', or why the broker's index cannot be read (for /readyz)."""
        try:
            self.get_json(self.base_url + "/")
        except BrokerError as exc:
            return f"unavailable: {exc}"
        return "ok"


def _shown(url: str) -> str:
    """Where a refused URL pointed: scheme, host and port only (never its path, query or user info)."""
    found = origin(url)
    return f"{found[0]}://{found[1]}:{found[2]}" if found else "not an http(s) URL"


class PactCache:
    """Pacts by URL for one runtime: a pact version's content never changes, so one read serves every result."""

    SIZE = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, dict] = OrderedDict()

    def get(self, url: str) -> dict | None:
        with self._lock:
            if url in self._items:
                self._items.move_to_end(url)
            return self._items.get(url)

    def put(self, url: str, doc: dict) -> None:
        with self._lock:
            self._items[url] = doc
            self._items.move_to_end(url)
            while len(self._items) > self.SIZE:
                self._items.popitem(last=False)


class Reachability:
    """The broker's last readiness answer, refreshed in the background at most every TTL seconds: a probe never
    waits on the broker, and probes never hammer it."""

    TTL = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: float | None = None
        self._answer = "not checked yet"
        self._busy = False

    def check(self, client: BrokerClient) -> str:
        with self._lock:
            stale = self._at is None or time.monotonic() - self._at >= self.TTL
            if stale and not self._busy:
                self._busy = True
                threading.Thread(target=self._refresh, args=(client,), name="broker-ready", daemon=True).start()
            return self._answer

    def _refresh(self, client: BrokerClient) -> None:
        try:
            answer = client.reachable()
        finally:
            with self._lock:
                self._busy = False
        with self._lock:
            self._at, self._answer = time.monotonic(), answer
