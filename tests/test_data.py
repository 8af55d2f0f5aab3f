"""The dataset: loading, where it is looked for, validation errors, and the verified download."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest

import catdnn.data as data
from catdnn import DataError, load_dataset
from tests.http_support import serve


def test_loads_the_real_dataset(dataset):
    tr, te = dataset.train, dataset.test
    assert tr.images.shape == (209, 64, 64, 3) and tr.images.dtype == np.uint8
    assert te.images.shape == (50, 64, 64, 3)
    assert (int(tr.labels.sum()), int(te.labels.sum())) == (72, 33)
    assert dataset.classes == ("non-cat", "cat")
    assert tr.X.shape == (12288, 209) and tr.X.dtype == np.float64
    assert tr.X.min() >= 0 and tr.X.max() <= 1
    assert tr.Y.shape == (1, 209)
    # column i is image i flattened in (row, column, channel) order, scaled by 1/255
    np.testing.assert_array_equal(tr.X[:, 5], tr.images[5].reshape(-1) / 255.0)
    assert not tr.X.flags.writeable  # shared, cached: nobody may change it in place


def _copy(data_dir, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in data.FILES.values():
        shutil.copy(data_dir / name, dest / name)
    return dest


def test_search_order(data_dir, tmp_path, monkeypatch):
    default = tmp_path / "default"
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", default)
    env_dir, explicit = _copy(data_dir, tmp_path / "env"), _copy(data_dir, tmp_path / "explicit")
    monkeypatch.setenv("CATDNN_DATA_DIR", str(env_dir))
    assert data.find_data_dir(explicit)[0] == explicit
    assert data.find_data_dir()[0] == env_dir
    monkeypatch.delenv("CATDNN_DATA_DIR")
    assert data.find_data_dir()[0] is None  # data/ is empty: needs downloading
    _copy(data_dir, default)
    assert data.find_data_dir()[0] == default
    assert load_dataset().source == default


def test_missing_files_in_a_named_folder(tmp_path):
    with pytest.raises(DataError, match=r"test_catvnoncat.h5 missing in .*To fix: copy them there, or unset"):
        (tmp_path / "train_catvnoncat.h5").write_bytes(b"x")
        load_dataset(tmp_path)


def test_no_download_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.delenv("CATDNN_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", tmp_path / "data")
    with pytest.raises(DataError, match=r"dataset not found.*run `python -m catdnn download`"):
        load_dataset(download=False)


def _write_h5(path: Path, split="train", x=None, y=None, classes=(b"non-cat", b"cat"), drop=()):
    x = np.zeros((4, 64, 64, 3), np.uint8) if x is None else x
    y = np.array([0, 1, 0, 1]) if y is None else y
    with h5py.File(path, "w") as h:
        if "x" not in drop:
            h[f"{split}_set_x"] = x
        if "y" not in drop:
            h[f"{split}_set_y"] = y
        if "classes" not in drop:
            h["list_classes"] = np.array(classes)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(drop=("x",)), "missing train_set_x"),
        (dict(split="test"), "missing train_set_x"),
        (dict(x=np.zeros((4, 32, 32, 3), np.uint8)), r"\(m, 64, 64, 3\) uint8 images, found \(4, 32, 32, 3\)"),
        (dict(x=np.zeros((4, 64, 64, 3), np.float32)), "float32"),
        (dict(y=np.array([0, 1, 2, 1])), "must be 0 \\(non-cat\\) or 1 \\(cat\\)"),
        (dict(y=np.array([0, 1])), "should hold 4 labels"),
        (dict(classes=(b"a", b"b", b"c")), "should name 2 classes"),
        (dict(), "differ from the published cat/non-cat dataset"),  # valid shape, wrong pixels
    ],
)
def test_wrong_files_are_named_and_explained(tmp_path, kwargs, message):
    path = tmp_path / "train_catvnoncat.h5"
    _write_h5(path, **kwargs)
    with pytest.raises(DataError, match=message) as err:
        data.read_split(path, "train")
    assert str(path) in str(err.value)


def test_not_hdf5_at_all(tmp_path):
    path = tmp_path / "train_catvnoncat.h5"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        data.read_split(path, "train")


def test_truncated_real_file(data_dir, tmp_path):
    path = tmp_path / "train_catvnoncat.h5"
    path.write_bytes((data_dir / path.name).read_bytes()[:100_000])
    with pytest.raises(DataError, match=str(path)):
        data.read_split(path, "train")


# --------------------------------------------------------------------------- download
def test_download_success_with_progress(data_dir, tmp_path):
    dest = tmp_path / "data"
    calls = []
    with serve(data_dir) as url:
        data.download_dataset(dest, urls=[url], progress=lambda *a: calls.append(a))
    for name in data.FILES.values():
        assert (dest / name).read_bytes() == (data_dir / name).read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted(data.FILES.values())  # no .part left
    train = [c for c in calls if c[0] == "train_catvnoncat.h5"]
    assert train[0][1] == 0 and train[-1][1] == train[-1][2] == (data_dir / "train_catvnoncat.h5").stat().st_size
    assert load_dataset(dest).train.m == 209


def test_download_via_load_dataset_into_the_default_folder(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("CATDNN_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", tmp_path / "data")
    with serve(data_dir) as url:
        monkeypatch.setenv("CATDNN_DATA_URL", url)
        monkeypatch.setitem(data.MIRRORS, "train_catvnoncat.h5", [])
        monkeypatch.setitem(data.MIRRORS, "test_catvnoncat.h5", [])
        ds = load_dataset()
    assert ds.source == tmp_path / "data" and ds.test.m == 50


def test_checksum_mismatch_leaves_no_file(tmp_path):
    wrong = tmp_path / "server"
    wrong.mkdir()
    _write_h5(wrong / "train_catvnoncat.h5")  # a valid HDF5 file, but not the dataset
    _write_h5(wrong / "test_catvnoncat.h5", split="test")
    dest = tmp_path / "data"
    with serve(wrong) as url, pytest.raises(DataError, match="checksum mismatch") as err:
        data.download_dataset(dest, urls=[url])
    assert "Offline? Copy" in str(err.value)
    assert list(dest.iterdir()) == []


def test_falls_back_to_the_next_mirror(data_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    dest = tmp_path / "data"
    with serve(empty) as bad, serve(data_dir) as good:
        data.download_dataset(dest, urls=[bad, good])
    assert load_dataset(dest).train.m == 209


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_unreachable(tmp_path):
    dest = tmp_path / "data"
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(DataError, match="could not download train_catvnoncat.h5") as err:
        data.download_dataset(dest, urls=[url], timeout=5)
    assert "127.0.0.1" in str(err.value) and "CATDNN_DATA_DIR" in str(err.value)
    assert list(dest.iterdir()) == []
