"""Real photo files for the import tests: JPEGs and PNGs made with Pillow, scikit-image's photo of a
cat (Chelsea), and zips of them, built in memory or in a temporary folder."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def photo_bytes(seed: int, fmt: str = "JPEG", size=(96, 80)) -> bytes:
    """A real image file: smooth colour gradients plus noise, different for every seed."""
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, 3)
    slope = rng.uniform(-1.5, 1.5, (2, 3))
    img = base + yy[..., None] * slope[0] + xx[..., None] * slope[1] + rng.normal(0, 8, (h, w, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def chelsea_bytes() -> bytes:
    """scikit-image's photo of Chelsea the cat, as a JPEG."""
    from skimage import data as skdata

    buf = io.BytesIO()
    Image.fromarray(skdata.chelsea()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def photo_tree(n_cat: int = 6, n_other: int = 5, extra: dict | None = None, top: str = "") -> dict:
    """``{path inside: bytes}``: n_cat photos in cat/, n_other in non-cat/ (JPEG and PNG mixed), plus ``extra``."""
    prefix = f"{top}/" if top else ""
    files = {}
    for i in range(n_cat):
        fmt = "PNG" if i % 3 == 2 else "JPEG"
        files[f"{prefix}cat/cat_{i:03d}.{fmt.lower()}"] = photo_bytes(1000 + i, fmt)
    for i in range(n_other):
        fmt = "PNG" if i % 3 == 1 else "JPEG"
        files[f"{prefix}non-cat/other_{i:03d}.{fmt.lower()}"] = photo_bytes(2000 + i, fmt)
    files.update(extra or {})
    return files


def write_tree(root: Path, files: dict) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def zip_bytes(files: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()
