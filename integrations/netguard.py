"""The outgoing request guard: which schemes, hosts and addresses the relay may connect to."""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from integrations.base import PermanentDeliveryError, split_url

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
    """Checks URLs before a request and the connected peer address on every connection."""

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
            self.check_address(host, address)

    def check_address(self, host: str, address: str) -> None:
        if self.policy.allow_private:
            return
        problem = address_problem(address)
        if problem:
            raise AddressRefused(f"refused host {host}: {address} is {problem} "
                                 "(set RELAY_ALLOW_PRIVATE_NETWORKS=true to allow)")

    @staticmethod
    def _resolve(host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            from integrations.base import RetryableDeliveryError

            raise RetryableDeliveryError(f"cannot resolve host {host}: {exc}") from None
        return sorted({info[4][0] for info in infos})

    def session(self) -> requests.Session:
        """A requests session that re-checks the address actually connected to (defeats DNS rebinding)."""
        session = requests.Session()
        session.trust_env = False  # proxies from the environment would bypass the peer check
        session.headers["User-Agent"] = "Pact-Relay"
        adapter = _GuardedAdapter(self)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session


def _checked(conn_base: type, guard: Guard) -> type:
    def _new_conn(self):
        sock = conn_base._new_conn(self)
        try:
            guard.check_address(self.host, sock.getpeername()[0])
        except AddressRefused:
            sock.close()
            raise
        return sock

    return type(f"Guarded{conn_base.__name__}", (conn_base,), {"_new_conn": _new_conn})


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: Guard):
        self.guard = guard
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,),
                         {"ConnectionCls": _checked(HTTPConnection, self.guard)})
        https_pool = type("GuardedHTTPSPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": _checked(HTTPSConnection, self.guard)})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
