"""Benchmark: ``monitor analyze`` against trafilatura's extraction alone.

Runs, side by side in one process on the same real news pages, (a) trafilatura's
``extract`` — the floor: extraction is the irreducible part — and (b) the monitor's
whole analysis of a page: extraction, a dedup lookup against the seeds and an archive
in a real SQLite database, and entity matching. Rounds alternate (a, b, a, b, …) so
that machine noise hits both; the best round of each is compared.

    python tests/bench/bench_analyze.py [--rounds 3] [--archive 2000]

Target: analysis ≤ 1.15 × the extraction floor.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.config import Settings  # noqa: E402
from monitor.db import make_engine, session, upgrade_schema  # noqa: E402
from monitor.pipeline.extract import extract_html  # noqa: E402
from monitor.pipeline.ingest import Archive, Candidate  # noqa: E402
from monitor.seeds import load_seeds  # noqa: E402
from tests.support.corpus import PAGES  # noqa: E402


def _floor(pages: list[bytes]) -> float:
    start = time.perf_counter()
    for html in pages:
        trafilatura.extract(html)
    return time.perf_counter() - start


def _analysis(pages: list[bytes], archive: Archive, engine) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    duplicates = mentions = 0
    start = time.perf_counter()
    with session(engine) as db:
        for html in pages:
            extracted = extract_html(html)
            if extracted is None:
                continue
            analysis = archive.analyze(db, extracted.text)
            duplicates += analysis.verdict.is_duplicate
            mentions += len(analysis.mentions)
    return time.perf_counter() - start, duplicates, mentions


def _fill_archive(archive: Archive, engine, pages: list[bytes], count: int) -> None:  # type: ignore[no-untyped-def]
    """Store ``count`` distinct articles so that lookups meet a populated index.

    Their words are drawn from the pages' own vocabulary, so shingles collide the way
    real news texts do, without any stored text being a copy of a page.
    """
    rng = random.Random(7)
    vocabulary = [
        word
        for extracted in (extract_html(p) for p in pages[:100])
        if extracted is not None
        for word in extracted.text.split()
    ]
    with session(engine) as db:
        for i in range(count):
            text = " ".join(rng.choices(vocabulary, k=400))
            archive.store(db, Candidate(url=f"https://archive.example/{i}", text=text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--archive", type=int, default=2000, help="articles stored first")
    args = parser.parse_args()

    pages = [p.read_bytes() for p in sorted(PAGES.glob("*.html"))]
    if not pages:
        raise SystemExit(f"no page corpus at {PAGES} (set TEST_CORPUS to a copy)")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", seeds_dir=ROOT / "seeds")
        engine = make_engine(settings.database_url)
        upgrade_schema(engine)
        archive = Archive(settings)
        with session(engine) as db:
            load_seeds(db, settings.seeds_dir, archive.index)
            db.commit()
        print(f"pages: {len(pages)}; filling the archive with {args.archive} articles…")
        _fill_archive(archive, engine, pages, args.archive)

        _floor(pages[:20]), _analysis(pages[:20], archive, engine)  # warm caches
        floors, ours = [], []
        for _ in range(args.rounds):
            floors.append(_floor(pages))
            elapsed, duplicates, mentions = _analysis(pages, archive, engine)
            ours.append(elapsed)
        engine.dispose()

    floor, best = min(floors), min(ours)
    n = len(pages)
    print(f"trafilatura.extract alone : {floor:7.2f} s  ({floor / n * 1000:6.1f} ms/page)")
    print(f"monitor analysis          : {best:7.2f} s  ({best / n * 1000:6.1f} ms/page)")
    print(f"ratio analysis / floor    : {best / floor:7.3f}  (target ≤ 1.15)")
    print(f"throughput                : {n / best:7.1f} pages/s")
    print(f"verdicts: {duplicates} duplicates, {mentions} mentions in {n} pages")


if __name__ == "__main__":
    main()
