"""Real servers on 127.0.0.1 for tests: feeds and pages over HTTP, and alert receivers.

``HTTPServer`` serves feeds, pages and failures. Routes are set per path, either as a
fixed ``Response`` or as a callable that gets the ``Request`` and returns one, so a test
can script conditional GETs, flaky sources, redirects or slow answers. Every request is
logged for assertions.

    with HTTPServer() as server:
        server.route("/feed.xml", Response(body=rss, headers={"Content-Type": "application/rss+xml"}))
        url = server.url("/feed.xml")

``SMTPSink`` is an aiosmtpd server that keeps every message it accepts; it can be
stopped and started again on the same port (a relay that is down), answer a chosen
SMTP error, or hold a message for a while after accepting it.

``PostReceiver`` is what the alert receivers have in common: an endpoint on a port fixed
when it is made, so that it can be down (stopped: connection refused) and up again at
the same address, handing each ``Post`` to the receiver and sending its ``Reply``, late
if asked (``delay``). ``NotifyReceiver`` (``tests/support/notify.py``) is one for
Apprise's targets.

``WebhookReceiver`` verifies each request with the independent ``standardwebhooks``
package and, like a well-behaved receiver, keeps the first delivery of each
``webhook-id`` and drops repeats. It can be switched to answer an error status, to
answer too late (a timeout), to trickle its answer a byte at a time (so that no single
read ever times out), or to be down (connection refused).

``StalledServer`` accepts TCP connections and never answers in full: silent, or
trickling a few bytes (an SMTP relay that hangs after accepting).

Every server here stops by itself: a stalled or trickled connection is given up after
a bounded time, and at once when the server is stopped.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.waiting import free_port


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    # Send this many bytes, then stall for ``delay`` (for read timeouts mid-body).
    stall_after: int | None = None
    # Send the body in chunks (Transfer-Encoding: chunked), without a Content-Length.
    chunked: bool = False

    def encoded(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


Handler = Callable[[Request], Response]


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (size caps, timeouts under test) are no error here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HTTPServer:
    """A threaded HTTP/1.1 server on a free loopback port, run in the background."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, Response | Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server._serve(self, "GET")

            def do_HEAD(self) -> None:
                server._serve(self, "HEAD")

            def do_POST(self) -> None:
                server._serve(self, "POST")

        self._server = _QuietServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, response: Response | Handler) -> None:
        self._routes[path] = response

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> HTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        request = Request(method, handler.path, {k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.requests.append(request)
        route = self._routes.get(handler.path) or self._routes.get(handler.path.split("?")[0])
        if route is None:
            response = Response(b"not found", status=404)
        elif callable(route):
            response = route(request)
        else:
            response = route
        body = response.encoded()
        if response.delay and response.stall_after is None:
            time.sleep(response.delay)
        try:
            handler.send_response(response.status)
            length = {"Transfer-Encoding": "chunked"} if response.chunked else {"Content-Length": str(len(body))}
            headers = {**length, **response.headers}
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if method == "HEAD" or response.status == 304:
                return
            if response.chunked:
                self._write_chunked(handler, body)
            elif response.stall_after is not None:
                handler.wfile.write(body[: response.stall_after])
                handler.wfile.flush()
                time.sleep(response.delay)
                handler.wfile.write(body[response.stall_after :])
            else:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts, size caps): expected in these tests

    @staticmethod
    def _write_chunked(handler: BaseHTTPRequestHandler, body: bytes, size: int = 65536) -> None:
        for start in range(0, len(body), size):
            piece = body[start : start + size]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.wfile.write(b"0\r\n\r\n")


# ------------------------------------------------------------------------- alert receivers


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass(frozen=True)
class Post:
    """A POST as a receiver got it (header names in lower case)."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass(frozen=True)
class Reply:
    """A receiver's answer: a status, headers and a body; or, with ``stream``, whatever
    that writes on the connection itself, which is then closed."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: Callable[[BufferedIOBase], None] | None = None


class PostReceiver:
    """An HTTP endpoint on ``port`` of 127.0.0.1 for ``POST``s, answered by ``reply``.

    Subclasses are dataclasses with ``port`` and ``delay`` (seconds to wait before
    answering, after ``reply`` has kept the request) and call ``super().__post_init__()``.
    ``stop`` cuts a delay short, so that a test's receiver never outlives it.
    """

    port: int
    delay: float

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._closing = threading.Event()

    def reply(self, post: Post) -> Reply:
        raise NotImplementedError

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                post = Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                receiver._answer(self, receiver.reply(post))

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._closing.clear()
        self._server = server
        return self

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.stream is not None:
            reply.stream(handler.wfile)
            handler.close_connection = True
            return
        if self.delay:
            self._closing.wait(self.delay)
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up waiting

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------ SMTP


class _SMTPHandler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.reply:
            return self.sink.reply
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append(parsed)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.sink.hold:
            await asyncio.sleep(self.sink.hold)
        return "250 2.0.0 OK"


class SMTPSink:
    """An SMTP server collecting messages (``messages``: parsed ``EmailMessage``s)."""

    def __init__(
        self,
        *,
        implicit_tls: tuple[Path, Path] | None = None,
        starttls: tuple[Path, Path] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()
        self.reply: str | None = None  # e.g. "451 4.3.0 try later"
        self.hold = 0.0  # seconds to wait after accepting, before answering
        self.logins: list[str] = []
        self._implicit_tls = implicit_tls
        self._starttls = starttls
        self._login = login
        self._controller: Controller | None = None

    def _context(self, pair: tuple[Path, Path]) -> Any:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pair[0]), str(pair[1]))
        return context

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and self._login:
            user, password = data.login.decode(), data.password.decode()
            if (user, password) == self._login:
                self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> SMTPSink:
        kwargs: dict[str, Any] = {}
        if self._implicit_tls:
            kwargs["ssl_context"] = self._context(self._implicit_tls)
        if self._starttls:
            kwargs["tls_context"] = self._context(self._starttls)
            kwargs["require_starttls"] = True
        if self._login:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = bool(self._starttls)
        self._controller = Controller(_SMTPHandler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self, **overrides: Any) -> dict[str, Any]:
        data = {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "sender": "monitor@example.org",
            "recipients": ["desk@example.org"],
            "timeout": 5,
        }
        data.update(overrides)
        return data


# --------------------------------------------------------------------------- webhooks


@dataclass
class Delivery:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    verified: bool
    error: str | None = None
    trickled: bool = False  # answered a byte at a time, never in full

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver(PostReceiver):
    """A webhook endpoint that verifies signatures and drops repeated ids."""

    secret: str
    port: int = field(default_factory=free_port)
    status: int = 200  # answer to every verified request
    retry_after: str | None = None
    delay: float = 0.0  # seconds to wait before answering (after keeping the payload)
    # Seconds between the bytes of a never-ending answer (0: answer at once); while it
    # trickles, the receiver keeps nothing, as one that never gets to process the call.
    trickle: float = 0.0
    trickle_for: float = 60.0  # each trickled answer is given up after this long

    def __post_init__(self) -> None:
        super().__post_init__()
        key = self.secret if self.secret.startswith("whsec_") else self.secret.encode()
        self.verifier = Webhook(key)
        self.deliveries: list[Delivery] = []  # every request, repeats included
        self.kept: dict[str, dict[str, Any]] = {}  # webhook-id → payload, first one only

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def trickled(self) -> int:
        """Requests answered by trickling."""
        with self.lock:
            return len([d for d in self.deliveries if d.trickled])

    def settings(self, **overrides: Any) -> dict[str, Any]:
        data = {"url": self.url, "secret": self.secret, "timeout": 2}
        data.update(overrides)
        return data

    @property
    def repeats(self) -> int:
        return len([d for d in self.deliveries if d.verified]) - len(self.kept)

    def reply(self, post: Post) -> Reply:
        delivery = self._delivery(post)
        with self.lock:
            self.deliveries.append(delivery)
            if delivery.verified and self.status < 300 and not delivery.trickled:
                self.kept.setdefault(delivery.webhook_id, delivery.payload)
        if self.trickle > 0:
            return Reply(stream=self._trickle)
        if not delivery.verified:
            return Reply(401)
        return Reply(self.status, {"Retry-After": self.retry_after} if self.retry_after else {})

    def _delivery(self, post: Post) -> Delivery:
        """The request as a delivery: verified, or not and why."""
        headers = post.headers
        try:
            self.verifier.verify(post.body, headers)
        except WebhookVerificationError as exc:
            return Delivery(
                headers.get("webhook-id", ""),
                headers.get("webhook-timestamp", ""),
                headers.get("webhook-signature", ""),
                post.body,
                False,
                str(exc),
            )
        return Delivery(
            headers["webhook-id"],
            headers["webhook-timestamp"],
            headers["webhook-signature"],
            post.body,
            True,
            trickled=self.trickle > 0,
        )

    def _trickle(self, out: BufferedIOBase) -> None:
        """A status line, then a header that never ends, a byte every ``trickle`` seconds."""
        interval, give_up = self.trickle, time.monotonic() + self.trickle_for
        pieces = itertools.chain(iter(b"HTTP/1.1 200 OK\r\nx-wait: "), itertools.repeat(ord(".")))
        try:
            for byte in pieces:
                if self._closing.is_set() or time.monotonic() > give_up:
                    return
                out.write(bytes([byte]))
                out.flush()
                self._closing.wait(interval)
        except OSError:
            pass  # the client gave up: what a deadline is for


# ----------------------------------------------------------------------- stalled servers


class StalledServer:
    """Accepts TCP connections and never answers in full: a relay that hangs.

    Silent by default; with ``trickle`` it sends those bytes one every ``interval``
    seconds (an SMTP greeting that never ends, so that no single read ever times out),
    then stays silent. Each connection is dropped after ``limit`` seconds, and all of
    them at ``stop()``.
    """

    def __init__(self, *, trickle: bytes = b"", interval: float = 1.0, limit: float = 60.0) -> None:
        self.trickle, self.interval, self.limit = trickle, interval, limit
        self.accepted = 0
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def start(self) -> StalledServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self._stall, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _stall(self, connection: socket.socket) -> None:
        give_up = time.monotonic() + self.limit
        with connection:
            try:
                for byte in self.trickle:
                    if self._closing.wait(self.interval) or time.monotonic() > give_up:
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up
            self._closing.wait(max(give_up - time.monotonic(), 0))

    def stop(self) -> None:
        self._closing.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> StalledServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
