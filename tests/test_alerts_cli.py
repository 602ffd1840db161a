"""``monitor alerts`` and its subcommands as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import load_settings
from monitor.db import make_engine
from tests.support.archive import add_article
from tests.support.servers import SMTPSink, WebhookReceiver


def test_list_retry_test_and_deliver(
    run_cli: Callable[..., Any], config_file: Callable[..., Path], database_url: str
) -> None:
    with SMTPSink() as smtp, WebhookReceiver(secret="s1") as ops, WebhookReceiver(secret="s2", status=410) as gone:
        config = config_file(
            yaml.safe_dump(
                {
                    "database_url": database_url,
                    "alerts": {
                        "email": smtp.settings(),
                        "webhooks": [ops.settings(name="ops"), gone.settings(name="gone")],
                    },
                }
            )
        )
        settings = load_settings(config, {})
        engine = make_engine(settings.database_url)
        first = add_article(engine, settings, url="https://n.example/1", title="First <b>")
        engine.dispose()

        result = run_cli("--config", str(config), "alerts", "deliver", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert (report["sent"], report["disabled"]) == (2, ["webhook:gone"])

        listing = run_cli("--config", str(config), "alerts")
        assert listing.exit_code == 0, listing.output
        assert "webhook:gone: 1 pending, 0 sent, 0 failed; DISABLED since" in listing.stdout
        assert "HTTP 410" in listing.stdout and "email: 0 pending, 1 sent" in listing.stdout
        assert f"article {first}" in listing.stdout and "First <b>" in listing.stdout

        pending = json.loads(run_cli("--config", str(config), "alerts", "--status", "pending", "--json").stdout)
        assert [a["channel"] for a in pending["alerts"]] == ["webhook:gone"]
        assert pending["alerts"][0]["last_error"].startswith("HTTP 410")
        assert {c["key"]: c["disabled_at"] is not None for c in pending["channels"]} == {
            "email": False,
            "webhook:ops": False,
            "webhook:gone": True,
        }

        retried = run_cli("--config", str(config), "alerts", "retry")
        assert retried.exit_code == 0 and "re-enabled webhook:gone" in retried.stdout

        failing = run_cli("--config", str(config), "alerts", "test")
        assert failing.exit_code == 1
        assert "webhook:ops: ok" in failing.stdout
        assert "webhook:gone: FAILED: gone: HTTP 410" in failing.stdout
        gone.status = 200
        passing = run_cli("--config", str(config), "alerts", "test")
        assert passing.exit_code == 0, passing.output
        assert len(smtp.messages) == 3 and smtp.messages[-1]["Subject"].endswith("Test alert from the news monitor")

        delivered = run_cli("--config", str(config), "alerts", "deliver")
        assert "alerts: 1 sent in 1 messages" in delivered.stdout
        assert [d.payload["type"] for d in gone.deliveries if d.verified] == [
            "mention.created",
            "mention.test",
            "mention.test",
            "mention.created",
        ]
        # Answered with 410 the first two times; the passing test and the re-send are kept.
        assert len(gone.kept) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_test_without_channels_is_an_error(
    run_cli: Callable[..., Any], config_file: Callable[..., Path], database_url: str
) -> None:
    config = config_file(f"database_url: {database_url}\n")
    result = run_cli("--config", str(config), "alerts", "test")
    assert result.exit_code == 2 and "no channel configured" in result.output
