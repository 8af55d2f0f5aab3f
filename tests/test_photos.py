"""Your own photos as a dataset (catdnn.photos): real image files in, a dataset in the course's layout out."""

from __future__ import annotations

import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

from catdnn import DataError, load_dataset, photos
from catdnn.data import IMPORTED_FILES, MANIFEST
from catdnn.images import prepare_image
from tests.photo_support import chelsea_bytes, photo_bytes, photo_tree, write_tree, zip_bytes


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh CATDNN_HOME for each test: imported datasets land in home/datasets."""
    home = tmp_path / "home"
    monkeypatch.setenv("CATDNN_HOME", str(home))
    return home


def test_a_folder_of_real_photos_becomes_a_dataset(tmp_path, home):
    files = photo_tree(8, 6, extra={
        "cat/chelsea.jpg": chelsea_bytes(),
        "cat/2024/summer/nested.png": photo_bytes(7, "PNG"),  # below a class folder: still a cat
        "cat/notes.txt": b"my cats, by name",
        "non-cat/broken.jpg": photo_bytes(8)[:300],  # truncated
        "non-cat/model.npz": b"PK\x03\x04 not an image",
        "loose.jpg": photo_bytes(9),  # in no class folder
        "dog/rex.jpg": photo_bytes(10),  # not a class folder
        ".DS_Store": b"\x00\x00\x00\x01Bud1",  # hidden: ignored, not listed
    })
    top = write_tree(tmp_path / "my pets", files)
    info = photos.import_photos(top)
    assert info.name == "my pets" and not info.cached
    assert info.folder.parent == home / "datasets"
    assert info.m_train + info.m_test == 10 + 6
    assert info.counts["train"]["cat"] + info.counts["test"]["cat"] == 10
    skipped = {s.name: s.reason for s in info.skipped}
    assert set(skipped) == {"cat/notes.txt", "non-cat/broken.jpg", "non-cat/model.npz", "loose.jpg", "dog/rex.jpg"}
    assert "text file" in skipped["cat/notes.txt"]
    assert "JPEG" in skipped["non-cat/broken.jpg"]  # truncated: the decoder says so
    assert "ZIP archive" in skipped["non-cat/model.npz"]
    assert "not inside a cat/ or non-cat/ folder" in skipped["loose.jpg"]
    assert "dog/" in skipped["dog/rex.jpg"]

    ds = load_dataset(info.folder)  # what a worker process does with the folder
    assert ds.imported and ds.name == "my pets" and ds.source == info.folder
    assert ds.classes == ("non-cat", "cat")
    assert (ds.train.m, ds.test.m) == (info.m_train, info.m_test)
    assert ds.train.X.shape == (12288, ds.train.m) and ds.train.Y.shape == (1, ds.train.m)
    # every image is the safe decoder's 64×64 RGB image of one of the files, with its folder's label
    expected = {name: np.asarray(prepare_image(content)) for name, content in files.items()
                if name.split("/")[0] in ("cat", "non-cat") and name not in skipped}
    for split in (ds.train, ds.test):
        for img, label in zip(split.images, split.labels):
            match = [n for n, e in expected.items() if np.array_equal(e, img)]
            assert len(match) == 1 and (match[0].startswith("cat/") == (label == 1))
            expected.pop(match[0])
    assert not expected  # every readable photo is in exactly one split


def test_a_zip_with_a_top_folder_imports_like_the_folder(tmp_path, home):
    files = photo_tree(5, 5, top="holiday")
    files["__MACOSX/holiday/cat/._cat_000.jpeg"] = b"\x00\x05\x16\x07 resource fork"
    info = photos.import_photos(zip_bytes(files), name="holiday")
    assert info.skipped == () and info.m_train + info.m_test == 10
    folder_info = photos.import_photos(write_tree(tmp_path / "holiday", {k: v for k, v in files.items()
                                                                         if not k.startswith("__MACOSX")}))
    zipped, unzipped = load_dataset(info.folder), load_dataset(folder_info.folder)
    for a, b in ((zipped.train, unzipped.train), (zipped.test, unzipped.test)):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


def test_a_zip_file_on_disk_and_an_upload_like_object(tmp_path, home):
    content = zip_bytes(photo_tree(3, 3))
    path = tmp_path / "pets.zip"
    path.write_bytes(content)
    assert photos.import_photos(path).name == "pets"
    uploaded = io.BytesIO(content)  # Streamlit's UploadedFile is a BytesIO
    assert photos.import_photos(uploaded, name="pets").m_train == 4


@pytest.mark.parametrize("n_cat, n_other, fraction", [(50, 30, 0.2), (7, 3, 0.2), (2, 2, 0.2), (40, 9, 0.5)])
def test_the_split_is_stratified(n_cat, n_other, fraction):
    labels = np.array([1] * n_cat + [0] * n_other)
    train, test = photos.stratified_split(labels, fraction, seed=1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(labels.size))
    for c, n in ((1, n_cat), (0, n_other)):
        in_test = int(np.sum(labels[test] == c))
        assert in_test == min(max(round(fraction * n), 1), n - 1)
    # the same seed gives the same split; another seed another one (for a set this size)
    again = photos.stratified_split(labels, fraction, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((train, test), again))
    if labels.size > 10:
        other = photos.stratified_split(labels, fraction, seed=2)
        assert not np.array_equal(np.sort(test), np.sort(other[1]))


def test_the_imported_split_is_stratified_and_reproducible(tmp_path, home):
    top = write_tree(tmp_path / "big", photo_tree(30, 20))
    a = photos.import_photos(top)
    assert a.counts == {"train": {"cat": 24, "non-cat": 16}, "test": {"cat": 6, "non-cat": 4}}
    b = photos.import_photos(top, home=tmp_path / "elsewhere")  # imported afresh, elsewhere
    assert not b.cached
    da, db = load_dataset(a.folder), load_dataset(b.folder)
    assert np.array_equal(da.test.images, db.test.images) and np.array_equal(da.train.labels, db.train.labels)
    c = photos.import_photos(top, seed=7)
    assert c.folder != a.folder
    assert not np.array_equal(load_dataset(c.folder).test.images, da.test.images)


def test_the_hdf5_cache_round_trip(tmp_path, home):
    top = write_tree(tmp_path / "pets", photo_tree(4, 4, extra={"cat/x.txt": b"hello"}))
    first = photos.import_photos(top)
    folder = first.folder
    # the course's layout inside, under the imported dataset's own file names
    with h5py.File(folder / IMPORTED_FILES["train"], "r") as h:
        assert set(h) == {"train_set_x", "train_set_y", "list_classes"}
        assert h["train_set_x"].dtype == np.uint8 and h["train_set_x"].shape[1:] == (64, 64, 3)
        assert h["train_set_y"].dtype == np.int64
        assert [c.decode() for c in h["list_classes"][()]] == ["non-cat", "cat"]
    with h5py.File(folder / IMPORTED_FILES["test"], "r") as h:
        assert set(h) == {"test_set_x", "test_set_y", "list_classes"}
    # importing the same photos again reuses the cache, skipped files included
    again = photos.import_photos(top)
    assert again.cached and again.folder == folder and again.skipped == first.skipped
    assert [d.folder for d in photos.list_datasets()] == [folder]
    assert photos.read_info(folder).counts == first.counts
    # a changed photo is a new import
    (top / "cat" / "cat_000.jpeg").write_bytes(photo_bytes(99))
    os.utime(top / "cat" / "cat_000.jpeg", ns=(1, 1))
    assert photos.import_photos(top).folder != folder


def test_a_damaged_cache_is_refused_with_a_clear_message(tmp_path, home):
    info = photos.import_photos(write_tree(tmp_path / "pets", photo_tree(3, 3)))
    path = info.folder / IMPORTED_FILES["test"]
    with h5py.File(path, "r+") as h:
        h["test_set_y"][0] = 1 - h["test_set_y"][0]  # a flipped label
    with pytest.raises(DataError, match="differ from those recorded when the photos were imported"):
        load_dataset(info.folder)
    load_dataset(info.folder, verify=False)  # the structure is still fine
    (info.folder / MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="not a readable dataset manifest"):
        load_dataset(info.folder)
    assert photos.list_datasets() == []  # a broken dataset is not offered


def test_the_course_files_are_always_checked_against_the_course(data_dir, tmp_path, home):
    """A manifest next to the course's file names changes nothing: their checksums still apply."""
    info = photos.import_photos(write_tree(tmp_path / "pets", photo_tree(3, 3)))
    folder = tmp_path / "mixed"
    folder.mkdir()
    for f in ("train_catvnoncat.h5", "test_catvnoncat.h5"):
        (folder / f).write_bytes((data_dir / f).read_bytes())
    for f in (*IMPORTED_FILES.values(), MANIFEST):
        (folder / f).write_bytes((info.folder / f).read_bytes())
    with h5py.File(folder / "train_catvnoncat.h5", "r+") as h:
        h["train_set_y"][0] = 1 - h["train_set_y"][0]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["content_sha256"]  # a valid manifest, which must not be used for the course's files
    with pytest.raises(DataError, match="differ from the published cat/non-cat dataset"):
        load_dataset(folder)


@pytest.mark.parametrize("files, message", [
    ({"cat/a.jpg": photo_bytes(1), "cat/b.jpg": photo_bytes(2)}, "found no non-cat/ folder"),
    ({"dogs/a.jpg": photo_bytes(1), "cats-and-dogs/b.jpg": photo_bytes(2)}, "found no cat/ folder and no non-cat/"),
    ({"cat/a.jpg": photo_bytes(1), "cat/b.jpg": photo_bytes(2), "non-cat/c.jpg": photo_bytes(3),
      "non-cat/d.txt": b"x"}, "too few readable photos in non-cat/"),
])
def test_unusable_layouts_get_one_clear_message(files, message, home):
    with pytest.raises(DataError, match=message):
        photos.import_photos(zip_bytes(files), name="mine")
    assert photos.list_datasets() == []


def test_class_folder_names(home):
    files = {"Cats/a.jpg": photo_bytes(1), "Cats/b.png": photo_bytes(2, "PNG"),
             "Not_Cat/c.jpg": photo_bytes(3), "Not_Cat/d.jpg": photo_bytes(4)}
    info = photos.import_photos(zip_bytes(files), name="aliases")
    assert info.counts["train"] == {"cat": 1, "non-cat": 1} and info.counts["test"] == {"cat": 1, "non-cat": 1}


def test_not_a_zip(home, tmp_path):
    with pytest.raises(DataError, match="not a zip file"):
        photos.import_photos(b"hello, I am a text file", name="notes")
    path = tmp_path / "photo.jpg"
    path.write_bytes(photo_bytes(1))
    with pytest.raises(DataError, match="not a zip file"):
        photos.import_photos(path)
    with pytest.raises(DataError, match="no such file or folder"):
        photos.import_photos(tmp_path / "missing.zip")


def test_a_damaged_entry_is_skipped_not_fatal(home):
    files = photo_tree(3, 3)
    files["cat/damaged.bmp"] = photo_bytes(5, "BMP", size=(64, 64))
    content = bytearray(zip_bytes(files))
    # corrupt the damaged entry's compressed data in place (the directory is intact)
    with zipfile.ZipFile(io.BytesIO(bytes(content))) as zf:
        info = zf.getinfo("cat/damaged.bmp")
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 10, start + 60):
        content[i] ^= 0xFF
    result = photos.import_photos(bytes(content), name="damaged")
    assert [s.name for s in result.skipped] == ["cat/damaged.bmp"]
    assert "damaged" in result.skipped[0].reason
    assert result.m_train + result.m_test == 6


def test_progress_is_reported_per_photo(home):
    seen = []
    photos.import_photos(zip_bytes(photo_tree(3, 2, extra={"cat/x.txt": b"x"})), name="p",
                         progress=lambda done, total, name: seen.append((done, total)))
    assert seen == [(i, 5) for i in range(1, 6)]  # an upload's x.txt is refused from its header, never decoded


def test_resolve_dataset_for_the_cli(data_dir, tmp_path, home):
    top = write_tree(tmp_path / "pets", photo_tree(3, 3))
    folder, info = photos.resolve_dataset(top)
    assert info is not None and folder == info.folder
    assert photos.resolve_dataset(folder) == (folder, photos.read_info(folder))  # an imported folder
    assert photos.resolve_dataset(folder / IMPORTED_FILES["train"])[0] == folder  # one of its .h5 files
    assert photos.resolve_dataset("pets")[0] == folder  # its name
    assert photos.resolve_dataset(data_dir / "test_catvnoncat.h5") == (data_dir, None)  # the course's pair
    with pytest.raises(DataError, match="no such file or folder, nor an imported dataset"):
        photos.resolve_dataset("nobody-imported-this")


def test_files_beside_the_photos_folder_are_skipped_and_listed(home):
    files = photo_tree(3, 3, top="pets", extra={"readme.txt": b"x", "other/cat/a.jpg": photo_bytes(5)})
    info = photos.import_photos(zip_bytes(files), name="pets")
    assert info.m_train + info.m_test == 6
    reasons = {s.name: s.reason for s in info.skipped}
    assert set(reasons) == {"readme.txt", "other/cat/a.jpg"}
    assert "outside pets/" in reasons["other/cat/a.jpg"]


def test_a_jpeg_scan_bomb_behind_tem_markers_in_a_zip_is_skipped_and_listed(home):
    """Attack finding 1, through an import: a progressive JPEG whose last scan is repeated 100 times,
    each copy after a TEM marker (FF 01, no length), is refused by the scan limit, not decoded."""
    from PIL import Image
    from skimage import data as skdata

    from tests.robustness.robustness_helpers import jpeg_with_repeated_scan

    buf = io.BytesIO()
    Image.fromarray(skdata.chelsea()).resize((64, 64)).save(buf, format="JPEG", progressive=True)
    bomb = jpeg_with_repeated_scan(buf.getvalue(), 100, before=b"\xff\x01")
    info = photos.import_photos(zip_bytes(photo_tree(3, 3, extra={"cat/bomb.jpg": bomb})), name="tem")
    assert info.m_train + info.m_test == 6
    reasons = {s.name: s.reason for s in info.skipped}
    assert set(reasons) == {"cat/bomb.jpg"}
    assert "110 scans" in reasons["cat/bomb.jpg"]
