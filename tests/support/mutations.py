"""Mutations of documents for fuzzing: the ways a feed arrives broken.

``mutate(data, rng)`` applies one to three mutations picked at random (bit flips, a
truncation, a tag duplicated or removed, a span repeated, random bytes written or
inserted, the text re-encoded under its old declaration, the declaration changed, a
byte order mark added or dropped, markup left open, deep nesting) and says which, so a
failure can be told and replayed with the same seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_TAG = re.compile(rb"<[^<>]{1,200}>")
_DECLARED = re.compile(rb"encoding\s*=\s*[\"'][^\"']*[\"']")
CODECS = ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1251", "koi8-r", "latin-1", "cp1252",
          "shift_jis", "gb18030", "big5", "iso-8859-7"]  # fmt: skip
DECLARATIONS = [*CODECS, "x-unknown", "utf-7", "ebcdic-cp-us", "", "utf-8\x00", "ascii"]
BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"]
JUNK = [b"&#xD800;", b"&#0;", b"&bogus;", b"&#1114112;", b"<![CDATA[", b"<!--", b"<?xml", b"]]>", b"\x00",
        b"</channel>", b"</rss></rss>", b"<item>", b"<entry>", b"<link>javascript:alert(1)</link>",
        b"<link href='//x'/>", b"<pubDate>Mon, 99 Foo 99999 99:99:99 +9999</pubDate>", b"<guid></guid>",
        b"<title type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><b>x</div></title>"]  # fmt: skip
CONTENT_TYPES = [None, "application/rss+xml", "application/atom+xml", "text/xml", "application/xml; charset=utf-16",
                 "text/html; charset=koi8-r", "application/json", "application/feed+json",
                 "text/plain; charset=bogus", "application/octet-stream", "image/png"]  # fmt: skip


def _position(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data) + 1)


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncation(data: bytes, rng: random.Random) -> bytes:
    return data[: _position(data, rng)]


def _tags(data: bytes) -> list[re.Match[bytes]]:
    return list(_TAG.finditer(data))


def tag_duplicated(data: bytes, rng: random.Random) -> bytes:
    tags = _tags(data)
    if not tags:
        return data
    tag = rng.choice(tags)
    return data[: tag.end()] + tag.group(0) * rng.randint(1, 3) + data[tag.end() :]


def tag_removed(data: bytes, rng: random.Random) -> bytes:
    tags = _tags(data)
    if not tags:
        return data
    tag = rng.choice(tags)
    return data[: tag.start()] + data[tag.end() :]


def span_repeated(data: bytes, rng: random.Random) -> bytes:
    """A stretch between two tags (an item, half an item) repeated."""
    tags = _tags(data)
    if len(tags) < 2:
        return data
    first, second = sorted(rng.sample(range(len(tags)), 2))
    start, end = tags[first].start(), tags[second].end()
    return data[:end] + data[start:end] * rng.randint(1, 4) + data[end:]


def random_bytes(data: bytes, rng: random.Random) -> bytes:
    junk = rng.randbytes(rng.randint(1, 64))
    at = _position(data, rng)
    if rng.random() < 0.5:
        return data[:at] + junk + data[at + len(junk) :]
    return data[:at] + junk + data[at:]


def reencoded(data: bytes, rng: random.Random) -> bytes:
    """The text in another encoding, its declaration (if any) left as it was."""
    text = data.decode("utf-8", "replace")
    return text.encode(rng.choice(CODECS), "replace")


def declaration_changed(data: bytes, rng: random.Random) -> bytes:
    declared = f'encoding="{rng.choice(DECLARATIONS)}"'.encode("latin-1")
    if _DECLARED.search(data[:200]):
        return _DECLARED.sub(declared, data, count=1)
    return b'<?xml version="1.0" ' + declared + b"?>\n" + data


def bom(data: bytes, rng: random.Random) -> bytes:
    for mark in BOMS:
        if data.startswith(mark):
            return data[len(mark) :]
    return rng.choice(BOMS) + data


def junk_markup(data: bytes, rng: random.Random) -> bytes:
    at = _position(data, rng)
    return data[:at] + rng.choice(JUNK) + data[at:]


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([64, 512, 2048])
    at = _position(data, rng)
    return data[:at] + b"<div>" * depth + b"x" + b"</div>" * rng.choice([0, depth]) + data[at:]


MUTATORS: list[Callable[[bytes, random.Random], bytes]] = [
    bit_flips, truncation, tag_duplicated, tag_removed, span_repeated, random_bytes, reencoded,
    declaration_changed, bom, junk_markup, deep_nesting,
]  # fmt: skip


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """``data`` after one to three mutations, and their names."""
    names = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        mutator = rng.choice(MUTATORS)
        data = mutator(data, rng)
        names.append(mutator.__name__)
    return data, names


__all__ = ["CONTENT_TYPES", "MUTATORS", "mutate"]
