"""Text normalisation shared by the dedup, the archive and the matching.

Two texts that differ only in Unicode form, letter case, punctuation or spacing have
the same ``normalize`` form and therefore the same ``content_hash``: the cheap
exact-copy test. ``tokens`` gives the words the near-duplicate detection works on.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Unicode letters and digits in any script; punctuation, marks of quotation and
# underscores separate words ("Kazakhstan’s" -> "kazakhstan", "s").
_WORD_RE = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """The words of ``text``: NFKC-normalised, case-folded, in order."""
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    """The words of ``text`` joined by single spaces: what ``content_hash`` hashes."""
    return " ".join(tokens(text))


def content_hash(text: str) -> str:
    """SHA-256 (hex) of the normalised text; equal for copies that differ in form only."""
    return tokens_hash(tokens(text))


def tokens_hash(words: list[str]) -> str:
    """``content_hash`` of a text whose ``tokens`` are ``words`` (saves tokenising twice)."""
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()
