"""Entity matching cost: 3 default entities vs 5,000 extra aliases, side by side.

Run by hand: ``.venv/bin/python tests/bench/bench_match.py``. The article is the seed
corpus joined to about 5,000 words. One automaton holds every alias, so ``find`` should
cost about the same with thousands of aliases; the printed ratio says how close.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from monitor.config import DEFAULT_ENTITIES, EntityConfig
from monitor.pipeline.match import EntityMatcher, fold

ROOT = Path(__file__).resolve().parents[2]
WORDS = 5000
ALIASES = 5000
ROUNDS = 30


def article() -> str:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    joined = "\n\n".join(texts * (WORDS // sum(len(t.split()) for t in texts) + 1))
    last_word = list(re.finditer(r"\S+", joined))[WORDS - 1]
    return joined[: last_word.end()]


def generated_entities(count: int) -> list[EntityConfig]:
    """Name-like aliases in Latin and Cyrillic, one to three words, five per entity."""
    rng = random.Random(1)
    latin, cyrillic = ("bcdfghklmnprstvz", "aeiou"), ("бвгдзклмнпрстхш", "аеиоуы")

    def word() -> str:
        consonants, vowels = rng.choice([latin, cyrillic])
        syllables = rng.randint(2, 4)
        return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))

    aliases = [" ".join(word().title() for _ in range(rng.randint(1, 3))) for _ in range(count)]
    return [EntityConfig(name=aliases[i], aliases=aliases[i : i + 5]) for i in range(0, count, 5)]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    text = article()
    setup = timed(lambda: fold("Almaty"))  # folding tables, built once per process
    generated = generated_entities(ALIASES)
    matchers: dict[str, EntityMatcher] = {}
    builds: dict[str, float] = {}
    for label, entities in (
        ("3 default entities", DEFAULT_ENTITIES),
        (f"+ {ALIASES} generated aliases", [*DEFAULT_ENTITIES, *generated]),
    ):
        aliases = sum(len(e.aliases) for e in entities)
        label = f"{label} ({aliases} aliases)"
        started = time.perf_counter()
        matchers[label] = EntityMatcher(entities)
        builds[label] = time.perf_counter() - started
    # Alternate the two so that load from other processes falls on both alike.
    timings: dict[str, list[float]] = {label: [] for label in matchers}
    for _ in range(ROUNDS):
        for label, matcher in matchers.items():
            timings[label].append(timed(lambda matcher=matcher: matcher.find(text)))

    print(f"article: {len(text.split())} words, {len(text)} characters")
    print(f"folding tables (once per process): {setup * 1000:.0f} ms")
    print(f"{'':<46}{'build':>10}{'find min':>10}{'find median':>13}{'mentions':>10}")
    for label, matcher in matchers.items():
        print(
            f"{label:<46}{builds[label] * 1000:>8.0f}ms{min(timings[label]) * 1000:>8.1f}ms"
            f"{statistics.median(timings[label]) * 1000:>11.1f}ms{len(matcher.find(text)):>10}"
        )
    (small, large), (small_median, large_median) = (
        [min(t) for t in timings.values()],
        [statistics.median(t) for t in timings.values()],
    )
    print(
        f"find time ratio, many aliases / default: {large / small:.2f}x (min), "
        f"{large_median / small_median:.2f}x (median)"
    )


if __name__ == "__main__":
    main()
