"""Item 1, property-based: random and mutated bytes only ever give an RGB image or an ImageError.

Seeds are small valid files in every allowed format (still and animated, lossy and lossless);
hypothesis flips, overwrites, inserts, deletes and truncates bytes, or enlarges header fields.
Whatever comes out of ``load_image`` / ``prepare_image`` must be an RGB image, or an ImageError
whose message names the file: never another exception, a hang or a huge allocation.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from robustness_helpers import encode, tiny_png

from catdnn.errors import ImageError
from catdnn.images import load_image, prepare_image, preview_image

NAME = "fuzzed-upload.jpg"
SETTINGS = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    img = Image.new("RGB", (24, 16), (200, 30, 30))
    img.paste((20, 20, 220), (8, 4, 20, 12))
    rgba = img.convert("RGBA")
    rgba.putalpha(128)
    frames = [img, img.rotate(90), img.rotate(180)]
    anim_gif, anim_webp, apng = io.BytesIO(), io.BytesIO(), io.BytesIO()
    frames[0].save(anim_gif, "GIF", save_all=True, append_images=frames[1:])
    frames[0].save(anim_webp, "WEBP", save_all=True, append_images=frames[1:])
    frames[0].save(apng, "PNG", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6
    return [
        encode(img, "PNG"),
        encode(rgba, "PNG"),
        encode(img.convert("P"), "PNG", transparency=0),
        encode(img.convert("1"), "PNG"),
        encode(img, "JPEG", quality=80),
        encode(img, "JPEG", progressive=True, exif=exif.tobytes()),
        encode(img.convert("CMYK"), "JPEG"),
        encode(img.convert("P"), "GIF"),
        encode(img, "BMP"),
        encode(img.convert("P"), "BMP"),
        encode(img, "WEBP", quality=70),
        encode(rgba, "WEBP", lossless=True),
        anim_gif.getvalue(),
        anim_webp.getvalue(),
        apng.getvalue(),
        tiny_png(300, 200, idat=zlib.compress(bytes(200 * (1 + 3 * 300)), 9)),  # near deflate's 1032:1
    ]


SEEDS = _seeds()


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "big", "zero"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[i:i + len(chunk)] = chunk
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del data[i:i + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[i:]
        elif kind == "big":  # a header field made large: dimensions, lengths, counts
            data[i:i + 2] = b"\xff\xff"[: len(data) - i]
        else:
            data[i:i + 4] = bytes(min(4, len(data) - i))
    return bytes(data)


def _check(fn, data: bytes) -> None:
    try:
        img = fn(data, NAME)
    except ImageError as exc:
        assert str(exc).startswith(NAME + ":"), str(exc)
        return
    assert img.mode == "RGB" and img.width >= 1 and img.height >= 1


@settings(max_examples=250, **SETTINGS)
@given(mutated())
def test_mutated_images_give_an_image_or_an_image_error(data):
    _check(prepare_image, data)


@settings(max_examples=100, **SETTINGS)
@given(mutated())
def test_mutated_images_full_size_decode(data):
    _check(load_image, data)


@settings(max_examples=150, **SETTINGS)
@given(st.one_of(
    st.binary(max_size=4096),
    # random bytes behind a real magic number reach each decoder
    st.tuples(st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\x00\x01\x00\x00WEBPVP8L",
                               b"RIFF\x00\x01\x00\x00WEBPVP8X", b"<svg", b"<html>"]),
              st.binary(max_size=2048)).map(lambda t: t[0] + t[1]),
))
def test_random_bytes_give_an_image_or_an_image_error(data):
    _check(prepare_image, data)


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_seed_is_itself_a_valid_image(seed):
    assert prepare_image(SEEDS[seed], NAME).size == (64, 64)


@settings(max_examples=100, **SETTINGS)
@given(mutated())
def test_mutated_images_preview(data):
    _check(lambda d, name: preview_image(d, name, max_side=96)[0], data)


# --------------------------------------------------------------------------- issue 12: shrinking in tiles
@st.composite
def images_and_factors(draw):
    w, h = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    mode = draw(st.sampled_from(["RGBA", "LA", "P", "P+transparency", "L+key", "RGB+key", "I;16", "I", "F", "1",
                                 "CMYK"]))
    seed = draw(st.integers(0, 2**16))
    return w, h, mode, seed, draw(st.integers(1, w + 2)), draw(st.integers(1, h + 2)), draw(st.integers(1, 900))


def _random_image(w, h, mode, seed):
    rng = np.random.default_rng(seed)
    base, _, extra = mode.partition("+")
    if base in ("I;16", "I", "F"):
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[base]
        top = {"I;16": 65535, "I": rng.choice([200, 70000]), "F": rng.choice([1.0, 300.0])}[base]
        img = Image.fromarray((rng.random((h, w)) * top).astype(dtype))
    else:
        bands = {"RGBA": 4, "LA": 2, "P": 1, "L": 1, "RGB": 3, "1": 1, "CMYK": 4}[base]
        a = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
        img = Image.frombytes("L" if base in ("P", "1") else base, (w, h), a.tobytes())
        if base == "P":
            img = Image.frombytes("P", (w, h), a.tobytes())
            img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        elif base == "1":
            img = img.convert("1")
    if extra:
        img.info["transparency"] = 7 if base in ("P", "L") else (7, 8, 9)
    return img


@settings(max_examples=200, **SETTINGS)
@given(images_and_factors())
def test_tile_by_tile_is_the_same_as_the_whole_image(case):
    """Converting and reducing tile by tile (any tile size, any factors, any mode) gives the pixels
    of converting and reducing the whole image at once."""
    import catdnn.images as images

    w, h, mode, seed, fx, fy, tile = case
    img = _random_image(w, h, mode, seed)
    whole = images._rgb_converter(img)
    if img.mode in ("RGBA", "LA"):  # Pillow reduces these with premultiplied alpha, then they are composited
        expected = whole(img.reduce((fx, fy))) if (fx, fy) != (1, 1) else whole(img)
    else:
        expected = whole(img)
        expected = expected.reduce((fx, fy)) if (fx, fy) != (1, 1) else expected
    saved = images._TILE_PIXELS
    images._TILE_PIXELS = tile
    try:
        got = images._reduce_to_rgb(img, fx, fy)
    finally:
        images._TILE_PIXELS = saved
    assert got.mode == "RGB" and got.size == expected.size == (-(-w // fx), -(-h // fy))
    assert np.array_equal(np.asarray(got), np.asarray(expected))


@settings(max_examples=60, **SETTINGS)
@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(1, 600), st.sampled_from(["PNG", "JPEG", "GIF"]))
def test_any_shape_gives_the_thumbnail_size_and_a_64x64_input(w, h, side, fmt):
    from catdnn.images import _thumbnail_size

    data = encode(Image.new("RGB", (w, h), (200, 30, 30)), fmt)
    preview, size = preview_image(data, NAME, max_side=side)
    assert size == (w, h) and preview.size == _thumbnail_size(w, h, side) and preview.mode == "RGB"
    assert max(preview.size) <= side
    assert prepare_image(data, NAME).size == (64, 64)
