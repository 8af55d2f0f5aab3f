"""Model files: round trip, and refusal of everything that is not a catdnn model."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from catdnn import ModelFileError, TrainConfig, fit, load_model, save_model
from catdnn.model_io import model_to_bytes


@pytest.fixture(scope="module")
def model():
    rng = np.random.RandomState(0)
    X = rng.rand(12288, 12)
    Y = (rng.rand(1, 12) > 0.5).astype(float)
    cfg = TrainConfig(layers=(12288, 3, 2, 1), learning_rate=0.01, iterations=5, init="he", seed=4)
    return fit(cfg, X=X, Y=Y, X_test=X[:, :4], Y_test=Y[:, :4], cost_every=1)


def test_round_trip(model, tmp_path):
    path = tmp_path / "m.npz"
    save_model(model, path)
    back = load_model(path)
    assert back.config == model.config and back.layers == (12288, 3, 2, 1)
    for (W, b), (W2, b2) in zip(model.params, back.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert back.history == model.history and len(back.history) == 5
    assert back.train_accuracy == model.train_accuracy and back.test_accuracy == model.test_accuracy
    assert back.classes == ("non-cat", "cat") and back.iterations_done == 5
    # the same from bytes (the dashboard's upload and download buttons)
    again = load_model(model_to_bytes(model), name="upload.npz")
    np.testing.assert_array_equal(again.params[0][0], model.params[0][0])


def _arrays(model):
    with np.load(io.BytesIO(model_to_bytes(model)), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _npz(tmp_path, arrays, name="bad.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_object_array_is_refused_without_unpickling(model, tmp_path):
    arrays = _arrays(model)
    arrays["W1"] = np.array([{"evil": 1}, None], dtype=object)
    with pytest.raises(ModelFileError, match="pickled data"):
        load_model(_npz(tmp_path, arrays))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("meta"), "no 'meta' entry"),
        (lambda a: a.update(meta=np.array("not json")), "not valid JSON"),
        (lambda a: a.update(meta=np.array(json.dumps({"format": "other"}))), "format tag"),
        (lambda a: a.update(W2=np.zeros((3, 3))), r"W2 has shape \(3, 3\), expected \(2, 3\)"),
        (lambda a: a.update(b1=a["b1"].astype(np.float32)), "b1 has dtype float32"),
        (lambda a: a["W1"].__setitem__((0, 0), np.nan), "W1 contains NaN"),
        (lambda a: a.pop("W3"), "W3 is missing"),
        (lambda a: a.update(extra=np.zeros(2)), "unexpected arrays extra"),
    ],
)
def test_bad_contents_are_refused(model, tmp_path, change, message):
    arrays = _arrays(model)
    change(arrays)
    with pytest.raises(ModelFileError, match=message):
        load_model(_npz(tmp_path, arrays))


def test_wrong_input_size_is_refused(model, tmp_path):
    arrays = _arrays(model)
    meta = json.loads(str(arrays["meta"]))
    meta["layers"][0] = 4096
    arrays["meta"] = np.array(json.dumps(meta))
    arrays["W1"] = np.zeros((3, 4096))
    with pytest.raises(ModelFileError, match="takes 4096 inputs.*12288"):
        load_model(_npz(tmp_path, arrays))


@pytest.mark.parametrize(
    "content, message",
    [(b"", "not a readable"), (b"hello, I am a text file", "not a readable"), (b"PK\x03\x04garbage", "not a")],
)
def test_non_npz_files(tmp_path, content, message):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(path)
    assert "model.npz" in str(err.value)


def test_truncated_and_missing(model, tmp_path):
    raw = model_to_bytes(model)
    with pytest.raises(ModelFileError):
        load_model(raw[: len(raw) // 2], name="half.npz")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nope.npz")


def test_single_npy_is_not_a_model(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ModelFileError, match="single .npy"):
        load_model(path)


def test_a_failed_save_leaves_the_old_model_and_no_temporary_file(model, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(model, path)
    before = path.read_bytes()
    with pytest.raises(ModelFileError, match="cannot write the model"):
        save_model(model, tmp_path / "missing" / "m.npz")

    def half_then_fail(f, **arrays):  # a disk that fills up halfway through the write
        f.write(b"PK\x03\x04 half a model")
        raise OSError(28, "No space left on device")

    import catdnn.model_io as mio

    monkeypatch.setattr(mio.np, "savez", half_then_fail)
    with pytest.raises(ModelFileError, match="No space left on device"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_model_file_names_the_dataset_it_was_trained_on(model, tmp_path):
    """Issue 15: every model knows its dataset; a file saved before it was recorded is the course's."""
    from dataclasses import replace

    from catdnn.data import COURSE_NAME

    assert model.dataset == COURSE_NAME
    mine = replace(model, dataset="pets")
    assert load_model(model_to_bytes(mine)).dataset == "pets"
    arrays = _arrays(mine)
    meta = json.loads(str(arrays["meta"]))
    del meta["dataset"]  # as files were written before
    arrays["meta"] = np.array(json.dumps(meta))
    assert load_model(_npz(tmp_path, arrays)).dataset == COURSE_NAME


def _with_meta(model, tmp_path, change, name="bad.npz"):
    """``model``'s file with its ``meta`` JSON changed by ``change(meta)``, saved compressed (small)."""
    arrays = _arrays(model)
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    path = tmp_path / name
    np.savez_compressed(path, **{**arrays, "meta": np.array(json.dumps(meta))})
    return path


def test_a_meta_over_the_size_limit_is_refused_unread(model, tmp_path):
    """Attack finding 2: a 677 KB file whose 'meta' held 10 million history points made the loader
    take 2.3 GB. Here just enough [0, 0] points that 'meta' (4 bytes a character) is over the limit:
    refused from the zip directory, in load_model and in ``python -m catdnn predict``."""
    from catdnn.model_io import MAX_META_BYTES

    n = MAX_META_BYTES // 4 // len("[0, 0], ") + 1
    path = _with_meta(model, tmp_path, lambda meta: meta.update(history=[[0, 0]] * n), "flood.npz")
    assert path.stat().st_size < 1024**2
    limit = f"the limit is {MAX_META_BYTES:,}"
    with pytest.raises(ModelFileError, match=rf"flood.npz: its 'meta' entry takes [\d,]+ bytes.*{limit}"):
        load_model(path, name="flood.npz")
    _predict_refuses(path, "'meta' entry takes")


@pytest.mark.parametrize("key,what", [("history", "cost"), ("accuracy_history", "accuracy")])
def test_curves_longer_than_the_run_are_refused(model, tmp_path, key, what):
    """A run records at most a point per iteration (+ 1, the accuracies after the last update): a
    5-iteration model with 7 points is forged."""
    point = [0, 0.5] if key == "history" else [0, 0.5, 0.5]
    path = _with_meta(model, tmp_path, lambda meta: meta.update({key: [point] * 7}), f"{key}.npz")
    with pytest.raises(ModelFileError, match=f"its {what} curve has 7 points, more than a run of 5 iterations"):
        load_model(path)
    _predict_refuses(path, f"{what} curve has 7 points")
    fine = _with_meta(model, tmp_path, lambda meta: meta.update({key: [point] * 6}), "fine.npz")
    assert len(getattr(load_model(fine), key)) == 6


def test_a_long_run_is_saved_with_its_curves_thinned_to_the_limit(model):
    """``--print-every 1`` over up to 1 000 000 iterations records that many points: the file keeps
    MAX_HISTORY_POINTS of each curve, evenly spaced with the last one, and loads again."""
    from dataclasses import replace

    from catdnn.model_io import MAX_HISTORY_POINTS

    n = 2 * MAX_HISTORY_POINTS + 3
    long = replace(model, config=replace(model.config, iterations=n), iterations_done=n,
                   history=[(i, 1.0 / (i + 1)) for i in range(n)],
                   accuracy_history=[(i, 0.5, 0.25) for i in range(n + 1)])
    back = load_model(model_to_bytes(long))
    for saved, full in ((back.history, long.history), (back.accuracy_history, long.accuracy_history)):
        assert MAX_HISTORY_POINTS // 2 < len(saved) <= MAX_HISTORY_POINTS
        assert saved[0] == full[0] and saved[-1] == full[-1]
        steps = {b[0] - a[0] for a, b in zip(saved[:-2], saved[1:-1])}
        assert len(steps) == 1  # evenly spaced
    assert load_model(model_to_bytes(model)).history == model.history  # a short run's curve is kept whole


def _predict_refuses(path, words):
    """``python -m catdnn predict --model path`` on a real photo: exit 1, one ``error:`` line."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image
    from skimage import data as skdata

    photo = path.parent / "chelsea.jpg"
    Image.fromarray(skdata.chelsea()).save(photo)
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, "-m", "catdnn", "predict", "--model", str(path), str(photo)],
                       capture_output=True, text=True, timeout=120, cwd=root,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == "" and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith(f"error: {path}:") and words in p.stderr, p.stderr
