"""A small threaded HTTP server that the network fakes build on.

Each fake registers routes (method + regular expression) and answers them from its own state.
Every request is recorded. Faults are queued per route and consumed in order, so a test can say
"the next POST /api/v1/statuses answers 503" or "store the status, then reset the connection".
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # regex groups of the route

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A value from the query string, the form body or the JSON body, in that order."""
        if name in self.query:
            return self.query[name][-1]
        content_type = self.headers.get("content-type", "")
        if "application/json" in content_type:
            value = (self.json or {}).get(name, default)
            return value if value is None or isinstance(value, str) else json.dumps(value)
        if "x-www-form-urlencoded" in content_type:
            values = self.form.get(name) or self.form.get(name + "[]")
            return values[-1] if values else default
        return default

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes -> raw
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if self.body is None:
            return b"", "text/plain"
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


@dataclass
class Fault:
    """One injected misbehaviour, consumed by the next matching request.

    - `status` answers with that status (and `body`/`headers`) instead of handling the request;
    - `delay` sleeps before answering (a slow reply);
    - `reset_after_handling` lets the route run (so state changes, e.g. a status is stored)
      and then resets the TCP connection instead of answering: the unknown-outcome case.
    """

    method: str
    path_pattern: str
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset_after_handling: bool = False
    reset_before_handling: bool = False
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.method in (method, "*") and re.search(self.path_pattern, path) is not None


Handler = Callable[[Request], Response]


class FakeServer:
    """Base class for the fakes: routing, recording, fault injection, start/stop."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # added to every reply (benchmarks)
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()  # open (kept-alive) client connections
        self.register_routes()

    # -- to override -------------------------------------------------------------------------
    def register_routes(self) -> None:
        raise NotImplementedError

    # -- helpers for subclasses and tests ----------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile("^" + pattern + "$"), handler))

    def inject(self, method: str, path_pattern: str, **kwargs: Any) -> Fault:
        fault = Fault(method=method, path_pattern=path_pattern, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def requests_to(self, method: str, path_pattern: str) -> list[Request]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.method == method and re.search(path_pattern, r.path) is not None
            ]

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out at once, as real servers send them (TCP_NODELAY): with
            # Nagle's algorithm the body would wait for the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with fake.lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake.lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection: a stopped server answers nothing,
        not even on a connection a client kept alive."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    # -- internals ---------------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _read_request(self, handler: BaseHTTPRequestHandler) -> Request:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        return Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )

    def _resolve(self, request: Request) -> Handler | None:
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if method == request.method and match:
                request.params = match.groupdict()
                return handler
        return None

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        request = self._read_request(handler)
        with self.lock:
            self.requests.append(request)
        fault = self._take_fault(request.method, request.path)
        if self.latency:
            time.sleep(self.latency)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.reset_before_handling:
            _reset(handler)
            return
        if fault and fault.status is not None:
            self._write(handler, Response(fault.status, fault.body, dict(fault.headers)))
            return
        route = self._resolve(request)
        if route is None:
            response = Response(
                404, {"error": f"No fake route for {request.method} {request.path}"}
            )
        else:
            try:
                response = route(request)
            except Exception as exc:  # a bug in the fake must be visible, not a hang
                response = Response(500, {"error": f"fake crashed: {exc!r}"})
        if fault and fault.reset_after_handling:
            _reset(handler)
            return
        if fault and fault.headers:
            response.headers.update(fault.headers)
        self._write(handler, response)

    def _write(self, handler: BaseHTTPRequestHandler, response: Response) -> None:
        payload, content_type = response.encode()
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                if name.lower() != "content-type":
                    handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # listen() runs in the constructor: the backlog must be a class attribute. The default (5)
    # makes the kernel drop connections when many clients connect at once.
    request_queue_size = 1024


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Abort the connection with a TCP RST, as a proxy or crashed server would."""
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    with contextlib.suppress(OSError):
        sock.close()
