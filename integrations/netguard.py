"""The outgoing request guard: which schemes, hosts and addresses the relay may connect to."""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import requests

from integrations.base import PermanentDeliveryError, RetryableDeliveryError, split_url

ALLOW_HINT = " (set RELAY_ALLOW_PRIVATE_NETWORKS=true to allow)"
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class AddressRefused(PermanentDeliveryError):
    """The policy forbids this destination."""


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ("https",)


def address_problem(address: str) -> str | None:
    """Why an IP address counts as internal, or None for a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for attr, label in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_private", "a private address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, attr):
            return label
    if not ip.is_global:
        return "a non-public address"
    return None


def _host_allowed(host: str, addresses: list[str], allowed: tuple[str, ...]) -> bool:
    for rule in allowed:
        if "/" in rule:
            net = ipaddress.ip_network(rule, strict=False)
            if addresses and all(ipaddress.ip_address(a.split("%", 1)[0]) in net for a in addresses):
                return True
        elif fnmatch.fnmatchcase(host, rule.lower()) or host == rule.lower():
            return True
    return False


class Guard:
    """Checks URLs before a request, and inside `enforced()` the address of every connection made."""

    def __init__(self, policy: Policy):
        self.policy = policy

    def check_url(self, url: str) -> None:
        parts = split_url(url)
        if parts is None:
            raise AddressRefused(f"refused {url!r}: not a valid URL")
        scheme = parts.scheme.lower()
        if scheme not in self.policy.schemes:
            raise AddressRefused(f"refused {url!r}: scheme {scheme or '(none)'!r} is not allowed "
                                 f"(allowed: {', '.join(self.policy.schemes)})")
        host = (parts.hostname or "").lower()
        if not host:
            raise AddressRefused(f"refused {url!r}: no host")
        addresses = self._resolve(host, parts.port or (443 if scheme == "https" else 80))
        if self.policy.allowed_hosts and not _host_allowed(host, addresses, self.policy.allowed_hosts):
            raise AddressRefused(f"refused host {host}: not in RELAY_ALLOWED_HOSTS")
        for address in addresses:
            problem = self._forbidden(address)
            if problem:
                raise AddressRefused(f"refused host {host}: {address} is {problem}{ALLOW_HINT}")

    def _forbidden(self, address: str) -> str | None:
        """Why the policy refuses connecting to this address, or None."""
        return None if self.policy.allow_private else address_problem(address)

    @staticmethod
    def _resolve(host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise RetryableDeliveryError(f"cannot resolve host {host}: {exc}") from None
        return sorted({info[4][0] for info in infos})

    def session(self) -> requests.Session:
        """A requests session for sends; the connection check itself comes from `enforced()`."""
        session = requests.Session()
        session.trust_env = False  # with a proxy from the environment the check would see the proxy, not the target
        session.headers["User-Agent"] = "Pact-Relay"
        return session

    @contextmanager
    def enforced(self) -> Iterator[None]:
        """Check every connection this thread (context) opens inside the block, whichever library opens it."""
        install_hook()
        token = _active.set(_Enforcement(self))
        try:
            yield
        finally:
            _active.reset(token)

    def check_connection(self, host: str | None, address: Any) -> None:
        """The connect-time check of an AF_INET/AF_INET6 address tuple; `host` is the name resolved for it."""
        ip = address[0] if isinstance(address, tuple) and address else address
        try:
            ipaddress.ip_address(str(ip).split("%", 1)[0])
        except ValueError:
            # socket.connect resolves a name itself, after this check: only a literal address can be checked
            raise AddressRefused(f"refused connection to {ip!r}: not an IP address") from None
        ip = str(ip)
        who = ip if host in (None, ip) else f"{host} ({ip})"
        if self.policy.allowed_hosts and not _host_allowed(host or ip, [ip], self.policy.allowed_hosts):
            raise AddressRefused(f"refused connection to {who}: not in RELAY_ALLOWED_HOSTS")
        problem = self._forbidden(ip)
        if problem:
            raise AddressRefused(f"refused connection to {who}: {problem}{ALLOW_HINT}")


def refusal(exc: BaseException | None) -> AddressRefused | None:
    """The AddressRefused behind an exception, however a library wrapped it (cause, context, `reason`)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, AddressRefused):
            return exc
        seen.add(id(exc))
        reason = getattr(exc, "reason", None)  # urllib's URLError and urllib3's MaxRetryError keep it here
        if isinstance(reason, AddressRefused):
            return reason
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass
class _Enforcement:
    guard: Guard
    host: str | None = None  # the name last resolved in this context: the one the next connect goes to


_active: ContextVar[_Enforcement | None] = ContextVar("relay_guard_enforcement", default=None)
_hook_lock = threading.Lock()
_hook_installed = False
_IP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def install_hook() -> None:
    """Add the audit hook once per process; it cannot be removed, and does nothing outside `enforced()`."""
    global _hook_installed
    if _hook_installed:
        return
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True


def _audit(event: str, args: tuple, _active_get=_active.get, _families=_IP_FAMILIES) -> None:
    # Called for every audited event in the process (imports, open, compile, ...): return at once for others.
    # Defaults bind what it needs, so it keeps working while modules are torn down at exit.
    if event == "socket.connect":
        state = _active_get()
        if state is None:
            return
        sock, address = args
        if sock.family not in _families:  # AF_UNIX and the rest have no IP address to check
            return
        try:
            state.guard.check_connection(state.host, address)
        except AddressRefused:
            sock.close()  # callers close a socket only when connect raises OSError; this would leak until collected
            raise
    elif event == "socket.getaddrinfo":
        state = _active_get()
        if state is not None:
            host = args[0]
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            state.host = str(host).lower() if host else None
