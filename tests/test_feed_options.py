"""Per-feed options, polled from real local servers into a real archive (SQLite and
PostgreSQL): a CSS selector, ``extract: false``, request headers and user agent, a
proxy per feed and the proxy variables under ``poll.trust_env``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from monitor.config import PollSettings, Settings, load_settings
from monitor.errors import ConfigError
from monitor.pipeline.fetch import environment_proxy
from monitor.pipeline.pool import CPUPool
from tests.support.feeds import Item, rss20
from tests.support.httpproxy import ForwardProxy
from tests.support.servers import HTTPServer, Response
from tests.test_refresh import articles, poll

STORY = [
    "Floodwater reached the Almaty ring road on Tuesday night after three days of rain.",
    "City officials opened four shelters in schools of the Medeu district.",
    "The national weather service expects the rain to ease by Thursday morning.",
]
COMMENT = (
    "Reader comment number {}: I have lived here for twenty years and never saw the river rise like this, "
    "the drains in our street are always blocked and nobody comes to clear them."
)
# A story of short lines under a long thread of comments: the extractor takes the thread.
PAGE = (
    f'<html><head><title>Floods</title></head><body><div id="main"><div class="story-text">{"<br><br>".join(STORY)}'
    f'</div></div><div class="talk">{"".join(f"<p>{COMMENT.format(i)}</p>" for i in range(8))}</div></body></html>'
)


@pytest.fixture
def feed_settings(
    make_settings: Callable[..., Settings], database_url: str, server: HTTPServer
) -> Callable[..., Settings]:
    def make(poll_options: dict[str, Any] | None = None, **feed: Any) -> Settings:
        return make_settings(
            database_url=database_url,
            poll={"allow_private_networks": True, "timeout": "3s", **(poll_options or {})},
            feeds=[{"name": "Herald", "url": server.url("/feed.xml"), **feed}],
        )

    return make


def serve(server: HTTPServer, summary: str = "The feed's own words about the floods.") -> str:
    page = server.url("/floods")
    feed = rss20([Item("Floods in Almaty", page, summary=summary)], link=server.url("/"))
    server.route("/feed.xml", Response(feed, headers={"Content-Type": "application/rss+xml"}))
    server.route("/floods", Response(PAGE, headers={"Content-Type": "text/html"}))
    return page


def test_a_selector_takes_the_story_where_the_extractor_takes_the_wrong_block(
    feed_settings: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    serve(server)
    poll(feed_settings(), engine, pool)
    (wrong,) = articles(engine)
    assert STORY[0] not in wrong.text and "Reader comment" in wrong.text

    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM fingerprint"))
        connection.execute(sa.text("DELETE FROM mention"))
        connection.execute(sa.text("DELETE FROM alert"))
        connection.execute(sa.text("DELETE FROM article"))
        connection.execute(sa.text("UPDATE feed SET etag = NULL, last_modified = NULL, body_hash = NULL"))
    poll(feed_settings(selector="#main .story-text"), engine, pool)
    (right,) = articles(engine)
    assert right.text == "\n".join(STORY)
    assert right.extraction_note is None and right.title == "Floods"


def test_a_selector_that_matches_nothing_falls_back_to_the_feed_and_says_so(
    feed_settings: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    serve(server)
    poll(feed_settings(selector="div.article-body"), engine, pool)
    (article,) = articles(engine)
    assert article.text == "The feed's own words about the floods."
    assert article.extraction_note == "page selector matched no text; feed content used"


def test_extract_false_stores_the_feeds_own_content_without_fetching_the_page(
    feed_settings: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    serve(server)
    report = poll(feed_settings(extract=False), engine, pool)
    (article,) = articles(engine)
    assert (report.stored, report.fallbacks) == (1, 0)
    assert article.text == "The feed's own words about the floods." and article.extraction_note is None
    assert server.hits("/floods") == []


def test_headers_and_user_agent_go_with_the_feed_and_its_pages(
    feed_settings: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    serve(server)
    settings = feed_settings(headers={"X-Api-Key": "k-123", "Accept-Language": "kk"}, user_agent="HeraldReader/2")
    poll(settings, engine, pool)
    for path in ("/feed.xml", "/floods"):
        (request,) = server.hits(path)
        assert request.header("x-api-key") == "k-123" and request.header("accept-language") == "kk"
        assert request.header("user-agent") == "HeraldReader/2"


def test_a_feeds_proxy_carries_the_feed_and_its_pages(
    feed_settings: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    page = serve(server)
    with ForwardProxy() as proxy:
        report = poll(feed_settings(proxy=proxy.url), engine, pool)
    assert (report.failed, report.stored) == (0, 1)
    assert proxy.seen == [server.url("/feed.xml"), page]


@pytest.mark.parametrize(("trust_env", "through_proxy"), [(False, False), (True, True)])
def test_proxy_variables_count_only_with_trust_env(
    trust_env: bool,
    through_proxy: bool,
    feed_settings: Callable[..., Settings],
    engine: sa.Engine,
    server: HTTPServer,
    pool: CPUPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve(server)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        report = poll(feed_settings({"trust_env": trust_env}), engine, pool)
    assert report.stored == 1
    assert bool(proxy.seen) is through_proxy
    assert len(server.hits("/feed.xml")) == 1


@pytest.mark.parametrize(
    ("environ", "url", "proxy"),
    [
        ({"HTTPS_PROXY": "proxy:3128"}, "https://news.example/rss", "http://proxy:3128"),
        ({"HTTPS_PROXY": "http://p:1"}, "http://news.example/rss", None),
        ({"http_proxy": "http://low:1", "HTTP_PROXY": "http://up:1"}, "http://news.example/", "http://low:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.org,.news.example"}, "http://a.news.example/", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "news.example"}, "http://news.example/", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "ews.example"}, "http://news.example/", "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, "http://news.example/", None),
    ],
)
def test_environment_proxy(environ: dict[str, str], url: str, proxy: str | None) -> None:
    assert environment_proxy(httpx.URL(url), environ) == proxy


def test_trust_env_is_off_by_default() -> None:
    assert PollSettings().trust_env is False


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ({"selector": "div[class=="}, "feeds.0: feed 'Herald': selector 'div[class==' is not a CSS selector"),
        ({"headers": {"X-Evil": "a\r\nInjected: 1"}}, "the value of the header X-Evil has a line break"),
        ({"headers": {"Bad Name": "x"}}, "'Bad Name' is not a header name"),
        ({"proxy": "socks9://p"}, "a proxy is an http(s) URL"),
    ],
)
def test_wrong_options_are_config_errors_naming_the_feed(
    feed: dict[str, Any], message: str, config_file: Callable[..., Any]
) -> None:
    import yaml

    path = config_file(yaml.safe_dump({"feeds": [{"name": "Herald", "url": "https://herald.example/rss", **feed}]}))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert message in str(caught.value) and "\n" not in str(caught.value)
