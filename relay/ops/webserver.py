"""gunicorn's threaded worker that reads each whole request without a thread waiting on the client, then serves it."""

from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from functools import partial

from gunicorn.workers.gthread import _DEFER, ThreadWorker

from relay.config import Settings


class ReadDeadline(TimeoutError):
    """The client did not send what its request promised; gunicorn treats it like a reset connection."""

    def __init__(self):
        # ECONNRESET makes gunicorn close the connection quietly instead of logging a traceback.
        super().__init__(errno.ECONNRESET, "request not received whole before the read deadline")


class DeadlineSocket:
    """The client socket as gunicorn's thread sees it: the request is already buffered, so a recv that would have
    to wait means the client sent less than its framing promised; the connection is dropped, never waited on."""

    def __init__(self, sock, seconds: float):
        self._sock = sock
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def restart(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def recv(self, size: int, *flags) -> bytes:
        try:
            return self._sock.recv(size, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            raise ReadDeadline() from None

    def __getattr__(self, name):
        return getattr(self._sock, name)


MAX_HEAD = 64 * 1024  # beyond this gunicorn's own limits answer (400): hand it over
MAX_CHUNK_LINE = 4096  # a chunk-size line (hex digits and extensions), or a trailer section
LINGER_SECONDS = 2.0  # after a refusal, what the client still sends is read (not reset) this long, on the poller
LINGER_BYTES = 1024 * 1024


def answer(status: bytes, message: bytes) -> bytes:
    body = b'{"error": "%s"}\n' % message
    return (b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (status, len(body), body))


TIMED_OUT = answer(b"408 Request Timeout", b"the request body did not arrive in time, or not all of it")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([^\r]*)\r\n")
TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding:[ \t]*([^\r]*)\r\n")


class Framing:
    """Where the request buffered so far ends, found incrementally (each byte is looked at once): its head, then a
    Content-Length body or chunked framing. Anything unusual (two lengths, a bad chunk size) counts as complete and
    goes to gunicorn's parser, which refuses it; since the thread never waits, a misjudged end cannot hold one."""

    def __init__(self, limit: int):
        self.limit = limit
        self.head_end = -1  # index just past the blank line that ends the head
        self.length = -1  # Content-Length, or -1 while chunked framing is being followed
        self.cursor = 0  # chunked: where the next chunk-size line (or the trailers) starts
        self.chunk_left = 0  # chunked: bytes of the current chunk (and its CRLF) not yet buffered
        self.trailers = False
        self.body_size = 0
        self.searched = 0  # the head's blank line is not in buffered[:searched - 3]

    def state(self, buffered: bytearray) -> str:
        """'more' (wait on the poller), 'complete' (serve it) or 'too-large' (answer 413 without reading on)."""
        if self.head_end < 0:
            end = buffered.find(b"\r\n\r\n", max(0, self.searched - 3))
            if end < 0:
                self.searched = len(buffered)
                return "complete" if len(buffered) > MAX_HEAD else "more"
            self.head_end = end + 4
            verdict = self._head(bytes(buffered[:end + 2]).lower())
            if verdict:
                return verdict
        if self.length >= 0:
            return "complete" if len(buffered) - self.head_end >= self.length else "more"
        return self._chunks(buffered)

    def _head(self, head: bytes) -> str | None:
        lengths = CONTENT_LENGTH.findall(head)
        codings = TRANSFER_ENCODING.findall(head)
        if codings:
            if lengths or len(codings) > 1 or codings[0].rsplit(b",", 1)[-1].strip() != b"chunked":
                return "complete"  # ambiguous or unsupported framing: gunicorn answers 400
            self.cursor = self.head_end
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].strip().isdigit()):
            return "complete"
        self.length = int(lengths[0]) if lengths else 0
        return "too-large" if self.length > self.limit else None

    def _chunks(self, buffered: bytearray) -> str:
        while True:
            if self.chunk_left:
                if len(buffered) - self.cursor < self.chunk_left:
                    return "more"
                self.cursor += self.chunk_left
                self.chunk_left = 0
            if self.trailers:
                if buffered[self.cursor:self.cursor + 2] == b"\r\n":
                    return "complete"
                if buffered.find(b"\r\n\r\n", self.cursor) >= 0 or len(buffered) - self.cursor > MAX_CHUNK_LINE:
                    return "complete"
                return "more"
            line_end = buffered.find(b"\r\n", self.cursor, self.cursor + MAX_CHUNK_LINE)
            if line_end < 0:
                return "complete" if len(buffered) - self.cursor > MAX_CHUNK_LINE else "more"
            digits = bytes(buffered[self.cursor:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(digits, 16)
            except ValueError:
                return "complete"
            self.cursor = line_end + 2
            if size == 0:
                self.trailers = True
                continue
            self.body_size += size
            if self.body_size > self.limit:
                return "too-large"
            self.chunk_left = size + 2


class DeadlineWorker(ThreadWorker):
    """`--worker-class relay.ops.webserver.DeadlineWorker`: gthread, except that no thread ever waits on a client.
    Whatever bytes a client has sent are taken without blocking, and the connection goes back to gunicorn's poller
    until the request is complete (head and body, Content-Length or chunked); only then does a thread parse and
    serve it, from memory. A body over the size limit is answered 413 as soon as its head (or chunk size) says so; a
    request whose head and body do not arrive within RELAY_REQUEST_READ_TIMEOUT seconds of its first byte is cut
    (408 once its head came)."""

    def init_process(self):
        settings = Settings.from_env()
        self.read_timeout = settings.request_read_timeout
        self.body_limit = settings.max_body_bytes
        self.too_large = answer(b"413 Content Too Large",
                                b"request body larger than %d KiB" % (self.body_limit // 1024))
        self.lingering: list[tuple[float, socket.socket]] = []
        super().init_process()

    def handle(self, conn):
        if self.cfg.is_ssl:  # TLS needs the real socket; terminate TLS in front of the relay instead
            return super().handle(conn)
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock, self.read_timeout)
        buffered = getattr(conn, "relay_buffered", None)
        if buffered is None:  # a new request on this connection
            buffered = conn.relay_buffered = bytearray()
            conn.relay_framing = Framing(self.body_limit)
            if conn.initialized:  # read-ahead of a kept-alive connection
                buffered += conn.parser.unreader.take_buffered()
            conn.sock.restart()
        framing: Framing = conn.relay_framing
        raw, eof = conn.sock._sock, False
        raw.setblocking(False)
        state = framing.state(buffered)
        try:
            while state == "more":
                chunk = raw.recv(65536)
                if not chunk:
                    eof = True
                    break
                if not buffered:
                    conn.sock.restart()  # the deadline counts from the request's first byte
                buffered += chunk
                state = framing.state(buffered)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return False
        if state == "too-large":
            conn.relay_buffered = None
            _send_quietly(raw, self.too_large)
            return False
        if state == "more" and not eof:
            if time.monotonic() > conn.sock.deadline:
                if framing.head_end >= 0:  # the head came, the body did not: say so, as the app would
                    _send_quietly(raw, TIMED_OUT)
                return False
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
        if not fs.cancelled() and fs.exception() is None and not fs.result():
            # The connection ends: gunicorn would linger for the client's last bytes in this, the poller's, thread.
            self.nr_conns -= 1
            self._linger(conn.sock._sock if isinstance(conn.sock, DeadlineSocket) else conn.sock)
            return
        super().finish_request(conn, fs)
        if getattr(conn, "relay_buffered", None) is not None and conn in self.pending_conns:
            # gunicorn gives a deferred connection its keep-alive time; a request being read gets its deadline
            conn.timeout = max(conn.timeout or 0, conn.sock.deadline)

    def murder_pending(self):
        """Close the connections whose request missed its deadline (408 once the head came), and stop lingering.
        gunicorn's own pass stops at the first unexpired connection, but deadlines do not expire in queue order."""
        now = time.monotonic()
        for conn in [c for c in self.pending_conns if c.timeout <= now]:
            self.pending_conns.remove(conn)
            try:
                self.poller.unregister(conn.sock)
            except (OSError, KeyError, ValueError):
                pass
            self.nr_conns -= 1
            framing = getattr(conn, "relay_framing", None)
            raw = conn.sock._sock if isinstance(conn.sock, DeadlineSocket) else conn.sock
            if getattr(conn, "relay_buffered", None) and framing is not None and framing.head_end >= 0:
                _send_quietly(raw, TIMED_OUT)
            self._linger(raw)
        for _until, sock in [entry for entry in self.lingering if entry[0] <= now]:
            self._close_lingering(sock)

    def _linger(self, sock: socket.socket) -> None:
        """Close as gunicorn's close_graceful does (FIN first, then read what the client still sends, so that the
        kernel does not answer it with a reset that destroys the response), but on the poller, not in a thread."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, partial(self._drain, [LINGER_BYTES]))
        except (OSError, KeyError, ValueError):
            sock.close()
            return
        self.lingering.append((time.monotonic() + LINGER_SECONDS, sock))

    def _drain(self, left: list[int], sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        left[0] -= len(data)
        if not data or left[0] <= 0:
            self._close_lingering(sock)

    def _close_lingering(self, sock: socket.socket) -> None:
        self.lingering = [entry for entry in self.lingering if entry[1] is not sock]
        try:
            self.poller.unregister(sock)
        except (OSError, KeyError, ValueError):
            pass
        sock.close()


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """A short answer the socket buffer takes at once; a client that is not reading does not get to hold a thread."""
    try:
        sock.send(data, socket.MSG_DONTWAIT)
    except OSError:
        pass
