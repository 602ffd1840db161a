"""The process pool: jobs under a time limit, processes killed and replaced one at a time."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.errors import FetchError
from monitor.outcomes import FailureKind
from monitor.pipeline.pool import CPUPool
from tests.support.feeds import Item, article_page, costly_page, rss20, story
from tests.support.waiting import wait_for

PAGE = article_page("Plain", story("plain page")).encode()


@pytest.fixture
def pool() -> Iterator[CPUPool]:
    pool = CPUPool(workers=2)
    pool.warm_up()
    yield pool
    pool.close()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_an_extraction_past_its_limit_kills_its_process_only_and_the_pool_goes_on(pool: CPUPool) -> None:
    first = set(pool.pids())
    assert len(first) == 2

    async def both() -> list[object]:
        costly = pool.extract(costly_page().encode(), url="http://x/costly", limit=0.5)
        # Beside it, a job in the other process, undisturbed by the kill.
        plain = pool.extract(PAGE, url="http://x/plain", limit=30)
        return await asyncio.gather(costly, plain, return_exceptions=True)

    timed_out, (extracted, problem) = asyncio.run(both())  # type: ignore[misc]

    assert isinstance(timed_out, FetchError)
    assert (timed_out.kind, timed_out.problem) == (FailureKind.EXTRACT_TIMEOUT, "extract_timeout")
    assert str(timed_out) == "extract_timeout: extracting http://x/costly took longer than 0.5s"
    assert extracted is not None and problem is None
    (killed,) = first - set(pool.pids())
    wait_for(lambda: not alive(killed), 5, "the killed process to be gone")
    # Four jobs at once: both processes work, one of them new.
    results = asyncio.run(_extract_many(pool, 4))
    assert all(extracted is not None for extracted, _problem in results)
    assert len(pool.pids()) == 2 and killed not in pool.pids()


async def _extract_many(pool: CPUPool, count: int) -> list[tuple[object, object]]:
    jobs = [pool.extract(PAGE, url=f"http://x/{n}", limit=30) for n in range(count)]
    return list(await asyncio.gather(*jobs))


def test_a_process_killed_from_outside_is_replaced_and_its_job_run_again(pool: CPUPool) -> None:
    for pid in pool.pids():
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    feed = rss20([Item("One", "http://x/one")]).encode()

    document, urls = asyncio.run(pool.parse(feed, url="http://x/feed", content_type=None))

    assert urls == ["http://x/one"] and document.entries[0].title == "One"


def test_a_parse_past_its_limit_is_a_deadline_failure(pool: CPUPool) -> None:
    items = [Item(f"Story {n}", f"http://x/{n}", summary=story(f"s{n}", 6)) for n in range(3000)]
    with pytest.raises(FetchError) as caught:
        asyncio.run(pool.parse(rss20(items).encode(), url="http://x/feed", content_type=None, limit=0.05))
    assert caught.value.kind == FailureKind.DEADLINE
    assert "parsing the feed took longer than 0.05s" in caught.value.message


def test_closing_the_pool_ends_its_processes() -> None:
    pool = CPUPool(workers=2)
    pool.warm_up()
    pids = pool.pids()
    pool.close()
    wait_for(lambda: not any(alive(pid) for pid in pids), 5, "the pool's processes to end")
