"""Feeds managed at run time, in the database, beside the configuration's (both engines)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from monitor.config import PollSettings, Settings
from monitor.db import session
from monitor.errors import FeedSourceError
from monitor.models import Article, Feed
from monitor.scheduling.leases import claim_feeds
from monitor.scheduling.sync import sync_feeds
from monitor.sources.catalog import NewFeed, add_feed, import_feeds, remove_feed, set_paused, update_feed

NOW = datetime(2024, 1, 6, 10, 0, tzinfo=UTC)
A, B, C = "https://a.example/rss", "https://b.example/rss", "https://c.example/rss"


def rows(engine: sa.Engine) -> dict[str, Feed]:
    with session(engine) as db:
        return {f.name: f for f in db.exec(select(Feed)).all()}


@pytest.fixture
def with_a(make_settings: Callable[..., Settings], engine: sa.Engine) -> Settings:
    """Settings whose file configures feed "A" at A, synced."""
    settings = make_settings(feeds=[{"name": "A", "url": A, "tags": ["world", " world ", ""]}])
    sync_feeds(engine, settings.feeds, now=NOW)
    return settings


def add(engine: sa.Engine, settings: Settings, new: NewFeed) -> Feed:
    with session(engine) as db:
        return add_feed(db, settings, new, now=NOW)


def test_an_added_feed_survives_the_sync_of_a_file_that_does_not_list_it(engine: sa.Engine, with_a: Settings) -> None:
    added = add(engine, with_a, NewFeed(url=B, title="Bee News", tags=["tech", "tech", "eu"]))
    assert (added.name, added.origin, added.tags, added.next_poll_at) == ("Bee News", "added", ["tech", "eu"], NOW)

    report = sync_feeds(engine, with_a.feeds, now=NOW)

    feeds = rows(engine)
    assert report.deactivated == 0 and feeds["Bee News"].active
    assert (feeds["A"].origin, feeds["A"].tags) == ("config", ["world"])
    # A file without A deactivates A only.
    assert sync_feeds(engine, [], now=NOW).deactivated == 1
    assert rows(engine)["Bee News"].active and not rows(engine)["A"].active


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (NewFeed(url=A), "is in the configuration file as feed 'A'"),
        (NewFeed(url=B, aliases=[A]), "is in the configuration file as feed 'A'"),
        (NewFeed(url=B, name="A"), "the configuration file names a feed 'A'"),
        (NewFeed(url="ftp://b.example/rss"), "is not an http(s) URL"),
        (NewFeed(url=B, tags=["x" * 101]), "longer than 100 characters"),
    ],
)
def test_a_feed_colliding_with_the_configuration_is_refused(
    engine: sa.Engine, with_a: Settings, new: NewFeed, message: str
) -> None:
    with pytest.raises(FeedSourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        add(engine, with_a, new)
    assert set(rows(engine)) == {"A"}


def test_a_feed_not_synced_yet_collides_too(engine: sa.Engine, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(feeds=[{"name": "A", "url": A}])
    with pytest.raises(FeedSourceError, match="configuration file"):
        add(engine, settings, NewFeed(url=A))


def test_adding_twice_is_refused_and_names_are_made_unique(engine: sa.Engine, with_a: Settings) -> None:
    add(engine, with_a, NewFeed(url=B, title="A"))
    with pytest.raises(FeedSourceError, match="already added as feed 'A \\(2\\)'") as caught:
        add(engine, with_a, NewFeed(url=B))
    assert caught.value.problem == "conflict"
    add(engine, with_a, NewFeed(url=C, title=None))
    assert set(rows(engine)) == {"A", "A (2)", "c.example"}
    with pytest.raises(FeedSourceError, match=r"already named 'c\.example'"):
        add(engine, with_a, NewFeed(url="https://d.example/rss", name="c.example"))


def test_the_file_takes_over_an_added_feed_of_its_url_and_renames_one_of_its_name(
    engine: sa.Engine, with_a: Settings, make_settings: Callable[..., Settings]
) -> None:
    add(engine, with_a, NewFeed(url=B, name="Bee"))
    add(engine, with_a, NewFeed(url=C, name="Sea"))
    newer = make_settings(
        feeds=[{"name": "A", "url": A}, {"name": "B file", "url": B}, {"name": "Sea", "url": A + "2"}]
    )
    sync_feeds(engine, newer.feeds, now=NOW)
    feeds = rows(engine)
    assert (feeds["B file"].origin, feeds["B file"].url) == ("config", B)
    assert (feeds["Sea"].origin, feeds["Sea"].url) == ("config", A + "2")
    assert (feeds["Sea (2)"].origin, feeds["Sea (2)"].url) == ("added", C)


def test_pause_and_resume_decide_what_a_worker_claims(engine: sa.Engine, with_a: Settings) -> None:
    add(engine, with_a, NewFeed(url=B, name="Bee"))
    poll = PollSettings()
    with session(engine) as db:
        set_paused(db, "A", True)
        set_paused(db, "Bee", True)
    assert claim_feeds(engine, owner="w", poll=poll, limit=10, now=NOW + timedelta(hours=1)) == []
    # Pausing is run-time state: the file's sync keeps it.
    sync_feeds(engine, with_a.feeds, now=NOW)
    assert rows(engine)["A"].paused
    with session(engine) as db:
        set_paused(db, "Bee", False, now=NOW + timedelta(hours=1))
    claimed = claim_feeds(engine, owner="w", poll=poll, limit=10, now=NOW + timedelta(hours=1))
    assert [f.name for f in claimed] == ["Bee"]


def test_remove_keeps_the_articles_and_adding_again_brings_the_history_back(
    engine: sa.Engine, with_a: Settings
) -> None:
    bee = add(engine, with_a, NewFeed(url=B, name="Bee"))
    add(engine, with_a, NewFeed(url=C, name="Sea"))
    with session(engine) as db:
        db.add(Article(url="https://b.example/1", text="t", content_hash="h", feed_id=bee.id))
        db.commit()
        assert remove_feed(db, with_a, "Bee") == ("Bee", 1)
        assert remove_feed(db, with_a, "Sea") == ("Sea", 0)
        with pytest.raises(FeedSourceError, match="comes from the configuration file"):
            remove_feed(db, with_a, "A")
        with pytest.raises(FeedSourceError, match="no feed named 'Bee'"):
            remove_feed(db, with_a, "Bee")
    feeds = rows(engine)
    assert set(feeds) == {"A", "Bee"} and not feeds["Bee"].active
    assert claim_feeds(engine, owner="w", poll=PollSettings(), limit=10, now=NOW + timedelta(days=1))[0].name == "A"

    again = add(engine, with_a, NewFeed(url=B, title="Bee"))
    assert (again.id, again.name, again.active) == (bee.id, "Bee", True)


def test_update_changes_an_added_feed_and_refuses_the_files(engine: sa.Engine, with_a: Settings) -> None:
    bee = add(engine, with_a, NewFeed(url=B, name="Bee", interval=3600))
    with session(engine) as db:
        changed = update_feed(db, with_a, str(bee.id), name="Bee 2", interval=60, tags=["x"], now=NOW)
        assert (changed.name, changed.interval, changed.tags) == ("Bee 2", 60, ["x"])
        assert changed.next_poll_at == NOW
        assert update_feed(db, with_a, "Bee 2", interval=None).interval is None
        assert update_feed(db, with_a, "A", paused=True).paused
        with pytest.raises(FeedSourceError, match="comes from the configuration file"):
            update_feed(db, with_a, "A", tags=["y"])
        with pytest.raises(FeedSourceError, match="the configuration file names a feed 'A'"):
            update_feed(db, with_a, "Bee 2", name="A")


def test_import_adds_what_is_new_and_counts_the_rest(engine: sa.Engine, with_a: Settings) -> None:
    with session(engine) as db:
        report = import_feeds(
            db,
            with_a,
            [NewFeed(url=A), NewFeed(url=B, title="Bee"), NewFeed(url=B), NewFeed(url="nonsense"), NewFeed(url=C)],
        )
    assert (report.added, report.duplicates) == (["Bee", "c.example"], 2)
    assert report.invalid == ["'nonsense' is not an http(s) URL"]
