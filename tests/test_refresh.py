"""One poll of real feeds from a real HTTP server into a real archive (SQLite and PostgreSQL).

Feeds in every format, conditional GET, unchanged bodies, failures of every kind with
back-off and recovery, Retry-After, the same story in two feeds, page fallbacks.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from monitor.config import Settings
from monitor.db import session
from monitor.models import Alert, Article, Feed, Fingerprint, Mention
from monitor.pipeline.ingest import Archive
from monitor.pipeline.parse import Entry
from monitor.pipeline.pool import CPUPool
from monitor.pipeline.refresh import oldest_first
from monitor.scheduling.report import CycleReport
from monitor.scheduling.sync import sync_feeds
from monitor.scheduling.worker import Worker
from monitor.seeds import load_seeds
from monitor.times import utcnow
from tests.support.feeds import FEED_TYPES, RENDER, Item, article_page, costly_page, rss20, story
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Request, Response
from tests.support.tarpit import Tarpit
from tests.support.waiting import free_port

SEED_TEXT = (SEEDS_DIR / "001_73071e9b10a78990.txt").read_text(encoding="utf-8")


@pytest.fixture
def configure(make_settings: Callable[..., Settings], database_url: str, server: HTTPServer) -> Callable[..., Settings]:
    """Settings polling ``feeds`` (name → path on the test server, or a URL) on the test database."""

    def make(feeds: dict[str, str], **poll: Any) -> Settings:
        return make_settings(
            database_url=database_url,
            poll={"allow_private_networks": True, "timeout": "2s", "per_host": 8, "interval": "10m", **poll},
            feeds=[{"name": n, "url": p if p.startswith("http") else server.url(p)} for n, p in feeds.items()],
            alerts={"webhooks": [{"name": "desk", "url": server.url("/hook"), "secret": "s3cret"}]},
        )

    return make


def poll(settings: Settings, engine: sa.Engine, pool: CPUPool, **kwargs: Any) -> CycleReport:
    """Sync the configured feeds and run one cycle, as ``monitor poll`` does."""
    sync_feeds(engine, settings.feeds)

    async def cycle() -> CycleReport:
        async with Worker(settings, engine, pool=pool, rng=random.Random(7)) as worker:
            return await worker.poll_cycle(**kwargs)

    return asyncio.run(cycle())


def load_seed_corpus(engine: sa.Engine, settings: Settings) -> None:
    with session(engine) as db:
        load_seeds(db, SEEDS_DIR, Archive(settings).index)
        db.commit()


def feed_row(engine: sa.Engine, name: str) -> Feed:
    with session(engine) as db:
        return db.exec(select(Feed).where(Feed.name == name)).one()


def articles(engine: sa.Engine) -> list[Article]:
    with session(engine) as db:
        return list(db.exec(select(Article).order_by(Article.id)).all())


def serve_feed(server: HTTPServer, path: str, body: str, kind: str = "rss20", **headers: str) -> None:
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    server.route(path, Response(body=body, headers={"Content-Type": FEED_TYPES[kind], **extra}))


def serve_page(server: HTTPServer, path: str, title: str, text: str, **kwargs: Any) -> None:
    server.route(path, Response(body=article_page(title, text, **kwargs), headers={"Content-Type": "text/html"}))


# ------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("kind", ["rss20", "atom", "rss10", "json"])
def test_every_format_stores_extracted_deduplicated_tagged_articles(
    kind: str, configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    news, copy = server.url(f"/{kind}/almaty?utm_source=feed"), server.url(f"/{kind}/copy")
    serve_page(server, f"/{kind}/almaty", "Floods in Almaty", story(f"Almaty {kind}"), author="A. Writer")
    serve_page(server, f"/{kind}/copy", "Republished", SEED_TEXT)
    items = [
        Item("Floods in Almaty", news, summary="Short summary."),
        Item("Copy of a known story", copy, summary="Another summary."),
    ]
    serve_feed(server, "/feed", RENDER[kind](items, link=server.url("/")), kind)
    settings = configure({"Wire": "/feed"})
    load_seed_corpus(engine, settings)

    report = poll(settings, engine, pool)

    assert (report.polled, report.ok, report.stored, report.duplicates) == (1, 1, 2, 1)
    stored = {a.url: a for a in articles(engine)}
    assert set(stored) == {server.url(f"/{kind}/almaty"), copy}  # tracking parameter dropped
    original, duplicate = stored[server.url(f"/{kind}/almaty")], stored[copy]
    assert "Almaty" in original.text and "Related" not in original.text and "Home" not in original.text
    assert not original.is_duplicate and original.extraction_note is None
    assert original.title == "Floods in Almaty" and original.feed_id == feed_row(engine, "Wire").id
    assert duplicate.is_duplicate and duplicate.duplicate_of_seed_id is not None
    with session(engine) as db:
        entities = set(db.exec(select(Mention.entity).where(Mention.article_id == original.id)).all())
        alerts = db.exec(select(Alert.article_id)).all()
    assert "Almaty" in entities
    assert alerts == [original.id]  # duplicates never alert
    feed = feed_row(engine, "Wire")
    assert (feed.status, feed.entries_seen, feed.articles_stored, feed.error_count) == ("ok", 2, 2, 0)


def test_a_second_poll_stores_only_new_entries(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    first = [Item(f"Story {n}", server.url(f"/s/{n}"), summary=story(f"first {n}", 3)) for n in range(3)]
    for n in range(4):
        serve_page(server, f"/s/{n}", f"Story {n}", story(f"page {n}"))
    serve_feed(server, "/feed", rss20(first))
    settings = configure({"Wire": "/feed"})
    assert poll(settings, engine, pool).stored == 3

    serve_feed(server, "/feed", rss20([Item("Story 3", server.url("/s/3")), *first]))
    report = poll(settings, engine, pool)

    assert (report.entries_seen, report.new_entries, report.stored) == (4, 1, 1)
    assert [len(server.hits(f"/s/{n}")) for n in range(4)] == [1, 1, 1, 1]
    assert feed_row(engine, "Wire").articles_stored == 4


class CountingPool(CPUPool):
    """The module's pool, counting full parses."""

    def __init__(self, pool: CPUPool) -> None:
        self.__dict__.update(pool.__dict__)
        self.parses = 0

    async def parse(self, body: bytes, *, url: str, content_type: str | None, **kwargs: Any) -> Any:
        self.parses += 1
        return await super().parse(body, url=url, content_type=content_type, **kwargs)


@pytest.mark.parametrize("kind", ["rss20", "atom"])
def test_a_changed_feed_of_known_stories_is_not_parsed_in_full(
    kind: str, configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    for n in range(3):
        serve_page(server, f"/s/{n}", f"Story {n}", story(f"page {n}"))
    first = [Item(f"Story {n}", server.url(f"/s/{n}"), summary=story(f"first {n}", 3)) for n in range(2)]
    serve_feed(server, "/feed", RENDER[kind](first, link=server.url("/")), kind)
    settings = configure({"Wire": "/feed"})
    counting = CountingPool(pool)
    assert poll(settings, engine, counting).stored == 2
    assert counting.parses == 1

    # New titles and tracking parameters, the same stories: recognised without feedparser.
    again = [Item(f"Story {n}, updated", server.url(f"/s/{n}?utm_source=rss"), summary="changed") for n in range(2)]
    serve_feed(server, "/feed", RENDER[kind](again, link=server.url("/")), kind)
    report = poll(settings, engine, counting)
    assert (report.ok, report.entries_seen, report.new_entries, report.stored) == (1, 2, 0, 0)
    assert counting.parses == 1
    body_hash = feed_row(engine, "Wire").body_hash

    # One new story among them: parsed in full, and only the new page fetched.
    serve_feed(server, "/feed", RENDER[kind]([Item("Story 2", server.url("/s/2")), *first], link=server.url("/")), kind)
    report = poll(settings, engine, counting)
    assert (report.entries_seen, report.new_entries, report.stored) == (3, 1, 1)
    assert counting.parses == 2
    assert [len(server.hits(f"/s/{n}")) for n in range(3)] == [1, 1, 1]
    assert feed_row(engine, "Wire").body_hash != body_hash


def test_page_metadata_fills_in_what_the_entry_lacks(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    for name in ("dated", "undated"):
        serve_page(
            server, f"/{name}", f"Page title {name}", story(name), author="A. Writer", date="2022-01-07T08:30:00+00:00"
        )
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>W</title><link>https://x.example/</link>'
        f"<item><title>Dated</title><link>{server.url('/dated')}</link>"
        "<pubDate>Thu, 06 Jan 2022 10:00:00 GMT</pubDate></item>"
        f"<item><title>Undated</title><link>{server.url('/undated')}</link></item></channel></rss>"
    )
    serve_feed(server, "/feed", feed)
    settings = configure({"Wire": "/feed"})

    assert poll(settings, engine, pool).stored == 2

    stored = {a.url.rsplit("/", 1)[1]: a for a in articles(engine)}
    # The feed's date stands; without one, the page's is found.
    assert stored["dated"].published_at == datetime(2022, 1, 6, 10, 0, tzinfo=UTC)
    assert stored["undated"].published_at == datetime(2022, 1, 7, tzinfo=UTC)  # to the day
    # From the page's head, and from trafilatura's metadata (which normalises names).
    assert [stored[n].author for n in ("dated", "undated")] == ["A. Writer", "A Writer"]
    assert [stored[n].title for n in ("dated", "undated")] == ["Page title dated", "Page title undated"]


def test_the_same_story_in_two_feeds_is_stored_once(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    serve_page(server, "/story", "Shared story", story("shared"))
    serve_page(server, "/only-b", "Only in B", story("only b"))
    serve_feed(server, "/a", rss20([Item("Shared", server.url("/story?utm_source=a"))]))
    serve_feed(
        server, "/b", rss20([Item("Shared", server.url("/story?utm_medium=rss#top")), Item("B", server.url("/only-b"))])
    )
    settings = configure({"A": "/a", "B": "/b"})

    report = poll(settings, engine, pool)

    assert sorted(a.url for a in articles(engine)) == [server.url("/only-b"), server.url("/story")]
    assert report.stored == 2 and report.duplicates == 0
    assert len(server.hits("/story")) == 1  # fetched once although both feeds carry it


def test_a_missing_page_falls_back_to_the_feed_content_with_a_note(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    summary = story("fallback summary", 4)
    items = [
        Item("Gone", server.url("/gone"), summary=summary, author="Feed Author"),
        Item("No link", None, content="<p>" + story("no link content", 3) + "</p>", guid="urn:x:1"),
        Item("Nothing at all", server.url("/empty-too")),
    ]
    serve_feed(server, "/feed", rss20(items))
    settings = configure({"Wire": "/feed"})

    report = poll(settings, engine, pool)

    assert (report.stored, report.fallbacks, report.skipped) == (2, 2, 1)
    no_link, gone = sorted(articles(engine), key=lambda a: "#" not in a.url)
    assert gone.url == server.url("/gone") and gone.text == summary
    assert gone.extraction_note == "page http_404; feed content used"
    assert (gone.title, gone.author, gone.published_at) == ("Gone", "Feed Author", items[0].published)
    assert no_link.url.startswith(server.url("/feed") + "#entry-")
    assert no_link.extraction_note == "no link; feed content used"
    assert "no link content" in no_link.text


# ----------------------------------------------------------- conditional and unchanged


def test_not_modified_means_no_parsing_and_no_page_fetches(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    body = rss20([Item("One", server.url("/one"))])

    def conditional(request: Request) -> Response:
        if request.header("if-none-match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(body=body, headers={"Content-Type": FEED_TYPES["rss20"], "ETag": '"v1"'})

    server.route("/feed", conditional)
    serve_page(server, "/one", "One", story("one"))
    settings = configure({"Wire": "/feed"})
    poll(settings, engine, pool)

    report = poll(settings, engine, pool)

    assert (report.not_modified, report.entries_seen, report.stored) == (1, 0, 0)
    assert [r.header("if-none-match") for r in server.hits("/feed")] == [None, '"v1"']
    assert len(server.hits("/one")) == 1
    feed = feed_row(engine, "Wire")
    assert (feed.status, feed.etag, feed.entries_seen) == ("ok", '"v1"', 1)


def test_an_unchanged_body_is_not_parsed_again_when_the_server_ignores_validators(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    serve_feed(server, "/feed", rss20([Item("One", server.url("/one"))]), Last_Modified="Sat, 06 Jan 2024 10:00:00 GMT")
    serve_page(server, "/one", "One", story("one"))
    settings = configure({"Wire": "/feed"})
    poll(settings, engine, pool)
    stored_hash = feed_row(engine, "Wire").body_hash

    report = poll(settings, engine, pool)

    assert (report.unchanged, report.entries_seen) == (1, 0)
    assert server.hits("/feed")[1].header("if-modified-since") == "Sat, 06 Jan 2024 10:00:00 GMT"
    assert len(server.hits("/one")) == 1
    assert stored_hash and feed_row(engine, "Wire").body_hash == stored_hash


# ------------------------------------------------------------------- failures, back-off


FAILURES: dict[str, tuple[Response | None, str]] = {
    "/e500": (Response(b"oops", status=500), "http_5xx"),
    "/e404": (Response(b"missing", status=404), "http_4xx"),
    "/e429": (Response(b"slow down", status=429), "http_429"),
    "/html": (
        Response(b"<html><body><p>Just a page</p></body></html>", headers={"Content-Type": "text/html"}),
        "not_a_feed",
    ),
    "/big": (
        Response(b"<rss>" + b"x" * 5000 + b"</rss>", headers={"Content-Type": "application/rss+xml"}),
        "too_large",
    ),
    "/loop": (Response(status=302, headers={"Location": "/loop2"}), "too_many_redirects"),
    "/slow": (Response(rss20([]), delay=3.0, headers={"Content-Type": "application/rss+xml"}), "timeout"),
}


def test_each_failure_is_recorded_backed_off_and_recovers(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    for path, (response, _kind) in FAILURES.items():
        server.route(path, response)  # type: ignore[arg-type]
    server.route("/loop2", Response(status=302, headers={"Location": "/loop"}))
    feeds = {path.strip("/"): path for path in FAILURES}
    feeds["refused"] = f"http://127.0.0.1:{free_port()}/feed"  # nothing listens
    settings = configure(feeds, timeout="1s", max_bytes=2048, interval="10m", max_backoff="25m")

    first_at = utcnow()
    report = poll(settings, engine, pool)

    assert report.failed == len(feeds)
    kinds = {e["feed"]: e["kind"] for e in report.errors}
    assert kinds == {path.strip("/"): kind for path, (_r, kind) in FAILURES.items()} | {"refused": "connect"}
    for name in feeds:
        feed = feed_row(engine, name)
        assert (feed.status, feed.error_count, feed.error_kind) == ("error", 1, kinds[name])
        assert feed.error_message and feed.last_success_at is None
        wait = (feed.next_poll_at - first_at).total_seconds()
        assert 0.8 * 600 - 1 <= wait <= 600 + 60, name  # first failure: about one interval

    second_at = utcnow()
    poll(settings, engine, pool)
    poll(settings, engine, pool)
    for name in feeds:
        feed = feed_row(engine, name)
        assert feed.error_count == 3
        wait = (feed.next_poll_at - second_at).total_seconds()
        # Third failure: 4 × 10 min, capped at max_backoff (25 min) with jitter below it.
        assert 0.8 * 1500 - 5 <= wait <= 1500 + 60, name

    good = rss20([])
    for path in [*FAILURES, "/loop2"]:
        server.route(path, Response(good, headers={"Content-Type": "application/rss+xml"}))
    recovered = {n: u for n, u in feeds.items() if n != "refused"}
    report = poll(configure(recovered), engine, pool)
    assert report.ok == len(recovered) and report.failed == 0
    for name in recovered:
        feed = feed_row(engine, name)
        assert (feed.status, feed.error_count, feed.error_kind, feed.error_message) == ("ok", 0, None, None)
        assert feed.last_success_at is not None
    assert not feed_row(engine, "refused").active  # removed from the configuration


def test_retry_after_and_max_age_hold_the_feed_back(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    server.route("/busy", Response(b"busy", status=503, headers={"Retry-After": "7200"}))
    serve_feed(server, "/cached", rss20([]), Cache_Control="public, max-age=5400")
    settings = configure({"Busy": "/busy", "Cached": "/cached"}, interval="10m")
    before = utcnow()
    poll(settings, engine, pool)

    busy, cached = feed_row(engine, "Busy"), feed_row(engine, "Cached")
    assert busy.error_kind == "http_5xx" and busy.error_count == 1
    assert busy.not_before >= before + timedelta(seconds=7200)
    assert busy.next_poll_at >= busy.not_before  # longer than the 10 min back-off
    assert cached.status == "ok" and cached.not_before >= before + timedelta(seconds=5400)
    assert cached.next_poll_at >= cached.not_before

    report = poll(settings, engine, pool)  # even `monitor poll` waits for them
    assert report.polled == 0
    assert len(server.hits("/busy")) == 1 and len(server.hits("/cached")) == 1


def test_a_feed_removed_from_the_configuration_keeps_its_articles(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    serve_page(server, "/one", "One", story("kept"))
    serve_feed(server, "/feed", rss20([Item("One", server.url("/one"))]))
    poll(configure({"Wire": "/feed"}), engine, pool)

    report = poll(configure({}), engine, pool)

    assert report.polled == 0 and not feed_row(engine, "Wire").active
    assert [a.feed_id for a in articles(engine)] == [feed_row(engine, "Wire").id]
    with session(engine) as db:
        assert db.exec(select(sa.func.count()).select_from(Fingerprint)).one() > 0


# ----------------------------------------------------------- isolation between feeds


def test_entries_are_taken_oldest_first_undated_ones_from_the_bottom() -> None:
    def entry(key: str, day: int | None) -> Entry:
        published = datetime(2024, 1, day, tzinfo=UTC) if day else None
        return Entry(key=key, title=key, url=None, summary=None, content=None, author=None, published_at=published)

    # As a feed lists them, top to bottom.
    listed = [entry("new", 9), entry("undated-a", None), entry("old", 2), entry("middle", 5), entry("undated-b", None)]
    order = oldest_first({e.key: e for e in listed})
    # undated-b has nothing dated below it; undated-a counts as old as "old", below it.
    assert order == ["undated-b", "old", "undated-a", "middle", "new"]
    assert oldest_first({e.key: e for e in listed if e.published_at is None}) == ["undated-b", "undated-a"]


def test_a_feed_over_the_cap_is_taken_in_turns_oldest_first_and_its_validators_wait(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    items = [Item(f"S{n}", server.url(f"/s/{n}"), published=start + timedelta(hours=n)) for n in range(7)]
    random.Random(3).shuffle(items)  # the feed's order is not the entries' age
    body = rss20(items)

    def conditional(request: Request) -> Response:
        if request.header("if-none-match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(body=body, headers={"Content-Type": FEED_TYPES["rss20"], "ETag": '"v1"'})

    server.route("/feed", conditional)
    for n in range(7):
        serve_page(server, f"/s/{n}", f"S{n}", story(f"capped {n}"))
    settings = configure({"Wire": "/feed"}, max_new_entries=3)

    stored_after, waiting_after = [], []
    for _poll in range(3):
        report = poll(settings, engine, pool)
        stored_after.append(sorted(int(a.url.rsplit("/", 1)[1]) for a in articles(engine)))
        waiting_after.append((report.stored, report.waiting, feed_row(engine, "Wire").entries_waiting))
        if report.waiting:
            assert feed_row(engine, "Wire").etag is None  # no 304 while entries wait

    assert stored_after == [[0, 1, 2], [0, 1, 2, 3, 4, 5], list(range(7))]
    assert waiting_after == [(3, 4, 4), (3, 1, 1), (1, 0, 0)]
    assert [r.header("if-none-match") for r in server.hits("/feed")] == [None, None, None]
    assert [len(server.hits(f"/s/{n}")) for n in range(7)] == [1] * 7
    feed = feed_row(engine, "Wire")
    assert (feed.etag, feed.articles_stored, feed.entries_waiting) == ('"v1"', 7, 0)
    assert poll(settings, engine, pool).not_modified == 1  # caught up: conditional again


def test_a_feed_whose_pages_never_answer_takes_its_share_of_the_page_slots_only(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    with Tarpit() as pit:
        hostile = [Item(f"H{n}", pit.url(f"/h/{n}")) for n in range(40)]
        serve_feed(server, "/hostile", rss20(hostile))
        # The healthy feed answers later, when the hostile one's pages are all queued.
        server.route("/healthy", Response(rss20([Item("G", server.url("/g"))]), delay=0.5))
        serve_page(server, "/g", "G", story("healthy"))
        settings = configure(
            {"Hostile": "/hostile", "Healthy": "/healthy"},
            timeout="60s",
            per_host=40,
            per_feed_pages=3,
            feed_deadline="3s",
        )

        report = poll(settings, engine, pool)

        assert pit.connections == 3  # its share, and never a page more while they hang
    assert (report.ok, report.failed, report.stored) == (1, 1, 1)
    assert [a.url for a in articles(engine)] == [server.url("/g")]
    assert report.elapsed < 10, report.elapsed
    hostile_row = feed_row(engine, "Hostile")
    assert (hostile_row.status, hostile_row.error_kind) == ("error", "deadline")
    assert hostile_row.error_message.startswith("not done after 3s; 0 new entries stored")
    assert hostile_row.body_hash is None  # validators not saved: the next poll starts afresh

    # The pages answer now: the next poll stores every entry, none twice.
    hostile = [Item(f"H{n}", server.url(f"/h/{n}")) for n in range(40)]
    serve_feed(server, "/hostile", rss20(hostile))
    for n in range(40):
        serve_page(server, f"/h/{n}", f"H{n}", story(f"hostile {n}"))
    assert poll(configure({"Hostile": "/hostile"}, per_feed_pages=3), engine, pool).stored == 40
    assert len(articles(engine)) == 41


def test_a_refresh_past_its_deadline_keeps_what_it_stored_and_its_old_validators(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    items = [Item(f"S{n}", server.url(f"/s/{n}"), summary=story(f"deadline {n}", 2)) for n in range(3)]
    serve_feed(server, "/feed", rss20(items[:1]), ETag='"v1"')
    serve_page(server, "/s/0", "S0", story("first"))
    settings = configure({"Wire": "/feed"}, feed_deadline="2s", timeout="30s")
    poll(settings, engine, pool)
    assert feed_row(engine, "Wire").etag == '"v1"'

    serve_feed(server, "/feed", rss20(items), ETag='"v2"')
    serve_page(server, "/s/1", "S1", story("second"))
    server.route("/s/2", Response(article_page("S2", story("third")), delay=20))
    report = poll(settings, engine, pool)

    assert report.failed == 1 and report.stored == 1
    feed = feed_row(engine, "Wire")
    assert (feed.error_kind, feed.etag, feed.articles_stored) == ("deadline", '"v1"', 2)
    assert "1 new entries stored, the rest next poll" in feed.error_message
    assert sorted(a.url for a in articles(engine)) == [server.url("/s/0"), server.url("/s/1")]


def test_an_extraction_past_its_time_limit_falls_back_to_the_feed_content(
    configure: Callable[..., Settings],
    engine: sa.Engine,
    server: HTTPServer,
    pool: CPUPool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    summary = story("costly summary", 3)
    items = [Item("Costly", server.url("/costly"), summary=summary), Item("Plain", server.url("/plain"))]
    serve_feed(server, "/feed", rss20(items))
    server.route("/costly", Response(costly_page(), headers={"Content-Type": "text/html"}))
    serve_page(server, "/plain", "Plain", story("plain page"))
    settings = configure({"Wire": "/feed"}, extract_timeout="0.5s")

    report = poll(settings, engine, pool)

    assert (report.stored, report.fallbacks) == (2, 1)
    stored = {a.url.rsplit("/", 1)[1]: a for a in articles(engine)}
    assert stored["costly"].text == summary
    assert stored["costly"].extraction_note == "page extract_timeout; feed content used"
    assert stored["plain"].extraction_note is None and "plain page" in stored["plain"].text
    assert report.elapsed < 8, report.elapsed  # the page alone takes some 10 s
    assert "took longer than 0.5s; its process was replaced" in caplog.text
    # The pool goes on with a new process in place of the one killed.
    extracted, _problem = asyncio.run(pool.extract(article_page("After", story("after")).encode(), url="http://a/"))
    assert extracted is not None and len(pool.pids()) <= pool.workers
