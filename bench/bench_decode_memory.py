"""Peak memory of decoding hostile images: the extreme shapes and the 100-megapixel photos.

    python bench/bench_decode_memory.py [--call prepare_image|preview_image|load_image|all] [--keep DIR]

Each file is generated into a temporary folder (PNGs are streamed, never holding their raw
pixels; JPEGs and WebPs are built by Pillow), then decoded in a fresh Python process by
``catdnn.images`` the way the CLI and the Predict page do (``prepare_image``: the network's 64×64
input; ``preview_image``: the page's 512-pixel preview; ``load_image``: the full-size decode, used
by neither). The figure is that process's peak resident set (``VmHWM``) minus its resident set
after the imports (Python, NumPy, Pillow and its plugins), in MB of 2^20 bytes: what the decode
itself costs, the file's bytes included. Target (issue 12): at most 600 MB for any image that
``prepare_image`` or ``preview_image`` accepts, and a one-line ``ImageError`` (never a
``MemoryError`` traceback) for any refused one.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

try:
    from _common import ROOT, machine, table
except ImportError:  # imported by the tests, from another folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import ROOT, machine, table

#: Largest peak (MB above the baseline) the issue allows for decoding one accepted image.
TARGET_MB = 600


# --------------------------------------------------------------------------- hostile files
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def write_png(path, width: int, height: int, colour_type: int, rows, depth: int = 8, plte: bytes = b"",
              trns: bytes = b"", level: int = 6) -> Path:
    """Write a PNG without ever holding its raw pixels: ``rows(y0, y1)`` gives the filtered scanlines
    of rows ``y0`` to ``y1`` (each starting with its filter byte), a few MB at a time."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    row_bytes = 1 + (width * channels * depth + 7) // 8
    step = max(1, (4 << 20) // row_bytes)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)))
        if plte:
            f.write(_chunk(b"PLTE", plte))
        if trns:
            f.write(_chunk(b"tRNS", trns))
        z = zlib.compressobj(level)
        for y0 in range(0, height, step):
            raw = rows(y0, min(height, y0 + step))
            assert len(raw) == row_bytes * (min(height, y0 + step) - y0)
            out = z.compress(raw)
            if out:
                f.write(_chunk(b"IDAT", out))
        f.write(_chunk(b"IDAT", z.flush()))
        f.write(_chunk(b"IEND", b""))
    return path


def _zeros(row_bytes: int):
    """Rows of zeros (filter 0): the most compressible content, as an attacker would send."""
    return lambda y0, y1: bytes(row_bytes * (y1 - y0))


def _photo_rows(width: int, channels: int, depth: int = 8):
    """Rows of a smooth, photo-like picture (diagonal gradients; filter 0), compressible but not empty."""
    x = np.arange(width, dtype=np.int64)

    def rows(y0, y1):
        y = np.arange(y0, y1, dtype=np.int64)[:, None]
        planes = [(x[None, :] + y) // 40, (x[None, :] * 3 + y * 2) // 97, (y * 5 - x[None, :]) // 61,
                  np.full((1, width), 255) - (y % 64)][:channels]
        if channels == 1:
            planes = [(x[None, :] // 7 + y // 5)]
        a = np.stack(np.broadcast_arrays(*planes), axis=-1)
        if depth == 16:
            a = ((a * 257) % 65536).astype(">u2")
        else:
            a = (a % 256).astype(np.uint8)
        a = a.reshape(y1 - y0, -1).view(np.uint8)
        return np.concatenate([np.zeros((y1 - y0, 1), np.uint8), a], axis=1).tobytes()

    return rows


def _gradient(size, mode="RGB"):
    """A smooth picture of ``size`` in ``mode`` (RGB or CMYK), built by Pillow (1 byte a channel)."""
    from PIL import Image

    w, h = size
    across = Image.linear_gradient("L").rotate(90).resize((w, h))
    down = Image.linear_gradient("L").resize((w, h))
    bands = [across, down, Image.blend(across, down, 0.5)]
    if mode == "CMYK":
        bands.append(Image.new("L", (w, h), 40))
    return Image.merge(mode, bands)


def write_jpeg(path, size, mode="RGB", **options) -> Path:
    """A smooth JPEG (``options`` as for Pillow's save: quality, progressive, subsampling)."""
    _gradient(size, mode).save(path, "JPEG", **{"quality": 90, **options})
    return Path(path)


def write_webp(path, size) -> Path:
    """A lossless WebP of a few flat bands: a few KB for any size."""
    from PIL import Image

    w, h = size
    img = Image.new("RGB", (w, h), (200, 30, 30))
    img.paste((30, 30, 200), (0, h // 2, w, h))
    img.save(path, "WEBP", lossless=True, method=0, quality=0)
    return Path(path)


SIDE = 10_000  # 10 000 × 10 000 = 100 megapixels, the MAX_PIXELS limit

#: name -> (what it is, writer(path)). The first two are the issue's extreme shapes.
HOSTILE = {
    "wide-100000000x1.png": (
        "100,000,000×1 grey PNG (zeros)",
        lambda p: write_png(p, 100_000_000, 1, 0, _zeros(100_000_001), level=9)),
    "tall-1x100000000.png": (
        "1×100,000,000 grey PNG (zeros)",
        lambda p: write_png(p, 1, 100_000_000, 0, _zeros(2), level=9)),
    "rgba-100mp.png": (
        "10000×10000 RGBA PNG",
        lambda p: write_png(p, SIDE, SIDE, 6, _photo_rows(SIDE, 4), level=1)),
    "rgb-100mp.png": (
        "10000×10000 RGB PNG",
        lambda p: write_png(p, SIDE, SIDE, 2, _photo_rows(SIDE, 3), level=1)),
    "palette-100mp.png": (
        "10000×10000 palette PNG, a transparent entry",
        lambda p: write_png(p, SIDE, SIDE, 3, _photo_rows(SIDE, 1), level=1,
                            plte=(np.arange(768) * 7 % 256).astype(np.uint8).tobytes(), trns=b"\x00\x80")),
    "grey-100mp.png": (
        "10000×10000 greyscale PNG",
        lambda p: write_png(p, SIDE, SIDE, 0, _photo_rows(SIDE, 1), level=1)),
    "grey16-100mp.png": (
        "10000×10000 16-bit greyscale PNG",
        lambda p: write_png(p, SIDE, SIDE, 0, _photo_rows(SIDE, 1, depth=16), depth=16, level=1)),
    "photo-64mp.jpg": (
        "9248×6936 JPEG (64 MP camera photo)",
        lambda p: write_jpeg(p, (9248, 6936))),
    # beyond the issue's list: the other decoders' worst cases
    "panorama-65535x1525.png": (
        "65535×1525 RGBA PNG (longest side, 100 MP)",
        lambda p: write_png(p, 65_535, 1525, 6, _zeros(1 + 4 * 65_535), level=1)),
    "progressive-444-100mp.jpg": (
        "10000×10000 progressive JPEG, 4:4:4",
        lambda p: write_jpeg(p, (SIDE, SIDE), progressive=True, subsampling=0)),
    "progressive-cmyk-100mp.jpg": (
        "10000×10000 progressive CMYK JPEG",
        lambda p: write_jpeg(p, (SIDE, SIDE), "CMYK", progressive=True)),
    "lossless-100mp.webp": (
        "10000×10000 lossless WebP",
        lambda p: write_webp(p, (SIDE, SIDE))),
    "lossless-36mp.webp": (
        "6000×6000 lossless WebP",
        lambda p: write_webp(p, (6000, 6000))),
}


# --------------------------------------------------------------------------- measuring
CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin, GifImagePlugin, BmpImagePlugin
import catdnn.images as images
from catdnn.errors import ImageError

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB -> MB
    raise KeyError(key)

def call(path):
    out = getattr(images, {call!r})(path)
    if isinstance(out, tuple):  # preview_image: (image, size)
        out = out[0]
    return out

call(sys.argv[2])  # warm up Pillow's lazy imports and caches on a small image
base = status("VmRSS")
t0 = time.perf_counter()
try:
    img = call(sys.argv[1])
    outcome = "ok {{}}x{{}}".format(*img.size)
except ImageError as exc:
    outcome = "ImageError:" + str(exc).removeprefix(sys.argv[1] + ":")
except MemoryError as exc:
    outcome = "MemoryError (traceback) " + str(exc)
print(json.dumps(dict(base=base, peak=status("VmHWM"), seconds=time.perf_counter() - t0, outcome=outcome)))
"""


def measure(path: Path, call: str = "prepare_image", small: Path | None = None, timeout: float = 300) -> dict:
    """Decode ``path`` with ``catdnn.images.<call>`` in a fresh process; its peak MB above the baseline.

    Returns a dict: ``base`` and ``peak`` (MB), ``extra`` (peak − base), ``seconds``, ``outcome``.
    """
    if small is None:
        small = path.parent / "_warmup.png"
        if not small.exists():
            write_png(small, 300, 200, 2, _photo_rows(300, 3))
    code = CHILD.format(root=str(ROOT), call=call)
    p = subprocess.run([sys.executable, "-c", code, str(path), str(small)], capture_output=True, text=True,
                       timeout=timeout)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        return dict(base=float("nan"), peak=float("nan"), extra=float("nan"), seconds=float("nan"),
                    outcome=f"crashed (exit {p.returncode}): {tail}")
    r = json.loads(lines[-1])
    r["extra"] = r["peak"] - r["base"]
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--call", default="prepare_image",
                    choices=["prepare_image", "preview_image", "load_image", "all"])
    ap.add_argument("--only", nargs="*", help="file names to measure (default: all)")
    ap.add_argument("--keep", type=Path, help="write the files into this folder and keep them")
    args = ap.parse_args(argv)
    calls = ["prepare_image", "preview_image", "load_image"] if args.call == "all" else [args.call]
    names = args.only or list(HOSTILE)
    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows, ok = [], True
        for name in names:
            what, writer = HOSTILE[name]
            path = folder / name
            if not path.exists():
                t0 = time.perf_counter()
                writer(path)
                print(f"wrote {name} ({path.stat().st_size / 1e3:,.0f} kB) in {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr)
            for call in calls:
                r = measure(path, call)
                accepted = r["outcome"].startswith("ok")
                clean = accepted or r["outcome"].startswith("ImageError")
                if call == "load_image":  # returns the full-size image: no bound but its own size
                    verdict = "n/a (full size)" if clean else "MISSED"
                    ok &= clean
                else:
                    met = clean and (not accepted or r["extra"] <= TARGET_MB)
                    verdict = "MET" if met else "MISSED"
                    ok &= met
                outcome = r["outcome"] if len(r["outcome"]) < 80 else r["outcome"][:77] + "..."
                rows.append([what, f"{path.stat().st_size / 1e3:,.0f}", call, f"{r['extra']:.0f}",
                             f"{r['seconds']:.2f}", outcome, verdict])
    print(table(["file", "size kB", "call", "peak MB above baseline", "s", "outcome",
                 f"≤ {TARGET_MB} MB, no traceback"], rows))
    print(f"\ntarget: prepare_image and preview_image take ≤ {TARGET_MB} MB for every accepted file, and "
          f"every refusal is one line: {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
