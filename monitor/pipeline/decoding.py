"""Content-Encoding undone in bounded steps, so a compressed body cannot outgrow its cap.

The fetcher reads bodies raw and decodes them here, counting the *decoded* bytes against
``poll.max_bytes`` as they come: ``BoundedDecoder.feed`` yields decoded pieces of at most
``DECODE_PIECE`` bytes, lazily, so the caller can stop at the piece that crosses the
limit and memory stays bounded whatever the compression ratio (a gzip bomb stops after
``max_bytes``). Only ``gzip`` (and ``x-gzip``) and ``deflate`` are known; ``deflate`` is
taken zlib-wrapped, as the RFC says, or raw, as servers send it as often. Concatenated
gzip members are all decoded; trailing garbage after them is ignored. An unknown
encoding or a corrupt stream raises ``FetchError(FailureKind.PARSE_ERROR)``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

from monitor.errors import FetchError
from monitor.outcomes import FailureKind

# Decoded output is produced in pieces of at most this size.
DECODE_PIECE = 64 * 1024


def content_decoder(content_encoding: str | None) -> BoundedDecoder | None:
    """The decoder for a ``Content-Encoding`` header's value; None when there is nothing to undo."""
    named = (part.strip().lower() for part in (content_encoding or "").split(","))
    encodings = [e for e in named if e and e != "identity"]
    return BoundedDecoder(encodings) if encodings else None


class BoundedDecoder:
    """Undoes Content-Encoding piece by piece, never producing more than asked for."""

    def __init__(self, encodings: list[str]) -> None:
        unknown = [e for e in encodings if e not in ("gzip", "x-gzip", "deflate")]
        if unknown:
            raise FetchError(FailureKind.PARSE_ERROR, f"unsupported Content-Encoding {unknown[0]}")
        # Applied in reverse order of how the sender applied them.
        self._stages = [_ZlibStage(e) for e in reversed(encodings)]

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data``, lazily: the caller may stop at any piece."""
        pieces: Iterator[bytes] = iter((data,))
        for stage in self._stages:
            pieces = _through(stage, pieces)
        return pieces


def _through(stage: _ZlibStage, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from stage.feed(piece)


class _ZlibStage:
    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._object: Any = None

    def _new_object(self, data: bytes) -> Any:
        if not self._deflate:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is zlib-wrapped per the RFC, raw deflate in practice as often.
        header = data[:2]
        looks_zlib = len(header) == 2 and header[0] & 0x0F == 8 and int.from_bytes(header) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if looks_zlib else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        # A full piece may leave output pending inside zlib even when all input was
        # consumed, so go on until a call returns less than a full piece.
        more = bool(data)
        while more:
            if self._object is None:
                self._object = self._new_object(data)
            try:
                piece = self._object.decompress(data, DECODE_PIECE)
            except zlib.error as exc:
                raise FetchError(FailureKind.PARSE_ERROR, f"corrupt compressed body: {exc}") from None
            if piece:
                yield piece
            data = self._object.unconsumed_tail
            more = bool(data) or len(piece) == DECODE_PIECE
            if self._object.eof:
                # Concatenated gzip members; trailing garbage after them is ignored.
                rest = self._object.unused_data
                self._object = None
                data = rest if rest[:2] == b"\x1f\x8b" else b""
                more = bool(data)


__all__ = ["DECODE_PIECE", "BoundedDecoder", "content_decoder"]
