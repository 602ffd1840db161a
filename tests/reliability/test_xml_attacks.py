"""XML attacks in feeds: external entities (XXE), entity expansion bombs, external DTDs.

A feed's XML is the sender's: it may declare an entity that reads a local file or fetches
a URL (``<!ENTITY xxe SYSTEM "file:///etc/passwd">``), pull in an external DTD, or nest
entities so that a 1 KB document expands to gigabytes (billion laughs, quadratic blowup).
The feed parser (``parse_feed``) and the quick link scan (``entry_links``) must resolve
none of it: no file read into an entry, no request to the local server holding the DTD
and entity targets, no expansion. Each document is parsed in a child process with a
memory limit and a time limit (``tests.support.bounded``), so a regression fails the
test instead of the machine. The outcome is a ``ParsedFeed`` or a ``FetchError``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import FetchError
from monitor.pipeline.parse import entry_links, parse_feed
from tests.reliability.conftest import Ledger
from tests.support.bounded import Sandbox
from tests.support.servers import HTTPServer, Response

FEED_URL = "https://news.example.org/feed.xml"
SECRET_FILE = Path("/etc/passwd")
MEMORY = 1 << 30
TIME_LIMIT = 20.0  # per document, in the child; the parse takes milliseconds

RSS_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
ATOM_NS = "http://www.w3.org/2005/Atom"


def rss(doctype: str, title: str, description: str = "Desk", link: str = "https://news.example.org/a") -> str:
    return (
        f"{RSS_HEAD}{doctype}\n<rss version='2.0'><channel><title>{title}</title>"
        f"<link>https://news.example.org/</link><description>{description}</description>"
        f"<item><title>{title}</title><link>{link}</link><description>{description}</description>"
        "<guid>https://news.example.org/a</guid></item></channel></rss>"
    )


def atom(doctype: str, title: str) -> str:
    return (
        f"{RSS_HEAD}{doctype}\n<feed xmlns='{ATOM_NS}'><title>{title}</title><id>urn:x</id>"
        "<updated>2024-01-06T10:00:00Z</updated>"
        f"<entry><title>{title}</title><id>urn:x:1</id><updated>2024-01-06T10:00:00Z</updated>"
        f"<link rel='alternate' href='https://news.example.org/a'/><summary>{title}</summary></entry></feed>"
    )


LAUGHS = (
    '<!DOCTYPE {root} [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10))
    + "]>"
)


def documents(port: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    quadratic = "a" * 50_000
    return {
        "xxe-file": rss('<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "News &xxe;", "Read &xxe; here"),
        "xxe-file-in-link": rss(
            '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "News", link="https://x.example/&xxe;"
        ),
        "xxe-http": rss(f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{base}/entity">]>', "News &xxe;"),
        "xxe-parameter-entity": rss(
            f'<!DOCTYPE rss [<!ENTITY % remote SYSTEM "{base}/evil.dtd"> %remote;]>', "News &exfil;"
        ),
        "external-dtd": rss(f'<!DOCTYPE rss SYSTEM "{base}/evil.dtd">', "News &exfil;"),
        "external-dtd-public": rss(f'<!DOCTYPE rss PUBLIC "-//X//DTD X//EN" "{base}/evil.dtd">', "News"),
        "xinclude": rss(
            "",
            f'News <xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{base}/entity" parse="text"/>',
        ),
        "xxe-atom": atom('<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "News &xxe;"),
        "billion-laughs-rss": rss(LAUGHS.format(root="rss"), "&lol9;", "&lol9;"),
        "billion-laughs-atom": atom(LAUGHS.format(root="feed"), "&lol9;"),
        "quadratic-blowup": rss(f'<!DOCTYPE rss [<!ENTITY a "{quadratic}">]>', "&a;" * 20_000, "&a;" * 20_000),
    }


def parse_in_child(body: bytes) -> dict[str, Any]:
    """What the parser and the link scan make of ``body`` (run in a sandboxed child)."""
    started = time.monotonic()
    outcome: dict[str, Any]
    try:
        parsed = parse_feed(body, url=FEED_URL, content_type="application/rss+xml")
        outcome = {"parsed": asdict(parsed)}
    except FetchError as exc:
        outcome = {"error": (exc.kind.value, exc.message)}
    outcome["links"] = entry_links(body, url=FEED_URL)
    outcome["elapsed"] = time.monotonic() - started
    return outcome


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(memory=MEMORY) as running:
        yield running


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    with HTTPServer() as running:
        running.route("/entity", Response("SECRET-FROM-THE-NETWORK"))
        running.route("/evil.dtd", Response('<!ENTITY exfil "SECRET-FROM-THE-DTD">'))
        yield running


CASES = list(documents(0))


@pytest.mark.parametrize("case", CASES)
def test_xml_attack_is_not_resolved(sandbox: Sandbox, server: HTTPServer, ledger: Ledger, case: str) -> None:
    body = documents(server.port)[case].encode("utf-8")
    secret_line = SECRET_FILE.read_text().splitlines()[0]
    with ledger.trial("parse"):
        outcome = sandbox.run(parse_in_child, body, timeout=TIME_LIMIT, what=f"parsing {case}")
        assert outcome["elapsed"] < 5, outcome["elapsed"]
        texts = list(strings(outcome))
        assert not any(secret_line in text or "SECRET-FROM" in text for text in texts), outcome
        assert sum(len(text) for text in texts) < 3_000_000  # nothing expanded
        assert server.requests == []
        assert ("parsed" in outcome) != ("error" in outcome)
        if "parsed" in outcome:
            # What the attack left is still read as a feed where it can be.
            assert outcome["parsed"]["format"] in {"rss20", "atom10", "unknown"}
