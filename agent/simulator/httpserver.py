"""A small threaded HTTPS server with a router, shared by every simulated service.

Services (login, Graph, WinRM) register routes on one ``Router``; the server logs every request
it serves so tests can assert on what the agent sent (for example: a dry run sent no write).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from agent.simulator.ca import TlsMaterial


@dataclass
class Request:
    method: str
    path: str  # URL path, percent-decoding left to handlers
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str  # scheme://host:port of this server, for building absolute links
    params: dict[str, str] = field(default_factory=dict)  # filled from the route pattern
    client: str = ""
    raw_query: str = ""
    # The client certificate presented in the TLS handshake (DER), if any.
    peer_cert: bytes | None = None
    # State kept for the TCP connection across its requests (connection-based auth: NTLM).
    connection: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8")).items()}

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    note: dict[str, Any] = field(default_factory=dict)  # recorded in the request log, not sent

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        hdrs = {"Content-Type": "application/json; odata.metadata=minimal; charset=utf-8"}
        hdrs.update(headers or {})
        return cls(status, json_bytes(payload), hdrs)

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


Handler = Callable[[Request], Response]


def json_bytes(payload: Any) -> bytes:
    """Compact UTF-8 JSON. orjson writes a 999-user page several times faster than json.dumps
    (a third of the simulator's serving time went there); what it refuses (an int beyond 64
    bits, a key that is not a string, deep nesting) goes through json.dumps as before."""
    try:
        return orjson.dumps(payload)
    except (TypeError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        return json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class LoggedRequest:
    at: float
    method: str
    path: str
    query: str
    status: int
    client: str
    duration_ms: float
    note: dict[str, Any] = field(default_factory=dict)  # service-specific facts (RU cost, app id…)
    size: int = 0  # the answer's body, bytes


class Router:
    """Routes by method and a path pattern with ``{name}`` placeholders (one path segment)."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.fallback: Handler | None = None

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/") or "/")
        self._routes.append((method.upper(), re.compile(f"^{regex}/?$"), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            path_matched = True
            if method != request.method:
                continue
            request.params = match.groupdict()
            return handler(request)
        if self.fallback is not None:
            return self.fallback(request)
        status = 405 if path_matched else 404
        return Response.json(
            {
                "error": {
                    "code": "BadRequest" if status == 405 else "NotFound",
                    "message": "No route.",
                }
            },
            status,
        )


class RequestLog:
    """Every request the simulator served, in order; optionally mirrored to a JSONL file."""

    def __init__(self, path: Path | None = None, keep: int = 200_000) -> None:
        self._items: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._keep = keep
        self._file = path.open("a", encoding="utf-8") if path else None

    def add(self, item: LoggedRequest) -> None:
        with self._lock:
            self._items.append(item)
            if len(self._items) > self._keep:
                del self._items[: len(self._items) - self._keep]
            if self._file:
                self._file.write(json.dumps(item.__dict__, default=str) + "\n")
                self._file.flush()

    def items(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def close(self) -> None:
        with self._lock:  # shared by a simulator's listeners: closing twice is fine
            if self._file:
                self._file.close()
                self._file = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Keep-alive + Nagle + delayed ACK costs ~40 ms a request otherwise.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: we keep our own log
        return

    def setup(self) -> None:
        super().setup()
        self.connection_state: dict[str, Any] = {}

    def _serve(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=self.server.base_url,
            client=self.client_address[0],
            raw_query=split.query,
            peer_cert=self._peer_cert(),
            connection=self.connection_state,
        )
        note: dict[str, Any] = {}
        request.params = {}
        try:
            response = self.server.router.dispatch(request)
        except _DropConnection:
            self.close_connection = True
            self._record(request, 0, started, {"fault": "reset"})
            return
        except Exception as exc:  # a bug in the simulator: answer 500 and record it
            self.server.errors.append(repr(exc))
            response = Response.json(
                {"error": {"code": "InternalServerError", "message": "Simulator error."}}, 500
            )
        note.update(response.note)
        # Logged before the answer leaves: a client that read the answer finds it in the log.
        self._record(request, response.status, started, note, len(response.body))
        self.send_response(response.status)
        headers = dict(response.headers)
        headers.setdefault("Content-Length", str(len(response.body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    def _peer_cert(self) -> bytes | None:
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        try:
            return self.connection.getpeercert(binary_form=True)
        except (ValueError, ssl.SSLError):
            return None

    def _record(
        self, request: Request, status: int, started: float, note: dict[str, Any], size: int = 0
    ) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.server.log.add(
            LoggedRequest(
                time.time(),
                request.method,
                request.path,
                request.raw_query,
                status,
                request.client,
                elapsed_ms,
                note,
                size,
            )
        )

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve


class _DropConnection(Exception):
    """Raised by a handler to simulate a connection reset (fault injection)."""


DropConnection = _DropConnection


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    router: Router
    log: RequestLog
    base_url: str
    errors: list[str]
    tls_failures: int = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that rejects our certificate (or drops mid-handshake) is the client's
        # business: count it instead of printing a traceback to stderr.
        self.tls_failures += 1


class HttpsServer:
    """Serve a ``Router`` over TLS on loopback in a background thread (plain HTTP when
    ``tls`` is None: the bridge host's lab listener). With ``client_ca_pem`` the handshake asks
    for a client certificate (optional) and accepts those that CA issued."""

    def __init__(
        self,
        router: Router,
        tls: TlsMaterial | None,
        host: str = "127.0.0.1",
        port: int = 0,
        log: RequestLog | None = None,
        *,
        client_ca_pem: bytes | None = None,
    ) -> None:
        self.router = router
        self.tls = tls
        self.log = log or RequestLog()
        self._server = _Server((host, port), _Handler)
        self._server.router = router
        self._server.log = self.log
        self._server.errors = []
        self.scheme = "https" if tls is not None else "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            with tempfile.TemporaryDirectory() as tmp:
                cert = Path(tmp) / "cert.pem"
                key = Path(tmp) / "key.pem"
                cert.write_bytes(tls.cert_pem)
                key.write_bytes(tls.key_pem)
                context.load_cert_chain(cert, key)
            if client_ca_pem is not None:
                context.verify_mode = ssl.CERT_OPTIONAL
                context.load_verify_locations(cadata=client_ca_pem.decode("ascii"))
            # Handshake in the handler thread, not in the accept loop.
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        address = self._server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])
        self._server.base_url = self.base_url
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def errors(self) -> list[str]:
        """Exceptions raised inside handlers (each answered with a 500): tests assert none."""
        return self._server.errors

    def start(self) -> HttpsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="simulator-https", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.log.close()

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0
