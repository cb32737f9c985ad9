"""A response's Content-Encoding undone piece by piece, each step's output bounded.

httpx decodes each network chunk whole: 64 KB of brotli can become gigabytes
in one call, before a size limit sees any of it. Here every decompression
step yields at most :data:`PIECE` bytes, so the caller (fetch.py) meets a
bomb as a stream of small pieces and stops it at its limit: a response costs
that limit plus a piece, whatever it would inflate to.

Codings: ``gzip`` (``x-gzip``), ``deflate`` (zlib-wrapped, or raw as some
servers send it) and ``br``, stacked in any order (``gzip, br`` is undone br
first). Other values, ``identity`` included, pass through unchanged, as httpx
does. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Protocol

import brotli

PIECE = 1 << 16  # the most output one decompression step produces
#: What to send as Accept-Encoding: exactly the codings :class:`Decoder` undoes.
ACCEPT_ENCODING = "gzip, deflate, br"


class DecodingError(Exception):
    """The body is not valid data of its coding; ``str()`` says why in a few words."""


class _Layer(Protocol):
    name: str

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finished(self) -> bool: ...


class _Zlib:
    """gzip or deflate through zlib's ``max_length``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._head = b""
        gzip = zlib.MAX_WBITS | 16
        self._inflate = zlib.decompressobj(gzip) if name == "gzip" else None

    def feed(self, data: bytes) -> Iterator[bytes]:
        inflate = self._inflate
        if inflate is None:  # deflate: the first two bytes tell zlib-wrapped from raw
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            inflate = self._inflate = zlib.decompressobj(
                zlib.MAX_WBITS if _zlib_header(data) else -zlib.MAX_WBITS
            )
        while True:
            out = inflate.decompress(data, PIECE)
            if out:
                yield out
            data = inflate.unconsumed_tail
            if not data and len(out) < PIECE:  # input used up, no output pending
                return

    def finished(self) -> bool:
        return self._inflate is not None and self._inflate.eof


def _zlib_header(head: bytes) -> bool:
    """RFC 1950: method 8 and a header checksum; raw deflate never starts so."""
    return head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


class _Brotli:
    """br through brotli's ``output_buffer_limit`` (brotli >= 1.2)."""

    name = "br"

    def __init__(self) -> None:
        self._brotli = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        # Output may be pending even when can_accept_more_data() says True (the
        # input was all taken in): drain until a step produces nothing.
        out = self._brotli.process(data, output_buffer_limit=PIECE)
        while out:
            yield out
            if self._brotli.is_finished():
                return
            out = self._brotli.process(b"", output_buffer_limit=PIECE)

    def finished(self) -> bool:
        return bool(self._brotli.is_finished())


_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br"}


def _layer(coding: str) -> _Layer:
    return _Brotli() if coding == "br" else _Zlib(coding)


class Decoder:
    """Undoes the Content-Encoding values ``codings`` (in the order the header
    lists them); :meth:`feed` each raw chunk, then :meth:`finish`."""

    def __init__(self, codings: Iterable[str]) -> None:
        names = [_CODINGS.get(c.strip().lower()) for c in codings]
        self.layers = [_layer(n) for n in reversed(names) if n is not None]
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most about ``PIECE``
        bytes (unencoded data as it is). Raises DecodingError."""
        self._fed = self._fed or bool(data)
        return self._through(0, data)

    def finish(self) -> None:
        """Raise DecodingError if the body ended inside a compressed stream."""
        if not self._fed:
            return  # no body at all (a 204, an empty error page)
        for layer in self.layers:
            if not layer.finished():
                raise DecodingError(f"the {layer.name} body is truncated")

    def _through(self, depth: int, data: bytes) -> Iterator[bytes]:
        if depth == len(self.layers):
            if data:
                yield data
            return
        layer = self.layers[depth]
        try:
            for piece in layer.feed(data):
                yield from self._through(depth + 1, piece)
        except (zlib.error, brotli.error) as exc:
            raise DecodingError(f"cannot decode the {layer.name} body ({exc})") from None
