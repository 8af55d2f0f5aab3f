"""The CLI's --dataset PATH: a folder of photos, a zip of one, an imported dataset (folder, .h5 or name)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from catdnn import photos
from catdnn.cli import main
from tests.photo_support import photo_tree, write_tree, zip_bytes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CATDNN_HOME", str(home))
    return home


@pytest.fixture
def pets(tmp_path):
    return write_tree(tmp_path / "pets", photo_tree(10, 6, extra={"cat/list.txt": b"Tom, Felix"}))


def test_train_on_a_folder_of_photos(home, pets, capsys):
    code = main(["train", "--dataset", str(pets), "--preset", "two-layer", "--iterations", "30",
                 "--print-every", "10"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "imported 'pets': 13 training and 3 test photos, 1 file(s) skipped" in err
    assert "skipped cat/list.txt: this is a text file" in err
    assert "Cost after iteration 0:" in out and "Test accuracy:" in out
    # the second run reuses the import
    assert main(["info", "--dataset", str(pets)]) == 0
    out, err = capsys.readouterr()
    assert "reused the import of 'pets'" in err
    assert "train: 13 images, 8 cat, 5 non-cat" in out and "test: 3 images, 2 cat, 1 non-cat" in out


def test_info_on_a_zip_an_imported_folder_its_h5_and_its_name(home, tmp_path, capsys):
    path = tmp_path / "holiday.zip"
    path.write_bytes(zip_bytes(photo_tree(5, 5, top="holiday")))
    assert main(["info", "--dataset", str(path)]) == 0
    out, _ = capsys.readouterr()
    [info] = photos.list_datasets()
    assert f"dataset: holiday in {info.folder}" in out
    for given in (info.folder, info.folder / "train_set.h5", "holiday"):
        assert main(["info", "--dataset", str(given)]) == 0
        assert f"in {info.folder}" in capsys.readouterr().out


def test_the_course_dataset_by_dataset_too(data_dir, capsys):
    assert main(["info", "--dataset", str(data_dir)]) == 0
    assert "train: 209 images" in capsys.readouterr().out


def run(*args, **env):
    proc = subprocess.run([sys.executable, "-m", "catdnn", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_errors_are_one_line_and_exit_codes_hold(home, tmp_path, pets):
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_bytes({"cat/a.bmp": bytes(64 * 2**20), "non-cat/b.jpg": b""}))
    proc = run("train", "--dataset", bomb, "--iterations", "10", CATDNN_HOME=str(home))
    assert proc.returncode == 1 and "error: the zip" in proc.stderr and "zip bomb" in proc.stderr
    proc = run("info", "--dataset", tmp_path / "nowhere", CATDNN_HOME=str(home))
    assert proc.returncode == 1 and "no such file or folder, nor an imported dataset" in proc.stderr
    proc = run("train", "--dataset", pets, "--data-dir", pets, "--iterations", "10", CATDNN_HOME=str(home))
    assert proc.returncode == 2 and "give --dataset or --data-dir, not both" in proc.stderr
