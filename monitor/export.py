"""Getting the archive out: every article a search finds, whole, as JSON Lines or CSV.

The export walks the search's own keyset pages (``search_articles``, newest first), so
it lists exactly the articles ``monitor search`` lists for the same query and filters,
and each page is read in a transaction of its own: memory holds one page, whatever the size
of the archive, and a long export never keeps a transaction open. A page is then
completed with what a result list leaves out: the whole text, every mention with its
character offsets, and the duplicate links both ways (``duplicate_of``: the original
of a copy; ``copies``: the ids of the articles found to be copies of it).

Records are plain dicts ready for ``json.dumps``; ``jsonl_lines`` and ``csv_lines``
render them a line at a time for the CLI and the API's streamed answer.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.config import DEFAULT_ENTITIES, EntityConfig
from monitor.models import Article, ArticleSummary, Mention
from monitor.search import MAX_LIMIT, SearchFilters, search_articles
from monitor.times import iso

# Articles per page: the search's largest page.
EXPORT_PAGE = MAX_LIMIT

Record = dict[str, Any]


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


# The CSV columns, in order; lists are joined (entities by "; ", copies by " ") and the
# mentions are one JSON array, so that a row stays one record.
CSV_COLUMNS = (
    "id",
    "url",
    "title",
    "feed",
    "published_at",
    "fetched_at",
    "source",
    "language",
    "author",
    "entities",
    "duplicate_of",
    "similarity",
    "copies",
    "mentions",
    "text",
)


def export_articles(
    open_session: Callable[[], AbstractContextManager[Session]],
    filters: SearchFilters,
    *,
    entities: Sequence[EntityConfig] = DEFAULT_ENTITIES,
) -> Iterator[Record]:
    """Every article matching ``filters``, newest first, from ``filters.cursor`` on.

    ``open_session`` gives the database connection of one page; ``entities`` are the tracked ones,
    as ``search_articles`` takes them. ``QueryError`` for bad filters,
    raised by the first page, before any record.
    """
    cursor = filters.cursor
    while True:
        with open_session() as db:
            page = search_articles(
                db, replace(filters, limit=EXPORT_PAGE, cursor=cursor), entities=entities, count=False
            )
            records = complete(db, page.items)
        yield from records
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def complete(session: Session, items: list[ArticleSummary]) -> list[Record]:
    """The export records of a result page: text, mentions and copies added."""
    ids = [item.id for item in items]
    if not ids:
        return []
    details = {
        row[0]: row[1:]
        for row in session.execute(
            sa.select(
                col(Article.id),
                col(Article.text),
                col(Article.source),
                col(Article.language),
                col(Article.author),
                col(Article.similarity),
            ).where(col(Article.id).in_(ids))
        )
    }
    mentions: dict[int, list[Record]] = {}
    for article_id, entity, text, start, end in session.execute(
        sa.select(col(Mention.article_id), col(Mention.entity), col(Mention.text), col(Mention.start), col(Mention.end))
        .where(col(Mention.article_id).in_(ids))
        .order_by(col(Mention.article_id), col(Mention.start), col(Mention.id))
    ):
        mentions.setdefault(article_id, []).append({"entity": entity, "text": text, "start": start, "end": end})
    copies: dict[int, list[int]] = {}
    for original, copy in session.exec(
        select(Article.duplicate_of_article_id, Article.id)
        .where(col(Article.duplicate_of_article_id).in_(ids))
        .order_by(col(Article.id))
    ):
        if original is not None and copy is not None:
            copies.setdefault(original, []).append(copy)
    records = []
    for item in items:
        text, source, language, author, similarity = details.get(item.id, ("", None, None, None, None))
        records.append(
            {
                "id": item.id,
                "url": item.url,
                "title": item.title,
                "feed": item.feed,
                "published_at": iso(item.published_at),
                "fetched_at": iso(item.fetched_at),
                "source": source,
                "language": language,
                "author": author,
                "entities": item.entities,
                "duplicate_of": item.duplicate_of,
                "similarity": similarity,
                "copies": copies.get(item.id, []),
                "mentions": mentions.get(item.id, []),
                "text": text,
            }
        )
    return records


def jsonl_lines(records: Iterable[Record]) -> Iterator[str]:
    """One JSON object per line (UTF-8 as is; JSON escapes every control character)."""
    for record in records:
        yield json.dumps(record, ensure_ascii=False) + "\n"


def csv_lines(records: Iterable[Record]) -> Iterator[str]:
    """A header row, then one CSV record per article (RFC 4180 quoting, CRLF rows)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow(_csv_row(record))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    # The header alone when nothing matched.
    if buffer.tell():
        yield buffer.getvalue()


def _csv_row(record: Record) -> list[Any]:
    row = dict(record)
    row["entities"] = "; ".join(record["entities"])
    row["copies"] = " ".join(str(copy) for copy in record["copies"])
    row["mentions"] = json.dumps(record["mentions"], ensure_ascii=False)
    return ["" if row[column] is None else row[column] for column in CSV_COLUMNS]


def lines(records: Iterable[Record], export_format: ExportFormat) -> Iterator[str]:
    return csv_lines(records) if export_format is ExportFormat.CSV else jsonl_lines(records)
