"""The seed corpus: known texts the dedup recognises from the first run.

Each ``*.txt`` file of the seeds directory becomes a ``Seed`` row (named after the
file) and is indexed, so republished copies and excerpts of it are duplicates.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from monitor.errors import ConfigError, InputError
from monitor.models import Seed
from monitor.pipeline.dedup import DedupIndex
from monitor.pipeline.extract import read_text
from monitor.text import content_hash


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def load_seeds(session: Session, seeds_dir: Path, index: DedupIndex) -> int:
    """Store and index every ``seeds_dir/*.txt``; returns how many seeds were new.

    Idempotent: a seed already loaded is left alone, one whose file changed is updated
    and re-indexed. Commits, so that the corpus is loaded entirely or not at all.
    """
    if not seeds_dir.is_dir():
        raise ConfigError(f"config: seeds_dir: {seeds_dir.resolve()} is not a directory")
    existing = {seed.name: seed for seed in session.execute(sa.select(Seed)).scalars()}
    added = 0
    for path in sorted(seeds_dir.glob("*.txt")):
        extracted = read_text(_read(path))
        digest = content_hash(extracted.text)
        seed = existing.get(path.name)
        if seed is not None and seed.content_hash == digest:
            continue
        if seed is None:
            seed = Seed(name=path.name, text=extracted.text, title=extracted.title, content_hash=digest)
            session.add(seed)
            added += 1
        else:
            index.remove(session, seed_id=seed.id)
            seed.text, seed.title, seed.content_hash = extracted.text, extracted.title, digest
        session.flush()
        index.add(session, seed.text, seed_id=seed.id)
    session.commit()
    return added
