"""Undo ``Content-Encoding`` on a copy of a body, for display only.

The caller keeps the raw bytes for the application; this module only turns a captured (possibly
cut) copy into something a person can read. It must never make things worse: a bomb is bounded,
a truncated stream yields the prefix it holds, and anything it cannot decode comes back as it was.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable
from typing import Any

__all__ = ["brotli_available", "decode_content"]


def _load_brotli() -> Any:
    # Both packages expose the same Decompressor; brotli is optional (extra ``flowscope[brotli]``).
    for name in ("brotli", "brotlicffi"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_brotli: Any = _load_brotli()

# Stacked encodings are legal, but more layers than this is not a real server.
_MAX_LAYERS = 8
# Concatenated gzip members are legal (RFC 1952); stop after this many so the loop stays bounded.
_MAX_GZIP_MEMBERS = 64
# Without a brotli output limit, feed this much input at a time and stop once the output is big.
_BROTLI_CHUNK = 1024


def brotli_available() -> bool:
    """Whether ``br`` bodies can be decoded (``brotli`` or ``brotlicffi`` is installed)."""
    return _brotli is not None


def decode_content(
    data: bytes, content_encoding: str | None, *, max_size: int
) -> tuple[bytes, bool]:
    """Decode ``data`` for display, returning ``(decoded, cut)``.

    Encodings listed in ``content_encoding`` are undone last-applied first. Decoded output never
    exceeds ``max_size`` bytes and ``cut`` says it was bounded; a body with no encoding to undo
    comes back as it is (bounding the capture is the caller's job, expansion is ours). A
    truncated stream decodes to whatever prefix it holds. On an unknown encoding or corrupt data
    the input comes back unchanged with ``cut=False``: showing the raw bytes beats raising
    inside someone else's HTTP call.
    """
    try:
        return _decode(data, content_encoding, max(0, max_size))
    except Exception:
        return data, False


def _decode(data: bytes, content_encoding: str | None, limit: int) -> tuple[bytes, bool]:
    if not content_encoding:
        return data, False
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings or len(codings) > _MAX_LAYERS:
        return data, False
    decoders: dict[str, Callable[[bytes, int], tuple[bytes, bool]]] = {
        "gzip": _gunzip,
        "x-gzip": _gunzip,
        "deflate": _inflate,
        "br": _unbrotli,
    }
    out, cut = data, False
    for coding in reversed(codings):
        decoder = decoders.get(coding)
        if decoder is None or (coding == "br" and _brotli is None):
            return data, False
        try:
            out, layer_cut = decoder(out, limit)
        except (zlib.error, ValueError, OSError):
            return data, False
        except Exception as exc:
            if _brotli is not None and isinstance(exc, _brotli.error):
                return data, False
            raise
        # A cut inner layer hands the next layer a truncated stream, so the end result is cut too.
        cut = cut or layer_cut
    return out, cut


def _run_zlib(data: bytes, wbits: int, limit: int) -> tuple[bytes, bool, bytes]:
    """One zlib stream: ``(output, cut, bytes after the end of the stream)``."""
    d = zlib.decompressobj(wbits)
    # max_length=0 means "no limit" to zlib, so ask for one byte more than allowed.
    out = d.decompress(data, limit + 1)
    if len(out) > limit:
        return out[:limit], True, b""
    return out, False, d.unused_data if d.eof else b""


def _gunzip(data: bytes, limit: int) -> tuple[bytes, bool]:
    # 32 + MAX_WBITS accepts a gzip or a zlib header: some servers label zlib data "gzip".
    out, cut, rest = _run_zlib(data, 32 + zlib.MAX_WBITS, limit)
    parts = [out]
    size = len(out)
    members = 1
    while rest[:2] == b"\x1f\x8b" and not cut and members < _MAX_GZIP_MEMBERS:
        try:
            more, cut, rest = _run_zlib(rest, 16 + zlib.MAX_WBITS, limit - size)
        except zlib.error:
            break  # trailing junk after a good member: keep what decoded
        parts.append(more)
        size += len(more)
        members += 1
    return b"".join(parts), cut


def _inflate(data: bytes, limit: int) -> tuple[bytes, bool]:
    # "deflate" means zlib-wrapped (RFC 9110), but some servers send raw deflate.
    try:
        out, cut, _ = _run_zlib(data, zlib.MAX_WBITS, limit)
    except zlib.error:
        out, cut, _ = _run_zlib(data, -zlib.MAX_WBITS, limit)
    return out, cut


def _unbrotli(data: bytes, limit: int) -> tuple[bytes, bool]:
    d = _brotli.Decompressor()
    try:
        out = d.process(data, output_buffer_limit=limit + 1)
    except TypeError:
        # Older brotli / brotlicffi: no output limit, so bound the damage by feeding small chunks.
        parts: list[bytes] = []
        size = 0
        for start in range(0, len(data), _BROTLI_CHUNK):
            chunk = d.process(data[start : start + _BROTLI_CHUNK])
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        out = b"".join(parts)
    if len(out) > limit:
        return bytes(out[:limit]), True
    return bytes(out), False
