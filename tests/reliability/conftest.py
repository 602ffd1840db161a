"""The reliability suite's ledger: what each part of the monitor was put through, and how it came out.

Each test tries a hostile or broken world against one part (``fetch``, ``parse``,
``extract``, ``store``, ``alerts``, ``api``, ``cli``, ``daemon``, …) and records its
counts with the ``ledger`` fixture:

    ledger.record("fetch", tried=34, survived=34)
    ledger.record("store", tried=3, survived=3, lost=0, duplicated=0)

or counts a case as tried when it starts and as survived when its block passes, so a
case whose assertions fail shows as tried and not survived:

    with ledger.trial("fetch"):
        ...  # try it and assert the outcome

*tried* cases put to the part, *survived* the ones it came through as it should (a clear
error recorded, the rest unaffected), *lost* data that was stored and is gone,
*duplicated* data stored twice, *crashed* a process that died or a traceback where a
one-line error belongs. A test asserts its own outcome; the ledger only adds them up,
and at the end of the run the table is printed (and written to
``$RELIABILITY_TABLE`` when that is set, for the README).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

COLUMNS = ("tried", "survived", "lost", "duplicated", "crashed")


@dataclass
class Counts:
    tried: int = 0
    survived: int = 0
    lost: int = 0
    duplicated: int = 0
    crashed: int = 0


class Ledger:
    def __init__(self) -> None:
        self.parts: dict[str, Counts] = {}

    def record(
        self, part: str, *, tried: int, survived: int, lost: int = 0, duplicated: int = 0, crashed: int = 0
    ) -> None:
        counts = self.parts.setdefault(part, Counts())
        for name, value in zip(COLUMNS, (tried, survived, lost, duplicated, crashed), strict=True):
            setattr(counts, name, getattr(counts, name) + value)

    @contextmanager
    def trial(self, part: str, tried: int = 1) -> Iterator[None]:
        """``tried`` cases of ``part``: counted as tried now, as survived once the block passes."""
        self.record(part, tried=tried, survived=0)
        yield
        self.record(part, tried=0, survived=tried)

    def table(self) -> str:
        rows = [f"| part | {' | '.join(COLUMNS)} |", f"| --- |{' ---: |' * len(COLUMNS)}"]
        total = Counts()
        for part in sorted(self.parts):
            counts = self.parts[part]
            rows.append(f"| {part} | {' | '.join(str(getattr(counts, c)) for c in COLUMNS)} |")
            for field in fields(Counts):
                setattr(total, field.name, getattr(total, field.name) + getattr(counts, field.name))
        rows.append(f"| **all** | {' | '.join(f'**{getattr(total, c)}**' for c in COLUMNS)} |")
        return "\n".join(rows)


LEDGER = Ledger()


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    yield LEDGER


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER.parts:
        return
    terminalreporter.section("reliability")
    terminalreporter.write_line(LEDGER.table())
    target = os.environ.get("RELIABILITY_TABLE")
    if target:
        Path(target).write_text(LEDGER.table() + "\n", encoding="utf-8")
