"""Rules in the configuration, and channels whose secrets are not set (yet)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import load_settings, require_secrets
from monitor.errors import ConfigError

CHANNELS = """\
alerts:
  email:
    sender: monitor@example.org
    recipients: [desk@example.org]
    starttls: true
    username: monitor
    password: ${SMTP_PASSWORD}
  webhooks:
    - name: ops
      url: https://hooks.example.org/monitor
      secret: ${WEBHOOK_SECRET}
"""


def test_rules_are_read_with_their_channels_and_digests(config_file: Callable[..., Path]) -> None:
    path = config_file(
        CHANNELS
        + """\
rules:
  - name: almaty-unrest
    query: 'entity:Almaty protest OR unrest OR troops -football'
    channels: [webhook:ops]
    digest: 1h
  - name: csto
    query: 'entity:CSTO'
"""
    )
    settings = load_settings(path, {"SMTP_PASSWORD": "pw", "WEBHOOK_SECRET": "s"})
    assert settings.rules is not None
    unrest, csto = settings.rules
    assert (unrest.name, unrest.channels, unrest.digest) == ("almaty-unrest", ["webhook:ops"], 3600.0)
    assert (csto.name, csto.channels, csto.digest) == ("csto", None, None)
    assert load_settings(config_file("{}", name="empty.yaml"), {}).rules is None


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "  - {name: a, query: x, channels: ['webhook:nope']}\n",
            "config: rules: rule 'a': no channel named 'webhook:nope' (channels: email, webhook:ops)",
        ),
        ("  - {name: a, query: x}\n  - {name: a, query: y}\n", "config: rules: two rules are both named 'a'"),
        ("  - {name: 'a b', query: x}\n", "config: rules.0.name: 'a b' is not a rule name"),
        ("  - {name: a, query: x, channels: []}\n", "config: rules.0.channels: list at least one channel"),
        ("  - {name: a, query: x, digest: soon}\n", "config: rules.0.digest"),
        ("  - {name: a}\n", "config: rules.0.query: Field required"),
    ],
)
def test_a_bad_rule_is_one_line_naming_it(config_file: Callable[..., Path], rules: str, expected: str) -> None:
    path = config_file(CHANNELS + "rules:\n" + rules)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_a_channel_entities_filter_is_refused_beside_rules(config_file: Callable[..., Path]) -> None:
    text = CHANNELS.replace("      secret:", "      entities: [CSTO]\n      secret:")
    assert load_settings(config_file(text), {}).alerts.webhooks[0].entities == ["CSTO"]
    with pytest.raises(ConfigError, match=r"webhook:ops: entities: routes the implicit rules"):
        load_settings(config_file(text + "rules:\n  - {name: a, query: x}\n"), {})


def test_unset_channel_secrets_load_and_are_refused_only_for_sending(config_file: Callable[..., Path]) -> None:
    settings = load_settings(config_file(CHANNELS), {})
    email, ops = settings.alerts.channels
    assert email.unset_variables == (("alerts.email.password", "SMTP_PASSWORD"),)
    assert ops.unset_variables == (("alerts.webhooks[0].secret", "WEBHOOK_SECRET"),)
    with pytest.raises(ConfigError) as caught:
        require_secrets(settings, ["webhook:ops"])
    assert str(caught.value) == (
        "config: alerts.webhooks[0].secret: environment variable WEBHOOK_SECRET is not set "
        "(needed to send to webhook:ops)"
    )
    complete = load_settings(config_file(CHANNELS), {"SMTP_PASSWORD": "pw", "WEBHOOK_SECRET": "whsec_c2VjcmV0"})
    require_secrets(complete)
    assert complete.alerts.webhooks[0].secret == "whsec_c2VjcmV0"


def test_an_unset_variable_that_makes_a_value_invalid_is_named(config_file: Callable[..., Path]) -> None:
    text = CHANNELS.replace("smtp_port", "x") + "    - {name: b, url: 'https://b.example/', secret: s}\n"
    text = text.replace("  email:\n", "  email:\n    smtp_port: ${SMTP_PORT}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file(text), {})
    assert str(caught.value) == "config: alerts.email.smtp_port: environment variable SMTP_PORT is not set"
    # A whole URL from an unset variable loads; sending through it is refused.
    settings = load_settings(config_file(CHANNELS.replace("https://hooks.example.org/monitor", "${HOOK_URL}")), {})
    with pytest.raises(ConfigError, match=r"alerts.webhooks\[0\].url: environment variable HOOK_URL is not set"):
        require_secrets(settings, ["webhook:ops"])
