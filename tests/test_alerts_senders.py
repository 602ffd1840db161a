"""Senders without the database: signatures, SMTP transports, rendering, configuration."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from monitor.alerts.channels import DeliveryError, digest_window_end
from monitor.alerts.email import EmailSender, render
from monitor.alerts.exchange import Cancelled, Stop
from monitor.alerts.payloads import sample_message
from monitor.alerts.webhook import WebhookSender, signature, signing_key
from monitor.config import EmailSettings, Settings, WebhookSettings, load_settings, unnamed_webhook_key
from monitor.errors import ConfigError
from tests.support.servers import (
    HTTPServer,
    Response,
    SMTPSink,
    StalledServer,
    WebhookReceiver,
    self_signed_cert,
)
from tests.support.waiting import wait_for

NOW = datetime(2030, 5, 1, 10, 0, tzinfo=UTC)


def message(message_id: str = "msg_0123") -> Any:
    return sample_message(message_id=message_id, now=NOW, public_url="https://m.example.org")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


# --------------------------------------------------------------------------- webhooks


@pytest.mark.parametrize("secret", ["whsec_" + base64.b64encode(b"0123456789abcdef0123").decode(), "plain secret ✓"])
def test_signature_verifies_with_standardwebhooks(secret: str) -> None:
    with WebhookReceiver(secret=secret) as receiver:
        sender = WebhookSender(WebhookSettings(**receiver.settings()), user_agent="t")
        try:
            assert sender.send(message("msg_a")) is None
        finally:
            sender.close()
    (delivery,) = receiver.deliveries
    assert delivery.verified and delivery.webhook_id == "msg_a"
    assert delivery.payload["type"] == "mention.test"


def test_signature_is_the_documented_hmac() -> None:
    key = signing_key("whsec_" + base64.b64encode(b"k" * 24).decode())
    assert key == b"k" * 24
    assert signing_key("not-base64!") == b"not-base64!"
    body = '{"a":"ü"}'.encode()
    expected = hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    assert signature(key, "msg_1", 1700000000, body) == "v1," + base64.b64encode(expected).decode()
    reference = Webhook(key).sign("msg_1", datetime.fromtimestamp(1700000000, UTC), body.decode())
    assert signature(key, "msg_1", 1700000000, body) == reference


def test_wrong_secret_is_refused_and_permanent() -> None:
    with WebhookReceiver(secret="the receiver's secret") as receiver:
        sender = WebhookSender(WebhookSettings(**receiver.settings(secret="another secret")), user_agent="t")
        with pytest.raises(DeliveryError) as caught:
            sender.send(message())
        sender.close()
    assert caught.value.kind == "permanent" and "HTTP 401" in str(caught.value)
    assert receiver.deliveries[0].verified is False


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, "transient"),
        (503, "transient"),
        (429, "transient"),
        (408, "transient"),
        (404, "permanent"),
        (410, "gone"),
        (301, "permanent"),
    ],
)
def test_http_status_classes(status: int, kind: str) -> None:
    with WebhookReceiver(secret="s", status=status) as receiver:
        sender = WebhookSender(WebhookSettings(**receiver.settings()), user_agent="t")
        with pytest.raises(DeliveryError) as caught:
            sender.send(message())
        sender.close()
    assert caught.value.kind == kind


def test_unreachable_endpoint_is_transient() -> None:
    receiver = WebhookReceiver(secret="s")  # never started: connection refused
    sender = WebhookSender(WebhookSettings(**receiver.settings()), user_agent="t")
    with pytest.raises(DeliveryError) as caught:
        sender.send(message())
    sender.close()
    assert caught.value.kind == "transient"


# ----------------------------------------------------------- deadlines and stopping

# Bounds with a wide margin: they tell a deadline that holds from one that never comes.
CUT_OFF = 6.0


def test_a_trickling_webhook_is_cut_off_at_the_deadline() -> None:
    with WebhookReceiver(secret="s") as receiver:
        sender = WebhookSender(WebhookSettings(**receiver.settings(timeout=1)), user_agent="t")
        sender.send(message("msg_first"))  # a connection kept from it would escape the deadline
        # A byte every 0.2 s: no single read ever waits for the 1 s timeout.
        receiver.trickle = 0.2
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            sender.send(message())
        took = time.monotonic() - started
        sender.close()
    assert caught.value.kind == "transient" and "no answer within 1s" in str(caught.value)
    assert took < CUT_OFF and receiver.trickled == 1


def test_only_the_start_of_a_huge_answer_is_read() -> None:
    # 8 MiB of error page, stalled after 256 KiB: the status and an excerpt are enough.
    page = b"<html>" + b"x" * (8 << 20)
    with HTTPServer() as server:
        server.route("/hook", Response(page, status=500, stall_after=256 << 10, delay=30))
        sender = WebhookSender(WebhookSettings(url=server.url("/hook"), secret="s", timeout=20), user_agent="t")
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            sender.send(message())
        took = time.monotonic() - started
        sender.close()
    assert caught.value.kind == "transient" and str(caught.value).startswith("HTTP 500")
    assert len(str(caught.value)) < 300 and took < CUT_OFF


def test_stopping_cancels_a_webhook_in_flight() -> None:
    with WebhookReceiver(secret="s", trickle=0.2) as receiver:
        sender = WebhookSender(WebhookSettings(**receiver.settings(timeout=60)), user_agent="t")
        stop = Stop()
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(Cancelled):
            sender.send(message(), stop=stop)
        took = time.monotonic() - started
        with pytest.raises(Cancelled):
            sender.send(message(), stop=stop)  # nothing starts once stopped
        sender.close()
    assert took < CUT_OFF and receiver.trickled == 1


@pytest.mark.parametrize("trickle", [b"", b"220 smtp.example.org ESMTP at your service\r\n"])
def test_an_smtp_server_that_never_answers_is_cut_off_at_the_deadline(trickle: bytes) -> None:
    with StalledServer(trickle=trickle, interval=0.2) as server:
        config = EmailSettings(
            smtp_host="127.0.0.1", smtp_port=server.port, sender="m@x.org", recipients=["d@x.org"], timeout=1
        )
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            EmailSender(config).send(message())
        took = time.monotonic() - started
    assert caught.value.kind == "transient" and "no answer within 1s" in str(caught.value)
    assert took < CUT_OFF and server.accepted == 1


def test_a_silent_smtp_server_reads_as_no_answer_whichever_timeout_goes_off_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The socket's timeout and the exchange's deadline are both the configured timeout;
    # with the deadline held back, the socket's goes off first, and says the same.
    from monitor.alerts import email

    class LateDeadline(email.Exchange):
        def __init__(self, seconds: float, stop: Stop | None = None) -> None:
            super().__init__(seconds * 10, stop)

    monkeypatch.setattr(email, "Exchange", LateDeadline)
    with StalledServer(trickle=b"", interval=0.2) as server:
        config = EmailSettings(
            smtp_host="127.0.0.1", smtp_port=server.port, sender="m@x.org", recipients=["d@x.org"], timeout=1
        )
        with pytest.raises(DeliveryError) as caught:
            EmailSender(config).send(message())
    assert caught.value.kind == "transient" and str(caught.value) == "no answer within 1s"


def test_stopping_cancels_an_smtp_exchange_in_flight() -> None:
    with StalledServer(trickle=b"220 slow", interval=0.2) as server:
        config = EmailSettings(
            smtp_host="127.0.0.1", smtp_port=server.port, sender="m@x.org", recipients=["d@x.org"], timeout=60
        )
        stop = Stop()
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(Cancelled):
            EmailSender(config).send(message(), stop=stop)
    assert time.monotonic() - started < CUT_OFF


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_stopping_cancels_an_smtp_exchange_over_tls(cert: tuple[Path, Path], mode: str) -> None:
    # The server holds its answer to the message: the client waits in a TLS read.
    with SMTPSink(**{"implicit_tls" if mode == "tls" else "starttls": cert}) as sink:
        sink.hold = 20
        config = EmailSettings(**sink.settings(ca_file=str(cert[0]), timeout=60, **{mode: True}))
        stop = Stop()
        wait_then_stop = threading.Thread(target=lambda: (wait_for(lambda: sink.messages), stop.set()))
        wait_then_stop.start()
        started = time.monotonic()
        with pytest.raises(Cancelled):
            EmailSender(config).send(message(), stop=stop)
        took = time.monotonic() - started
        wait_then_stop.join()
        sink.hold = 0
    assert took < CUT_OFF and len(sink.messages) == 1


# ------------------------------------------------------------------------------- SMTP


def test_implicit_tls(cert: tuple[Path, Path]) -> None:
    with SMTPSink(implicit_tls=cert) as sink:
        config = EmailSettings(**sink.settings(tls=True, ca_file=str(cert[0])))
        EmailSender(config).send(message())
    assert len(sink.messages) == 1


def test_starttls_with_login(cert: tuple[Path, Path]) -> None:
    with SMTPSink(starttls=cert, login=("monitor", "pa55")) as sink:
        config = EmailSettings(
            **sink.settings(starttls=True, ca_file=str(cert[0]), username="monitor", password="pa55")
        )
        EmailSender(config).send(message())
        bad = EmailSettings(**sink.settings(starttls=True, ca_file=str(cert[0]), username="monitor", password="wrong"))
        with pytest.raises(DeliveryError) as caught:
            EmailSender(bad).send(message())
    assert len(sink.messages) == 1 and sink.logins == ["monitor"]
    assert caught.value.kind == "permanent" and "535" in str(caught.value)


def test_untrusted_certificate_is_not_accepted(cert: tuple[Path, Path]) -> None:
    with SMTPSink(implicit_tls=cert) as sink, pytest.raises(DeliveryError) as caught:
        EmailSender(EmailSettings(**sink.settings(tls=True))).send(message())
    assert "certificate" in str(caught.value) and sink.messages == []


def test_smtp_server_down_is_transient() -> None:
    sink = SMTPSink()  # not started
    with pytest.raises(DeliveryError) as caught:
        EmailSender(EmailSettings(**sink.settings())).send(message())
    assert caught.value.kind == "transient"


def test_starttls_that_the_server_does_not_offer_fails_before_any_login() -> None:
    with SMTPSink() as sink:  # plain SMTP: no STARTTLS in its EHLO
        config = EmailSettings(**sink.settings(starttls=True, username="monitor", password="pa55"))
        with pytest.raises(DeliveryError) as caught:
            EmailSender(config).send(message())
    assert caught.value.kind == "permanent" and "STARTTLS" in str(caught.value)
    assert sink.messages == [] and sink.logins == []


def test_email_shape() -> None:
    config = EmailSettings(sender="monitor@news.example", recipients=["a@x.example", "b@x.example"])
    mail = render(message("msg_77"), config)
    assert mail["Message-ID"] == "<msg_77@news.example>"
    assert mail["To"] == "a@x.example, b@x.example"
    assert mail["Subject"] == "[monitor] Test: Test alert from the news monitor"
    assert mail.get_content_type() == "multipart/alternative"
    html = mail.get_body(("html",)).get_content()
    assert 'href="https://m.example.org/articles/0"' in html
    assert render(message("msg_77"), config)["Message-ID"] == mail["Message-ID"]


# ------------------------------------------------------------------------ configuration


def test_channel_keys_and_validation() -> None:
    alerts = Settings.model_validate(
        {
            "alerts": {
                "email": {"sender": "m@x.org", "recipients": ["d@x.org"]},
                "webhooks": [
                    {"url": "https://user:pw@hooks.example/in?token=s3cret", "secret": "s"},
                    {"name": "ops", "url": "https://hooks.example/in?token=other", "secret": "s"},
                ],
            }
        }
    ).alerts
    keys = [c.key for c in alerts.channels]
    assert keys == ["email", unnamed_webhook_key("https://hooks.example/in"), "webhook:ops"]
    # Without a name: the host and a hash, never the path, the query or the credentials.
    assert re.fullmatch(r"webhook:hooks\.example-[0-9a-f]{8}", keys[1])


def test_an_unnamed_webhooks_key_holds_no_part_of_its_token() -> None:
    slack = "https://hooks.slack.com/services/T0AAAA/B0BBBB/AbCdEfGhIjKlMnOpQrStUvWx"
    discord = "https://discord.com/api/webhooks/123456789012345678/AbCdEf-gh_IJklmnop1234567890"
    hooks = [{"url": slack, "secret": "s"}, {"url": discord, "secret": "s"}, {"url": slack + "2", "secret": "s"}]
    keys = [c.key for c in Settings.model_validate({"alerts": {"webhooks": hooks}}).alerts.channels]
    assert keys[0].startswith("webhook:hooks.slack.com-") and keys[1].startswith("webhook:discord.com-")
    assert len(set(keys)) == 3  # two hooks of one host are two channels
    assert not any(part in key for key in keys for part in ("T0AAAA", "AbCd", "services", "123456789"))


@pytest.mark.parametrize(
    ("yaml_alerts", "problem"),
    [
        (
            "webhooks: [{url: 'https://h.example/a', secret: s}, {url: 'https://h.example/a', secret: t}]",
            "give them names",
        ),
        ("webhooks: [{url: 'https://h.example/a', secret: 'whsec_***'}]", "base64"),
        ('email: {sender: "m@x.org\\r\\nBcc: e@vil.org", recipients: [d@x.org]}', "not an e-mail address"),
        ("email: {sender: m@x.org, recipients: []}", "at least 1"),
        (
            "email: {sender: m@x.org, recipients: [d@x.org], username: me, password: pw}",
            "alerts.email: a login (username, password) without starttls or tls",
        ),
        (
            "email: {sender: m@x.org, recipients: [d@x.org], password: pw}",
            "set starttls: true",
        ),
    ],
)
def test_bad_alert_config_is_one_clear_line(tmp_path: Path, yaml_alerts: str, problem: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"alerts:\n  {yaml_alerts}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_digest_windows_are_aligned() -> None:
    assert digest_window_end(datetime(2030, 5, 1, 10, 59, 59, tzinfo=UTC), 3600) == datetime(2030, 5, 1, 11, tzinfo=UTC)
    assert digest_window_end(datetime(2030, 5, 1, 11, tzinfo=UTC), 3600) == datetime(2030, 5, 1, 12, tzinfo=UTC)
    assert digest_window_end(datetime(2030, 5, 1, 10, 7, tzinfo=UTC), 86400) == datetime(2030, 5, 2, tzinfo=UTC)
