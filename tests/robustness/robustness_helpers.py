"""Plain helpers for the robustness tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import io
import struct
import zlib


def encode(img, fmt: str, **kw) -> bytes:
    """A PIL image saved to bytes in ``fmt``."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def tiny_png(width: int, height: int, colour_type: int = 2, depth: int = 8, idat: bytes | None = None) -> bytes:
    """A syntactically valid PNG whose IHDR claims ``width``×``height`` over a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
