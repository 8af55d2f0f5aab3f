"""Hostile zips of "photos": each is refused whole, from its directory, with one clear message, before
anything is inflated or written; a lying entry inflates no further than it declares."""

from __future__ import annotations

import io
import stat
import struct
import zipfile

import pytest

from catdnn import DataError, photos
from tests.photo_support import photo_bytes, photo_tree, write_tree, zip_bytes


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CATDNN_HOME", str(home))
    return home


def nothing_imported(home) -> bool:
    folder = home / "datasets"
    return not folder.exists() or not [p for p in folder.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("name", ["../evil.jpg", "cat/../../evil.jpg", "/etc/cron.d/evil.jpg",
                                  "C:\\Windows\\evil.jpg", "cat\\..\\..\\evil.jpg", "c:evil.jpg"])
def test_an_entry_escaping_its_folder_is_refused(home, tmp_path, name):
    content = zip_bytes(photo_tree(3, 3, extra={name: photo_bytes(1)}))
    with pytest.raises(DataError, match="would be written outside its folder"):
        photos.import_photos(content, name="escape")
    assert nothing_imported(home)
    assert not (tmp_path / "evil.jpg").exists() and not (home / "evil.jpg").exists()


def test_a_symlink_entry_is_refused(home):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in photo_tree(3, 3).items():
            zf.writestr(name, content)
        link = zipfile.ZipInfo("cat/passwd.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DataError, match="is a symbolic link"):
        photos.import_photos(buf.getvalue(), name="links")
    assert nothing_imported(home)


def test_too_many_files_are_refused(home, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(photos.MAX_FILES + 1):
            zf.writestr(f"cat/{i}.jpg", b"")
    path = tmp_path / "many.zip"  # on this machine (an upload's limit is lower: MAX_UPLOAD_FILES)
    path.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=f"more than {photos.MAX_FILES:,} files"):
        photos.import_photos(path)
    with pytest.raises(DataError, match=f"more than {photos.MAX_UPLOAD_FILES:,} files"):
        photos.import_photos(buf.getvalue(), name="many")
    with pytest.raises(DataError, match="more than"):
        photos.import_photos(zip_bytes(photo_tree(6, 6)), name="few", max_files=10)
    assert nothing_imported(home)


def test_too_many_files_in_a_folder_are_refused(home, tmp_path):
    top = tmp_path / "many"
    for c in ("cat", "non-cat"):
        (top / c).mkdir(parents=True)
        for i in range(6):
            (top / c / f"{i}.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="holds more than"):
        photos.import_photos(top, max_files=10)


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_zip_bomb_is_refused_from_its_directory(home, compression, monkeypatch):
    content = zip_bytes(photo_tree(3, 3, extra={"cat/bomb.bmp": bytes(64 * 2**20)}), compression=compression)
    assert len(content) < 2**20  # 64 MB of zeros in a few KB
    inflated = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: inflated.append(a) or pytest.fail("inflated"))
    with pytest.raises(DataError, match="a zip bomb"):
        photos.import_photos(content, name="bomb")
    assert inflated == [] and nothing_imported(home)


def test_too_much_in_all_is_refused(home, tmp_path, monkeypatch):
    monkeypatch.setattr(photos, "MAX_TOTAL_BYTES", 200_000)
    content = zip_bytes(photo_tree(3, 3, extra={"cat/flat.bmp": bytes(300_000)}))  # a small file, inflating far
    assert len(content) < 100_000
    path = tmp_path / "big.zip"
    path.write_bytes(content)
    with pytest.raises(DataError, match="would inflate to"):
        photos.import_photos(path)
    assert nothing_imported(home)


def test_an_upload_inflating_beyond_its_limit_is_refused(home, monkeypatch):
    """Entries under 4 MiB are not ratio-checked, so an upload's total is bounded lower than a zip on
    this machine's (issue 19, A7/A8: 2 GB from a 20 MB upload would be inflated, twice)."""
    monkeypatch.setattr(photos, "MAX_UPLOAD_TOTAL_BYTES", 200_000)
    content = zip_bytes(photo_tree(30, 30), compression=zipfile.ZIP_STORED)
    with pytest.raises(DataError, match="would inflate to"):
        photos.import_photos(content, name="big")
    assert nothing_imported(home)


def test_overlapping_entries_are_refused(home):
    """The 'better zip bomb': many directory entries share one compressed stream."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in photo_tree(2, 2).items():
            zf.writestr(name, content)
        zf.writestr("cat/big.bmp", photo_bytes(3, "BMP", size=(400, 400)))
        shared = zf.getinfo("cat/big.bmp")
        for i in range(20):  # the same local entry, listed 20 more times under other names
            copy = zipfile.ZipInfo(f"cat/copy{i}.bmp", shared.date_time)
            for attr in ("compress_type", "compress_size", "file_size", "CRC", "header_offset", "flag_bits"):
                setattr(copy, attr, getattr(shared, attr))
            zf.filelist.append(copy)
    with pytest.raises(DataError, match="overlap"):
        photos.import_photos(buf.getvalue(), name="overlap")
    assert nothing_imported(home)


def test_an_entry_that_lies_about_its_size_inflates_no_further(home):
    """The directory says 2,000 bytes; the stream holds 30 MB of zeros: at most 2,001 bytes come out,
    and the entry is skipped as damaged (its CRC cannot match)."""
    files = photo_tree(3, 3, extra={"cat/liar.bmp": bytes(30 * 2**20)})
    content = bytearray(zip_bytes(files))
    at = content.rfind(b"PK\x01\x02", 0, content.find(b"PK\x05\x06"))  # the last directory entry: liar.bmp
    assert content[at + 46: at + 46 + len("cat/liar.bmp")] == b"cat/liar.bmp"
    struct.pack_into("<I", content, at + 24, 2000)  # its uncompressed size
    reads = []
    real_open = zipfile.ZipFile.open

    def spying_open(self, name, *args, **kwargs):
        f = real_open(self, name, *args, **kwargs)
        real_read = f.read
        f.read = lambda n=-1: reads.append(len(data := real_read(n))) or data
        return f

    zipfile.ZipFile.open = spying_open
    try:
        info = photos.import_photos(bytes(content), name="liar")
    finally:
        zipfile.ZipFile.open = real_open
    assert [s.name for s in info.skipped] == ["cat/liar.bmp"] and "damaged" in info.skipped[0].reason
    assert max(reads) < 2**20  # photos of a few KB, and the liar cut at its declared size


def test_a_nested_zip_is_a_skipped_file_not_unpacked(home):
    inner = zip_bytes({"cat/a.bmp": bytes(64 * 2**20)})
    info = photos.import_photos(zip_bytes(photo_tree(3, 3, extra={"cat/inner.zip": inner})), name="nested")
    assert [s.name for s in info.skipped] == ["cat/inner.zip"] and "ZIP archive" in info.skipped[0].reason


# --------------------------------------------------------------------------- what an upload may cost (issue 19, A7, A8)
def datasets_on_disk(home) -> list:
    return sorted(p.name for p in (home / "datasets").iterdir() if not p.name.startswith("."))


def test_the_same_zip_under_another_name_is_the_same_dataset(home):
    content = zip_bytes(photo_tree(3, 3))
    first = photos.import_photos(content, name="holiday")
    again = photos.import_photos(content, name="holiday-copy-2")
    assert again.cached and again.folder == first.folder
    assert len(datasets_on_disk(home)) == 1  # a new name made a new folder of the same arrays


def test_an_upload_holds_at_most_max_upload_files_photos(home, tmp_path, monkeypatch):
    monkeypatch.setattr(photos, "MAX_UPLOAD_FILES", 10)
    content = zip_bytes(photo_tree(6, 6))
    with pytest.raises(DataError, match="more than 10 files"):
        photos.import_photos(content, name="many")
    assert nothing_imported(home)
    path = tmp_path / "many.zip"  # the same zip on this machine (the CLI's user is trusted): imported
    path.write_bytes(content)
    info = photos.import_photos(path)
    assert info.m_train + info.m_test == 12


def test_an_upload_decodes_at_most_max_upload_pixels_counted_from_the_headers(home, tmp_path, monkeypatch):
    """A solid 1000×1000 PNG is a 5 KB file and a million pixels to decode: beyond the upload's pixel
    limit the rest are skipped and listed, never decoded."""
    from PIL import Image

    solid = io.BytesIO()
    Image.new("RGB", (1000, 1000), "white").save(solid, "PNG")
    big = {f"cat/z{i}.png": solid.getvalue() for i in range(1, 5)}
    files = photo_tree(2, 2, extra=big)  # 4 photos of 96×80 pixels, then z1..z4 in cat/
    monkeypatch.setattr(photos, "MAX_UPLOAD_PIXELS", 2_100_000)
    decoded = []
    real_prepare = photos.images.prepare_image
    monkeypatch.setattr(photos.images, "prepare_image", lambda data, name=None: (decoded.append(name),
                                                                                real_prepare(data, name))[1])
    info = photos.import_photos(zip_bytes(files), name="solid")
    assert [s.name for s in info.skipped] == ["cat/z3.png", "cat/z4.png"]
    assert all("megapixels" in s.reason for s in info.skipped)
    assert sorted(decoded) == sorted(set(files) - {"cat/z3.png", "cat/z4.png"})  # refused before decoding
    assert info.m_train + info.m_test == 6
    on_disk = write_tree(tmp_path / "solid", files)  # a folder on this machine: no pixel limit
    assert photos.import_photos(on_disk).skipped == ()


def test_uploads_beyond_the_disk_limit_remove_the_oldest_never_the_machines(home, tmp_path, monkeypatch):
    machine = photos.import_photos(write_tree(tmp_path / "class", photo_tree(3, 3)))  # a teacher's, with the CLI
    first = photos.import_photos(zip_bytes(photo_tree(3, 3)), name="first")
    size = sum(p.stat().st_size for p in first.folder.iterdir())
    monkeypatch.setattr(photos, "MAX_UPLOADS_BYTES", int(2.5 * size))
    second = photos.import_photos(zip_bytes(photo_tree(3, 4)), name="second")
    assert first.folder.exists()  # two uploads fit
    third = photos.import_photos(zip_bytes(photo_tree(4, 3)), name="third")
    assert not first.folder.exists()  # the oldest upload made room
    assert second.folder.exists() and third.folder.exists() and machine.folder.exists()
    assert {d.name for d in photos.list_datasets()} == {"class", "second", "third"}
