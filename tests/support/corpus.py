"""The real-world corpus: news pages with gold snippets, real feeds, conformance feeds.

It is third-party material kept outside the repository: ``$TEST_CORPUS`` when
set, else ``../shared/corpus`` beside the checkout. The location is read once, when the
tests are collected (the fixtures clear ``MONITOR_*`` variables for each test). Tests
that read the corpus skip without it, saying where it was looked for; every behaviour
they check also has a small fixture of its own in ``tests/fixtures/``, which always runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.paths import ROOT

ENV = "TEST_CORPUS"
DEFAULT = ROOT.parent / "shared" / "corpus"


def _locate() -> tuple[Path, str]:
    """The corpus directory, and how to name it in a skip reason."""
    configured = os.environ.get(ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve(), f"{configured} (from {ENV})"
    return DEFAULT, f"../shared/corpus (set {ENV} to another copy)"


CORPUS, _WHERE = _locate()
FEEDS = CORPUS / "feeds"
PAGES = CORPUS / "pages"


def available(*parts: str) -> bool:
    """Whether ``parts`` (a folder or file of the corpus, or the corpus itself) exists."""
    return CORPUS.joinpath(*parts).exists()


def skip_reason(*parts: str) -> str:
    what = f"{'/'.join(parts)} of the real-world corpus" if parts and CORPUS.is_dir() else "the real-world corpus"
    return f"needs {what} at {_WHERE}"


def needs_corpus(*parts: str) -> pytest.MarkDecorator:
    """Mark a test that reads ``parts`` of the corpus: it skips when they are absent."""
    return pytest.mark.skipif(not available(*parts), reason=skip_reason(*parts))


def require_corpus(*parts: str) -> Path:
    """The path of ``parts`` of the corpus; skips the calling test when it is absent."""
    if not available(*parts):
        pytest.skip(skip_reason(*parts))
    return CORPUS.joinpath(*parts)


def corpus_files(*folders: str, pattern: str = "*") -> list[Path]:
    """The files directly in each of ``folders``, sorted; none when the corpus is absent."""
    return sorted(path for folder in folders for path in CORPUS.joinpath(folder).glob(pattern) if path.is_file())
