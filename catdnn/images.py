"""Safe decoding of users' images into the network's input.

One function, :func:`load_image`, is used by the CLI and the dashboard: it opens a path, bytes or
a binary file object, refuses what it should not decode (formats outside an allow-list, images
whose header claims too many pixels), applies the EXIF orientation, takes the first frame of an
animation and converts any mode to RGB (transparency composited on white). Every failure raises
:class:`~catdnn.errors.ImageError` with a message naming the file.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from .errors import ImageError

#: Pillow format names that are decoded; anything else is refused.
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF")
#: Largest image accepted, in pixels, checked from the header before decoding (about 100 MP).
MAX_PIXELS = 100_000_000
IMAGE_SIZE = 64  # the network's images are 64×64 RGB
#: JPEGs are decoded at a reduced scale (DCT scaling) no smaller than this before resizing.
DRAFT_SIZE = 4 * IMAGE_SIZE


def _open(source, name: str):
    from PIL import Image

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError(f"{name}: the file is empty (0 bytes)")
        fp = io.BytesIO(data)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: the file is empty (0 bytes)")
        try:
            fp = io.BytesIO(path.read_bytes())
        except OSError as exc:
            raise ImageError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    else:
        data = source.read()
        if not data:
            raise ImageError(f"{name}: the file is empty (0 bytes)")
        fp = io.BytesIO(data)
    head = fp.getvalue()[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        raise ImageError(f"{name}: SVG images are not supported; export it as PNG or JPEG first")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # own limit below
            img = Image.open(fp, formats=ALLOWED_FORMATS)
    except Image.UnidentifiedImageError:
        try:
            other = Image.open(io.BytesIO(fp.getvalue()))
            fmt = other.format
        except Exception:
            fmt = None
        if fmt:
            raise ImageError(
                f"{name}: {fmt} images are not accepted; use one of JPEG, PNG, WebP, BMP or GIF"
            ) from None
        if head.startswith((b"<!doctype", b"<html")):
            raise ImageError(f"{name}: this is an HTML page, not an image") from None
        raise ImageError(f"{name}: not an image file, or a damaged one (format not recognised)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: the image is too large (over {MAX_PIXELS:,} pixels)") from None
    except Exception as exc:
        raise ImageError(f"{name}: cannot read the image header ({exc})") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{name}: the image has no pixels ({w}×{h})")
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name}: the image is too large: {w}×{h} = {w * h:,} pixels (the limit is {MAX_PIXELS:,})"
        )
    return img


def _to_rgb(img):
    """Any Pillow mode to RGB, defined: alpha composited on white, 16-bit and float scaled to 8 bits."""
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        scale = 257.0 if mode.startswith("I;16") or a.max(initial=0) > 255 else 1.0
        img = Image.fromarray(np.clip(a / scale, 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source, name: str | None = None):
    """Open a user's image safely and return it as an RGB ``PIL.Image`` (full size, upright).

    Parameters
    ----------
    source : str, Path, bytes or binary file object
    name : str, optional
        Used in error messages (defaults to the path).

    Raises
    ------
    ImageError
        With a message naming the file and the problem.
    """
    return _decode(source, name, draft=None)


def _decode(source, name, draft):
    from PIL import Image, ImageOps

    name = name or (str(source) if isinstance(source, (str, Path)) else "image")
    img = _open(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if draft and img.format in ("JPEG", "MPO"):
                img.draft("RGB", draft)
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, MemoryError):
        raise ImageError(f"{name}: the image is too large to decode") from None
    except Exception as exc:
        raise ImageError(f"{name}: the image data is damaged or truncated ({exc})") from None


def prepare_image(source, name: str | None = None):
    """Decode and shrink to the 64×64 RGB image the network sees; return a ``PIL.Image``.

    The whole picture is resized (not cropped), as in the course's "test with your own image".
    JPEGs are decoded at reduced scale first, which makes large photos fast.
    """
    from PIL import Image

    img = _decode(source, name, draft=(DRAFT_SIZE, DRAFT_SIZE))
    return img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)


def image_to_input(img) -> np.ndarray:
    """A 64×64 RGB image (PIL or ndarray of shape (64, 64, 3)) -> ndarray of shape (12288, 1) in [0, 1].

    Flattened in (row, column, channel) order, like the training set.
    """
    a = np.asarray(img, dtype=np.uint8)
    if a.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ImageError(f"expected a 64×64 RGB image, got an array of shape {a.shape}")
    return a.reshape(-1, 1) / 255.0
