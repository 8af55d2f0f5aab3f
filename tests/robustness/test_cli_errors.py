"""The CLI's error paths, run as real subprocesses: exit 1 for a user error and 2 for a usage
error, one ``error: ...`` line (or argparse's usage message) on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from robustness_helpers import encode, hostile_model_files, tiny_png

from catdnn.model_io import save_model

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "catdnn", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def assert_clean(p: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr
    for w in words:
        assert w in p.stderr, p.stderr


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_model) -> Path:
    path = tmp_path_factory.mktemp("m") / "model.npz"
    save_model(tiny_model, path)
    return path


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("imgs")
    files = {
        "empty.jpg": b"",
        "notes.jpg": b"just text\n",
        "page.jpg": b"<!DOCTYPE html><html></html>",
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        "bomb.png": tiny_png(100_000, 100_000),
        "tiny-bomb.png": tiny_png(9000, 9000, colour_type=6),
        "scan.tif": encode(Image.new("RGB", (8, 8)), "TIFF"),
        "cut.jpg": encode(Image.new("RGB", (64, 64), "red"), "JPEG")[:300],
    }
    out = {}
    for name, data in files.items():
        (d / name).write_bytes(data)
        out[name] = d / name
    good = d / "good.png"
    good.write_bytes(encode(Image.new("RGBA", (20000, 1), (0, 0, 0, 0)), "PNG"))
    out["good.png"] = good
    return out


def test_predict_bad_images_each_named_others_still_predicted(model_file, bad_images):
    paths = [str(p) for p in bad_images.values()]
    p = run("predict", "--model", str(model_file), *paths)
    assert_clean(p, 1)
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(paths) - 1, p.stderr
    for name, path in bad_images.items():
        if name != "good.png":
            assert any(line.startswith(f"error: {path}:") for line in errors), (name, p.stderr)
    assert f"{bad_images['good.png']}: " in p.stdout  # the good image is still predicted


def test_predict_missing_image(model_file, tmp_path):
    assert_clean(run("predict", "--model", str(model_file), str(tmp_path / "nope.jpg")), 1, "no such file")


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "npy", "pickle", "nan", "wrong-input"])
def test_predict_with_a_bad_model(kind, tmp_path, model_file, bad_images):
    path = tmp_path / f"{kind}.npz"
    if kind == "text":
        path.write_text("not a model")
    elif kind == "truncated":
        path.write_bytes(model_file.read_bytes()[:1000])
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif kind == "pickle":
        obj = np.empty(1, dtype=object)
        obj[0] = {"evil": True}
        np.savez(path, W1=obj)
    elif kind in ("nan", "wrong-input"):
        with np.load(model_file) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if kind == "nan":
            arrays["W1"] = np.full_like(arrays["W1"], np.nan)
        else:
            arrays["meta"] = np.array(str(arrays["meta"]).replace("12288", "4096"))
        np.savez(path, **arrays)
    p = run("predict", "--model", str(path), str(bad_images["good.png"]))
    assert_clean(p, 1, f"error: {path}:")
    assert p.stdout == ""


def test_predict_with_crafted_model_files(tmp_path, model_file, bad_images):
    """Issue 19, A1: each crafted file is one ``error:`` line naming it, exit 1, no traceback."""
    with np.load(model_file) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for name, data in hostile_model_files(arrays).items():
        path = tmp_path / name
        path.write_bytes(data)
        p = run("predict", "--model", str(path), str(bad_images["good.png"]))
        assert_clean(p, 1, f"error: {path}:")
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert p.stdout == ""


@pytest.mark.parametrize("args,code,words", [
    (["train", "--layers", ""], 2, "empty"),
    (["train", "--layers", "12288,-5,1"], 2, "at least 1"),
    (["train", "--layers", "12288,0,1"], 2, "at least 1"),
    (["train", "--layers", "12288,abc,1"], 2, "not a whole number"),
    (["train", "--layers", "12288,,1"], 2, "empty entry"),
    (["train", "--layers", "100,7,1"], 2, "12288"),
    (["train", "--layers", "12288,7,3"], 2, "last layer"),
    (["train", "--layers", "12288,100000,100000,1"], 2, "MiB"),
    (["train", "--layers", "12288,1000000,1"], 2, "too large"),
    (["train", "--lr", "abc"], 2, "not a number"),
    (["train", "--lr", "nan"], 2, "learning rate"),
    (["train", "--lr", "-1"], 2, "learning rate"),
    (["train", "--lr", "0"], 2, "learning rate"),
    (["train", "--lr", "1e9"], 2, "learning rate"),
    (["train", "--iterations", "0"], 2, "iterations"),
    (["train", "--iterations", "-3"], 2, "iterations"),
    (["train", "--iterations", "99999999999"], 2, "iterations"),
    (["train", "--iterations", "1.5"], 2, "invalid int"),
    (["train", "--seed", "-1"], 2, "seed"),
    (["train", "--seed", "99999999999"], 2, "seed"),
    (["train", "--init", "zeros"], 2, "invalid choice"),
    (["train", "--print-every", "0"], 2, "print-every"),
    (["train", "--data-dir", "/nonexistent/folder"], 1, "dataset not found"),
    (["predict"], 2, "required"),
    (["bogus"], 2, "invalid choice"),
    ([], 2, "required"),
])
def test_train_and_usage_errors(args, code, words):
    p = run(*args)
    assert_clean(p, code, words)
    last = p.stderr.strip().splitlines()[-1]
    if code == 1:
        assert last.startswith("error: "), p.stderr
    else:  # argparse's form: the usage line, then "PROG: error: ..."
        assert p.stderr.startswith("usage: ") and ": error: " in last, p.stderr


def test_train_with_a_corrupt_dataset_names_the_file(tmp_path, data_dir):
    for name in ("train_catvnoncat.h5", "test_catvnoncat.h5"):
        (tmp_path / name).write_bytes((data_dir / name).read_bytes())
    (tmp_path / "test_catvnoncat.h5").write_bytes(b"<html>oops</html>")
    p = run("train", "--data-dir", str(tmp_path), "--iterations", "1")
    assert_clean(p, 1, "test_catvnoncat.h5")


def test_train_with_a_large_rate_runs_to_an_answer(tmp_path):
    """The brief's example, ``--lr 5 --iterations 200``: the run ends with exit 0 (it finished) or
    1 with a divergence message suggesting a smaller rate, never a traceback or NaN output."""
    p = run("train", "--lr", "5", "--iterations", "200", "--print-every", "50", "--save", str(tmp_path / "m.npz"))
    assert p.returncode in (0, 1), p.stderr
    assert "Traceback" not in p.stderr and "nan" not in p.stdout.lower()
    if p.returncode == 1:
        assert "smaller learning rate" in p.stderr
    else:
        assert (tmp_path / "m.npz").is_file()
