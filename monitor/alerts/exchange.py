"""One delivery's network exchange, bounded as a whole and cut short on shutdown.

smtplib and httpx apply their timeout to each socket operation, so a receiver that
trickles a byte every few seconds keeps either busy for as long as it likes. An
``Exchange`` bounds connect + send + read together instead: the sender hands it every
socket it opens (``guard``), and the exchange shuts them down when its deadline passes
or when the ``Stop`` it belongs to is set. ``shutdown(SHUT_RDWR)`` wakes a thread
blocked in connect, send or recv on that socket, so the sender's call fails at once.
The exchange keeps a duplicate of each socket's descriptor: wrapping a socket in TLS
(STARTTLS, implicit TLS) moves the connection to a new socket object, and the duplicate
still reaches it. The sender then asks ``check()`` why its call failed, which raises:

- ``DeliveryError`` (transient) at the deadline: the alert backs off like after any
  timeout, and is sent again later with the same message id;
- ``Cancelled`` once stopped (the process is shutting down): the message may or may not
  have arrived, so the alert stays pending in the outbox exactly as it was, and the
  receiver drops the repeat by its id if it had.

No exchange starts once its ``Stop`` is set. Each exchange has a timer thread (one per
message in flight, at most one per channel).
"""

from __future__ import annotations

import os
import socket
import threading
from types import TracebackType

from monitor.errors import DeliveryError
from monitor.outcomes import DeliveryFailure

DEADLINE = "deadline"
STOPPED = "stopped"


class Cancelled(Exception):
    """A delivery stopped before its answer came (shutdown); its alert stays pending."""


class Stop:
    """Set once: every exchange in flight is cut short and none starts any more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._exchanges: set[Exchange] = set()

    def set(self) -> None:
        with self._lock:
            self._set = True
            exchanges = list(self._exchanges)
        for exchange in exchanges:
            exchange.cut_short(STOPPED)

    def is_set(self) -> bool:
        return self._set

    def _join(self, exchange: Exchange) -> bool:
        with self._lock:
            if self._set:
                return False
            self._exchanges.add(exchange)
            return True

    def _leave(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.discard(exchange)


class Exchange:
    """``with Exchange(seconds, stop) as exchange:`` around one message's network I/O."""

    def __init__(self, seconds: float, stop: Stop | None = None) -> None:
        self.seconds = seconds
        self.stop = stop or Stop()
        self.cut: str | None = None  # DEADLINE or STOPPED once cut short
        self._lock = threading.Lock()
        self._over = False
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self.cut_short, (DEADLINE,))
        self._timer.daemon = True

    def __enter__(self) -> Exchange:
        if not self.stop._join(self):
            raise Cancelled("stopping: not sent")
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._timer.cancel()
        self.stop._leave(self)
        with self._lock:
            self._over = True
            for duplicate in self._sockets:
                duplicate.close()
            self._sockets = []

    def guard(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down when the exchange is cut short (now, if it is)."""
        try:
            descriptor = os.dup(sock.fileno())
        except OSError:
            return  # closed already: nothing in flight on it
        duplicate = socket.socket(fileno=descriptor)
        with self._lock:
            if self.cut is not None:
                _shut(duplicate)
            if self.cut is not None or self._over:
                duplicate.close()
                return
            self._sockets.append(duplicate)

    def cut_short(self, why: str) -> None:
        # Under the lock: a descriptor is never shut after ``__exit__`` closed it (and
        # the number perhaps went to another socket).
        with self._lock:
            if self._over or self.cut is not None:
                return
            self.cut = why
            for duplicate in self._sockets:
                _shut(duplicate)

    def check(self) -> None:
        """Raise what cutting the exchange short means, if it was; else nothing."""
        if self.cut == STOPPED:
            raise Cancelled("stopping: the delivery was cut short") from None
        if self.cut == DEADLINE:
            raise DeliveryError(DeliveryFailure.TRANSIENT, f"no answer within {self.seconds:g}s") from None


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected (yet, or any more): nothing in flight to wake


__all__ = ["Cancelled", "Exchange", "Stop"]
