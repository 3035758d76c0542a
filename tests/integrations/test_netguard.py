"""The outgoing request guard: every internal address refused with a reason, unless allowed."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from integrations.netguard import AddressRefused, Guard, Policy, address_problem

STRICT = Guard(Policy(schemes=("http", "https")))


@pytest.mark.parametrize("url,reason", [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://localhost:8080/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://100.64.0.1/", "non-public"),
    ("http://[fc00::1]/", "private"),
])
def test_internal_addresses_are_refused_with_a_reason(url, reason):
    with pytest.raises(AddressRefused, match=reason):
        STRICT.check_url(url)


@pytest.mark.parametrize("url,message", [
    ("ftp://example.com/", "scheme 'ftp' is not allowed"),
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("http:///nohost", "no host"),
])
def test_bad_urls(url, message):
    with pytest.raises(AddressRefused, match=message):
        STRICT.check_url(url)


def test_https_only_by_default():
    with pytest.raises(AddressRefused, match="scheme 'http' is not allowed"):
        Guard(Policy()).check_url("http://93.184.216.34/")


def test_public_addresses_pass():
    assert address_problem("93.184.216.34") is None
    assert address_problem("2606:2800:220:1:248:1893:25c8:1946") is None
    STRICT.check_url("http://93.184.216.34/")  # an IP literal needs no DNS


def test_allow_list_of_hosts_and_cidrs():
    guard = Guard(Policy(allow_private=True, allowed_hosts=("*.example.com", "10.0.0.0/8"), schemes=("http",)))
    guard.check_url("http://10.1.2.3/")
    with pytest.raises(AddressRefused, match="not in RELAY_ALLOWED_HOSTS"):
        guard.check_url("http://192.168.0.1/")


@pytest.fixture
def server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def test_connection_level_check_catches_dns_rebinding(server, monkeypatch):
    """A name that resolved public at check time but connects to loopback is refused at connect."""
    port = server.server_address[1]
    session = STRICT.session()
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):  # the DNS answer changes between check and connect
        return real("127.0.0.1" if host == "rebind.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(AddressRefused, match="loopback"):
        session.get(f"http://rebind.test:{port}/", timeout=2)


def test_redirects_are_not_followed(server):
    session = Guard(Policy(allow_private=True, schemes=("http",))).session()
    resp = session.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=2, allow_redirects=False)
    assert resp.status_code == 302
