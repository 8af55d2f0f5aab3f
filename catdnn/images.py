"""Safe decoding of users' images into the network's input.

One function, :func:`load_image`, is used by the CLI and the dashboard: it opens a path, bytes or
a binary file object and returns an upright RGB image, or raises
:class:`~catdnn.errors.ImageError` with one message naming the file and the problem.
:func:`prepare_image` (the network's 64×64 input) and :func:`preview_image` (a small copy to show)
decode the same way, at reduced scale.

What is decoded, and how:

* **Formats**: only those in :data:`ALLOWED_FORMATS` (JPEG, PNG, WebP, BMP, GIF). The format is
  recognised from the file's first bytes (never from its name), and only that one Pillow plugin
  is run on it: no other decoder ever sees a user's bytes. SVG, TIFF, HEIC, PDF, HTML, text, ...
  are refused with a message saying what the file is.
* **Decompression bombs** are refused from the header, before any pixel is decoded: an image
  claiming more than :data:`MAX_PIXELS` pixels, and an image whose header claims more pixels than
  its file could possibly hold (a PNG beyond deflate's 1032:1 limit, an uncompressed BMP shorter
  than its pixel rows, a GIF beyond LZW's limit): a few-hundred-byte file claiming 9000×9000
  pixels is refused without allocating the 240 MB it asks for.
* **Modes**: every mode becomes RGB in a defined way: transparency (alpha channel, or a
  transparent palette entry or colour key) is composited on white; 16-bit and 32-bit integer
  greyscale is scaled to 8 bits (÷257); float greyscale in [0, 1] is scaled by 255, otherwise
  clipped to [0, 255]; 1-bit, greyscale, palette and CMYK use Pillow's conversions.
* **EXIF orientation** is applied (a broken EXIF block is ignored rather than refused);
  **animations** give their first frame.
* Truncated or corrupt data is refused: Pillow's ``LOAD_TRUNCATED_IMAGES`` is left False and no
  Pillow global is ever changed.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np

from .errors import ImageError

#: Pillow format names that are decoded; anything else is refused. (MPO is the multi-picture JPEG
#: some cameras write; Pillow opens it through its JPEG plugin.)
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF")
#: Largest image accepted, in pixels, checked from the header before decoding (100 MP: a 64 MP
#: camera photo passes). Decoding one this large takes a few hundred MB for a moment.
MAX_PIXELS = 100_000_000
#: Largest file read at all (the dashboard's upload limit is lower still).
MAX_FILE_BYTES = 200 * 1024**2
IMAGE_SIZE = 64  # the network's images are 64×64 RGB
#: JPEGs are decoded at a reduced scale (DCT scaling) no smaller than this before resizing.
DRAFT_SIZE = 4 * IMAGE_SIZE

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
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ImageError(too_big)
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ImageError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    elif hasattr(source, "getvalue") or hasattr(source, "read"):
        try:
            if hasattr(source, "getvalue"):  # io.BytesIO, Streamlit's UploadedFile: the whole content
                data = source.getvalue()
            else:
                data = source.read(MAX_FILE_BYTES + 1)
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


def _check_pixels(w: int, h: int, name: str) -> None:
    if w < 1 or h < 1:
        raise ImageError(f"{name}: the image has no pixels ({w}×{h})")
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
    except ImageError:
        img.close()
        raise
    return img


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text and len(text) < 200 else type(exc).__name__


# --------------------------------------------------------------------------- modes
def to_rgb(img):
    """Any Pillow mode to RGB, in a defined way (see the module docstring); returns a new image."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        scale = 257.0 if mode.startswith("I;16") or a.max(initial=0) > 255 else 1.0
        img = Image.fromarray(np.clip(np.round(a / scale), 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
        img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
    elif "transparency" in img.info and mode in ("1", "L", "P", "RGB"):
        img = img.convert("RGBA")  # a transparent palette entry or colour key
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))  # rgb·α + white·(1 − α)
        return out
    return img.convert("RGB")


_to_rgb = to_rgb  # the name older code used


def _upright(img):
    """Apply the EXIF orientation; an unreadable EXIF block is ignored (the pixels are fine)."""
    from PIL import ImageOps

    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # a damaged EXIF block must not cost the user their photo
        pass
    return img


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
    """
    return _decode(source, name, draft=None)


def _shrink(img, target: int):
    """Box-average a decoded image down by an integer factor, keeping both sides >= ``target``.

    Only for modes whose channels can be averaged (premultiplied by Pillow when there is alpha);
    it bounds the memory and time of the mode conversion and resize that follow.
    """
    factor = min(img.size) // target
    if factor >= 2 and img.mode in ("L", "LA", "RGB", "RGBA"):
        return img.reduce(factor)
    return img


def _decode(source, name, draft):
    return _decode_sized(source, name, draft)[0]


def _decode_sized(source, name, draft):
    """The decoded upright RGB image, and the upright size of the image in the file ``(width, height)``
    (known from the header: with ``draft`` the decoded image may be smaller)."""
    from PIL import Image

    name = name or (str(source) if isinstance(source, (str, Path)) else "image")
    data = _read(source, name)
    img = _open(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.seek(0)  # the first frame of an animation
            width, height = img.size  # the header's, before any draft scaling
            if draft and img.format in ("JPEG", "MPO"):
                img.draft("RGB", draft)
            img.load()
            _check_pixels(*img.size, name)
            before = img.size
            img = _upright(img)
            if img.size != before:  # EXIF orientation 5 to 8: a quarter turn
                width, height = height, width
            if draft:
                img = _shrink(img, draft[0])
            return to_rgb(img), (width, height)
    except ImageError:
        raise
    except (Image.DecompressionBombError, MemoryError):
        raise ImageError(f"{name}: the image is too large to decode") from None
    except Exception as exc:
        raise ImageError(f"{name}: the image data is damaged or truncated ({_why(exc)})") from None
    finally:
        img.close()


def prepare_image(source, name: str | None = None):
    """Decode and shrink to the 64×64 RGB image the network sees; return a ``PIL.Image``.

    The whole picture is resized (not cropped), as in the course's "test with your own image".
    JPEGs are decoded at reduced scale first, which makes large photos fast.
    Raises :class:`ImageError` like :func:`load_image`.
    """
    from PIL import Image

    img = _decode(source, name, draft=(DRAFT_SIZE, DRAFT_SIZE))
    return img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)


def preview_image(source, name: str | None = None, max_side: int = 512):
    """Decode a user's image for display: upright RGB, its longer side at most ``max_side`` pixels.

    JPEGs are decoded at reduced scale (DCT scaling, no smaller than ``max_side`` on either side)
    and other formats box-averaged down before the mode conversion, so a 12-megapixel photo never
    exists at full size; the result is then thumbnailed (aspect ratio kept, never enlarged).

    Returns
    -------
    (PIL.Image, (width, height))
        The preview, and the size of the upright image in the file (from its header), for a caption.

    Raises :class:`ImageError` like :func:`load_image`.
    """
    from PIL import Image

    if int(max_side) < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    side = int(max_side)
    img, size = _decode_sized(source, name, draft=(side, side))
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return img, size


def image_to_input(img) -> np.ndarray:
    """A 64×64 RGB image (PIL or ndarray of shape (64, 64, 3)) -> ndarray of shape (12288, 1) in [0, 1].

    Flattened in (row, column, channel) order, like the training set.
    """
    a = np.asarray(img, dtype=np.uint8)
    if a.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ImageError(f"expected a 64×64 RGB image, got an array of shape {a.shape}")
    return a.reshape(-1, 1) / 255.0
