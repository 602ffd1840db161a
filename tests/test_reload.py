"""What a configuration reload tells the daemon's log."""

from __future__ import annotations

from typing import Any

from monitor.config import Settings
from monitor.scheduling.daemon import changes

BASE: dict[str, Any] = {
    "entities": [{"name": "CSTO", "aliases": ["CSTO"]}, {"name": "Almaty", "aliases": ["Almaty"]}],
    "alerts": {"webhooks": [{"name": "ops", "url": "https://hooks.example/a", "secret": "s"}]},
}


def settings(**changed: Any) -> Settings:
    return Settings.model_validate(BASE | changed)


def test_nothing_changed_says_nothing() -> None:
    assert changes(settings(), settings()) == []


def test_channels_and_entities_added_removed_changed() -> None:
    new = settings(
        entities=[{"name": "CSTO", "aliases": ["CSTO", "ОДКБ"]}, {"name": "Astana", "aliases": ["Astana"]}],
        alerts={
            "webhooks": [
                {"name": "ops", "url": "https://hooks.example/b", "secret": "s"},
                {"name": "desk", "url": "https://hooks.example/c", "secret": "s"},
            ]
        },
    )
    assert changes(settings(), new) == [
        "alert channels added: webhook:desk",
        "alert channels changed: webhook:ops",
        "entities added: Astana",
        "entities removed: Almaty",
        "entities changed: CSTO",
    ]


def test_poll_settings_wait_for_a_restart() -> None:
    assert changes(settings(), settings(poll={"concurrency": 5})) == [
        "poll settings changed (they take effect at the next start)"
    ]
