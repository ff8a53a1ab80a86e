"""A small threaded HTTP server on the standard library, shared by the fakes and ``serve_bot``.

One thread accepts, one thread per connection answers (``ThreadingHTTPServer``). Bodies are
read whole, bounded by ``max_body``; chunked request bodies are refused (411) since neither
provider nor httpx sends them for these requests. ``stop()`` closes the listening socket and
every open connection, so a stopped server refuses connections like a dead host.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from typing_extensions import Self


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A request as the server read it."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    host: str

    def header(self, name: str) -> str | None:
        """First value of a header, by case-insensitive name."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    @property
    def query_params(self) -> dict[str, str]:
        """The query string as a dict (first value wins)."""
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            out.setdefault(key, value)
        return out


@dataclass(slots=True)
class Reply:
    """What to answer; ``after`` runs once the response has been written (status webhooks)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    after: Callable[[], None] | None = None
    #: Close the connection without answering (a dropped connection).
    drop: bool = False


App = Callable[[RawRequest], Reply]


#: Connections served at once; more get an immediate 503 (the server stays bounded).
MAX_CONNECTIONS = 128

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
    b"Connection: close\r\n\r\nserver busy"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: App, max_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection is closed after this
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    server_version = "eki-whatsapp-fake"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the demo print what matters themselves."""

    def _dispatch(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(Reply(411, {"Content-Type": "text/plain"}, b"chunked bodies are not supported"))
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > self.server.max_body:
            self._send(Reply(413, {"Content-Type": "text/plain"}, b"body too large"))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = RawRequest(
            method=self.command.upper(),
            path=parts.path,
            query=parts.query,
            headers=list(self.headers.items()),
            body=body,
            host=host,
        )
        try:
            reply = self.server.app(request)
        except Exception as exc:  # a bug in a fake must not kill the connection thread silently
            text = f"internal error: {type(exc).__name__}".encode()
            reply = Reply(500, {"Content-Type": "text/plain"}, text)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self._send(reply)
        finally:
            if reply.after is not None:
                reply.after()

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD" and reply.body:
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch


class LocalServer:
    """A threaded HTTP server on ``host:port`` (``port=0``: an ephemeral port) calling ``app``.

    Started on construction; ``close()`` (or leaving the ``with`` block) stops it.
    ``pause()``/``resume()`` stop and restart listening on the same port.
    """

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0, *, max_body: int = 32 << 20) -> None:
        self._app = app
        self._max_body = max_body
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._host = host
        self._port = port
        self._closed = threading.Event()
        self._listen()

    def _listen(self) -> None:
        httpd = _Server((self._host, self._port), self._app, self._max_body)
        self._port = int(httpd.server_address[1])
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"eki-whatsapp-http-{self._port}",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread

    def _unlisten(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def host(self) -> str:
        """The address listened on."""
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (chosen by the OS when created with ``port=0``)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def listening(self) -> bool:
        """Whether the server accepts connections now (not closed, not paused)."""
        return self._httpd is not None

    def pause(self) -> None:
        """Stop listening (connections are refused) until :meth:`resume`."""
        with self._lock:
            if self._httpd is not None:
                self._unlisten()

    def resume(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            if self._httpd is None and not self._closed.is_set():
                self._listen()

    def close_connections(self) -> None:
        """Close every open (keep-alive) connection."""
        httpd = self._httpd
        if httpd is not None:
            httpd.close_connections()

    def close(self) -> None:
        """Stop the server and close every connection (idempotent)."""
        self._closed.set()
        with self._lock:
            self._unlisten()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`close` is called (or ``timeout``); ``True`` when closed."""
        return self._closed.wait(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
