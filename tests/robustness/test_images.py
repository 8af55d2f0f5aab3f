"""Item 1: users' images. Odd but valid images are predicted; bad files get one clear ImageError.

Every refusal is checked to be a :class:`catdnn.errors.ImageError` whose message starts with the
file's name. Decompression bombs are also checked to be refused before Pillow decodes a pixel.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageFile
from robustness_helpers import encode, jpeg_with_repeated_scan, png_chunk, tiny_png

from catdnn.errors import ImageError
from catdnn.images import (
    ALLOWED_FORMATS,
    MAX_PIXELS,
    MAX_SIDE,
    image_to_input,
    jpeg_scans,
    load_image,
    prepare_image,
    to_rgb,
)


def refused(source, name: str, *words: str) -> str:
    """Assert that ``source`` is refused with an ImageError naming ``name``; return the message."""
    with pytest.raises(ImageError) as info:
        load_image(source, name)
    msg = str(info.value)
    assert msg.startswith(name + ":"), msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    assert "Traceback" not in msg
    # prepare_image (the CLI's and the Predict page's entry point) answers the same way
    with pytest.raises(ImageError):
        prepare_image(source, name)
    return msg


def assert_rgb(img, size=None):
    assert img.mode == "RGB"
    if size is not None:
        assert img.size == size


# --------------------------------------------------------------------------- valid but odd
def _rgba(colour):
    return Image.new("RGBA", (8, 6), colour)


# (description, PIL image, format, expected RGB of pixel (0, 0), tolerance)
MODE_CASES = [
    ("1 (bilevel) PNG", Image.new("1", (8, 6), 1), "PNG", (255, 255, 255), 0),
    ("1 (bilevel) BMP", Image.new("1", (8, 6), 0), "BMP", (0, 0, 0), 0),
    ("L PNG", Image.new("L", (8, 6), 77), "PNG", (77, 77, 77), 0),
    ("L JPEG", Image.new("L", (8, 6), 77), "JPEG", (77, 77, 77), 2),
    ("L BMP", Image.new("L", (8, 6), 77), "BMP", (77, 77, 77), 0),
    ("LA half transparent black PNG", Image.new("LA", (8, 6), (0, 128)), "PNG", (127, 127, 127), 1),
    ("RGBA fully transparent red PNG", _rgba((255, 0, 0, 0)), "PNG", (255, 255, 255), 0),
    ("RGBA half transparent blue PNG", _rgba((0, 0, 255, 128)), "PNG", (127, 127, 255), 1),
    ("RGBA opaque green PNG", _rgba((0, 200, 0, 255)), "PNG", (0, 200, 0), 0),
    ("RGBA transparent WebP", _rgba((255, 0, 0, 0)), "WEBP", (255, 255, 255), 0),
    ("RGBA BMP", _rgba((10, 20, 30, 255)), "BMP", (10, 20, 30), 0),
    ("CMYK JPEG white", Image.new("CMYK", (8, 6), (0, 0, 0, 0)), "JPEG", (255, 255, 255), 2),
    ("CMYK JPEG cyan", Image.new("CMYK", (8, 6), (255, 0, 0, 0)), "JPEG", (0, 255, 255), 3),
    ("RGB JPEG", Image.new("RGB", (8, 6), (200, 100, 50)), "JPEG", (200, 100, 50), 3),
    ("RGB BMP", Image.new("RGB", (8, 6), (200, 100, 50)), "BMP", (200, 100, 50), 0),
    ("RGB GIF", Image.new("RGB", (8, 6), (255, 0, 0)), "GIF", (255, 0, 0), 0),
    ("RGB lossy WebP", Image.new("RGB", (16, 16), (200, 100, 50)), "WEBP", (200, 100, 50), 6),
]


@pytest.mark.parametrize("desc,img,fmt,pixel,tol", MODE_CASES, ids=[c[0] for c in MODE_CASES])
def test_every_mode_becomes_rgb_in_a_defined_way(desc, img, fmt, pixel, tol):
    out = load_image(encode(img, fmt), desc)
    assert_rgb(out, img.size)
    assert np.abs(np.subtract(out.getpixel((0, 0)), pixel)).max() <= tol, out.getpixel((0, 0))
    x = image_to_input(prepare_image(encode(img, fmt), desc))
    assert x.shape == (12288, 1) and x.dtype == np.float64 and 0 <= x.min() <= x.max() <= 1


def test_palette_with_transparent_entry_is_composited_on_white():
    img = Image.new("P", (8, 6), 1)
    img.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    for fmt in ("PNG", "GIF"):
        out = load_image(encode(img, fmt, transparency=1), f"p.{fmt}")
        assert out.getpixel((0, 0)) == (255, 255, 255)
        opaque = load_image(encode(img, fmt), f"p.{fmt}")
        assert opaque.getpixel((0, 0)) == (0, 0, 255)


def test_colour_key_transparency_is_composited_on_white():
    out = load_image(encode(Image.new("RGB", (5, 5), (1, 2, 3)), "PNG", transparency=(1, 2, 3)), "key.png")
    assert out.getpixel((0, 0)) == (255, 255, 255)
    out = load_image(encode(Image.new("L", (5, 5), 9), "PNG", transparency=9), "key-l.png")
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_greyscale_is_scaled_to_8_bits():
    a = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16")
    out = load_image(encode(img, "PNG"), "deep.png")
    assert [out.getpixel((i, 0)) for i in range(3)] == [(0, 0, 0), (100, 100, 100), (255, 255, 255)]


@pytest.mark.parametrize(
    "mode,values,expected",
    [
        ("F", [0.0, 0.25, 1.0], [0, 64, 255]),  # floats in [0, 1] are scaled by 255
        ("F", [0.0, 100.0, 1e9], [0, 100, 255]),  # larger floats are clipped to [0, 255]
        ("F", [np.nan, -np.inf, np.inf], [0, 0, 255]),
        ("I", [0, 100, 200], [0, 100, 200]),  # 32-bit ints within 0..255 are kept
        ("I", [0, 257 * 100, 70000], [0, 100, 255]),  # otherwise read as 16-bit and scaled
        ("I;16", [0, 257, 65535], [0, 1, 255]),
    ],
)
def test_to_rgb_float_and_integer_modes(mode, values, expected):
    dtype = {"F": np.float32, "I": np.int32, "I;16": np.uint16}[mode]
    img = Image.fromarray(np.array([values], dtype=dtype), mode=None)
    assert img.mode == mode
    out = to_rgb(img)
    assert_rgb(out, (3, 1))
    assert [out.getpixel((i, 0))[0] for i in range(3)] == expected


@pytest.mark.parametrize("orientation,top_is_red", [(1, None), (3, None), (6, True), (8, False)])
def test_exif_orientation_is_applied(orientation, top_is_red):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = load_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95), "phone.jpg")
    if orientation in (1, 3):
        assert out.size == (40, 20)
        left_red = out.getpixel((5, 10))[0] > 200
        assert left_red == (orientation == 1)
    else:
        assert out.size == (20, 40)  # rotated to stand upright
        assert (out.getpixel((10, 5))[0] > 200) == top_is_red


def test_damaged_exif_block_is_ignored_not_fatal():
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG", exif=b"Exif\x00\x00II*\x00garbage!!"))
    out = load_image(bytes(data), "odd-exif.jpg")
    assert_rgb(out, (16, 16))


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_first_frame_of_an_animation(fmt):
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    probe = Image.open(io.BytesIO(buf.getvalue()))
    assert getattr(probe, "n_frames", 1) == 3
    out = load_image(buf.getvalue(), f"anim.{fmt.lower()}")
    assert out.getpixel((10, 10)) == (255, 0, 0)


def test_real_animated_gif(skimage_dir):
    path = skimage_dir / "no_time_for_that_tiny.gif"
    assert Image.open(path).n_frames > 1
    assert_rgb(load_image(path), Image.open(path).size)


EXTREME_SHAPES = [(1, 1), (20000, 1), (1, 20000), (2, 3), (65, 63), (MAX_SIDE, 1), (1, MAX_SIDE), (MAX_SIDE, 7)]


@pytest.mark.parametrize(
    "size, fmt",
    [(size, fmt) for fmt in ["PNG", "JPEG", "BMP", "GIF", "WEBP"] for size in EXTREME_SHAPES
     if not (fmt == "WEBP" and max(size) > 16383)  # WebP cannot hold a side over 16383 pixels,
     and not (fmt == "JPEG" and max(size) > 65500)],  # nor libjpeg write one over 65500
)
def test_extreme_shapes_are_predicted(size, fmt):
    img = Image.new("RGB", size, (180, 40, 40))
    data = encode(img, fmt)
    assert_rgb(load_image(data, "shape"), size)
    small = prepare_image(data, "shape")
    assert_rgb(small, (64, 64))
    assert image_to_input(small).shape == (12288, 1)


@pytest.mark.parametrize("name", ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "camera.png",
                                  "logo.png", "hubble_deep_field.jpg"])
def test_real_photos_every_kind_of_source(skimage_dir, name):
    path = skimage_dir / name
    if not path.exists():
        pytest.skip(f"{name} not bundled with this scikit-image")
    data = path.read_bytes()
    expected = prepare_image(path)
    for source in (str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data), open(path, "rb")):
        assert np.array_equal(np.asarray(prepare_image(source, name)), np.asarray(expected))
    upload = io.BytesIO(data)
    upload.read()  # an upload already read once (Streamlit reruns the script) still decodes
    assert_rgb(prepare_image(upload, name), (64, 64))


@pytest.fixture(scope="module")
def photo_64mp():
    """A 64-megapixel (9248×6936) smooth photo-like picture as an RGB array."""
    h, w = 6936, 9248
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    return np.stack([(x + y) / 2, np.broadcast_to(y, (h, w)), np.broadcast_to(x, (h, w))], -1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_64_megapixel_photo_is_predicted(photo_64mp, fmt):
    img = Image.fromarray(photo_64mp)
    assert img.width * img.height >= 64_000_000
    data = encode(img, fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 1}))
    small = prepare_image(data, f"camera.{fmt.lower()}")
    assert_rgb(small, (64, 64))
    # the small picture is the big one shrunk: corners keep their colours
    a = np.asarray(small).astype(int)
    assert abs(a[0, 0, 1] - 0) < 12 and abs(a[-1, -1, 1] - 255) < 12
    assert MAX_PIXELS >= 64_000_000


# --------------------------------------------------------------------------- bombs
def _jpeg_with_size(w: int, h: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _gif_with_size(w: int, h: int) -> bytes:
    data = bytearray(encode(Image.new("P", (10, 10)), "GIF"))
    data[6:10] = struct.pack("<HH", w, h)
    return bytes(data)


def _bmp_with_size(w: int, h: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (10, 10)), "BMP"))
    data[18:26] = struct.pack("<ii", w, h)
    return bytes(data)


def _webp_vp8l(w: int, h: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (10, 10)), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L"
    data[21:25] = ((w - 1) | ((h - 1) << 14)).to_bytes(4, "little")
    return bytes(data)


def _webp_vp8x(w: int, h: int) -> bytes:
    data = bytearray(encode(Image.new("RGBA", (10, 10), (1, 2, 3, 4)), "WEBP"))
    assert data[12:16] == b"VP8X"
    data[24:27] = (w - 1).to_bytes(3, "little")
    data[27:30] = (h - 1).to_bytes(3, "little")
    return bytes(data)


def _webp_vp8(w: int, h: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (10, 10)), "WEBP", quality=50))
    assert data[12:16] == b"VP8 "
    data[26:30] = struct.pack("<HH", w, h)
    return bytes(data)


BOMBS = [
    ("png-100000x100000.png", tiny_png(100_000, 100_000)),
    ("png-100000000x1.png", tiny_png(100_000_000, 1, colour_type=0)),  # a side over MAX_SIDE (issue 12)
    ("png-1x100000000.png", tiny_png(1, 100_000_000, colour_type=0)),
    ("png-65536x1.png", tiny_png(MAX_SIDE + 1, 1, colour_type=0)),
    ("png-just-over-limit.png", tiny_png(10_001, 10_000)),
    ("png-9000x9000-rgba-tiny.png", tiny_png(9000, 9000, colour_type=6)),
    ("png-30000x3000-1bit-tiny.png", tiny_png(30000, 3000, colour_type=0, depth=1)),
    ("png-16bit-8000x8000-tiny.png", tiny_png(8000, 8000, colour_type=2, depth=16)),
    ("gif-65535x65535.gif", _gif_with_size(65535, 65535)),
    ("gif-9000x9000-tiny.gif", _gif_with_size(9000, 9000)),
    ("bmp-100000x100000.bmp", _bmp_with_size(100_000, 100_000)),
    ("bmp-top-down-100000.bmp", _bmp_with_size(100_000, -100_000)),
    ("bmp-9000x9000-tiny.bmp", _bmp_with_size(9000, 9000)),
    ("webp-vp8l-16384x16384.webp", _webp_vp8l(16384, 16384)),
    ("webp-vp8x-20000x20000.webp", _webp_vp8x(20000, 20000)),
    ("webp-vp8-16383x16383.webp", _webp_vp8(16383, 16383)),
    ("jpeg-60000x60000.jpg", _jpeg_with_size(60000, 60000)),
    ("jpeg-65535x1600.jpg", _jpeg_with_size(65535, 1600)),
]


def test_a_progressive_jpeg_scan_bomb_is_refused_before_decoding(chelsea_rgb, no_decoding):
    """Issue 19, A9: every scan is another pass over the whole image; 2 000 repeated scans of a
    10 000×10 000 JPEG took 14.6 s. Here a small photo's last scan is repeated 500 times."""
    real = encode(chelsea_rgb.resize((128, 96)), "JPEG", progressive=True)
    assert jpeg_scans(real) == 10  # libjpeg's progressive script, as real progressive photos have
    assert prepare_image(real, "real.jpg").size == (64, 64)
    no_decoding.clear()
    bomb = jpeg_with_repeated_scan(real, 500)
    assert jpeg_scans(bomb) == 510
    msg = refused(bomb, "scans.jpg", "510 scans")
    assert no_decoding == [], f"pixels were decoded before refusing: {no_decoding}"
    assert "Traceback" not in msg


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "rocket"])
def test_a_scan_bomb_hidden_behind_markers_without_a_length_is_refused(photo, no_decoding):
    """Attack finding 1: TEM (FF 01) has no length, and libjpeg steps over it between scans. A counter
    that read the next two bytes (FF DA) as its length jumped 65 KB and saw 10 scans, not 110, so the
    bomb was decoded (a 4000×4000 one with 2 000 scans: 36.6 s of CPU). Every scan must be counted."""
    from skimage import data as skdata

    real = encode(Image.fromarray(getattr(skdata, photo)()).resize((64, 64)), "JPEG", progressive=True)
    bomb = jpeg_with_repeated_scan(real, 100, before=b"\xff\x01")
    no_decoding.clear()  # scikit-image's photo itself was decoded
    assert jpeg_scans(bomb) == 110
    refused(bomb, "tem.jpg", "110 scans")
    assert no_decoding == [], f"pixels were decoded before refusing: {no_decoding}"


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "rocket"])
@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"progressive": True, "restart_marker_blocks": 1},
                                     {"restart_marker_rows": 1}], ids=["baseline", "progressive",
                                                                       "progressive-restarts", "restarts"])
def test_real_photos_scans_are_counted_through_their_entropy_coded_data(photo, options):
    """Scans are followed as libjpeg reads them: stuffed FF 00 bytes and restart markers (FF D0-D7,
    here one every 8×8 block) inside the entropy-coded data, fill bytes (FF FF) before a marker, TEM
    between scans; the real photos, baseline and progressive, still load."""
    from skimage import data as skdata

    real = encode(Image.fromarray(getattr(skdata, photo)()), "JPEG", **options)
    scans = 10 if options.get("progressive") else 1
    assert real.count(b"\xff\x00") > 0
    assert jpeg_scans(real) == scans
    assert prepare_image(real, f"{photo}.jpg").size == (64, 64)
    padded = real.replace(b"\xff\xda", b"\xff\xff\xff\xda")  # fill bytes before every SOS
    assert jpeg_scans(padded) == scans
    assert prepare_image(padded, f"{photo}-fill.jpg").size == (64, 64)
    repeated = jpeg_with_repeated_scan(real, 3, before=b"\xff\xff\xff\x01")  # restarts inside, fill, TEM
    assert jpeg_scans(repeated) == scans + 3


def test_a_jpeg_stream_the_scan_counter_cannot_follow_is_refused(chelsea_rgb):
    """Fail closed: a marker no decoder accepts (reserved FF 02-BF, a second SOI) or a segment length
    under 2 is refused, never skipped over by a guess that could hide scans behind it."""
    real = encode(chelsea_rgb.resize((64, 48)), "JPEG", progressive=True)
    eoi = real.rindex(b"\xff\xd9")
    for name, bad in [("reserved.jpg", b"\xff\x02\x00\x04"), ("soi.jpg", b"\xff\xd8"),
                      ("length.jpg", b"\xff\xfe\x00\x01")]:
        refused(real[:eoi] + bad + real[eoi:], name, "damaged")
    fills = real.replace(b"\xff\xda", b"\xff" * 1_000 + b"\xda", 1)  # Pillow reads these one by one
    refused(fills, "fills.jpg", "segments")


def test_a_jpeg_of_countless_segments_is_refused_before_pillow_parses_them(chelsea_rgb, monkeypatch):
    """Pillow reads a JPEG's segments one by one in Python: 1 000 000 empty comments (4 MB, a few KB
    zipped) took 2 s of CPU to open. A photo has a few dozen segments."""
    from PIL import Image as PILImage

    real = encode(chelsea_rgb.resize((64, 48)), "JPEG")
    sos = real.index(b"\xff\xda")
    bomb = real[:sos] + b"\xff\xfe\x00\x02" * 20_000 + real[sos:]  # 20 000 empty comments, 80 KB
    opened = []
    real_open = PILImage.open
    monkeypatch.setattr(PILImage, "open", lambda *a, **k: (opened.append(a), real_open(*a, **k))[1])
    refused(bomb, "comments.jpg", "segments")
    assert opened == []  # refused before Pillow read a segment


@pytest.mark.parametrize("where", ["before the pixels", "among the pixels"])
def test_a_png_of_countless_empty_chunks_is_refused_before_pillow_parses_them(chelsea_rgb, where, monkeypatch):
    """Pillow handles each PNG chunk in Python: 300 000 empty ones (3.6 MB, a few KB zipped) took 1 s."""
    from PIL import Image as PILImage

    real = encode(chelsea_rgb.resize((64, 48)), "PNG")
    at = real.index(b"IDAT") - 4 if where == "before the pixels" else real.index(b"IEND") - 4
    spam = png_chunk(b"IDAT" if where == "among the pixels" else b"zzZz", b"") * 20_000  # 240 KB
    opened = []
    real_open = PILImage.open
    monkeypatch.setattr(PILImage, "open", lambda *a, **k: (opened.append(a), real_open(*a, **k))[1])
    refused(real[:at] + spam + real[at:], "chunks.png", "chunks")
    assert opened == []
    assert prepare_image(real, "real.png").size == (64, 64)  # an ordinary PNG is not


def test_scan_count_skips_segments_and_stops_at_the_end_of_the_picture(chelsea_rgb):
    """Bytes FF DA inside a comment are not a scan; nor are a later picture's (an MPO's second image)."""
    small = chelsea_rgb.resize((32, 24))
    noisy = encode(small, "JPEG", comment=b"\xff\xda" * 500)
    assert jpeg_scans(noisy) == 1
    assert jpeg_scans(encode(small, "JPEG") + encode(small, "JPEG", progressive=True)) == 1
    assert prepare_image(noisy, "comment.jpg").size == (64, 64)


@pytest.mark.parametrize("name,data", BOMBS, ids=[b[0] for b in BOMBS])
def test_decompression_bombs_are_refused_from_the_header(name, data, no_decoding):
    assert len(data) < 2000  # tiny files claiming huge dimensions
    msg = refused(data, name)
    assert any(w in msg for w in ("too large", "decompression bomb", "truncated")), msg
    assert no_decoding == [], f"pixels were decoded before refusing: {no_decoding}"


def test_pillow_globals_are_never_changed(chelsea_rgb):
    before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)
    load_image(encode(chelsea_rgb, "PNG"), "c.png")
    with pytest.raises(ImageError):
        load_image(BOMBS[0][1], "bomb.png")
    with pytest.raises(ImageError):
        load_image(encode(chelsea_rgb, "JPEG")[:2000], "cut.jpg")
    assert (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS) == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --------------------------------------------------------------------------- other formats
def _other_formats():
    img = Image.new("RGB", (20, 20), "red")
    out = []
    for fmt in ["TIFF", "ICO", "PPM", "TGA", "PCX", "SGI", "PDF", "EPS", "DDS", "QOI", "JPEG2000", "AVIF",
                "ICNS", "DIB", "XBM", "MSP", "SPIDER", "PALM"]:
        src = img.convert("1") if fmt in ("XBM", "MSP", "PALM") else img.convert("F") if fmt == "SPIDER" else img
        try:
            out.append((fmt, encode(src, fmt)))
        except Exception:  # this Pillow cannot write it: nothing to test
            continue
    out += [
        ("HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64),
        ("PSD", b"8BPS\x00\x01" + b"\x00" * 64),
        ("MP4", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64),
        ("WAV", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64),
        ("ZIP", b"PK\x03\x04" + b"\x00" * 64),
        ("ELF", b"\x7fELF\x02\x01\x01" + b"\x00" * 64),
        ("NPY", b"\x93NUMPY\x01\x00" + b"\x00" * 64),
    ]
    return out


OTHER_FORMATS = _other_formats()


@pytest.mark.parametrize("fmt,data", OTHER_FORMATS, ids=[f for f, _ in OTHER_FORMATS])
def test_formats_outside_the_allow_list_are_refused(fmt, data, tmp_path):
    path = tmp_path / f"picture-{fmt.lower()}.jpg"  # the name's suffix is not trusted either
    path.write_bytes(data)
    msg = refused(path, str(path))
    assert "accept" in msg or "not an image" in msg or "text file" in msg, msg


def test_allow_list_is_what_it_says():
    assert set(ALLOWED_FORMATS) == {"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF"}


def test_mpo_multi_picture_jpeg_is_accepted():
    frames = [Image.new("RGB", (16, 16), "red"), Image.new("RGB", (16, 16), "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    assert load_image(buf.getvalue(), "stereo.mpo").getpixel((8, 8))[0] > 200


SVGS = [
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
    b'\xef\xbb\xbf  \n<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x"><svg/>',
    b'<!-- drawn by hand -->\n<svg viewBox="0 0 1 1"><script>alert(1)</script></svg>',
]


@pytest.mark.parametrize("i", range(len(SVGS)))
def test_svg_is_refused(i):
    refused(SVGS[i], f"drawing-{i}.svg", "SVG")


# --------------------------------------------------------------------------- truncated & corrupt
@pytest.fixture(scope="module")
def valid_files(chelsea_rgb):
    small = chelsea_rgb.resize((120, 80))
    return {
        "PNG": encode(small, "PNG"),
        "JPEG": encode(small, "JPEG", quality=90),
        "progressive JPEG": encode(small, "JPEG", progressive=True),
        "GIF": encode(small.convert("P"), "GIF"),
        "BMP": encode(small, "BMP"),
        "WEBP": encode(small, "WEBP", quality=80),
        "lossless WEBP": encode(small, "WEBP", lossless=True),
    }


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("kind", ["PNG", "JPEG", "progressive JPEG", "GIF", "BMP", "WEBP", "lossless WEBP"])
def test_truncated_files_are_refused(valid_files, kind, fraction):
    data = valid_files[kind]
    cut = data[: max(1, int(len(data) * fraction))]
    refused(cut, f"cut-{kind}-{fraction}.img")


def _flip(data: bytes, offset: int, value: int | None = None) -> bytes:
    b = bytearray(data)
    b[offset] = (b[offset] ^ 0xFF) if value is None else value
    return bytes(b)


def test_corrupt_files_are_refused(valid_files):
    png, gif, bmp, webp = (valid_files[k] for k in ("PNG", "GIF", "BMP", "WEBP"))
    idat = png.index(b"IDAT")
    cases = {
        "png-bad-ihdr-crc.png": _flip(png, 29),
        "png-bad-colour-type.png": png[:25] + b"\x07" + png[26:],
        "png-zlib-garbage.png": png[: idat + 4] + b"\xde\xad\xbe\xef" * 8 + png[idat + 36:],
        "png-no-idat.png": png[:33] + png[-12:],
        "gif-bad-lzw-size.gif": _flip(gif, gif.index(b",") + 10, 0x0F),
        "gif-no-image.gif": gif[:13 + 3 * 256] + b";",
        "bmp-bad-header-size.bmp": bmp[:14] + b"\x07\x00\x00\x00" + bmp[18:],
        "bmp-bad-bit-count.bmp": bmp[:28] + b"\x07\x00" + bmp[30:],
        "webp-bad-chunk.webp": webp[:12] + b"XXXX" + webp[16:],
        "webp-riff-only.webp": webp[:12],
        "jpeg-header-only.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        "jpeg-soi-eoi.jpg": b"\xff\xd8\xff\xd9",
        "png-signature-only.png": b"\x89PNG\r\n\x1a\n",
    }
    for name, data in cases.items():
        refused(data, name)


@pytest.mark.parametrize("source_kind", ["bytes", "path", "bytesio", "file"])
def test_zero_byte_files_are_refused(tmp_path, source_kind):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    source = {"bytes": b"", "path": path, "bytesio": io.BytesIO(b""), "file": open(path, "rb")}[source_kind]
    refused(source, "empty.jpg", "empty")


TEXT_NAMED_JPG = [
    ("notes.jpg", b"Dear teacher, here is my cat.\n", "text file"),
    ("page.jpg", b"<!DOCTYPE html>\n<html><head><title>Cat</title></head><body><img src=cat.jpg></body></html>",
     "HTML page"),
    ("saved.jpg", b"<html lang=en><body>404 Not Found</body></html>", "HTML page"),
    ("bom.jpg", b"\xef\xbb\xbf<!doctype html><html></html>", "HTML page"),
    ("data.jpg", b'{"cat": true, "url": "https://example.org/cat.jpg"}', "text file"),
    ("table.jpg", b"label,pixel0,pixel1\ncat,0,255\n", "text file"),
    ("script.jpg", b"#!/bin/sh\nrm -rf /\n", "text file"),
    ("feed.jpg", b'<?xml version="1.0"?><rss><channel/></rss>', "XML"),
    ("utf16.jpg", "hello cat".encode("utf-16"), "not an image"),
    ("binary.jpg", bytes(range(256)) * 4, "not an image"),
    ("one-byte.jpg", b"\xff", "not an image"),
    ("jpeg-magic-only.jpg", b"\xff\xd8\xff", "damaged"),
]


@pytest.mark.parametrize("name,data,words", TEXT_NAMED_JPG, ids=[t[0] for t in TEXT_NAMED_JPG])
def test_text_and_html_renamed_jpg_are_refused(tmp_path, name, data, words):
    path = tmp_path / name
    path.write_bytes(data)
    refused(path, name, words)


@pytest.mark.parametrize("source,words", [
    (12, "expected a file path"), (None, "expected a file path"), (3.5, "expected a file path"),
    (io.StringIO("text"), "binary"),
])
def test_sources_that_are_not_files(source, words):
    refused(source, "upload", words)


def test_missing_file_and_folder(tmp_path):
    refused(tmp_path / "nope.jpg", "nope.jpg", "no such file")
    refused(tmp_path, "folder", "folder")


def test_image_to_input_refuses_wrong_shapes():
    for shape in [(64, 64), (64, 64, 4), (32, 32, 3), (12288,)]:
        with pytest.raises(ImageError):
            image_to_input(np.zeros(shape, dtype=np.uint8))
