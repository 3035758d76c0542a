"""gunicorn's threaded worker with a read deadline per request, so slow clients cannot hold every thread."""

from __future__ import annotations

import errno
import time

from gunicorn.workers.gthread import ThreadWorker

from relay.config import Settings


class ReadDeadline(TimeoutError):
    """The client did not send its request in time; gunicorn treats it like a reset connection."""

    def __init__(self):
        # ECONNRESET makes gunicorn close the connection quietly instead of logging a traceback.
        super().__init__(errno.ECONNRESET, "request not received before the read deadline")


class DeadlineSocket:
    """The client socket, except that every recv waits at most until the current request's deadline."""

    def __init__(self, sock, seconds: float):
        self._sock = sock
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def recv(self, size: int, *flags) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ReadDeadline()
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise ReadDeadline() from None
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class DeadlineWorker(ThreadWorker):
    """`--worker-class relay.ops.webserver.DeadlineWorker`: a request's headers and body must arrive within
    RELAY_REQUEST_READ_TIMEOUT seconds of its first byte (gthread alone waits for them forever)."""

    def init_process(self):
        self.read_timeout = Settings.from_env().request_read_timeout
        super().init_process()

    def handle(self, conn):
        if self.cfg.is_ssl:  # TLS needs the real socket; terminate TLS in front of the relay instead
            return super().handle(conn)
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock, self.read_timeout)
        else:
            conn.sock.restart()
        return super().handle(conn)
