"""Issue 12, part 1: hostile shapes and sizes decode within bounded memory, or are refused in one line.

* extreme shapes (100,000,000×1 and 1×100,000,000 pixels in a 100-200 KB PNG) are refused from the
  header, with the shape in the message, in the library and in the CLI;
* accepted shapes, however thin, shrink per axis: nothing is resized from more than a few times
  the final size, and no full-size RGB/RGBA copy of a big image is ever made;
* decoders whose working memory is known to exceed the budget (big WebP, big CMYK progressive
  JPEG) are refused from the header;
* a decode that runs out of memory anyway is one ImageError (a real one too: a child process
  with a small address-space limit);
* only DECODE_SLOTS images are decoded at once in the process;
* the peak memory of decoding 100-megapixel files, measured in a fresh process (slow).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from robustness_helpers import encode

import catdnn.images as images
from catdnn.errors import ImageError
from catdnn.images import DECODE_SLOTS, DRAFT_SIZE, MAX_SIDE, load_image, prepare_image, preview_image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from bench_decode_memory import TARGET_MB, measure, write_png, write_webp  # noqa: E402


def _zeros(row_bytes: int):
    return lambda y0, y1: bytes(row_bytes * (y1 - y0))


@pytest.fixture(scope="module")
def extreme(tmp_path_factory):
    """The issue's two files: 100,000,000×1 (97 KB) and 1×100,000,000 (195 KB) greyscale PNGs."""
    d = tmp_path_factory.mktemp("extreme")
    return {
        "wide": write_png(d / "wide.png", 100_000_000, 1, 0, _zeros(100_000_001), level=9),
        "tall": write_png(d / "tall.png", 1, 100_000_000, 0, _zeros(2), level=9),
    }


def one_line_refusal(fn, source, name, *words):
    with pytest.raises(ImageError) as info:
        fn(source, name)
    msg = str(info.value)
    assert msg.startswith(name + ":") and "\n" not in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


# --------------------------------------------------------------------------- extreme shapes
@pytest.mark.parametrize("which,shape", [("wide", "100,000,000×1"), ("tall", "1×100,000,000")])
@pytest.mark.parametrize("fn", [prepare_image, preview_image, load_image], ids=lambda f: f.__name__)
def test_extreme_shapes_are_refused_from_the_header(extreme, which, shape, fn, no_decoding):
    path = extreme[which]
    assert path.stat().st_size < 200_000  # a small file...
    msg = one_line_refusal(fn, path, f"{which}.png", shape, "side longer than")  # ...refused, not decoded
    assert f"{MAX_SIDE:,}" in msg
    assert no_decoding == [], no_decoding


@pytest.mark.parametrize("size", [(MAX_SIDE, 1), (1, MAX_SIDE), (MAX_SIDE, 3), (60_000, 40), (40, 60_000)])
def test_the_longest_accepted_sides_shrink_per_axis(size, monkeypatch):
    """Thin images are accepted up to MAX_SIDE and shrunk along each axis on its own: the Lanczos
    resize never starts from more than a few times the final size (the old code resized 60000×40
    whole, and 100,000,000×1 ran out of memory in that resize)."""
    data = encode(Image.new("RGB", size, (180, 40, 40)), "PNG")
    resized = []
    original = Image.Image.resize

    def spy(self, *a, **kw):
        resized.append(self.size)
        return original(self, *a, **kw)

    monkeypatch.setattr(Image.Image, "resize", spy)
    small = prepare_image(data, "strip.png")
    assert small.size == (64, 64) and small.getpixel((32, 32)) == (180, 40, 40)
    assert all(w <= 2 * DRAFT_SIZE and h <= 2 * DRAFT_SIZE for w, h in resized), resized
    resized.clear()
    preview, original_size = preview_image(data, "strip.png")
    assert original_size == size and max(preview.size) == min(512, max(size))
    assert all(w <= 4 * 512 and h <= 4 * 512 for w, h in resized), resized


def test_a_side_just_over_the_limit_is_refused():
    header = encode(Image.new("L", (4, 4)), "PNG")
    for w, h in [(MAX_SIDE + 1, 1), (1, MAX_SIDE + 1)]:
        data = header[:16] + struct.pack(">II", w, h) + header[24:]
        one_line_refusal(prepare_image, data, "strip.png", f"{w:,}×{h:,}")


# --------------------------------------------------------------------------- no full-size copies
def _big(mode: str, fmt: str = "PNG", **kw) -> bytes:
    """A 2000×1600 image (3.2 MP: bigger than a conversion tile) in ``mode``."""
    w, h = 2000, 1600
    if mode == "I;16":
        a = (np.add.outer(np.arange(h), np.arange(w)) * 20).astype(np.uint16)
        img = Image.fromarray(a)
    elif mode == "P":
        img = Image.new("RGB", (w, h), (200, 30, 30)).convert("P")
        img.paste(1, (0, 0, w // 2, h))
    else:
        img = Image.new(mode, (w, h), {"RGBA": (200, 30, 30, 128), "LA": (90, 128), "L": 90}.get(mode, 0))
    return encode(img, fmt, **kw)


@pytest.mark.parametrize("mode,kw", [
    ("RGBA", {}), ("LA", {}), ("P", {"transparency": 1}), ("P", {}), ("L", {"transparency": 90}),
    ("I;16", {}), ("RGB", {}), ("L", {}),
], ids=["RGBA", "LA", "P-transparent", "P", "L-colour-key", "I16", "RGB", "L"])
@pytest.mark.parametrize("fn", [prepare_image, preview_image], ids=lambda f: f.__name__)
def test_no_full_size_copy_is_made(mode, kw, fn, monkeypatch):
    """Mode conversions (and Pillow's premultiplied-alpha copy inside reduce()) see one tile at a
    time, never the whole decoded image."""
    data = _big(mode, **kw)
    seen = []
    for name in ("convert", "copy"):
        original = getattr(Image.Image, name)

        def spy(self, *a, _original=original, _name=name, **k):
            seen.append((_name, self.mode, self.width * self.height))
            return _original(self, *a, **k)

        monkeypatch.setattr(Image.Image, name, spy)
    asarray = np.asarray

    def array_spy(obj, *a, **k):  # the 16-bit path reads pixels with NumPy
        if isinstance(obj, Image.Image):
            seen.append(("asarray", obj.mode, obj.width * obj.height))
        return asarray(obj, *a, **k)

    monkeypatch.setattr(images.np, "asarray", array_spy)
    fn(data, "big.png")
    biggest = max((n for _, _, n in seen), default=0)
    assert biggest <= images._TILE_PIXELS, [s for s in seen if s[2] > images._TILE_PIXELS]


def test_reducing_by_tiles_gives_the_whole_image_result(monkeypatch):
    """Tiles are aligned on the reduction factors: same pixels as converting then reducing whole."""
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (301, 299, 4), dtype=np.uint8), "RGBA")
    pal = Image.fromarray(rng.integers(0, 256, (301, 299), dtype=np.uint8), "L").convert("P")
    pal.info["transparency"] = 3
    monkeypatch.setattr(images, "_TILE_PIXELS", 4096)
    for img in (rgba, pal):
        whole = images.to_rgb(img.convert("RGBA"))
        for f in [(1, 1), (3, 3), (7, 2), (1, 50), (299, 1)]:
            expected = whole.reduce(f) if f != (1, 1) else whole
            if img.mode == "RGBA" and f != (1, 1):  # RGBA: Pillow reduces with premultiplied alpha
                expected = images.to_rgb(img.reduce(f))
            got = images._reduce_to_rgb(img, *f)
            assert got.size == expected.size
            assert np.abs(np.asarray(got, int) - np.asarray(expected, int)).max() <= 1, (img.mode, f)


# --------------------------------------------------------------------------- decoders' own budgets
def _webp_vp8l(w: int, h: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (10, 10)), "WEBP", lossless=True))
    data[21:25] = ((w - 1) | ((h - 1) << 14)).to_bytes(4, "little")
    return bytes(data)


def _jpeg_sized(w: int, h: int, mode: str, **kw) -> bytes:
    data = bytearray(encode(Image.new(mode, (16, 16)), "JPEG", **kw))
    i = data.index(b"\xff\xc2" if kw.get("progressive") else b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


@pytest.mark.parametrize("name,data,words", [
    ("big.webp", _webp_vp8l(8000, 8000), ("WebP", "1,024 MB", "600 MB")),
    ("cmyk.jpg", _jpeg_sized(10000, 10000, "CMYK", progressive=True), ("JPEG", "800 MB")),
    ("cmyk-baseline.jpg", _jpeg_sized(9000, 9000, "CMYK"), ("JPEG", "MB")),
])
def test_decoders_over_the_memory_budget_are_refused_from_the_header(name, data, words, no_decoding):
    """Pillow's WebP decoder holds 16 bytes a pixel; libjpeg keeps all the DCT coefficients of a
    progressive JPEG (8 bytes a pixel for CMYK) whatever the draft scale."""
    for fn in (prepare_image, preview_image, load_image):
        one_line_refusal(fn, data, name, *words)
    assert no_decoding == [], no_decoding


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_100_megapixel_ycbcr_jpeg_is_within_the_budget():
    assert images._jpeg_coefficients(Image.open(io.BytesIO(_jpeg_sized(10000, 10000, "RGB", subsampling=0)))) \
        <= images.DECODE_BUDGET
    assert images._jpeg_coefficients(Image.open(io.BytesIO(_jpeg_sized(10000, 10000, "RGB", subsampling=2)))) \
        == 300_000_000


# --------------------------------------------------------------------------- out of memory
@pytest.mark.parametrize("where", ["load", "reduce", "resize", "convert"])
def test_running_out_of_memory_is_one_image_error(where, monkeypatch):
    """Wherever an allocation fails (decode, reduction, conversion, the final resize), the caller
    gets one ImageError, never a MemoryError."""
    def boom(*a, **k):
        raise MemoryError

    target = {"load": ImageFile.ImageFile, "reduce": Image.Image, "resize": Image.Image,
              "convert": Image.Image}[where]
    monkeypatch.setattr(target, where, boom)
    data = _big("RGBA")
    # (a 2000×1600 preview is resized directly: nothing to reduce)
    for fn in (prepare_image,) if where == "reduce" else (prepare_image, preview_image, load_image):
        if fn is load_image and where == "resize":
            continue
        msg = one_line_refusal(fn, data, "huge.png", "too large to decode", "memory")
        assert "2,000×1,600" in msg


def _run_limited(code: str, headroom_mb: int, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a child whose address space may grow by at most ``headroom_mb`` after imports."""
    prelude = textwrap.dedent(f"""
        import importlib, pkgutil, resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        import numpy, PIL.Image, PIL.PngImagePlugin, catdnn
        for module in pkgutil.iter_modules(catdnn.__path__):  # what the CLI may import lazily
            if module.name != "__main__":
                importlib.import_module("catdnn." + module.name)
        vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")][0] * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + {headroom_mb} * 2**20, resource.RLIM_INFINITY))
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def rgb_40mp(tmp_path_factory) -> Path:
    """An 8000×5000 RGB PNG of zeros (160 MB decoded, a few hundred KB on disk)."""
    d = tmp_path_factory.mktemp("oom")
    return write_png(d / "black-40mp.png", 8000, 5000, 2, _zeros(1 + 3 * 8000), level=1)


def test_a_real_out_of_memory_is_one_image_error(rgb_40mp):
    p = _run_limited(f"""
        from catdnn.errors import ImageError
        from catdnn.images import prepare_image
        try:
            prepare_image({str(rgb_40mp)!r}, "black.png")
        except ImageError as exc:
            print("ImageError:", exc)
    """, headroom_mb=100)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "MemoryError" not in p.stdout + p.stderr, p.stderr
    assert p.stdout.startswith("ImageError: black.png: the image is too large to decode"), p.stdout


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_model) -> Path:
    from catdnn.model_io import save_model

    path = tmp_path_factory.mktemp("m") / "model.npz"
    save_model(tiny_model, path)
    return path


def test_the_cli_reports_extreme_shapes_and_out_of_memory_in_one_line(extreme, rgb_40mp, model_file):
    """``python -m catdnn predict``: one ``error:`` line per bad file, exit 1, never a traceback
    (the 1×100,000,000 PNG printed a MemoryError traceback; the 40 MP one runs out of memory
    here because the child may only grow by 100 MB)."""
    files = [str(extreme["wide"]), str(extreme["tall"]), str(rgb_40mp)]
    p = _run_limited(f"""
        import runpy
        sys.argv = ["catdnn", "predict", "--model", {str(model_file)!r}, *{files!r}]
        runpy.run_module("catdnn", run_name="__main__")
    """, headroom_mb=100)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "MemoryError" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"error: {files[0]}: the image is 100,000,000×1 pixels")
    assert lines[1].startswith(f"error: {files[1]}: the image is 1×100,000,000 pixels")
    assert lines[2].startswith(f"error: {files[2]}: the image is too large to decode"), lines[2]


# --------------------------------------------------------------------------- one or two at a time
def test_only_decode_slots_images_are_decoded_at_once(monkeypatch):
    """Many threads decode at once; inside the decoder there are never more than DECODE_SLOTS.

    The first decoders to get in are held at the door of Pillow's decoder until the main thread has
    seen DECODE_SLOTS of them inside and given the others every chance to get in too (without the
    semaphore all of them do); no assertion depends on how long anything takes."""
    lock = threading.Lock()
    inside = [0]
    most = [0]
    entered = threading.Semaphore(0)
    gate = threading.Event()
    original = ImageFile.ImageFile.load

    def held_load(self, *a, **k):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        entered.release()
        try:
            gate.wait(timeout=60)
            return original(self, *a, **k)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", held_load)
    data = encode(Image.new("RGBA", (300, 200), (10, 200, 10, 255)), "PNG")
    n = 8
    results, errors = [], []

    def upload(i):
        try:
            fn = (prepare_image, lambda d, name: preview_image(d, name)[0], load_image)[i % 3]
            results.append(fn(data, f"upload-{i}.png"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        for _ in range(DECODE_SLOTS):
            assert entered.acquire(timeout=60), "fewer than DECODE_SLOTS decoders got in"
        # any further decoder that could get in now would: give them time to show it
        assert not entered.acquire(timeout=0.5), f"{most[0]} images were decoded at once"
    finally:
        gate.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == [] and len(results) == n
    assert most[0] == DECODE_SLOTS
    assert all(img.getpixel((0, 0)) == (10, 200, 10) for img in results)


def test_a_caller_that_waits_too_long_is_told_to_try_again(monkeypatch):
    monkeypatch.setattr(images, "DECODE_WAIT_SECONDS", 0.01)
    held = [images._DECODING.acquire(timeout=5) for _ in range(DECODE_SLOTS)]
    try:
        assert all(held)
        one_line_refusal(prepare_image, encode(Image.new("RGB", (8, 8)), "PNG"), "busy.png", "try again")
    finally:
        for _ in held:
            images._DECODING.release()


def test_every_slot_is_given_back_after_failures():
    bad = [b"", b"not an image", encode(Image.new("RGB", (64, 64)), "JPEG")[:300]]
    for i in range(3 * DECODE_SLOTS):
        with pytest.raises(ImageError):
            prepare_image(bad[i % len(bad)], "bad")
    prepare_image(encode(Image.new("RGB", (8, 8)), "PNG"), "good.png")
    got = [images._DECODING.acquire(blocking=False) for _ in range(DECODE_SLOTS)]
    for ok in got:
        if ok:
            images._DECODING.release()
    assert all(got)


# --------------------------------------------------------------------------- measured peak (slow)
@pytest.fixture(scope="module")
def hostile_100mp(tmp_path_factory) -> dict[str, Path]:
    """The 100-megapixel files, generated now (zeros: quick to write, as costly to decode as a photo)."""
    d = tmp_path_factory.mktemp("big")
    side = 10_000
    plte = bytes(range(256)) * 3
    return {
        "rgba-100mp.png": write_png(d / "rgba.png", side, side, 6, _zeros(1 + 4 * side), level=1),
        "palette-100mp.png": write_png(d / "palette.png", side, side, 3, _zeros(1 + side), level=1, plte=plte,
                                       trns=b"\x00\x80"),
        "grey16-100mp.png": write_png(d / "grey16.png", side, side, 0, _zeros(1 + 2 * side), depth=16, level=1),
        "panorama-65535x1525.png": write_png(d / "panorama.png", MAX_SIDE, 1525, 6, _zeros(1 + 4 * MAX_SIDE),
                                             level=1),
        "webp-36mp.webp": write_webp(d / "big.webp", (6000, 6000)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rgba-100mp.png", "palette-100mp.png", "grey16-100mp.png",
                                  "panorama-65535x1525.png", "webp-36mp.webp"])
@pytest.mark.parametrize("call", ["prepare_image", "preview_image"])
def test_peak_memory_of_hostile_files_is_bounded(hostile_100mp, name, call):
    """Peak resident memory of a fresh process decoding the file, above its baseline after imports
    (the old code: 787 MB for the RGBA PNG, 1337 MB for the palette one, 2495 MB for 16-bit grey)."""
    r = measure(hostile_100mp[name], call)
    assert r["outcome"].startswith("ok"), r["outcome"]
    assert r["extra"] <= TARGET_MB, f"{name}: {call} peaked at {r['extra']:.0f} MB above the baseline"
