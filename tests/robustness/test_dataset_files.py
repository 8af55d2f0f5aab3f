"""Item 6: an interrupted download leaves nothing a later run could take for good, and a corrupt
file in the data folder is detected (by checksum or by content) and reported with its name.

Servers listen on 127.0.0.1 only, in a thread, and every wait is bounded; nothing reaches the
internet. The real dataset is copied into tmp_path before anything is damaged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from catdnn import data
from catdnn.errors import DataError
from tests.http_support import serve

NAMES = ("train_catvnoncat.h5", "test_catvnoncat.h5")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("mode,cut_at", [("cut", 0.5), ("cut", 0.0), ("cut", 0.99), ("stall", 0.3),
                                         ("html", 0), ("flip", 0), ("missing", 0)])
def test_failed_download_leaves_no_file_and_a_later_run_succeeds(data_dir, tmp_path, mode, cut_at):
    dest = tmp_path / "data"
    with serve(data_dir, mode, cut_at) as url, pytest.raises(DataError) as info:
        data.download_dataset(dest, urls=[url], timeout=1.0)
    msg = str(info.value)
    assert "train_catvnoncat.h5" in msg and url in msg, msg
    assert leftovers(dest) == [], f"{mode}: left {leftovers(dest)}"
    # nothing there that a later run could take for good
    with pytest.raises(DataError, match="missing"):
        data.load_dataset(dest, download=False)
    # a later run with a good server downloads again, cleanly
    with serve(data_dir) as url:
        data.download_dataset(dest, urls=[url], timeout=5.0)
    assert leftovers(dest) == sorted(NAMES)
    ds = data.load_dataset(dest)
    assert ds.train.m == 209 and ds.test.m == 50


def test_interrupted_second_file_keeps_the_verified_first(data_dir, tmp_path):
    only_train = tmp_path / "mirror"
    only_train.mkdir()
    shutil.copy(data_dir / NAMES[0], only_train)
    (only_train / NAMES[1]).write_bytes((data_dir / NAMES[1]).read_bytes()[:5000])
    dest = tmp_path / "data"
    with serve(only_train) as url, pytest.raises(DataError, match="test_catvnoncat.h5"):
        data.download_dataset(dest, urls=[url], timeout=2.0)
    assert leftovers(dest) == [NAMES[0]]  # the complete, verified file stays; no partial one
    with serve(data_dir) as url:
        data.download_dataset(dest, urls=[url], timeout=5.0)
    assert data.load_dataset(dest).test.m == 50


# --------------------------------------------------------------------------- corrupt files in data/
@pytest.fixture()
def copy(data_dir, tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for n in NAMES:
        shutil.copy(data_dir / n, folder / n)
    return folder


def _flip_pixel_byte(path: Path, key: str, index: int = 12345) -> None:
    with h5py.File(path, "r") as h:
        offset = h[key].id.get_offset()  # contiguous storage: the raw uint8 pixels start here
    assert offset is not None
    with open(path, "r+b") as f:
        f.seek(offset + index)
        b = f.read(1)
        f.seek(offset + index)
        f.write(bytes([b[0] ^ 0x01]))


def _rewrite(path: Path, **changes) -> None:
    split = "train" if path.name.startswith("train") else "test"
    with h5py.File(path, "r") as h:
        arrays = {k: h[k][()] for k in h}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k.replace("SPLIT", split))
        else:
            arrays[k.replace("SPLIT", split)] = v
    path.unlink()
    with h5py.File(path, "w") as h:
        for k, v in arrays.items():
            h[k] = v


def _corruptions():
    def truncate(fraction):
        def f(p):
            p.write_bytes(p.read_bytes()[: int(p.stat().st_size * fraction)])
        return f

    return {
        "truncated to 1%": truncate(0.01),
        "truncated to half": truncate(0.5),
        "truncated by 1 byte": truncate(0.99999),
        "zero bytes": lambda p: p.write_bytes(b""),
        "text file": lambda p: p.write_text("the dataset, honest"),
        "html error page": lambda p: p.write_text("<html><body>404 Not Found</body></html>"),
        "one pixel bit flipped": lambda p: _flip_pixel_byte(p, "train_set_x" if "train" in p.name else "test_set_x"),
        "last pixel bit flipped": lambda p: _flip_pixel_byte(
            p, "train_set_x" if "train" in p.name else "test_set_x", index=209 * 12288 - 1 if "train" in p.name
            else 50 * 12288 - 1),
        "one label flipped": lambda p: _rewrite(p, SPLIT_set_y=1 - h5py.File(p, "r")[
            "train_set_y" if "train" in p.name else "test_set_y"][()]),
        "labels missing": lambda p: _rewrite(p, SPLIT_set_y=None),
        "images renamed": lambda p: _rewrite(p, SPLIT_set_x=None, images=np.zeros((2, 64, 64, 3), np.uint8)),
        "classes missing": lambda p: _rewrite(p, list_classes=None),
        "images float": lambda p: _rewrite(p, SPLIT_set_x=np.zeros((5, 64, 64, 3))),
        "images 32x32": lambda p: _rewrite(p, SPLIT_set_x=np.zeros((5, 32, 32, 3), np.uint8),
                                            SPLIT_set_y=np.zeros(5, np.int64)),
        "labels 0..2": lambda p: _rewrite(p, SPLIT_set_y=np.arange(5) % 3,
                                          SPLIT_set_x=np.zeros((5, 64, 64, 3), np.uint8)),
        "label count mismatch": lambda p: _rewrite(p, SPLIT_set_y=np.zeros(3, np.int64)),
        "three classes": lambda p: _rewrite(p, list_classes=np.array([b"a", b"b", b"c"])),
        "a folder": lambda p: (p.unlink(), p.mkdir()),
    }


CORRUPTIONS = _corruptions()


@pytest.mark.parametrize("which", [0, 1], ids=["train", "test"])
@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_file_in_the_data_folder_is_detected_and_named(copy, which, how):
    path = copy / NAMES[which]
    CORRUPTIONS[how](path)
    with pytest.raises(DataError) as info:
        data.load_dataset(copy)
    msg = str(info.value)
    assert NAMES[which] in msg, msg
    assert "Traceback" not in msg


def test_swapped_files_are_detected(copy):
    a, b = copy / NAMES[0], copy / NAMES[1]
    tmp = copy / "x"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    with pytest.raises(DataError, match="train_catvnoncat.h5.*not the train file"):
        data.load_dataset(copy)


def test_verify_false_still_refuses_broken_structure(copy):
    (copy / NAMES[0]).write_bytes((copy / NAMES[0]).read_bytes()[:5000])
    with pytest.raises(DataError, match=NAMES[0]):
        data.load_dataset(copy, verify=False)
