"""Item 1, property-based: random and mutated bytes only ever give an RGB image or an ImageError.

Seeds are small valid files in every allowed format (still and animated, lossy and lossless);
hypothesis flips, overwrites, inserts, deletes and truncates bytes, or enlarges header fields.
Whatever comes out of ``load_image`` / ``prepare_image`` must be an RGB image, or an ImageError
whose message names the file: never another exception, a hang or a huge allocation.
"""

from __future__ import annotations

import io
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from robustness_helpers import encode, tiny_png

from catdnn.errors import ImageError
from catdnn.images import load_image, prepare_image

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
