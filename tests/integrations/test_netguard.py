"""The outgoing request guard: every internal address refused with a reason, unless allowed."""

import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import URLError

import psycopg
import pytest
from redis import Redis

from integrations.base import RetryableDeliveryError
from integrations.netguard import AddressRefused, Guard, Policy, address_problem, refusal
from tests.conftest import LOOPBACK_REFUSED, PG_ADMIN_URL, PUBLIC_ADDRESS

STRICT = Guard(Policy(schemes=("http", "https")))
OPEN = Guard(Policy(allow_private=True, schemes=("http", "https")))
ROOT = Path(__file__).resolve().parents[2]


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

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True  # a connection left open must not hold up shutdown
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def test_connection_level_check_catches_dns_rebinding(server, rebinding):
    """A name that resolved public at check time but connects to loopback is refused at connect."""
    url = f"http://rebind.test:{server.server_address[1]}/"
    STRICT.check_url(url)  # the first answer is public: the pre-connect check passes
    with STRICT.enforced(), pytest.raises(AddressRefused) as refused:
        STRICT.session().get(url, timeout=2)
    assert str(refused.value) == LOOPBACK_REFUSED
    assert rebinding == [PUBLIC_ADDRESS, "127.0.0.1"]


def test_outside_enforced_nothing_is_checked(server):
    resp = STRICT.session().get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=2, allow_redirects=False)
    assert resp.status_code == 302


def test_the_refusal_names_the_host_the_library_resolved(server):
    with STRICT.enforced(), pytest.raises(AddressRefused) as refused:
        STRICT.session().get(f"http://localhost:{server.server_address[1]}/", timeout=2)
    assert re.fullmatch(r"refused connection to localhost \((127\.0\.0\.1|::1)\): a loopback address "
                        r"\(set RELAY_ALLOW_PRIVATE_NETWORKS=true to allow\)", str(refused.value))


def test_a_connect_to_a_name_is_refused_and_its_socket_closed(server):
    """socket.connect resolves a name itself, after the audit event: only literal addresses can be checked."""
    sock = socket.socket()
    with OPEN.enforced(), pytest.raises(AddressRefused, match="refused connection to 'localhost': not an IP address"):
        sock.connect(("localhost", server.server_address[1]))
    assert sock.fileno() == -1


def test_unix_sockets_are_not_checked(tmp_path):
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "s"))
    listener.listen()
    with STRICT.enforced(), socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(tmp_path / "s"))
        assert sock.getpeername() == str(tmp_path / "s")
    listener.close()


def test_with_private_networks_allowed_every_address_is_let_through(server):
    for host in ("127.0.0.1", "localhost"):
        with OPEN.enforced():
            resp = OPEN.session().get(f"http://{host}:{server.server_address[1]}/", timeout=2, allow_redirects=False)
        assert resp.status_code == 302


def test_the_allow_list_applies_to_each_connection(server):
    port = server.server_address[1]
    by_name = Guard(Policy(allow_private=True, allowed_hosts=("localhost",), schemes=("http",)))
    with by_name.enforced():
        assert by_name.session().get(f"http://localhost:{port}/", timeout=2, allow_redirects=False).status_code == 302
        with pytest.raises(AddressRefused, match=r"^refused connection to 127\.0\.0\.1: not in RELAY_ALLOWED_HOSTS$"):
            by_name.session().get(f"http://127.0.0.1:{port}/", timeout=2)
    by_cidr = Guard(Policy(allow_private=True, allowed_hosts=("127.0.0.0/8",), schemes=("http",)))
    with by_cidr.enforced():
        assert by_cidr.session().get(f"http://127.0.0.1:{port}/", timeout=2, allow_redirects=False).status_code == 302


def test_redis_and_postgresql_outside_the_block_are_unaffected(redis_url):
    redis = Redis.from_url(redis_url, socket_connect_timeout=2)
    with STRICT.enforced():
        with pytest.raises(AddressRefused, match="loopback"):
            redis.ping()
        other = []  # another thread has its own context: the guard is not active there
        thread = threading.Thread(target=lambda: other.append(Redis.from_url(redis_url).ping()))
        thread.start()
        thread.join(10)
        assert other == [True]
    assert redis.ping() is True  # the same thread and client, after the block
    redis.close()
    # libpq opens its socket in C, unseen by audit hooks; psycopg may resolve the name in Python first
    with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_hook_is_installed_once_and_not_at_import():
    script = """
import sys
added = []
real = sys.addaudithook
sys.addaudithook = lambda hook: (added.append(hook), real(hook))
from integrations.netguard import Guard, Policy, install_hook
import relay.delivery.attempt, workers.jobs, relay.app
print(len(added))
guard = Guard(Policy())
with guard.enforced():
    pass
with guard.enforced():
    pass
install_hook()
print(len(added))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "1"]


def test_refusal_is_found_however_it_was_wrapped():
    refused = AddressRefused("refused connection to 10.0.0.5: a private address")
    try:
        try:
            raise refused
        except AddressRefused:
            raise RetryableDeliveryError("GitHub unreachable: ConnectionError") from None
    except RetryableDeliveryError as exc:
        assert refusal(exc) is refused
    assert refusal(URLError(refused)) is refused
    assert refusal(RetryableDeliveryError("timed out")) is None


def test_redirects_are_not_followed(server):
    session = Guard(Policy(allow_private=True, schemes=("http",))).session()
    resp = session.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=2, allow_redirects=False)
    assert resp.status_code == 302
