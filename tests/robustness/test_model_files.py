"""Item 2: a model file is data, never code; every bad one is refused with a clear message.

Each case builds a bad file, then checks that ``load_model`` raises ModelFileError whose message
starts with the file's name (the CLI and the Predict page show exactly this message).
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile

import numpy as np
import pytest

from catdnn.errors import ModelFileError
from catdnn.model_io import load_model, model_to_bytes, save_model


def refused(source, name: str, *words: str) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(source, name=name)
    msg = str(info.value)
    assert msg.startswith(name + ":"), msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


def arrays_of(model) -> dict:
    with np.load(io.BytesIO(model_to_bytes(model))) as npz:
        return {k: npz[k] for k in npz.files}


def npz_bytes(arrays: dict, compressed: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def with_meta(arrays: dict, **changes) -> dict:
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes)
    return {**arrays, "meta": np.array(json.dumps(meta))}


def test_a_valid_model_loads_from_path_bytes_and_file(tiny_model, tmp_path):
    path = tmp_path / "good.npz"
    save_model(tiny_model, path)
    data = path.read_bytes()
    for source in (path, str(path), data, io.BytesIO(data)):
        m = load_model(source, name="good.npz")
        assert m.layers == (12288, 3, 1)


# --------------------------------------------------------------------------- not a zip at all
NOT_NPZ = [
    ("empty.npz", b"", "empty"),
    ("notes.npz", b"this is my model, honest\n", "not a .npz"),
    ("page.npz", b"<!DOCTYPE html><html><body>Not Found</body></html>", "not a .npz"),
    ("model.json.npz", b'{"W1": [[0.1]]}', "not a .npz"),
    ("photo.npz", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a .npz"),
    ("weights.h5.npz", b"\x89HDF\r\n\x1a\n" + b"\x00" * 40, "not a .npz"),
    ("one-byte.npz", b"P", "not a .npz"),
    ("zip-magic-only.npz", b"PK\x03\x04", ""),
    ("empty-zip.npz", b"PK\x05\x06" + b"\x00" * 18, ""),
]


@pytest.mark.parametrize("name,data,words", NOT_NPZ, ids=[n for n, _, _ in NOT_NPZ])
def test_files_that_are_not_npz(tmp_path, name, data, words):
    path = tmp_path / name
    path.write_bytes(data)
    refused(path, name, words)
    refused(data, name, words)


def test_single_npy_array(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 12288)))
    refused(buf.getvalue(), "W1.npy", ".npy")


# --------------------------------------------------------------------------- pickles: never loaded
class Boom:
    """Unpickling this would run code; it must never be unpickled."""

    def __reduce__(self):
        return (pytest.fail, ("a model file was unpickled",))


def test_pickled_objects_are_never_loaded(tiny_model):
    arrays = arrays_of(tiny_model)
    obj = np.empty(1, dtype=object)
    obj[0] = Boom()
    cases = {
        "object-array.npz": npz_bytes({**arrays, "W1": obj}),
        "object-meta.npz": npz_bytes({**arrays, "meta": obj}),
        "object-extra.npz": npz_bytes({**arrays, "extra": obj}),
        "compressed-object.npz": npz_bytes({**arrays, "b1": obj}, compressed=True),
    }
    for name, data in cases.items():
        refused(data, name, "pickled")
    # a plain pickle, and a zip holding one (as some other frameworks save), renamed .npz
    refused(pickle.dumps(Boom()), "model.pkl.npz", "not a .npz")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Boom()))
    refused(buf.getvalue(), "torch-like.npz", "not a catdnn model")


# --------------------------------------------------------------------------- truncated / damaged
@pytest.mark.parametrize("fraction", [0.01, 0.3, 0.5, 0.9, 0.999])
def test_truncated_model_files(tiny_model, tmp_path, fraction):
    data = model_to_bytes(tiny_model)
    cut = data[: int(len(data) * fraction)]
    path = tmp_path / "cut.npz"
    path.write_bytes(cut)
    refused(path, "cut.npz")


def test_damaged_member_data(tiny_model):
    data = bytearray(model_to_bytes(tiny_model))
    i = data.index(b"W1.npy") + 200  # inside W1's bytes: the zip CRC no longer matches
    data[i:i + 8] = b"\xff" * 8
    refused(bytes(data), "bitflip.npz")
    comp = bytearray(npz_bytes(arrays_of(tiny_model), compressed=True))
    j = comp.index(b"W1.npy") + 100
    comp[j:j + 16] = b"\x00" * 16
    refused(bytes(comp), "bitflip-compressed.npz")


# --------------------------------------------------------------------------- wrong arrays
def _bad_arrays(arrays: dict) -> list[tuple[str, dict, str]]:
    W1, b1, W2 = arrays["W1"], arrays["b1"], arrays["W2"]
    nan = W1.copy()
    nan[0, 0] = np.nan
    inf = W2.copy()
    inf[0, -1] = np.inf
    return [
        ("W1 wrong shape", {**arrays, "W1": W1[:, :100]}, "shape"),
        ("W1 transposed", {**arrays, "W1": W1.T.copy()}, "shape"),
        ("b1 1-d", {**arrays, "b1": b1.ravel()}, "shape"),
        ("W1 float32", {**arrays, "W1": W1.astype(np.float32)}, "dtype"),
        ("W1 int64", {**arrays, "W1": W1.astype(np.int64)}, "dtype"),
        ("W1 complex", {**arrays, "W1": W1.astype(np.complex128)}, "dtype"),
        ("b1 bool", {**arrays, "b1": b1.astype(bool)}, "dtype"),
        ("W1 text", {**arrays, "W1": np.full(W1.shape[:1], "0.1")}, ""),
        ("W1 structured", {**arrays, "W1": np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")])}, ""),
        ("W1 big-endian", {**arrays, "W1": W1.astype(">f8")}, "dtype"),
        ("W1 one NaN", {**arrays, "W1": nan}, "NaN"),
        ("W1 all NaN", {**arrays, "W1": np.full_like(W1, np.nan)}, "NaN"),
        ("W2 inf", {**arrays, "W2": inf}, "NaN or infinite"),
        ("W2 missing", {k: v for k, v in arrays.items() if k != "W2"}, "missing"),
        ("b2 missing", {k: v for k, v in arrays.items() if k != "b2"}, "missing"),
        ("extra W3", {**arrays, "W3": np.zeros((1, 1))}, "unexpected"),
        ("extra junk", {**arrays, "notes": np.array("hello")}, "unexpected"),
        ("meta missing", {k: v for k, v in arrays.items() if k != "meta"}, "not a catdnn model"),
        ("meta not JSON", {**arrays, "meta": np.array("{not json")}, "JSON"),
        ("meta a number", {**arrays, "meta": np.array(3.0)}, "text"),
        ("meta bytes", {**arrays, "meta": np.array(b'{"format": "catdnn-model"}')}, "text"),
        ("meta 1-d", {**arrays, "meta": np.array(["{}"])}, "text"),
        ("meta JSON list", {**arrays, "meta": np.array("[1, 2]")}, "format"),
        ("format tag wrong", with_meta(arrays, format="keras"), "format"),
        ("format version 99", with_meta(arrays, format_version=99), "version"),
        ("input size 4096", with_meta(arrays, layers=[4096, 3, 1]), "4096 inputs"),
        ("two outputs", with_meta(arrays, layers=[12288, 3, 2]), "outputs"),
        ("layers negative", with_meta(arrays, layers=[12288, -3, 1]), "layer"),
        ("layers zero", with_meta(arrays, layers=[12288, 0, 1]), "layer"),
        ("layers text", with_meta(arrays, layers=["12288", "3", "1"]), "layer"),
        ("layers floats", with_meta(arrays, layers=[12288.0, 3.0, 1.0]), "layer"),
        ("layers bools", with_meta(arrays, layers=[12288, True, 1]), "layer"),
        ("layers empty", with_meta(arrays, layers=[]), "layer"),
        ("layers a dict", with_meta(arrays, layers={"a": 1}), "layer"),
        ("layers huge claimed", with_meta(arrays, layers=[12288, 10**9, 1]), ""),
        ("lr NaN", with_meta(arrays, config={"learning_rate": float("nan")}), "settings"),
        ("lr text", with_meta(arrays, config={"learning_rate": "fast"}), "settings"),
        ("iterations -1", with_meta(arrays, config={"iterations": -1}), "settings"),
        ("seed huge", with_meta(arrays, config={"seed": 2**70}), "settings"),
        ("init unknown", with_meta(arrays, config={"init": "os.system"}), "settings"),
        ("history not pairs", with_meta(arrays, history=[[1, 2, 3]]), "metadata"),
        ("history text", with_meta(arrays, history=[["a", "b"]]), "metadata"),
        ("history a number", with_meta(arrays, history=5), "metadata"),
        ("accuracy a string", with_meta(arrays, train_accuracy="high"), "metadata"),
        ("iterations_done text", with_meta(arrays, iterations_done="many"), "metadata"),
    ]


def test_wrong_arrays_and_metadata_are_refused(tiny_model):
    arrays = arrays_of(tiny_model)
    cases = _bad_arrays(arrays)
    for desc, bad, words in cases:
        name = desc.replace(" ", "-") + ".npz"
        refused(npz_bytes(bad), name, words)
    assert len(cases) >= 40


OTHER_PROJECT = [
    ("numpy-default.npz", {"arr_0": np.zeros((3, 3)), "arr_1": np.ones(3)}),
    ("course-style.npz", {"W1": np.zeros((7, 12288)), "b1": np.zeros((7, 1)), "W2": np.zeros((1, 7)),
                          "b2": np.zeros((1, 1))}),
    ("sklearn-like.npz", {"coefs_0": np.zeros((12288, 7)), "intercepts_0": np.zeros(7)}),
    ("mnist.npz", {"x_train": np.zeros((2, 28, 28), np.uint8), "y_train": np.zeros(2, np.uint8)}),
    ("no-arrays.npz", {}),
]


@pytest.mark.parametrize("name,arrays", OTHER_PROJECT, ids=[n for n, _ in OTHER_PROJECT])
def test_other_projects_npz_files(name, arrays):
    refused(npz_bytes(arrays), name, "not a catdnn model")


# --------------------------------------------------------------------------- zip bombs
def _zip_with_declared_size(member: str, payload: bytes, declared: int) -> bytes:
    """A stored zip member whose headers claim ``declared`` uncompressed bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(member, payload)
    data = bytearray(buf.getvalue())
    local = data.index(b"PK\x03\x04")
    data[local + 22:local + 26] = struct.pack("<I", declared)
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = struct.pack("<I", declared)
    return bytes(data)


def test_member_claiming_gigabytes_is_refused_before_reading(tiny_model):
    # a zip member declaring 4 GB of content (a zip bomb, or a forged header)
    data = _zip_with_declared_size("W1.npy", b"\x93NUMPY" + b"\x00" * 100, 0xFFFF0000)
    refused(data, "bomb.npz", "too large")


def test_npy_header_claiming_a_huge_array_is_refused_before_allocating(tiny_model):
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1)))
    header["shape"] = (200_000, 100_000)  # 160 GB of float64, in a 200-byte file
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    arrays = arrays_of(tiny_model)
    base = io.BytesIO()
    with zipfile.ZipFile(base, "w") as z:
        for k, v in arrays.items():
            if k != "W1":
                b = io.BytesIO()
                np.save(b, v)
                z.writestr(k + ".npy", b.getvalue())
        z.writestr("W1.npy", buf.getvalue() + b"\x00" * 64)
    refused(base.getvalue(), "huge-header.npz")


def test_compressed_member_that_expands_hugely_is_refused(tiny_model, monkeypatch):
    # deflated zeros expand ~1000:1; with the limit lowered to 8 MB, a 40 MB expansion stands in
    # for the gigabytes a real zip bomb would claim (same code path, a fraction of the time)
    monkeypatch.setattr("catdnn.model_io.MAX_FILE_BYTES", 8 * 1024**2)
    n = 5_000_000
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1)))
    header["shape"] = (n,)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, header)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("extra.npy", head.getvalue() + bytes(8 * n))
    data = buf.getvalue()
    assert len(data) < 100_000
    refused(data, "expands.npz", "too large")
    # and the real model still loads under the lowered limit
    assert load_model(model_to_bytes(tiny_model), name="ok.npz").layers == (12288, 3, 1)


# --------------------------------------------------------------------------- convolutional nets
TINY_ARCH = "in16,conv2,conv3,dense4"


@pytest.fixture(scope="module")
def tiny_cnn():
    """A small, valid convolutional model (float32 weights) built without training."""
    from catdnn.cnn import init_cnn
    from catdnn.config import TrainConfig
    from catdnn.model import Model

    config = TrainConfig(arch=TINY_ARCH, dtype="float32", iterations=10, init="he", seed=2).validate()
    params = init_cnn(config.parsed_arch(), config.init, config.seed, np.float32)
    return Model(params=params, config=config, history=[(0, 0.69)], iterations_done=10,
                 train_accuracy=0.5, test_accuracy=0.5)


def test_a_cnn_file_round_trips_in_its_own_dtype(tiny_cnn, tmp_path):
    path = tmp_path / "cnn.npz"
    save_model(tiny_cnn, path)
    m = load_model(path, name="cnn.npz")
    assert m.is_cnn and m.config == tiny_cnn.config and m.config.arch == TINY_ARCH
    assert json.loads(str(arrays_of(m)["meta"]))["arch"] == TINY_ARCH
    assert [(W.shape, W.dtype) for W, _b in m.params] == [((2, 27), np.float32), ((3, 18), np.float32),
                                                            ((4, 48), np.float32), ((1, 4), np.float32)]
    X = np.random.default_rng(0).random((12288, 5))
    np.testing.assert_array_equal(m.predict_proba(X), tiny_cnn.predict_proba(X))


def test_a_cnn_file_whose_arrays_do_not_match_its_arch_is_refused(tiny_cnn):
    arrays = arrays_of(tiny_cnn)
    wrong = {**arrays, "W2": np.zeros((3, 9 * 3), np.float32)}  # conv 2 takes conv 1's 2 channels: (3, 18)
    refused(npz_bytes(wrong), "cnn.npz", "W2", "shape", "(3, 18)", TINY_ARCH)
    cfg = json.loads(str(arrays["meta"]))["config"]
    other_arch = with_meta(arrays, config={**cfg, "arch": "in16,conv4,conv3,dense4"}, arch="in16,conv4,conv3,dense4")
    refused(npz_bytes(other_arch), "cnn.npz", "W1", "shape")
    missing = {k: v for k, v in arrays.items() if k != "b4"}
    refused(npz_bytes(missing), "cnn.npz", "b4", "missing")
    extra = {**arrays, "W5": np.zeros((1, 1), np.float32)}
    refused(npz_bytes(extra), "cnn.npz", "unexpected", "W5")


def test_a_cnn_file_in_the_wrong_dtype_is_refused(tiny_cnn):
    arrays = arrays_of(tiny_cnn)
    as64 = {k: (v.astype(np.float64) if k != "meta" else v) for k, v in arrays.items()}
    refused(npz_bytes(as64), "cnn.npz", "W1", "float64", "float32")
    ints = {**arrays, "b1": arrays["b1"].astype(np.int32)}
    refused(npz_bytes(ints), "cnn.npz", "b1", "int32")


def test_a_cnn_file_with_a_bad_or_inconsistent_arch_is_refused(tiny_cnn):
    arrays = arrays_of(tiny_cnn)
    cfg = json.loads(str(arrays["meta"]))["config"]
    refused(npz_bytes(with_meta(arrays, config={**cfg, "arch": "in16,conv2,warp9"}, arch="in16,conv2,warp9")),
            "cnn.npz", "invalid training settings", "warp9")
    refused(npz_bytes(with_meta(arrays, arch="in16,conv8,dense4")), "cnn.npz", "architecture", "differs")
    refused(npz_bytes(with_meta(arrays, layers=[12288, 4, 1])), "cnn.npz", "does not match the architecture")
    refused(npz_bytes(with_meta(arrays, config={**cfg, "dtype": "float16"})), "cnn.npz", "dtype")


def test_an_mlp_file_cannot_claim_float32(tiny_model):
    arrays = arrays_of(tiny_model)
    cfg = json.loads(str(arrays["meta"]))["config"]
    f32 = {k: (v.astype(np.float32) if k != "meta" else v) for k, v in arrays.items()}
    refused(npz_bytes(with_meta(f32, config={**cfg, "dtype": "float32"})), "mlp.npz", "float64")
    refused(npz_bytes(f32), "mlp.npz", "dtype", "float64")


def test_an_older_mlp_file_without_arch_or_dtype_still_loads(tiny_model):
    arrays = arrays_of(tiny_model)
    meta = json.loads(str(arrays["meta"]))
    del meta["arch"]
    for key in ("arch", "dtype"):
        del meta["config"][key]
    m = load_model(npz_bytes({**arrays, "meta": np.array(json.dumps(meta))}), name="old.npz")
    assert not m.is_cnn and m.layers == (12288, 3, 1) and m.config.dtype == "float64"


# --------------------------------------------------------------------------- crafted files (issue 19, A1)
def test_crafted_model_files_give_one_clear_error(tiny_model):
    """Five crafted files that once escaped the checks: ``meta`` stored without ``.npy`` (bytes, not an
    array: AttributeError), nested 100 000 deep (RecursionError), with a 5000-digit integer
    (ValueError), with ``Infinity`` (OverflowError in int()), and a ``.npy`` version-3 header; and two
    that made the loader allocate gigabytes (attack finding 2): a ``meta`` over the size limit, and a
    cost curve with more points than its run's iterations."""
    from robustness_helpers import hostile_model_files

    expected = {"meta-raw-bytes.npz": "not a text entry", "meta-nested.npz": "nested too deeply",
                "meta-5000-digits.npz": "thousands of digits", "meta-infinity.npz": "invalid metadata",
                "npy-version-3.npz": "version 3.0", "meta-over-limit.npz": "'meta' entry takes",
                "history-too-long.npz": "cost curve has 12 points"}
    files = hostile_model_files(arrays_of(tiny_model))
    assert set(files) == set(expected)
    for name, data in files.items():
        refused(data, name, expected[name])


@pytest.mark.parametrize("name", ["npy-version-3.npz", "meta-over-limit.npz"])
def test_an_oversized_member_is_refused_before_allocating(tiny_model, name):
    """The version-3 member claims 400 MB over 64 bytes; the oversized 'meta' holds 16 MiB of text
    (700 000 history points, in a small file): each is refused from the zip directory or its header,
    never read."""
    import tracemalloc

    from robustness_helpers import hostile_model_files

    data = hostile_model_files(arrays_of(tiny_model))[name]
    assert len(data) < 1024**2
    tracemalloc.start()
    try:
        refused(data, name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024**2, peak
