"""Who may deliver a channel: one dispatcher at a time, across processes and threads.

- **Across processes, PostgreSQL.** ``hold_channel`` locks the channel's
  ``alert_channel`` row with ``SELECT … FOR UPDATE SKIP LOCKED`` for the whole of its
  delivery: another daemon skips the channel, and the lock dies with a crashed process.
- **Across processes, SQLite** (one writer anyway). ``process_lock``: a file lock beside
  the database keeps a second process (``monitor poll`` next to ``monitor run``) out.
  It is taken by the first delivery of the process and let go by the last, so that the
  process's channels can deliver side by side.
- **Within a process**, both databases: a channel is delivered by one thread at a time;
  ``hold_channel`` finds a channel another thread is delivering busy.

The lock is per channel rather than per alert because a channel's alerts go out in order.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from monitor.db import session as open_session
from monitor.models import AlertChannel

_lock = threading.Lock()
_files: dict[Path, tuple[TextIO, int]] = {}  # lock file → (its locked handle, deliveries holding it)
_delivering: set[tuple[str, str]] = set()  # (database, channel) being delivered by a thread here


@contextlib.contextmanager
def process_lock(engine: Engine) -> Iterator[bool]:
    """On SQLite, whether this process may deliver (its deliveries share the lock)."""
    path = _lock_file(engine)
    if path is None:
        yield True
        return
    if not _acquire(path):
        yield False
        return
    try:
        yield True
    finally:
        _release(path)


def _lock_file(engine: Engine) -> Path | None:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        return None
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    return Path(database).with_name(Path(database).name + ".alerts.lock").absolute()


def _acquire(path: Path) -> bool:
    import fcntl

    with _lock:
        held = _files.get(path)
        if held is not None:
            _files[path] = (held[0], held[1] + 1)
            return True
        handle = open(path, "a")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        _files[path] = (handle, 1)
        return True


def _release(path: Path) -> None:
    import fcntl

    with _lock:
        handle, count = _files[path]
        if count > 1:
            _files[path] = (handle, count - 1)
            return
        del _files[path]
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class ChannelHold:
    """The right to deliver one channel, and its state row.

    On PostgreSQL the state row stays locked in ``session``'s transaction until
    ``release``; state changes ride on that transaction. On SQLite (already exclusive
    through the process lock) each change commits at once, so no read transaction is
    left open across network calls.
    """

    def __init__(self, session: Session, state: AlertChannel, *, locked: bool) -> None:
        self.session = session
        self.state = state
        self.locked = locked

    def save(self) -> None:
        self.session.add(self.state)
        if self.locked:
            self.session.flush()
        else:
            self.session.commit()

    def release(self) -> None:
        self.session.commit()


@contextlib.contextmanager
def hold_channel(engine: Engine, key: str) -> Iterator[ChannelHold | None]:
    """The channel's hold, or None when another thread or process is delivering it."""
    mine = (str(engine.url), key)
    with _lock:
        busy = mine in _delivering
        _delivering.add(mine)
    if busy:
        yield None
        return
    try:
        with _hold_row(engine, key) as hold:
            yield hold
    finally:
        with _lock:
            _delivering.discard(mine)


@contextlib.contextmanager
def _hold_row(engine: Engine, key: str) -> Iterator[ChannelHold | None]:
    locked = engine.dialect.name == "postgresql"
    with open_session(engine) as session:
        query = select(AlertChannel).where(AlertChannel.key == key)
        if locked:
            query = query.with_for_update(skip_locked=True)
        state = session.exec(query).first()
        if state is None:
            yield None
            return
        if not locked:
            session.commit()
        hold = ChannelHold(session, state, locked=locked)
        try:
            yield hold
        finally:
            hold.release()


__all__ = ["ChannelHold", "hold_channel", "process_lock"]
