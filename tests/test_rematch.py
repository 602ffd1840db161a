"""Re-matching the archive after the entities changed: ``monitor rematch`` and the daemon,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from monitor.config import EntityConfig, Settings
from monitor.db import session
from monitor.models import Alert, Article, MatchState, Mention
from monitor.pipeline.ingest import Archive, Candidate
from monitor.pipeline.rematch import STATE_KEY, Progress, Rematcher, fingerprint
from tests.support.daemons import Daemon
from tests.support.feeds import story
from tests.support.paths import SEEDS_DIR
from tests.support.waiting import wait_for

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ALMATY = {"name": "Almaty", "aliases": ["Almaty", "Alma-Ata"]}
ASTANA = {"name": "Astana", "aliases": ["Astana", "Nur-Sultan"]}
# The archive: what each article says besides its story, as stored under [Almaty].
TEXTS = {
    "https://n.example/capital": "Astana hosted the summit; Nur-Sultan was its name then.",
    "https://n.example/move": "The ministry moved from Almaty to Astana in 1997.",
    "https://n.example/old-name": "Flights to Alma-Ata resumed.",
    "https://n.example/none": "Nothing tracked here.",
}


def config(database_url: str, *entities: dict[str, Any]) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "seeds_dir": str(SEEDS_DIR),
        "entities": list(entities),
        "alerts": {"webhooks": [{"name": "desk", "url": "http://127.0.0.1:9/hook", "secret": "s"}]},
    }


@pytest.fixture
def archive(engine: sa.Engine, database_url: str) -> dict[str, int]:
    """The articles of ``TEXTS`` stored when only Almaty (and Alma-Ata) was tracked."""
    settings = Settings.model_validate(config(database_url, ALMATY))
    ids = {}
    with session(engine) as db:
        for url, said in TEXTS.items():
            text = story(url, 8) + "\n" + said
            stored = Archive(settings).store(db, Candidate(url=url, text=text, title=url.rsplit("/", 1)[1]))
            assert stored.created and stored.duplicate_of is None
            ids[url] = stored.article_id
    return ids


def mentions(engine: sa.Engine) -> list[tuple[int, str, str]]:
    with session(engine) as db:
        rows = db.exec(select(Mention.article_id, Mention.entity, Mention.text).order_by(Mention.id)).all()
    return sorted((a, e, t) for a, e, t in rows)


def alerts(engine: sa.Engine) -> int:
    with session(engine) as db:
        return len(db.exec(select(Alert.id)).all())


def state(engine: sa.Engine) -> MatchState | None:
    with session(engine) as db:
        return db.get(MatchState, STATE_KEY)


@dataclass
class Monitor:
    """The ``monitor`` command on the test's database, with the config ``track`` wrote."""

    run_cli: Callable[..., Any]
    config_file: Callable[..., Path]
    database_url: str
    path: Path | None = None

    def track(self, *entities: dict[str, Any], **extra: Any) -> Path:
        """Write the config tracking ``entities`` (with ``extra`` settings) and return its path."""
        self.path = self.config_file(json.dumps(config(self.database_url, *entities) | extra))
        return self.path

    def entities(self) -> list[EntityConfig]:
        """The tracked entities as the monitor reads them from the config."""
        assert self.path is not None, "track first"
        return Settings.model_validate_json(self.path.read_text()).entities

    def __call__(self, *args: str) -> Any:
        """Run ``monitor --config PATH ARGS…``; click's Result."""
        assert self.path is not None, "track first"
        return self.run_cli("--config", str(self.path), *args)

    def searched(self, entity: str) -> list[str]:
        """The URLs ``monitor search --entity`` lists."""
        result = self("search", "--entity", entity, "--json")
        assert result.exit_code == 0, result.output
        return sorted(item["url"] for item in json.loads(result.output))


@pytest.fixture
def monitor(run_cli: Callable[..., Any], config_file: Callable[..., Path], database_url: str) -> Monitor:
    return Monitor(run_cli, config_file, database_url)


# ------------------------------------------------------------------- monitor rematch


def test_a_new_entity_finds_the_stored_articles_after_rematch_and_nothing_alerts(
    engine: sa.Engine, archive: dict[str, int], monitor: Monitor
) -> None:
    queued = alerts(engine)
    assert queued == 2  # "move" and "old-name" mention Almaty
    monitor.track(ALMATY, ASTANA)
    assert monitor.searched("Astana") == []  # matched before Astana was tracked

    result = monitor("rematch")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "re-matched: 4 article(s) checked, 2 changed: 3 mention(s) added, 0 removed (Astana +3 -0)"
    )
    assert monitor.searched("Astana") == ["https://n.example/capital", "https://n.example/move"]
    assert monitor.searched("Almaty") == ["https://n.example/move", "https://n.example/old-name"]
    capital = archive["https://n.example/capital"]
    assert [(e, t) for a, e, t in mentions(engine) if a == capital] == [("Astana", "Astana"), ("Astana", "Nur-Sultan")]
    assert alerts(engine) == queued  # re-matching never alerts
    recorded = state(engine)
    assert recorded is not None and recorded.matched == fingerprint(monitor.entities())
    assert (recorded.target, recorded.cursor, recorded.owner) == (None, None, None)

    # Again: nothing changes, and it says so.
    before = mentions(engine)
    result = monitor("rematch", "--json")
    assert json.loads(result.output) == {"articles": 4, "changed": 0, "added": 0, "removed": 0, "entities": {}}
    assert mentions(engine) == before


@sqlite_only
def test_a_removed_alias_drops_its_mentions(engine: sa.Engine, archive: dict[str, int], monitor: Monitor) -> None:
    monitor.track({"name": "Almaty", "aliases": ["Almaty"]})
    result = monitor("rematch", "--batch", "1", "--json")
    assert json.loads(result.output) == {
        "articles": 4,
        "changed": 1,
        "added": 0,
        "removed": 1,
        "entities": {"Almaty": {"added": 0, "removed": 1}},
    }
    assert monitor.searched("Almaty") == ["https://n.example/move"]
    assert [t for _, _, t in mentions(engine)] == ["Almaty"]


@sqlite_only
def test_since_rematches_only_recent_articles_and_leaves_the_state(
    engine: sa.Engine, archive: dict[str, int], monitor: Monitor
) -> None:
    with session(engine) as db:
        db.execute(sa.update(Article).values(published_at=datetime(2020, 1, 1, tzinfo=UTC)))
        db.execute(
            sa.update(Article)
            .where(Article.id == archive["https://n.example/capital"])
            .values(published_at=datetime.now(UTC) - timedelta(days=2))
        )
        db.commit()
    monitor.track(ALMATY, ASTANA)
    result = monitor("rematch", "--since", "7d", "--json")
    assert json.loads(result.output)["entities"] == {"Astana": {"added": 2, "removed": 0}}
    assert monitor.searched("Astana") == ["https://n.example/capital"]
    recorded = state(engine)
    assert recorded is not None and recorded.matched is None  # the archive as a whole is not re-matched

    result = monitor("rematch", "--since", "someday")
    assert result.exit_code == 2 and "--since:" in result.output and "Traceback" not in result.output


def test_one_process_at_a_time_and_an_interrupted_rematch_goes_on(
    engine: sa.Engine, archive: dict[str, int], monitor: Monitor
) -> None:
    monitor.track(ALMATY, ASTANA)
    entities = monitor.entities()
    first = Rematcher(engine, entities, owner="worker-a", batch=1)
    assert first.needed()
    step = first.step()
    assert (step.progress, step.started, step.report.articles) == (Progress.MORE, True, 1)

    # Another worker, and the command, find the lease taken.
    assert Rematcher(engine, entities, owner="worker-b", batch=1).step().progress is Progress.BUSY
    result = monitor("rematch")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "monitor: error: rematch: worker-a is re-matching the archive now; try again when it is done"
    )

    # worker-a dies; once its lease has run out, worker-b goes on after its place.
    with session(engine) as db:
        db.execute(sa.update(MatchState).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.commit()
    second = Rematcher(engine, entities, owner="worker-b", batch=1)
    done = []
    while (step := second.step()).progress is Progress.MORE:
        assert not step.started
        done.append(step.report.articles)
    assert step.progress is Progress.DONE and done == [1, 1, 1]
    assert monitor.searched("Astana") == ["https://n.example/capital", "https://n.example/move"]
    assert not second.needed() and not Rematcher(engine, entities, owner="worker-c").needed()
    assert Rematcher(engine, entities, owner="worker-c").step().progress is Progress.DONE

    # A change of the entities while a re-match is under way starts it again.
    third = Rematcher(engine, entities[:1], owner="worker-c", batch=2)
    assert third.needed() and third.step().started
    fourth = Rematcher(engine, entities, owner="worker-c", batch=2)
    assert fourth.step().started


# ------------------------------------------------------------------------- the daemon


def test_the_daemon_rematches_after_sighup_and_not_again_after_a_restart(
    engine: sa.Engine, archive: dict[str, int], monitor: Monitor
) -> None:
    poll = {"extract_workers": 1, "tick": "0.3s", "shutdown_grace": "3s"}
    path = monitor.track(ALMATY, poll=poll)
    queued = alerts(engine)
    with Daemon(path) as daemon:
        # The archive's entities are not known yet (no state): it is re-matched once.
        wait_for(lambda: "re-matched: 4 article(s) checked, 0 changed" in daemon.log(), 60, "the first re-match")
        monitor.track(ALMATY, ASTANA, poll=poll)
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "re-matched: 4 article(s) checked, 2 changed" in daemon.log(), 60, "the re-match")
        assert monitor.searched("Astana") == ["https://n.example/capital", "https://n.example/move"]
        assert daemon.stop() == 0
        log = daemon.log()
    assert "configuration reloaded: entities added: Astana" in log and "(Astana +3 -0)" in log
    assert "Traceback" not in log, log
    assert alerts(engine) == queued

    with Daemon(path) as again:
        wait_for(lambda: "polling 0 feed(s)" in again.log(), 60, "the daemon to start")
        time.sleep(2)  # the look at the state comes right after the start
        assert again.stop() == 0
        log = again.log()
    assert "re-match" not in log, log
    recorded = state(engine)
    assert recorded is not None and recorded.owner is None and recorded.target is None
