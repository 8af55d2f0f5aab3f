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
