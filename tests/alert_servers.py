"""Real receivers for alert tests: an SMTP server and a webhook endpoint on 127.0.0.1.

``SMTPSink`` is an aiosmtpd server that keeps every message it accepts; it can be
stopped and started again on the same port (a relay that is down), answer a chosen
SMTP error, or hold a message for a while after accepting it.

``WebhookReceiver`` verifies each request with the independent ``standardwebhooks``
package and, like a well-behaved receiver, keeps the first delivery of each
``webhook-id`` and drops repeats. It can be switched to answer an error status, to
answer too late (a timeout), or to be down (connection refused).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.alerts import enqueue_alerts
from monitor.config import Settings
from monitor.db import session
from monitor.models import Article, Mention


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


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

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A webhook endpoint that verifies signatures and drops repeated ids."""

    secret: str
    port: int = field(default_factory=free_port)
    status: int = 200  # answer to every verified request
    retry_after: str | None = None
    delay: float = 0.0  # seconds to wait before answering (after keeping the payload)

    def __post_init__(self) -> None:
        key = self.secret if self.secret.startswith("whsec_") else self.secret.encode()
        self.verifier = Webhook(key)
        self.deliveries: list[Delivery] = []  # every request, repeats included
        self.kept: dict[str, dict[str, Any]] = {}  # webhook-id → payload, first one only
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def settings(self, **overrides: Any) -> dict[str, Any]:
        data = {"url": self.url, "secret": self.secret, "timeout": 2}
        data.update(overrides)
        return data

    @property
    def repeats(self) -> int:
        return len([d for d in self.deliveries if d.verified]) - len(self.kept)

    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        try:
            self.verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            delivery = Delivery(
                headers.get("webhook-id", ""),
                headers.get("webhook-timestamp", ""),
                headers.get("webhook-signature", ""),
                body,
                False,
                str(exc),
            )
            with self.lock:
                self.deliveries.append(delivery)
            return 401, {}
        delivery = Delivery(
            headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"], body, True
        )
        with self.lock:
            self.deliveries.append(delivery)
            if self.status < 300:
                self.kept.setdefault(delivery.webhook_id, delivery.payload)
        extra = {"Retry-After": self.retry_after} if self.retry_after else {}
        return self.status, extra

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver.receive(headers, body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- archive

STORY = " ".join(
    f"Paragraph {i}: ministers of the member states discussed the treaty, trade and "
    f"the pipeline near the border crossing number {i * 7}."
    for i in range(40)
)


def add_article(
    engine: sa.Engine,
    settings: Settings,
    *,
    url: str,
    title: str = "Ministers meet",
    mentions: tuple[tuple[str, str], ...] = (("CSTO", "ОДКБ"),),
    now: datetime | None = None,
) -> int:
    """Store a new article with its mentions and alerts as ingest does, in one transaction."""
    with session(engine) as db:
        article = Article(url=url, title=title, text=STORY, content_hash=url[-64:])
        db.add(article)
        db.flush()
        assert article.id is not None
        for offset, (entity, text) in enumerate(mentions):
            db.add(
                Mention(
                    article_id=article.id,
                    entity=entity,
                    text=text,
                    start=offset,
                    end=offset + len(text),
                    snippet=f"… {text} met in the capital …",
                )
            )
        enqueue_alerts(db, article=article, entities=sorted({e for e, _ in mentions}), settings=settings, now=now)
        db.commit()
        return article.id
