"""Safe decoding of users' images into the network's input.

One function, :func:`load_image`, is used by the CLI and the dashboard: it opens a path, bytes or
a binary file object and returns an upright RGB image, or raises
:class:`~catdnn.errors.ImageError` with one message naming the file and the problem.
:func:`prepare_image` (the network's 64×64 input) and :func:`preview_image` (a small copy to show)
decode the same way, at reduced scale; :func:`prepare_and_preview` gives both from one decode.

What is decoded, and how:

* **Formats**: only those in :data:`ALLOWED_FORMATS` (JPEG, PNG, WebP, BMP, GIF). The format is
  recognised from the file's first bytes (never from its name), and only that one Pillow plugin
  is run on it: no other decoder ever sees a user's bytes. SVG, TIFF, HEIC, PDF, HTML, text, ...
  are refused with a message saying what the file is.
* **Decompression bombs** are refused from the header, before any pixel is decoded: an image
  claiming more than :data:`MAX_PIXELS` pixels or a side longer than :data:`MAX_SIDE` (a
  100,000,000×1 "photo" is an attack, not a panorama), and an image whose header claims more pixels than
  its file could possibly hold (a PNG beyond deflate's 1032:1 limit, an uncompressed BMP shorter
  than its pixel rows, a GIF beyond LZW's limit): a few-hundred-byte file claiming 9000×9000
  pixels is refused without allocating the 240 MB it asks for. A JPEG with more scans than a photo
  has (:data:`MAX_JPEG_SCANS`, counted by :func:`jpeg_scans`) is refused too: each scan is another
  pass over the whole image, so a 477 KB file of 2 000 scans took 14.6 s of CPU.
* **Modes**: every mode becomes RGB in a defined way: transparency (alpha channel, or a
  transparent palette entry or colour key) is composited on white; 16-bit and 32-bit integer
  greyscale is scaled to 8 bits (÷257); float greyscale in [0, 1] is scaled by 255, otherwise
  clipped to [0, 255]; 1-bit, greyscale, palette and CMYK use Pillow's conversions.
* **EXIF orientation** is applied (a broken EXIF block is ignored rather than refused);
  **animations** give their first frame.
* Truncated or corrupt data is refused: Pillow's ``LOAD_TRUNCATED_IMAGES`` is left False and no
  Pillow global is ever changed.

Memory (issue 12): an accepted image is decoded once, at full size (JPEGs at reduced scale, with
Pillow's ``draft``); :func:`prepare_image` and :func:`preview_image` then convert it to RGB and
box-average it down (``reduce``, a factor per axis, so extreme shapes shrink too) tile by tile, so
no full-size RGB, RGBA or float copy ever exists next to the decoded pixels. A 100-megapixel RGBA
PNG costs about 420 MB (the decoded pixels: Pillow keeps 4 bytes a pixel), a palette or greyscale
one about 110 MB. Only :data:`DECODE_SLOTS` images are decoded at a time in the whole process (a
semaphore), so many users uploading at once cannot multiply that peak. An allocation that fails
anyway is reported as an :class:`ImageError` like any other problem, never as a ``MemoryError``.
:func:`load_image` returns the full-size RGB image, which must exist whole: it is for scripts, not
for users' uploads.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import struct
import threading
import warnings
from pathlib import Path

import numpy as np

from .data import IMAGE_SHAPE, flatten_images
from .errors import ImageError

#: Pillow format names that are decoded; anything else is refused. (MPO is the multi-picture JPEG
#: some cameras write; Pillow opens it through its JPEG plugin.)
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF")
#: Largest image accepted, in pixels, checked from the header before decoding (100 MP: a 64 MP
#: camera photo passes). Decoding one this large takes a few hundred MB for a moment.
MAX_PIXELS = 100_000_000
#: Longest side accepted, in pixels (the largest JPEG or GIF there can be). The widest panorama
#: a camera stitches is far below it; 100,000,000×1 is not a photo: refused from the header.
MAX_SIDE = 65_535
#: Most memory (bytes) a decoder may need for one image, estimated from the header: a 100 MP
#: photo in PNG or JPEG fits. Beyond it, what a format's decoder needs is refused up front: a
#: WebP image (Pillow's WebP decoder holds 16 bytes a pixel: over 37.5 MP) and a JPEG whose DCT
#: coefficients (2 bytes each, all kept for a progressive file) exceed it (a CMYK one over 75 MP).
DECODE_BUDGET = 600_000_000
_WEBP_BYTES_PER_PIXEL = 16
#: Most scans a JPEG may have, and most scans × pixels. Every scan is another pass of the decoder
#: over the whole image (about 0.7 ms of CPU per megapixel per scan, measured): a 10 000×10 000
#: progressive JPEG repeating an AC scan 2 000 times (477 KB) took 14.6 s to decode. A real photo has
#: 1 scan (baseline), 3 (one per colour) or about 10 (libjpeg's progressive script), so a 100 MP
#: progressive photo (1e9) passes, and no JPEG costs more than about 1.5 s.
MAX_JPEG_SCANS = 64
MAX_JPEG_SCAN_PIXELS = 2_000_000_000
#: Most segments (markers with a length: APPn, DQT, DHT, SOS, comments, ...) a JPEG may have, counted
#: before Pillow parses them one by one in Python: 1 000 000 empty comments (4 MB) took 2 s of CPU to
#: open. A photo has a few dozen (an ICC profile split in 64 KB pieces adds one a piece). Before the
#: first scan, markers without a length and fill or stray bytes count too: Pillow's parser takes
#: them one byte at a time (4 MB of fill bytes there took 2 s).
MAX_JPEG_SEGMENTS = 1_000
#: A PNG may have PNG_MIN_CHUNKS chunks, or one per PNG_CHUNK_BYTES of file if that is more: encoders
#: write the pixels in chunks of 8 KB (libpng) to 64 KB (Pillow), and a few small ones besides.
PNG_MIN_CHUNKS = 1_000
PNG_CHUNK_BYTES = 1_024
#: Largest file read at all (the dashboard's upload limit is lower still).
MAX_FILE_BYTES = 200 * 1024**2
IMAGE_SIZE = IMAGE_SHAPE[0]  # the network's images are 64×64 RGB (catdnn.data.IMAGE_SHAPE)
#: JPEGs are decoded at a reduced scale (DCT scaling) no smaller than this before resizing.
DRAFT_SIZE = 4 * IMAGE_SIZE

#: How many images are decoded at the same time in the whole process; more callers wait their turn
#: (at most DECODE_WAIT_SECONDS, then they are told to try again).
DECODE_SLOTS = 2
DECODE_WAIT_SECONDS = 60.0
_DECODING = threading.BoundedSemaphore(DECODE_SLOTS)
#: Pixels converted at a time (RGBA -> RGB on white, palette -> RGB, 16-bit -> 8-bit, ...): a tile
#: of 1 M pixels needs a few MB, whatever the size of the image.
_TILE_PIXELS = 1 << 20

_ACCEPTED = "JPEG, PNG, WebP, BMP or GIF"
# Deflate (PNG) cannot expand data more than 1032:1; LZW (GIF) with codes of at least 3 bits and
# strings of at most 4096 bytes cannot expand it more than 4096 * 8 / 3 ≈ 10923:1.
_DEFLATE_MAX_RATIO = 1032
_LZW_MAX_RATIO = 10923

# Formats recognised only to name them in the refusal: (magic at offset 0, description).
_OTHER_FORMATS = (
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"\x00\x00\x02\x00", "a CUR cursor"),
    (b"8BPS", "a Photoshop (PSD) document"),
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript document"),
    (b"\xc5\xd0\xd3\xc6", "an EPS document"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"qoif", "a QOI image"),
    (b"DDS ", "a DDS texture"),
    (b"icns", "a macOS icon (ICNS)"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 data file"),
    (b"P1", "a PBM/PGM/PPM image"),
    (b"P2", "a PBM/PGM/PPM image"),
    (b"P3", "a PBM/PGM/PPM image"),
    (b"P4", "a PBM/PGM/PPM image"),
    (b"P5", "a PBM/PGM/PPM image"),
    (b"P6", "a PBM/PGM/PPM image"),
)


# --------------------------------------------------------------------------- reading & sniffing
def _read(source, name: str) -> bytes:
    """The file's bytes, at most MAX_FILE_BYTES of them."""
    too_big = f"{name}: the file is too large (over {MAX_FILE_BYTES // 2**20} MB)"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            if not path.exists():
                raise ImageError(f"{name}: no such file")
            if path.is_dir():
                raise ImageError(f"{name}: is a folder, not an image")
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ImageError(too_big)
            with open(path, "rb") as f:
                data = _read_at_most(f, size)
        except OSError as exc:
            raise ImageError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    elif hasattr(source, "getvalue") or hasattr(source, "read"):
        try:
            if hasattr(source, "getvalue"):  # io.BytesIO, Streamlit's UploadedFile: the whole content
                data = source.getvalue()
            else:
                data = _read_at_most(source)
        except (OSError, ValueError) as exc:
            raise ImageError(f"{name}: cannot read the file ({_why(exc)})") from None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageError(f"{name}: the file was opened as text, not binary")
        data = bytes(data)
    else:
        raise ImageError(f"{name}: expected a file path, bytes or a binary file, got {type(source).__name__}")
    if not data:
        raise ImageError(f"{name}: the file is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(too_big)
    return data


def _read_at_most(f, size: int | None = None):
    """At most MAX_FILE_BYTES + 1 bytes from a file object, from where it stands.

    ``f.read(n)`` sets ``n`` bytes aside before reading, so ``n`` is the file's size when it is
    known (``size``, or measured by seeking), never the 200 MB limit: a 97 KB file must not cost
    200 MB of address space. Anything else is read a MB at a time.
    """
    if size is None:
        try:
            if f.seekable():
                here = f.tell()
                size = f.seek(0, io.SEEK_END) - here
                f.seek(here)
        except (AttributeError, OSError, ValueError, TypeError):
            size = None
    step = 1 << 20 if size is None else min(max(size, 0), MAX_FILE_BYTES) + 1
    parts, total = [], 0
    while total <= MAX_FILE_BYTES:
        part = f.read(min(step, MAX_FILE_BYTES + 1 - total))
        if not isinstance(part, (bytes, bytearray)):
            return part  # text (the caller says so), or None
        if not part:
            break
        parts.append(part)
        total += len(part)
        step = 1 << 20  # the file was longer than its size said: the rest a MB at a time
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _sniff(data: bytes) -> str | None:
    """The allowed Pillow format these bytes start like, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _describe_other(data: bytes) -> str:
    """Why bytes that are none of the allowed formats are refused, for the message."""
    head = data[:1024]
    low = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in low or (low.startswith(b"<?xml") and b"svg" in low):
        return "SVG images are not supported; export it as PNG or JPEG first"
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in low[:256]:
        return f"this is an HTML page, not an image (saved from a browser?); save the picture itself as {_ACCEPTED}"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            what = "an AVIF image"
        elif brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"):
            what = "a HEIC/HEIF photo (iPhone)"
        else:
            what = "a video or MP4-family file"
        return f"{what} is not accepted; convert it to {_ACCEPTED}"
    if head[:4] == b"RIFF":
        return f"a RIFF file that is not WebP (audio or video?) is not accepted; use {_ACCEPTED}"
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return f"{what} is not accepted; use {_ACCEPTED}"
    if low.startswith((b"<?xml", b"<")):
        return f"this is an XML/markup text file, not an image; use {_ACCEPTED}"
    sample = head[:512]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"this is a text file, not an image (renamed?); use {_ACCEPTED}"
    return f"not an image file, or a damaged one (format not recognised); use {_ACCEPTED}"


# --------------------------------------------------------------------------- header checks
def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from a WebP header (VP8X, VP8 or VP8L chunk), or None if unreadable."""
    chunk = data[12:16]
    try:
        if chunk == b"VP8X":
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return w, h
        if chunk == b"VP8L":
            if data[20] != 0x2F:
                return None
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            if data[23:26] != b"\x9d\x01\x2a":
                return None
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
    except (IndexError, struct.error):
        return None
    return None


def _check_header(data: bytes, fmt: str, name: str) -> None:
    """Refuse, from the raw header, what Pillow should not even be asked to open."""
    size = None
    if fmt == "WEBP":
        size = _webp_size(data)
        if size is None:
            raise ImageError(f"{name}: damaged WebP header")
    elif fmt == "PNG" and data[12:16] == b"IHDR":
        size = struct.unpack(">II", data[16:24]) if len(data) >= 24 else None
    elif fmt == "GIF" and len(data) >= 10:
        size = struct.unpack("<HH", data[6:10])
    elif fmt == "BMP" and len(data) >= 26:
        if int.from_bytes(data[14:18], "little") == 12:
            size = struct.unpack("<HH", data[18:22])
        else:
            w, h = struct.unpack("<ii", data[18:26])
            size = (w, abs(h))
    if size is not None:
        _check_pixels(*size, name)
        if fmt == "WEBP":
            _check_budget(size[0] * size[1] * _WEBP_BYTES_PER_PIXEL, "WebP", size, name)
    if fmt == "PNG":
        _check_png_chunks(data, name)


def _check_png_chunks(data: bytes, name: str) -> None:
    """Refuse a PNG of more chunks than its size explains (:data:`PNG_CHUNK_BYTES`): Pillow handles
    each in Python, so 300 000 empty chunks (3.6 MB, a few KB zipped) took 1 s of CPU. The walk stops
    at the limit, so it costs at most that many steps."""
    limit = max(PNG_MIN_CHUNKS, len(data) // PNG_CHUNK_BYTES)
    pos, n, chunks = 8, len(data), 0
    while pos + 8 <= n:
        chunks += 1
        if chunks > limit:
            raise ImageError(f"{name}: this PNG has more than {limit:,} chunks for its {n:,} bytes (a photo's "
                             f"chunks hold {PNG_CHUNK_BYTES:,} bytes or more): it is damaged or built to slow the "
                             "server down")
        if data[pos + 4:pos + 8] == b"IEND":
            return
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")  # length, type, data, CRC


#: A JPEG marker that ends a scan's entropy-coded data or starts a segment: FF then a byte that is not
#: a stuffed 00, a fill byte FF (the last FF of a run is the marker's), TEM (01) or a restart marker
#: (D0-D7). TEM and RSTn have no length and libjpeg steps over them (inside or between scans), so
#: the search skips them in C: a scan of thousands of restart intervals costs no Python loop.
_SEGMENT = re.compile(rb"\xff[^\x00\x01\xd0-\xd7\xff]")
#: Any marker, parameterless ones included: before the first scan Pillow reads the headers one byte
#: at a time in Python, so there every marker and every fill or stray byte is counted.
_ANY_MARKER = re.compile(rb"\xff[^\x00\xff]")
_SOS, _EOI, _SOI = 0xDA, 0xD9, 0xD8


def jpeg_scans(data: bytes, name: str = "image") -> int:
    """The number of scans (SOS markers, ``FF DA``) of a JPEG's first image, counted without decoding.

    Walks the stream as libjpeg reads it: after SOI, the next marker is the next ``FF`` followed by a
    byte other than ``00`` (a stuffed ``FF`` in entropy-coded data) or ``FF`` (a fill byte), whatever
    lies between (a scan's entropy-coded data, or stray bytes libjpeg skips too). TEM (``FF 01``)
    and the restart markers (``FF D0``-``D7``) have no length and are stepped over; every other marker
    from ``C0`` to ``FE`` is a segment skipped by its length (an EXIF thumbnail inside APP1 is not
    counted). Stops at EOI (an MPO's later pictures are never decoded) or at the end of the data.
    Linear in the file's size.

    Fails closed, never under-counts: a marker no decoder accepts (a second SOI, a reserved
    ``FF 02``-``BF``) or a segment length under 2 is refused with :class:`ImageError`, as is a file
    with more than :data:`MAX_JPEG_SEGMENTS` segments (fill or stray bytes before the first scan,
    which Pillow reads one at a time, count as segments too).
    """
    n = len(data)
    pos, scans, segments = 2, 0, 0  # after SOI
    while True:
        # the headers before the first scan: every marker and skipped byte is a step of Pillow's parser
        found = (_SEGMENT if scans else _ANY_MARKER).search(data, pos)
        if found is None:
            return scans
        start, marker = found.start(), data[found.start() + 1]
        if not scans:
            segments += start - pos  # stray or fill bytes
        if marker == _EOI:
            return scans
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageError(f"{name}: this JPEG has more than {MAX_JPEG_SEGMENTS:,} segments or stray bytes "
                             "between them (a photo has a few dozen): it is damaged or built to slow the server down")
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            pos = start + 2
            continue
        if marker < 0xC0 or marker == _SOI:
            raise ImageError(f"{name}: this JPEG holds a marker FF {marker:02X} at byte {start:,} that no JPEG "
                             "decoder accepts: it is damaged")
        if start + 4 > n:  # the data ends inside the marker: so does the decoder
            return scans
        length = int.from_bytes(data[start + 2:start + 4], "big")
        if length < 2:
            raise ImageError(f"{name}: this JPEG's segment FF {marker:02X} at byte {start:,} has an impossible "
                             f"length ({length}): it is damaged")
        if marker == _SOS:
            scans += 1
        pos = start + 2 + length  # then, after an SOS, its entropy-coded data up to the next marker


def _check_scans(scans: int, w: int, h: int, name: str) -> None:
    """Refuse a JPEG with more scans than a photo has (a scan bomb: see MAX_JPEG_SCANS)."""
    if scans > MAX_JPEG_SCANS or scans * w * h > MAX_JPEG_SCAN_PIXELS:
        raise ImageError(
            f"{name}: this {w:,}×{h:,} JPEG has {scans:,} scans, each another pass over the whole image "
            f"(a photo has at most about 10; the limit is {MAX_JPEG_SCANS}, and "
            f"{MAX_JPEG_SCAN_PIXELS / 1e9:g} billion pixels in all passes); save it again as an ordinary JPEG"
        )


def _check_budget(need: int, what: str, size, name: str) -> None:
    """Refuse an image whose decoder would need more than DECODE_BUDGET bytes."""
    if need > DECODE_BUDGET:
        w, h = size
        raise ImageError(
            f"{name}: this {w:,}×{h:,} {what} image would take {need / 1e6:,.0f} MB to decode (the limit is "
            f"{DECODE_BUDGET / 1e6:,.0f} MB); save it as a smaller JPEG or PNG"
        )


def _jpeg_coefficients(img) -> int:
    """Bytes of the DCT coefficients of a JPEG (what libjpeg holds for a progressive or multi-scan
    file, whatever the draft scale): 64 coefficients of 2 bytes per 8×8 block of each component."""
    w, h = img.size
    layers = getattr(img, "layer", None) or [(0, 1, 1, 0)] * 3
    h_max = max(max(layer[1], 1) for layer in layers)
    v_max = max(max(layer[2], 1) for layer in layers)
    blocks = 0
    for _, hs, vs, _ in layers:
        cols = -(-w * max(hs, 1) // h_max)
        rows = -(-h * max(vs, 1) // v_max)
        blocks += -(-cols // 8) * -(-rows // 8)
    return blocks * 128


def _check_pixels(w: int, h: int, name: str) -> None:
    if w < 1 or h < 1:
        raise ImageError(f"{name}: the image has no pixels ({w}×{h})")
    if max(w, h) > MAX_SIDE:
        raise ImageError(
            f"{name}: the image is {w:,}×{h:,} pixels: a side longer than {MAX_SIDE:,} pixels is not a photo "
            "(a decompression bomb, or a strip to cut into pieces)"
        )
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name}: the image is too large: {w}×{h} = {w * h:,} pixels (the limit is {MAX_PIXELS:,}); "
            "a decompression bomb, or a photo to shrink first"
        )


def _check_plausible(img, data: bytes, name: str) -> None:
    """Refuse images whose header claims more pixels than the file could hold (bombs, truncation)."""
    w, h = img.size
    n = len(data)
    fmt = img.format
    impossible = None
    if fmt == "PNG":  # IHDR: width, height, bit depth, colour type at bytes 16..25
        depth, colour = data[24], data[25]
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
        raw = h * (1 + (w * depth * channels + 7) // 8)  # each row: a filter byte + packed pixels
        if raw > _DEFLATE_MAX_RATIO * n:
            impossible = "PNG"
    elif fmt == "BMP":
        header = int.from_bytes(data[14:18], "little")
        if header == 12:  # OS/2 BITMAPCOREHEADER: no compression field
            bpp, compression = int.from_bytes(data[24:26], "little"), 0
        else:
            bpp, compression = int.from_bytes(data[28:30], "little"), int.from_bytes(data[30:34], "little")
        stride = ((w * max(bpp, 1) + 31) // 32) * 4
        if compression in (0, 3, 6) and stride * h > n:  # uncompressed rows must all be in the file
            raise ImageError(
                f"{name}: the BMP header claims {w}×{h} pixels ({stride * h:,} bytes of rows) but the "
                f"file has only {n:,} bytes: it is truncated or damaged"
            )
    elif fmt == "GIF":
        if w * h > _LZW_MAX_RATIO * n:
            impossible = "GIF"
    if impossible:
        raise ImageError(
            f"{name}: the {impossible} header claims {w}×{h} pixels, more than a {n:,}-byte file can "
            "hold: a decompression bomb, or a truncated file"
        )


def _open(data: bytes, name: str):
    """Open (header only) the allowed image these bytes hold; refuse anything else."""
    from PIL import Image

    fmt = _sniff(data)
    if fmt is None:
        raise ImageError(f"{name}: {_describe_other(data)}")
    _check_header(data, fmt, name)
    scans = jpeg_scans(data, name) if fmt == "JPEG" else 0  # before Pillow reads the segments one by one
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: our own, lower limit below
            img = Image.open(io.BytesIO(data), formats=(fmt,))
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: the image is too large (over {MAX_PIXELS:,} pixels)") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{name}: looks like {fmt} but its header is damaged") from None
    except Exception as exc:
        raise ImageError(f"{name}: cannot read the {fmt} header ({_why(exc)})") from None
    if img.format not in ALLOWED_FORMATS:  # pragma: no cover - the sniffed plugin gave another format
        raise ImageError(f"{name}: {img.format} images are not accepted; use {_ACCEPTED}")
    try:
        w, h = img.size
        _check_pixels(w, h, name)
        _check_plausible(img, data, name)
        if img.format in ("JPEG", "MPO"):
            _check_budget(_jpeg_coefficients(img), "JPEG", (w, h), name)
            _check_scans(scans, w, h, name)
    except ImageError:
        img.close()
        raise
    return img


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text and len(text) < 200 else type(exc).__name__


# --------------------------------------------------------------------------- modes
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


def _boxes(width: int, height: int, fx: int = 1, fy: int = 1):
    """Tiles ``(left, top, right, bottom)`` covering the image, about ``_TILE_PIXELS`` each, whose
    width and height are multiples of ``fx`` and ``fy`` (so that reducing tile by tile gives the
    same pixels as reducing the whole image)."""
    rows = fy * max(1, _TILE_PIXELS // (width * fy))
    cols = fx * max(1, _TILE_PIXELS // (rows * fx))
    for top in range(0, height, rows):
        for left in range(0, width, cols):
            yield left, top, min(width, left + cols), min(height, top + rows)


def _tile_max(img, finite: bool = False) -> float:
    """The largest pixel value of a one-channel image (NaN as 0 and ±inf as 255 if ``finite``),
    computed tile by tile (no full-size array)."""
    top = 0.0
    for box in _boxes(*img.size):
        a = np.asarray(img.crop(box))
        if finite:
            a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        top = max(top, float(a.max(initial=0)))
    return top


def _rgb_converter(img):
    """A function turning any crop of ``img`` into RGB, the same way for every crop (see the module
    docstring). Scalings that depend on the whole image (32-bit and float greyscale) are decided
    here, once."""
    from PIL import Image

    mode = img.mode

    def grey(a):
        return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L").convert("RGB")

    if mode in _WIDE_GREY:
        scale = 257.0 if mode.startswith("I;16") or _tile_max(img) > 255 else 1.0
        return lambda tile: grey(np.asarray(tile, dtype=np.float64) / scale)
    if mode == "F":
        scale = 255.0 if _tile_max(img, finite=True) <= 1.0 else 1.0
        return lambda tile: grey(np.nan_to_num(np.asarray(tile, dtype=np.float64), nan=0.0, posinf=255.0,
                                               neginf=0.0) * scale)
    if mode in _ALPHA or ("transparency" in img.info and mode in ("1", "L", "P", "RGB")):

        def on_white(tile):  # rgb·α + white·(1 − α); a transparent palette entry or colour key too
            rgba = tile if tile.mode == "RGBA" else tile.convert("RGBA")
            out = Image.new("RGB", rgba.size, (255, 255, 255))
            out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
            return out

        return on_white
    return lambda tile: tile.convert("RGB")


def _reduce_to_rgb(img, fx: int = 1, fy: int = 1, copy: bool = True):
    """``img`` in RGB, box-averaged down by ``fx`` across and ``fy`` down (rounding the size up).

    Converted and reduced tile by tile: besides ``img``, only the result and one tile's worth of
    pixels exist at once, so a 100-megapixel RGBA or palette image never gets a full-size copy
    (greyscale and RGB are reduced directly, then converted). With ``copy=False``, an RGB image
    that needs no change is returned without copying its pixels.
    """
    from PIL import Image

    width, height = img.size
    if (fx, fy) == (1, 1) and img.mode == "RGB" and "transparency" not in img.info:
        img.load()
        return img.copy() if copy else img._new(img.im)
    reduce = (fx, fy) != (1, 1)
    if reduce and img.mode in ("L", "RGB") and "transparency" not in img.info:
        return img.reduce((fx, fy)).convert("RGB")  # Pillow reduces these without a full-size copy
    convert = _rgb_converter(img)
    # Pillow averages RGBA and LA with premultiplied alpha (on a copy of what it reduces: a tile
    # here), so they are reduced first, then composited; the others are converted, then reduced.
    reduce_first = img.mode in ("RGBA", "LA")
    out = Image.new("RGB", (-(-width // fx), -(-height // fy)))
    for box in _boxes(width, height, fx, fy):
        tile = img.crop(box)
        if reduce and reduce_first:
            tile = tile.reduce((fx, fy))
        tile = convert(tile)
        if reduce and not reduce_first:
            tile = tile.reduce((fx, fy))
        out.paste(tile, (box[0] // fx, box[1] // fy))
    return out


def to_rgb(img):
    """Any Pillow mode to RGB, in a defined way (see the module docstring); returns a new image."""
    return _reduce_to_rgb(img)


_to_rgb = to_rgb  # the name older code used

_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
              7: "TRANSVERSE", 8: "ROTATE_90"}


def _orientation(img) -> int:
    """The EXIF orientation (1 to 8); an unreadable EXIF block counts as 1 (the pixels are fine)."""
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block must not cost the user their photo
        return 1
    return value if value in _TRANSPOSE else 1


# --------------------------------------------------------------------------- decoding
@contextlib.contextmanager
def _decode_slot(name: str):
    """Hold one of the process's DECODE_SLOTS while decoding (see the module docstring)."""
    if not _DECODING.acquire(timeout=DECODE_WAIT_SECONDS):
        raise ImageError(f"{name}: too many images are being decoded at the moment; try again in a minute")
    try:
        yield
    finally:
        _DECODING.release()


def _decode(source, name, *fits):
    """Decode a user's image once; return one upright RGB image per ``fit`` and the upright size in
    the file.

    ``fit(width, height)``, given the upright size in the file, returns ``(final, keep, draft)``:
    the size to resize to (Lanczos), the size below which no side is box-averaged before that
    (one factor per axis), and the side below which a JPEG is not DCT-scaled (the first fit's
    draft is the one used: the others are made from the same pixels). Without a fit the full-size
    image is returned.
    """
    from PIL import Image

    name = name or (str(source) if isinstance(source, (str, Path)) else "image")
    size = None
    img = None
    try:
        data = _read(source, name)
        with _decode_slot(name), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = _open(data, name)
            del data  # the decoder keeps what it needs
            img.seek(0)  # the first frame of an animation
            width, height = size = img.size  # the header's, before any draft scaling
            jpeg = img.format in ("JPEG", "MPO")
            if not jpeg:  # a PNG may keep its EXIF block after the pixels
                img.load()
            orientation = _orientation(img)  # a JPEG's is in its header: known before decoding
            if orientation >= 5:  # a quarter turn: the file's width is the upright height
                size = (height, width)
            plans = [fit(*size) for fit in fits] or [(None, None, None)]
            draft = plans[0][2]
            if jpeg and draft is not None:  # DCT scaling, no side below ``draft`` (whichever way the photo turns)
                img.draft("RGB", (draft, draft))
            img.load()
            _check_pixels(*img.size, name)
            outs = []
            for final, keep, _ in plans:
                fx = fy = 1
                if keep is not None:
                    keep_w, keep_h = keep[::-1] if orientation >= 5 else keep
                    fx, fy = max(1, img.width // keep_w), max(1, img.height // keep_h)
                out = _reduce_to_rgb(img, fx, fy, copy=False)
                if final is not None:  # resized as stored, then turned: a turn moves pixels exactly
                    final = final[::-1] if orientation >= 5 else final
                    # the reduced image's last row and column may stand for fewer than fy, fx pixels:
                    # the box is the decoded image's extent, exactly (as Pillow's reducing_gap does)
                    box = (0, 0, img.width / fx, img.height / fy)
                    if out.size != final or (fx, fy) != (1, 1):
                        out = out.resize(final, Image.Resampling.LANCZOS, box=box)
                outs.append(out)
            img.close()
            img = None
            if orientation != 1:
                outs = [out.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation])) for out in outs]
            return outs, size
    except ImageError:
        raise
    except (Image.DecompressionBombError, MemoryError):
        shape = f" ({size[0]:,}×{size[1]:,} pixels)" if size else ""
        raise ImageError(f"{name}: the image is too large to decode with the memory available{shape}; "
                         "shrink it first") from None
    except Exception as exc:
        raise ImageError(f"{name}: the image data is damaged or truncated ({_why(exc)})") from None
    finally:
        if img is not None:
            img.close()


# --------------------------------------------------------------------------- public API
def load_image(source, name: str | None = None):
    """Open a user's image safely and return it as an RGB ``PIL.Image`` (full size, upright).

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        A file object's whole content is used (``getvalue()`` when it has one, e.g. an upload).
    name : str, optional
        Used in error messages (defaults to the path).

    Raises
    ------
    ImageError
        With a message naming the file and the problem; never any other exception for bad data.

    The full-size image is returned, so a 100-megapixel photo takes 400 MB for as long as it is
    kept (and up to twice that while it is converted): users' uploads go through
    :func:`prepare_image` and :func:`preview_image`, which never hold a full-size copy.
    """
    return _decode(source, name)[0][0]


def _input_fit(width: int, height: int):
    """The network's input: the whole picture squeezed to 64×64, reduced to no less than DRAFT_SIZE
    (4 times the final size: box averaging then Lanczos is then as good as Lanczos alone)."""
    return (IMAGE_SIZE, IMAGE_SIZE), (DRAFT_SIZE, DRAFT_SIZE), DRAFT_SIZE


def _thumbnail_size(width: int, height: int, side: int) -> tuple[int, int]:
    """The size ``Image.thumbnail((side, side))`` gives: aspect ratio kept, never enlarged."""
    if width <= side and height <= side:
        return width, height

    def round_aspect(number, key):  # as Pillow rounds: the nearer aspect ratio, at least 1
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    aspect = width / height
    if aspect >= 1:
        return side, round_aspect(side / aspect, key=lambda n: 0 if n == 0 else abs(aspect - side / n))
    return round_aspect(side * aspect, key=lambda n: abs(aspect - n / side)), side


def prepare_image(source, name: str | None = None):
    """Decode and shrink to the 64×64 RGB image the network sees; return a ``PIL.Image``.

    The whole picture is resized (not cropped), as in the course's "test with your own image".
    JPEGs are decoded at reduced scale first, which makes large photos fast; other formats are
    box-averaged down (per axis) before the mode conversion, so no full-size copy is made.
    Raises :class:`ImageError` like :func:`load_image`.
    """
    return _decode(source, name, _input_fit)[0][0]


def preview_image(source, name: str | None = None, max_side: int = 512):
    """Decode a user's image for display: upright RGB, its longer side at most ``max_side`` pixels.

    JPEGs are decoded at reduced scale (DCT scaling, no smaller than the preview on either side)
    and other formats box-averaged down before the mode conversion, so a 12-megapixel photo never
    exists at full size in RGB; the result is then resized to the size ``Image.thumbnail`` gives
    (aspect ratio kept, never enlarged).

    Returns
    -------
    (PIL.Image, (width, height))
        The preview, and the size of the upright image in the file (from its header), for a caption.

    Raises :class:`ImageError` like :func:`load_image`.
    """
    (preview,), size = _decode(source, name, _preview_fit(max_side))
    return preview, size


def _preview_fit(max_side: int):
    if int(max_side) < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    side = int(max_side)

    def fit(width, height):  # box averaging keeps twice the final size (Pillow's reducing_gap=2)
        final = _thumbnail_size(width, height, side)
        return final, (2 * final[0], 2 * final[1]), min(final)

    return fit


def prepare_and_preview(source, name: str | None = None, max_side: int = 512):
    """What :func:`prepare_image` and :func:`preview_image` give, from one decode: ``(small, preview,
    (width, height))``, for a page that shows a photo and judges it.

    ``small`` is exactly :func:`prepare_image`'s (a JPEG is DCT-scaled for it, so its preview is made
    from those pixels: never smaller than 256 pixels a side, barely enlarged for a large preview).
    Raises :class:`ImageError` like :func:`load_image`.
    """
    (small, preview), size = _decode(source, name, _input_fit, _preview_fit(max_side))
    return small, preview, size


def header_size(source, name: str | None = None) -> tuple[int, int]:
    """The size in the file's header, ``(width, height)``, after every check made before decoding
    (format, pixel and side limits, plausibility, decoder memory, JPEG scans); nothing is decoded.

    What decoding an image costs grows with its pixels, so an import adds these up before it decodes
    (:mod:`catdnn.photos`). Raises :class:`ImageError` like :func:`load_image`.
    """
    name = name or (str(source) if isinstance(source, (str, Path)) else "image")
    img = _open(_read(source, name), name)
    try:
        return img.size
    finally:
        img.close()


def image_to_input(img) -> np.ndarray:
    """A 64×64 RGB image (PIL or ndarray of shape (64, 64, 3)) -> ndarray of shape (12288, 1) in [0, 1].

    Flattened in (row, column, channel) order, like the training set.
    """
    a = np.asarray(img, dtype=np.uint8)
    if a.shape != IMAGE_SHAPE:
        raise ImageError(f"expected a 64×64 RGB image, got an array of shape {a.shape}")
    return flatten_images(a[np.newaxis])  # the training set's own flattening: (12288, 1)
