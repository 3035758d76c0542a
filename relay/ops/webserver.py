"""gunicorn's threaded worker that buffers each request before a thread serves it, with a read deadline."""

from __future__ import annotations

import errno
import re
import time

from gunicorn.workers.gthread import _DEFER, ThreadWorker

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


MAX_HEAD = 64 * 1024  # beyond this gunicorn's own limits answer; hand it over
MAX_BUFFERED_BODY = 1024 * 1024  # larger bodies are refused by the app (413) without being read
BODY_TIMED_OUT = b'{"error": "the request body did not arrive in time, or not all of it"}\n'
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
             b"Content-Length: %d\r\n\r\n%s" % (len(BODY_TIMED_OUT), BODY_TIMED_OUT))
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d{1,12})[ \t]*\r\n")


def complete(buffered: bytes | bytearray) -> bool:
    """True once `buffered` holds a whole HTTP/1 request (head and Content-Length body), or all we will wait for."""
    end = buffered.find(b"\r\n\r\n")
    if end < 0:
        return len(buffered) > MAX_HEAD
    head = bytes(buffered[:end + 2]).lower()
    if b"\r\ntransfer-encoding:" in head:
        return True  # chunked bodies are read by the thread, still under the deadline
    length = CONTENT_LENGTH.search(head)
    size = int(length[1]) if length else 0
    return size > MAX_BUFFERED_BODY or len(buffered) - (end + 4) >= size


class DeadlineWorker(ThreadWorker):
    """`--worker-class relay.ops.webserver.DeadlineWorker`: gthread, except that a request is read without a
    thread waiting on it. Whatever bytes a client has sent are taken without blocking, and the connection goes
    back to gunicorn's poller until the request is complete; only then does a thread parse and serve it. A
    request's headers and body must arrive within RELAY_REQUEST_READ_TIMEOUT seconds of its first byte."""

    def init_process(self):
        self.read_timeout = Settings.from_env().request_read_timeout
        super().init_process()

    def handle(self, conn):
        if self.cfg.is_ssl:  # TLS needs the real socket; terminate TLS in front of the relay instead
            return super().handle(conn)
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock, self.read_timeout)
        buffered = getattr(conn, "relay_buffered", None)
        if buffered is None:  # a new request on this connection
            buffered = conn.relay_buffered = bytearray()
            if conn.initialized:  # read-ahead of a kept-alive connection
                buffered += conn.parser.unreader.take_buffered()
            conn.sock.restart()
        raw, eof = conn.sock._sock, False
        raw.setblocking(False)
        try:
            while not complete(buffered):
                chunk = raw.recv(65536)
                if not chunk:
                    eof = True
                    break
                if not buffered:
                    conn.sock.restart()  # the deadline counts from the request's first byte
                buffered += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return False
        if not (eof or complete(buffered)):
            if time.monotonic() > conn.sock.deadline:
                if b"\r\n\r\n" in buffered:  # the head came, the body did not: say so, as the app would
                    raw.setblocking(True)
                    try:
                        raw.sendall(TIMED_OUT)
                    except OSError:
                        pass
                return False  # gunicorn closes it
            conn.data_ready = True
            return _DEFER  # back to the poller: no thread waits for the rest
        conn.relay_buffered = None
        raw.setblocking(True)
        if eof and not buffered:
            return False
        conn.data_ready = True
        conn.init()
        conn.parser.unreader.unread(bytes(buffered))
        return super().handle(conn)

    def finish_request(self, conn, fs):
        super().finish_request(conn, fs)
        if getattr(conn, "relay_buffered", None) is not None and conn in self.pending_conns:
            # gunicorn gives a deferred connection its keep-alive time; a request being read gets its deadline
            conn.timeout = max(conn.timeout or 0, conn.sock.deadline)
