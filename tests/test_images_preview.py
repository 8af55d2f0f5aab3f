"""catdnn.images.preview_image: the small upright copy the Predict page shows, and the file's real size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from catdnn.errors import ImageError
from catdnn.images import load_image, prepare_and_preview, prepare_image, preview_image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, : width // 2] = (255, 0, 0)
    a[:, width // 2:] = (0, 0, 255)
    return Image.fromarray(a)


def with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=90, exif=exif.tobytes())


def colour(img: Image.Image, x: float, y: float) -> tuple:
    """The pixel at a fraction (x, y) of the width and height."""
    return img.getpixel((int(x * (img.width - 1)), int(y * (img.height - 1))))


def close(c, target, tol=40) -> bool:
    return all(abs(int(a) - b) <= tol for a, b in zip(c, target))


@pytest.mark.parametrize("fmt,size,expected", [
    ("JPEG", (4000, 3000), (512, 384)),  # a 12-megapixel photo
    ("JPEG", (3000, 4000), (384, 512)),
    ("PNG", (1000, 200), (512, 102)),
    ("WEBP", (800, 800), (512, 512)),
    ("PNG", (100, 80), (100, 80)),  # never enlarged
])
def test_the_longer_side_is_at_most_max_side_and_the_real_size_is_returned(fmt, size, expected):
    data = encode(halves(*size), fmt)
    preview, original = preview_image(data, "photo")
    assert original == size
    assert preview.size == expected and preview.mode == "RGB"
    assert close(colour(preview, 0.1, 0.5), (255, 0, 0)) and close(colour(preview, 0.9, 0.5), (0, 0, 255))


def test_max_side_is_respected():
    preview, original = preview_image(encode(halves(2000, 1000), "JPEG"), "photo", max_side=100)
    assert preview.size == (100, 50) and original == (2000, 1000)
    with pytest.raises(ValueError):
        preview_image(encode(halves(20, 10), "PNG"), "photo", max_side=0)


def test_a_large_jpeg_is_decoded_at_reduced_scale(monkeypatch):
    """JPEG draft mode: the 4000×3000 photo is decoded at 1/4 scale (1000×750), never at full size."""
    from PIL import JpegImagePlugin

    decoded = []
    load = JpegImagePlugin.JpegImageFile.load

    def spy(self):
        out = load(self)
        decoded.append(self.size)
        return out

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    preview, original = preview_image(encode(halves(4000, 3000), "JPEG"), "photo")
    assert decoded and max(decoded) == (1000, 750), decoded
    assert original == (4000, 3000) and preview.size == (512, 384)

    decoded.clear()
    load_image(encode(halves(4000, 3000), "JPEG"), "photo")  # the full-size decode, for comparison
    assert max(decoded) == (4000, 3000)


@pytest.mark.parametrize("orientation,size,left", [
    (1, (400, 200), "left"),
    (6, (200, 400), "top"),  # rotate 90° clockwise to view: the stored left half ends on top
    (8, (200, 400), "bottom"),  # rotate 90° counter-clockwise: the left half ends at the bottom
    (3, (400, 200), "right"),  # upside down
])
def test_exif_orientation_is_respected(orientation, size, left):
    data = with_orientation(halves(400, 200), orientation)
    preview, original = preview_image(data, "phone.jpg")
    assert original == size and preview.size == size
    assert preview.size == load_image(data, "phone.jpg").size
    where = {"left": (0.1, 0.5), "right": (0.9, 0.5), "top": (0.5, 0.1), "bottom": (0.5, 0.9)}
    opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
    assert close(colour(preview, *where[left]), (255, 0, 0)), colour(preview, *where[left])
    assert close(colour(preview, *where[opposite[left]]), (0, 0, 255))


def test_a_large_rotated_photo_reports_its_upright_size():
    preview, original = preview_image(with_orientation(halves(4000, 3000), 6), "phone.jpg")
    assert original == (3000, 4000) and preview.size == (384, 512)


def test_the_preview_looks_like_the_full_decode():
    from skimage import data as skdata

    data = encode(Image.fromarray(skdata.chelsea()), "JPEG", quality=95)  # 451×300
    preview, original = preview_image(data, "chelsea.jpg", max_side=200)
    full = load_image(data, "chelsea.jpg")
    full.thumbnail((200, 200), Image.Resampling.LANCZOS)
    assert original == (451, 300) and preview.size == full.size
    diff = np.abs(np.asarray(preview, np.int16) - np.asarray(full, np.int16))
    assert diff.mean() < 4


@pytest.mark.parametrize("data,words", [
    (b"", "empty"),
    (b"shopping list: milk, eggs\n", "text file"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ""),
    (b"II*\x00" + b"\x00" * 40, "TIFF"),
])
def test_bad_files_raise_image_error_naming_the_file(data, words):
    with pytest.raises(ImageError) as info:
        preview_image(data, "upload.bin")
    assert str(info.value).startswith("upload.bin:") and words in str(info.value)


def test_truncated_and_bomb_images_raise_image_error():
    jpeg = encode(halves(640, 480), "JPEG")
    with pytest.raises(ImageError, match="^cut.jpg: "):
        preview_image(jpeg[: len(jpeg) // 2], "cut.jpg")
    header = encode(halves(8, 8), "PNG")
    bomb = header[:16] + (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big") + header[24:]
    with pytest.raises(ImageError, match="^bomb.png: .*too large"):
        preview_image(bomb, "bomb.png")
    with pytest.raises(ImageError, match="^not-a-file: "):
        preview_image(12345, "not-a-file")


# --------------------------------------------------------------------------- issue 12: big images, shrunk
@pytest.mark.parametrize("size,side", [
    ((4000, 3000), 512), ((3000, 4000), 512), ((1000, 200), 512), ((65535, 1), 512), ((1, 65535), 512),
    ((65535, 1525), 512), ((513, 512), 512), ((512, 513), 512), ((2000, 1000), 100), ((7, 3), 2), ((3, 7), 2),
    ((1001, 999), 333), ((100, 80), 512),
])
def test_the_preview_size_is_the_one_thumbnail_gives(size, side):
    """preview_image resizes to the size Image.thumbnail would give, computed without decoding."""
    from catdnn.images import _thumbnail_size

    img = Image.new("1", size)
    img.thumbnail((side, side))
    assert _thumbnail_size(*size, side) == img.size


def _photo(size) -> Image.Image:
    """scikit-image's cat, enlarged: a real picture with edges, as a big RGB image."""
    from skimage import data as skdata

    return Image.fromarray(skdata.chelsea()).resize(size, Image.Resampling.BICUBIC)


@pytest.mark.parametrize("kind", ["RGB", "P", "RGBA", "L"])
def test_a_big_image_shrunk_in_steps_looks_like_a_direct_lanczos_resize(kind):
    """Box-averaging by an integer factor per axis, then Lanczos over the exact box, is as good as
    converting the whole picture and resizing it with Lanczos (what the preview and the network's
    input would be with unlimited memory)."""
    img = _photo((3001, 2003))
    if kind == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE)
    elif kind == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(Image.linear_gradient("L").resize(img.size))
    elif kind == "L":
        img = img.convert("L")
    data = encode(img, "PNG", compress_level=1)
    full = load_image(data, "big.png")
    preview, original = preview_image(data, "big.png")
    direct = full.resize(preview.size, Image.Resampling.LANCZOS)
    assert original == (3001, 2003) and preview.size == (512, 342)
    diff = np.abs(np.asarray(preview, np.int16) - np.asarray(direct, np.int16))
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())

    from catdnn.images import prepare_image

    small = prepare_image(data, "big.png")
    direct = full.resize((64, 64), Image.Resampling.LANCZOS)
    diff = np.abs(np.asarray(small, np.int16) - np.asarray(direct, np.int16))
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())


@pytest.mark.parametrize("orientation,size,left", [(6, (1000, 3000), "top"), (8, (1000, 3000), "bottom"),
                                                   (3, (3000, 1000), "right"), (1, (3000, 1000), "left")])
def test_a_big_rotated_png_is_shrunk_then_turned(orientation, size, left):
    """A PNG's EXIF orientation is read after its pixels; the reduction factors follow the turn."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(halves(3000, 1000), "PNG", exif=exif.tobytes())
    preview, original = preview_image(data, "phone.png", max_side=300)
    assert original == size
    assert preview.size == ((100, 300) if size[0] < size[1] else (300, 100))
    where = {"left": (0.1, 0.5), "right": (0.9, 0.5), "top": (0.5, 0.1), "bottom": (0.5, 0.9)}
    opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
    assert close(colour(preview, *where[left]), (255, 0, 0)), colour(preview, *where[left])
    assert close(colour(preview, *where[opposite[left]]), (0, 0, 255))


@pytest.mark.parametrize("data", [
    encode(halves(1200, 900), "PNG"),
    encode(halves(4000, 3000), "JPEG"),
    with_orientation(halves(900, 600), 6),
    encode(halves(300, 200).convert("P"), "GIF"),
], ids=["png", "large-jpeg", "rotated-jpeg", "gif"])
def test_one_decode_gives_the_input_and_the_preview(data, monkeypatch):
    """Issue 19, A10: the Predict page decodes each photo once; the network's input is exactly
    prepare_image's (the page's verdict is the CLI's) and the preview looks like preview_image's."""
    from PIL import ImageFile

    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: (loads.append(self.size), real_load(self))[1])
    small, preview, size = prepare_and_preview(data, "photo")
    once = len(loads)
    loads.clear()
    alone = preview_image(data, "photo")
    prepare_image(data, "photo")
    assert once < len(loads)  # fewer decodes than the two calls
    assert np.array_equal(np.asarray(small), np.asarray(prepare_image(data, "photo")))
    assert size == alone[1] and preview.size == alone[0].size
    diff = np.abs(np.asarray(preview, float) - np.asarray(alone[0], float)).mean()
    assert diff < 6, diff
