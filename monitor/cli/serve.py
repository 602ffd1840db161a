"""``monitor serve``: the HTTP API and the search page, on uvicorn.

``monitor run --serve`` runs the same server beside the daemon, in one process and one
event loop (``serve_beside``): the daemon owns the signals, and its stop stops both.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from monitor.cli import App, command, main
from monitor.errors import MonitorError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

# Seconds open requests get to finish after SIGTERM/SIGINT before the server stops.
GRACEFUL_SHUTDOWN = 10


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or one clear error (port taken, unknown host)."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = addresses[0][0]
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
        raise MonitorError(f"cannot listen on {host}:{port}: {reason}") from None
    # ``create_server`` leaves the protocol unnamed (0), and asyncio turns Nagle's
    # algorithm off (TCP_NODELAY) only on connections of a socket that says it is TCP:
    # without it, an answer written as headers then body waits for the client's delayed
    # acknowledgement, some 40 ms a request on a kept-alive connection.
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def loopback_only(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback one, reachable from this
    machine alone (``0.0.0.0``, ``::`` and an empty host are every address)."""
    try:
        addresses = socket.getaddrinfo(host or None, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False  # ``listen`` reports it
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in addresses)


@contextmanager
def _sigterm_is_a_normal_stop() -> Iterator[None]:
    """Exit 0 after a SIGTERM shutdown.

    uvicorn handles SIGTERM gracefully, then raises the signal again under the handler
    that was there before it started; with Python's default that kills the process
    (status 143). A no-op handler there makes the command return normally instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@command(main, "serve")
@click.option("--host", metavar="HOST", help="Address to listen on (default: serve.host, 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Port (default: serve.port, 8080).",
)
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the HTTP API, the Atom feed of mentions and the search page.

    Stops cleanly on SIGTERM or Ctrl-C, letting open requests finish. When api_token
    (MONITOR_API_TOKEN) is set, /api/, /feeds/ and the page need it.

    \b
    Example:
      monitor serve --host 0.0.0.0 --port 8080
      curl -s 'localhost:8080/api/articles?q=Almaty' | jq .
    """
    server, sock = api_server(app, host, port, own_signals=True)
    try:
        with _sigterm_is_a_normal_stop():
            server.run(sockets=[sock])
    finally:
        sock.close()
    log.info("stopped")


def api_server(
    app: App, host: str | None, port: int | None, *, own_signals: bool
) -> tuple[uvicorn.Server, socket.socket]:
    """The API's server and its listening socket (bound now: a taken port fails here).

    ``host`` and ``port`` default to ``serve.host`` and ``serve.port``. With
    ``own_signals`` false the server leaves SIGTERM and SIGINT to whoever else handles
    them, and stops when its ``should_exit`` is set.
    """
    # Imported here: FastAPI and uvicorn would slow every other command's start.
    import uvicorn

    from monitor.api import create_app

    settings = app.settings
    host = host or settings.serve.host
    port = settings.serve.port if port is None else port
    if settings.api_token is None and not loopback_only(host):
        log.warning(
            "NO API TOKEN: listening on %s lets anyone who reaches it read the archive, the feeds and their "
            "errors; set api_token (MONITOR_API_TOKEN) or listen on 127.0.0.1",
            host or "every address",
        )
    api = create_app(settings, app.engine)
    sock = listen(host, port)
    config = uvicorn.Config(
        api,
        log_config=None,  # keep the logging the command set up
        log_level=settings.log_level.lower(),
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    log.info("serving on http://%s:%d (stop with Ctrl-C or SIGTERM)", shown, bound_port)
    if own_signals:
        return uvicorn.Server(config), sock

    class LeavesSignals(uvicorn.Server):
        # uvicorn replaces the SIGTERM/SIGINT handlers while it serves, and raises the
        # signal again when it is done; beside the daemon, the daemon handles them.
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return LeavesSignals(config), sock


async def serve_beside(
    server: uvicorn.Server, sock: socket.socket, daemon: Callable[[asyncio.Event], Awaitable[None]]
) -> None:
    """Serve the API while ``daemon(stop)`` runs; whichever ends first ends the other.

    The daemon sets ``stop`` on SIGTERM/SIGINT: the server then stops taking requests
    and lets open ones finish, while the daemon finishes its polls, both at once. A
    server that cannot start (its app's startup failed) stops the daemon and is an error.
    """
    stop = asyncio.Event()
    ended_by_itself = False

    def api_ended(_task: asyncio.Task[None]) -> None:
        nonlocal ended_by_itself
        # The daemon sets ``stop`` before anything asks the server to exit.
        ended_by_itself = not stop.is_set()
        stop.set()

    api = asyncio.create_task(server.serve(sockets=[sock]), name="api")
    api.add_done_callback(api_ended)

    async def stop_api() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_api(), name="api-stop")
    try:
        await daemon(stop)
    finally:
        server.should_exit = True
        await asyncio.wait([api])
        stopper.cancel()
        sock.close()
    if ended_by_itself:
        error = None if api.cancelled() else api.exception()
        raise MonitorError(f"the HTTP API stopped: {error or 'it did not start (the log above says why)'}")
