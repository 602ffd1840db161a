"""Cross-site scripting through every field the web page and the Atom feed show.

Everything the page shows comes from feeds and pages written by others (titles, links,
authors, text and the snippets cut from it), from the configuration (feed and entity
names, seed file names) or from the request itself (the search form's fields, the
cursor, the error message about them). Each carries a classic payload here: markup,
attribute breakouts, ``javascript:`` and ``data:`` links, template syntax, XML-invalid
characters. A page holds when the payloads change no markup: every element and
attribute it has is one the templates write, every link is relative or http(s), the
Content-Security-Policy allows no script, and each payload is still there, as text. The
Atom feed holds when it is well-formed, has only Atom's elements and attributes, keeps
its text constructs plain text (``type="text"`` or no type), and gives the payloads back
as text.

Rows are written straight into the archive (every field at once), and once more through
a real poll of a hostile feed (what an outsider can actually reach).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import feedparser
import lxml.etree
import lxml.html
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import monitor.api
from monitor.api import create_app
from monitor.config import EntityConfig, Settings
from monitor.db import session
from monitor.models import Article, Feed, Mention, Seed
from tests.reliability.conftest import Ledger
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
TEMPLATES = Path(monitor.api.__file__).parent / "templates"
ATOM = "{http://www.w3.org/2005/Atom}"
ATOM_ELEMENTS = {
    ATOM + name
    for name in ("feed", "id", "title", "updated", "author", "name", "link", "generator", "entry", "published",
                 "category", "source", "summary")
}  # fmt: skip
# RFC 4287 attributes of link (rel, href, type, title) and category (term, scheme, label).
ATOM_ATTRIBUTES = {"rel", "href", "type", "title", "term", "scheme", "label"}

# One payload per field, each telling where it came from.
P = {
    "feed": "<script>alert('feed')</script>Desk",
    "title": "\"><img src=x onerror=alert('title')> Almaty rises",
    "author": "</title><svg onload=alert('author')>",
    "text": "Almaty <iframe src=javascript:alert('text')></iframe> {{7*7}} ]]> &amp; <!-- end",
    "entity": "Alma<b onmouseover=alert('entity')>ty",
    "mention": "<style>*{display:none}</style>",
    "snippet": "…<script>alert('snippet')</script>…",
    "seed": "001_<script>alert('seed')</script>.txt",
    "q": "\"><script>alert('q')</script>",
    "q-words": "<script>alert(q)</script> Almaty",
    "since": "<img src=x onerror=alert('since')>",
    "until": "' autofocus onfocus=alert('until') x='",
    "cursor": '"><base href=//evil.example/>',
}
URLS = {
    "url": "https://news.example.org/a\"><script>alert('url')</script>",
    "javascript": "javascript:alert('javascript')//news",
    "data": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript": "  VBScript:msgbox('vb')",
}
CONTROL = "Almaty\x0b\x1b\u2028 report"  # characters XML 1.0 forbids, and a line separator


def template_vocabulary() -> tuple[set[str], set[str]]:
    """Every element and attribute name the page's templates write."""
    source = "\n".join(path.read_text(encoding="utf-8") for path in TEMPLATES.glob("*.html"))
    source = re.sub(r"\{\{.*?\}\}", "X", source)  # values, where a tag's attribute goes
    source = re.sub(r"\"[^\"]*\"|'[^']*'", '""', source)  # quoted attribute values
    source = re.sub(r"\{%.*?%\}", " ", source)  # conditions around attributes
    tags, attributes = set(), set()
    for tag in re.finditer(r"<([a-zA-Z][a-zA-Z0-9]*)([^<>]*)>", source):
        tags.add(tag.group(1).lower())
        attributes.update(
            a.lower() for a in re.findall(r"(?:^|[\s}])([a-zA-Z][a-zA-Z-]*)(?==|[\s>{/]|$)", tag.group(2))
        )
    return tags, attributes


TAGS, ATTRIBUTES = template_vocabulary()


def safe_link(value: str) -> bool:
    scheme = urlsplit(value.strip()).scheme.lower()
    return scheme in ("", "http", "https") and not value.strip().lower().startswith(("//", "javascript", "data"))


def check_page(response: Any, shown: list[str]) -> None:
    """The page's markup is the templates' own; every payload in ``shown`` is there, as text."""
    assert response.status_code in (200, 400), response.status_code
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "unsafe" not in policy
    document = lxml.html.document_fromstring(response.text)
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue  # comments the templates do not write would show up as text, not here
        assert element.tag in TAGS, f"<{element.tag}> is not a tag of the templates"
        for name, value in element.attrib.items():
            assert name in ATTRIBUTES, f"<{element.tag} {name}=…> is not an attribute of the templates"
            if name in ("href", "src", "action", "formaction"):
                assert safe_link(value), f"<{element.tag} {name}={value!r}>"
    visible = document.text_content() + " ".join(v for e in document.iter() for v in e.attrib.values())
    for payload in shown:
        assert payload in visible, f"{payload!r} is not shown"


def check_atom(response: Any, shown: list[str]) -> None:
    assert response.status_code == 200
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = lxml.etree.fromstring(response.content, parser)
    for element in root.iter():
        assert element.tag in ATOM_ELEMENTS, element.tag
        assert set(element.attrib) <= ATOM_ATTRIBUTES, dict(element.attrib)
        if lxml.etree.QName(element).localname in ("title", "summary"):
            # Without a type a text construct is text too (RFC 4287, 3.1.1).
            assert element.get("type", "text") == "text", lxml.etree.tostring(element)
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    texts = [root.findtext(f"{ATOM}title") or ""]
    for entry in root.iter(f"{ATOM}entry"):
        texts += [e.text or "" for e in entry.iter()] + [v for e in entry.iter() for v in e.attrib.values()]
    joined = "\n".join(texts)
    for payload in shown:
        assert payload in joined, f"{payload!r} is not in the feed"


def fill_archive(engine: sa.Engine) -> None:
    """Articles whose every field carries a payload."""
    with session(engine) as db:
        feed = Feed(name=P["feed"], url="https://news.example.org/feed.xml", status="ok")
        seed = Seed(name=P["seed"], title="Seed", text="seed text", content_hash="s" * 64)
        db.add_all([feed, seed])
        db.flush()
        text = f"{P['text']} {P['snippet']} {CONTROL}"
        rows = [
            Article(url=URLS["url"], title=P["title"], text=text, author=P["author"], feed_id=feed.id,
                    published_at=NOW, fetched_at=NOW, content_hash="a" * 64),
            Article(url=URLS["javascript"], title=None, text=text, feed_id=feed.id, fetched_at=NOW,
                    content_hash="b" * 64),
            Article(url=URLS["data"], title=None, text=text, feed_id=feed.id, fetched_at=NOW,
                    content_hash="c" * 64),
            Article(url="https://news.example.org/control", title=CONTROL, text=text, feed_id=feed.id,
                    fetched_at=NOW, content_hash="d" * 64),
            Article(url=URLS["vbscript"], title=None, text=text, fetched_at=NOW, content_hash="e" * 64,
                    is_duplicate=True, duplicate_of_seed_id=seed.id, similarity=0.99),
        ]  # fmt: skip
        db.add_all(rows)
        db.flush()
        for article in rows:
            db.add(Mention(article_id=article.id, entity=P["entity"], text=P["mention"], start=0, end=6,
                           snippet=P["snippet"]))  # fmt: skip
        db.commit()


@pytest.fixture
def client(make_settings: Callable[..., Settings], database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url=database_url, entities=[EntityConfig(name=P["entity"])])
    engine = sa.create_engine(database_url)
    fill_archive(engine)
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as test_client:
        yield test_client
    engine.dispose()


PAGES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("archive", {}, [P["feed"], P["title"], P["entity"], URLS["javascript"], URLS["data"]]),
    ("duplicates", {"include_duplicates": "1"}, [P["seed"], URLS["vbscript"].strip()]),
    ("search", {"q": P["q-words"]}, [P["q-words"]]),
    ("search-error", {"q": P["q"]}, [P["q"]]),
    ("since", {"since": P["since"]}, [P["since"]]),
    ("until", {"until": P["until"]}, [P["until"]]),
    ("entity", {"entity": [P["entity"], P["q"]]}, [P["entity"]]),
    ("cursor", {"cursor": P["cursor"]}, []),  # refused without being repeated
    ("snippet", {"q": "Almaty"}, ["alert('text')"]),
]


@pytest.mark.parametrize(("case", "params", "shown"), PAGES, ids=[case for case, _, _ in PAGES])
def test_page_shows_hostile_fields_as_text(
    client: TestClient, ledger: Ledger, case: str, params: dict[str, Any], shown: list[str]
) -> None:
    with ledger.trial("page"):
        check_page(client.get("/?" + urlencode(params, doseq=True)), shown)


ATOM_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "mentions",
        {},
        [
            P["title"],
            P["author"],
            P["entity"],
            P["snippet"],
            P["feed"],
            URLS["url"],
            URLS["data"],
            "Almaty\u2028 report",
        ],
    ),
    ("entity", {"entity": P["entity"]}, [P["entity"]]),
    ("unknown-entity", {"entity": P["q"]}, []),
]


@pytest.mark.parametrize(("case", "params", "shown"), ATOM_CASES, ids=[case for case, _, _ in ATOM_CASES])
def test_atom_feed_carries_hostile_fields_as_text(
    client: TestClient, ledger: Ledger, case: str, params: dict[str, Any], shown: list[str]
) -> None:
    with ledger.trial("atom"):
        check_atom(client.get("/feeds/mentions.atom?" + urlencode(params, doseq=True)), shown)


def test_hostile_feed_polled_for_real_is_shown_as_text(
    fresh_database_url: Callable[[str], str],
    config_file: Callable[..., Path],
    run_cli: Callable[..., Any],
    make_settings: Callable[..., Settings],
    ledger: Ledger,
) -> None:
    """What an outsider can reach: a feed and a page of theirs, polled, then shown."""
    url = fresh_database_url("sqlite")
    title = "&lt;script&gt;alert('feed title')&lt;/script&gt; Almaty"
    with HTTPServer() as server:
        items = [
            Item(
                "<img src=x onerror=alert('item')> Almaty talks",
                server.url("/story"),
                summary="<script>alert('summary')</script> Almaty",
                author="<svg onload=alert('author')>",
            )
        ]
        server.route("/feed", Response(rss20(items, title=title), headers={"Content-Type": FEED_TYPES["rss20"]}))
        page = article_page("<script>alert('page')</script> Almaty", story("Almaty <b onclick=x>", 8))
        server.route("/story", Response(page, headers={"Content-Type": "text/html"}))
        settings = {
            "database_url": url,
            "seeds_dir": str(SEEDS_DIR),
            "poll": {"allow_private_networks": True, "timeout": "5s", "extract_workers": 1},
            "feeds": [{"name": "<i>Hostile</i> Wire", "url": server.url("/feed")}],
        }
        result = run_cli("--config", str(config_file(json.dumps(settings))), "poll", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["articles"]["stored"] == 1
    engine = sa.create_engine(url)
    with TestClient(create_app(make_settings(database_url=url), engine, clock=lambda: NOW)) as client:
        with ledger.trial("page"):
            check_page(client.get("/"), ["<i>Hostile</i> Wire", "<script>alert('page')</script> Almaty"])
        with ledger.trial("atom"):
            check_atom(
                client.get("/feeds/mentions.atom"), ["<i>Hostile</i> Wire", "<script>alert('page')</script> Almaty"]
            )
    engine.dispose()
