"""Properties of the URL canonicaliser and the entity matcher, over generated input.

``canonical_url`` sees every link of every feed: whatever the text (and whatever base it
is resolved against), it must not raise, must give an http(s) URL or None, and applying
it again must change nothing (the stored URL is the key that finds the story again).

``EntityMatcher.find`` sees every article: whatever the text and the aliases, it must not
raise; each match's offsets lie within the text and ``text[start:end]`` is the text the
match reports; matches never overlap; and an alias glued inside a longer Latin word
(``Almatyville``, ``xCSTO``) is not a mention.

Hypothesis generates the input from a fixed seed (``derandomize``), so a run is
reproducible and a failure shows its smallest example. Each property's examples are
counted in the ledger.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import DEFAULT_ENTITIES, EntityConfig
from monitor.pipeline.match import EntityMatcher
from monitor.pipeline.urls import canonical_url
from tests.reliability.conftest import Ledger

PROPERTY = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def run_property(ledger: Ledger, part: str, check: Callable[[], None], calls: list[int]) -> None:
    """Run a Hypothesis test and count its examples: all survived, or none when it fails."""
    try:
        check()
    except BaseException:
        ledger.record(part, tried=max(calls[0], 1), survived=0)
        raise
    ledger.record(part, tried=calls[0], survived=calls[0])


# ------------------------------------------------------------------------------- URLs

LABEL = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=12)
UNICODE_LABEL = st.text(alphabet="abcxyzäöüéłıİßжёАлмаы阿拉木图한국", min_size=1, max_size=8)
HOSTS = st.one_of(
    st.lists(st.one_of(LABEL, UNICODE_LABEL), min_size=1, max_size=4).map(".".join),
    st.builds(
        lambda name, dot: name + dot,
        st.lists(LABEL, min_size=2, max_size=3).map(".".join),
        st.sampled_from(["", ".", ".."]),
    ),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
    st.sampled_from(["localhost", "[::ffff:127.0.0.1]", "[fe80::1%25eth0]", "xn--80aa", "EXAMPLE.ORG", "", "[::1"]),
    # Hosts IDNA cannot encode (an empty label, a label too long, a joiner alone).
    st.sampled_from(["a..\u00e9", "\u3002", "\u200d.org", "\u00e9" * 64 + ".org", "a\u2488.org"]),
)
PATH_CHARS = string.ascii_letters + string.digits + "/-._~%!$&'()*+,;=:@ éж\t\n?#[]|\\^`{}<>\"" + "%2F%20%7e%zz"
QUERY_NAMES = st.sampled_from(
    ["utm_source", "UTM_Medium", "fbclid", "id", "page", "q", "ref", "gallery", "a+b", "%75tm_x", ""]
)
QUERY_VALUES = st.text(alphabet=string.ascii_letters + string.digits + "%+=&/?é ", max_size=10)


@st.composite
def url_like(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "HtTpS", "ftp", "javascript", "file", "", "http:/"]))
    userinfo = draw(st.sampled_from(["", "user@", "user:pass@", "a@b@", "@"]))
    host = draw(HOSTS)
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":0", ":65536", ":99999", ":x", ":"]))
    path = draw(st.text(alphabet=PATH_CHARS, max_size=30))
    pairs = draw(st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=4))
    query = ("?" + "&".join(f"{n}={v}" for n, v in pairs)) if pairs or draw(st.booleans()) else ""
    fragment = draw(st.sampled_from(["", "#", "#top", "#entry-1"]))
    space = draw(st.sampled_from(["", " ", "\t", "\n "]))
    separator = "://" if scheme and not scheme.endswith("/") else ""
    slash = "" if path.startswith("/") else "/"
    return f"{space}{scheme}{separator}{userinfo}{host}{port}{slash}{path}{query}{fragment}{space}"


URLS = st.one_of(url_like(), st.text(max_size=80))
BASES = st.one_of(
    st.none(),
    st.sampled_from(["https://news.example.org/feeds/world.xml", "http://x.example", "mailto:x", ""]),
    url_like(),
)


def test_canonical_url_never_raises_and_gives_http_or_none(ledger: Ledger) -> None:
    calls = [0]

    @PROPERTY
    @given(url=URLS, base=BASES)
    def check(url: str, base: str | None) -> None:
        calls[0] += 1
        result = canonical_url(url, base=base)
        assert result is None or result.startswith(("http://", "https://")), result

    run_property(ledger, "urls", check, calls)


def test_canonical_url_is_idempotent(ledger: Ledger) -> None:
    calls = [0]

    @PROPERTY
    @given(url=URLS, base=BASES)
    def check(url: str, base: str | None) -> None:
        calls[0] += 1
        once = canonical_url(url, base=base)
        if once is not None:
            assert canonical_url(once) == once

    run_property(ledger, "urls", check, calls)


@pytest.mark.parametrize("url", ["http://a..\u00e9/", "http://\u3002/", "http://\u200d.org/news"])
def test_host_idna_cannot_encode_is_canonical_once(ledger: Ledger, url: str) -> None:
    with ledger.trial("urls"):
        once = canonical_url(url)
        assert once is None or canonical_url(once) == once


# ---------------------------------------------------------------------------- matcher

ALIAS_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs", "M", "Cf"]), min_size=1, max_size=12
).filter(lambda alias: alias.strip() != "")
ENTITIES = st.lists(
    st.builds(
        lambda name, aliases: EntityConfig(name=name, aliases=aliases), ALIAS_TEXT, st.lists(ALIAS_TEXT, max_size=3)
    ),
    min_size=1,
    max_size=4,
)
# Text made of the aliases themselves, glued and spaced in every way, with odd characters.
PIECES = st.one_of(
    st.sampled_from([a for e in DEFAULT_ENTITIES for a in e.aliases]),
    st.text(max_size=6),
    st.sampled_from([" ", "-", "'s", "’", "\u00ad", "\u200b", "ß", "İ", "a", "а", "\u0301", "https://", ".kz", "@"]),
)
TEXTS = st.lists(PIECES, max_size=12).map("".join)
DEFAULT_MATCHER = EntityMatcher(DEFAULT_ENTITIES)


def check_matches(text: str, matches: list[Any]) -> None:
    previous_end = 0
    for match in matches:
        assert 0 <= match.start < match.end <= len(text), match
        assert text[match.start : match.end] == match.text, match
        assert match.start >= previous_end, f"{match} overlaps the match before it"
        previous_end = match.end


def test_matcher_never_raises_and_reports_exact_disjoint_spans(ledger: Ledger) -> None:
    calls = [0]

    @PROPERTY
    @given(text=TEXTS)
    def check(text: str) -> None:
        calls[0] += 1
        check_matches(text, DEFAULT_MATCHER.find(text))

    run_property(ledger, "match", check, calls)


def test_matcher_of_any_aliases_never_raises_and_reports_exact_disjoint_spans(ledger: Ledger) -> None:
    calls = [0]

    @PROPERTY
    @given(entities=ENTITIES, data=st.data())
    def check(entities: list[EntityConfig], data: st.DataObject) -> None:
        calls[0] += 1
        aliases = [a for e in entities for a in e.aliases]
        pieces = st.one_of(st.sampled_from(aliases), st.text(max_size=5), st.sampled_from([" ", "-", "x", "'"]))
        text = data.draw(st.lists(pieces, max_size=10).map("".join))
        check_matches(text, EntityMatcher(entities).find(text))

    run_property(ledger, "match", check, calls)


# Single words: in a multi-word alias the glued word is only one of its words.
LATIN_ALIASES = [a for e in DEFAULT_ENTITIES for a in e.aliases if a.isascii() and a.isalpha()]
GLUE = st.text(alphabet=string.ascii_letters, min_size=1, max_size=4)


def test_alias_glued_inside_a_longer_latin_word_is_not_a_match(ledger: Ledger) -> None:
    calls = [0]

    @PROPERTY
    @given(
        alias=st.one_of(st.sampled_from(LATIN_ALIASES), st.text(alphabet=string.ascii_letters, min_size=2, max_size=8)),
        left=st.one_of(st.just(""), GLUE),
        right=st.one_of(st.just(""), GLUE),
        before=st.sampled_from(["", "The ", "(", "in "]),
        after=st.sampled_from(["", " said.", ")", ", then"]),
    )
    def check(alias: str, left: str, right: str, before: str, after: str) -> None:
        if not (left or right):
            right = "s"
        calls[0] += 1
        matcher = (
            EntityMatcher([EntityConfig(name="Tracked", aliases=[alias])])
            if alias not in LATIN_ALIASES
            else DEFAULT_MATCHER
        )
        word = f"{left}{alias}{right}"
        text = f"{before}{word}{after}"
        start = len(before)
        inside = [m for m in matcher.find(text) if m.start < start + len(word) and start < m.end]
        # The glued word may be an alias in its own right; nothing else in it may match.
        assert all(m.start == start and m.end == start + len(word) for m in inside), (text, inside)

    run_property(ledger, "match", check, calls)


@pytest.mark.parametrize("word", ["Almatyville", "xCSTO", "CSTOs", "Nazarbayeva", "preAlmaty", "AlmaAtan"])
def test_known_glued_words_are_not_matches(ledger: Ledger, word: str) -> None:
    with ledger.trial("match"):
        assert DEFAULT_MATCHER.find(f"The {word} report.") == []
