"""Failed sign-ins per client address, so the page's token cannot be guessed at speed.

A sliding window: an address that failed ``limit`` times within ``window`` seconds is
refused (429) until the oldest of those failures is ``window`` old; a right token
clears its record. Only failures are kept, at most ``max_clients`` addresses, the
least recently failing dropped first, so a flood of addresses costs bounded memory.

The login route is a coroutine on the server's event loop, so calls never overlap.
Behind a reverse proxy every client has the proxy's address: the limit then holds for
all of them together, which still bounds guessing.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_CLIENTS = 10_000


class FailedAttempts:
    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again; None when it may now."""
        failures = self._recent(client)
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window - self._clock()))

    def failed(self, client: str) -> None:
        failures = self._recent(client)
        failures.append(self._clock())
        while len(failures) > self.limit:
            failures.popleft()
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures
