"""The NumPy convolutional net (catdnn.conv): gradient checks, shapes, the spec parser, training."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from catdnn import conv
from catdnn.errors import ConfigError
from catdnn.optim import Adam, Momentum

TINY = (8, 8, 3)  # tiny images for the gradient checks


def _tiny_data(m=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((8 * 8 * 3, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    Y[0, :2] = (0.0, 1.0)
    return X, Y


def _with_biases(params, seed=1):
    rng = np.random.default_rng(seed)
    return [(W, rng.normal(scale=0.1, size=b.shape)) for W, b in params]


# --------------------------------------------------------------------------- gradient checks (float64)
def _numeric_grad(f, P, eps=1e-6):
    g = np.zeros_like(P)
    flat, gflat = P.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return g


def _rel(a, b):
    return np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))


def test_conv_layer_gradients_by_central_differences():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2, 6, 5, 3))
    W = rng.normal(size=(4, 9 * 3))
    b = rng.normal(size=(4, 1))
    R = rng.normal(size=(2, 6, 5, 4))  # cost = Σ R ⊙ Z, so dZ = R
    m = 2

    def cost():
        return float(np.sum(R * conv.conv_forward(A, W, b)[0])) / m

    _, cols = conv.conv_forward(A, W, b)
    dW, db, dA = conv.conv_backward(R.copy(), cols, W, m)
    assert dW.shape == W.shape and db.shape == b.shape and dA.shape == A.shape
    assert _rel(dW, _numeric_grad(cost, W)) < 1e-7
    assert _rel(db, _numeric_grad(cost, b)) < 1e-7
    # dA is the gradient of the summed cost (m times the mean's), as network.backward passes it down
    assert _rel(dA / m, _numeric_grad(cost, A)) < 1e-7


def test_pool_layer_gradient_by_central_differences():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(2, 6, 4, 3))
    R = rng.normal(size=(2, 3, 2, 3))

    def cost():
        return float(np.sum(R * conv.pool_forward(Z)))

    P = conv.pool_forward(Z)
    dZ = conv.pool_backward(R, Z, P)
    assert P.shape == (2, 3, 2, 3) and dZ.shape == Z.shape
    assert _rel(dZ, _numeric_grad(cost, Z)) < 1e-7


def test_pool_shares_the_gradient_of_tied_maxima():
    Z = np.zeros((1, 2, 2, 1))  # four equal values, as zero padding makes
    dZ = conv.pool_backward(np.ones((1, 1, 1, 1)), Z, conv.pool_forward(Z))
    assert np.allclose(dZ, 0.25) and dZ.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("spec", ["conv2,conv3,dense4", "in4,conv2,dense3", "conv3", "conv2,conv2,conv2"])
def test_whole_cnn_gradient_check(spec):
    arch = conv.parse_arch(spec, source=TINY)
    X, Y = _tiny_data()
    params = _with_biases(conv.init_cnn(arch, "he", seed=3, dtype=np.float64))
    assert conv.gradient_check(params, arch, X, Y) < 1e-7


def test_whole_cnn_gradient_check_with_l2():
    arch = conv.parse_arch("conv2,conv3,dense4", source=TINY)
    X, Y = _tiny_data(seed=4)
    params = _with_biases(conv.init_cnn(arch, "xavier", seed=5, dtype=np.float64))
    assert conv.gradient_check(params, arch, X, Y, lambd=0.7) < 1e-7


def test_a_wrong_gradient_is_caught(monkeypatch):
    arch = conv.parse_arch("conv2,dense3", source=TINY)
    X, Y = _tiny_data()
    params = _with_biases(conv.init_cnn(arch, "he", seed=3, dtype=np.float64))
    real = conv.backward

    def off_by_one_pixel(*args, **kwargs):
        grads = real(*args, **kwargs)
        dW, db = grads[0]
        return [(np.roll(dW, 3, axis=1), db)] + grads[1:]

    monkeypatch.setattr(conv, "backward", off_by_one_pixel)
    assert conv.gradient_check(params, arch, X, Y) > 1e-3


# --------------------------------------------------------------------------- the layers' math and shapes
def test_convolution_matches_a_loop_over_pixels():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(2, 5, 4, 3))
    W = rng.normal(size=(2, 27))
    b = rng.normal(size=(2, 1))
    Z, _ = conv.conv_forward(A, W, b)
    K = W.reshape(2, 3, 3, 3)  # (filter, kernel row, kernel column, channel)
    P = np.pad(A, ((0, 0), (1, 1), (1, 1), (0, 0)))
    for i in range(2):
        for y in range(5):
            for x in range(4):
                for f in range(2):
                    want = np.sum(P[i, y:y + 3, x:x + 3, :] * K[f]) + b[f, 0]
                    assert Z[i, y, x, f] == pytest.approx(want)


def test_input_step_averages_blocks_and_keeps_the_course_layout():
    from catdnn.data import flatten_images

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(2, 64, 64, 3)).astype(np.uint8)
    X = flatten_images(images)
    maps = conv.to_input(conv.parse_arch("in32,conv4"), X)
    assert maps.shape == (2, 32, 32, 3)
    want = images.astype(np.float64).reshape(2, 32, 2, 32, 2, 3).mean(axis=(2, 4)) / 255.0
    assert np.allclose(maps, want)


def test_shapes_of_the_preset():
    arch = conv.parse_arch(conv.CNN_PRESETS["cnn"].arch)
    assert arch.is_cnn and arch.image_shape == (32, 32, 3)
    assert arch.map_shapes == [(16, 16, 16), (8, 8, 32), (4, 4, 64)]
    assert arch.dense_layers == (1024, 64, 1)
    params = conv.init_cnn(arch, "he", 1)
    assert [W.shape for W, _ in params] == [(16, 27), (32, 144), (64, 288), (64, 1024), (1, 64)]
    assert [b.shape for _, b in params] == [(16, 1), (32, 1), (64, 1), (64, 1), (1, 1)]
    assert all(W.dtype == np.float32 for W, _ in params)
    assert arch.param_count() == sum(W.size + b.size for W, b in params)
    X = np.random.default_rng(0).random((12288, 3))
    AL, _ = conv.forward(params, arch, X)
    assert AL.shape == (1, 3)
    p = conv.predict_proba(params, arch, X, tta=True, batch=2)
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))
    assert conv.feature_maps(params, arch, X, layer=1).shape == (3, 32, 32, 16)
    assert conv.feature_maps(params, arch, X, layer=2).shape == (3, 16, 16, 32)
    assert conv.filters(params, arch, 1).shape == (16, 3, 3, 3)
    with pytest.raises(ConfigError, match="layer must be from 1 to 3"):
        conv.filters(params, arch, 4)


def test_optimisers_work_on_cnn_parameters_unchanged():
    arch = conv.parse_arch("conv2,dense3", source=TINY)
    X, Y = _tiny_data()
    for opt in (Adam(), Momentum()):
        params = conv.init_cnn(arch, "he", 1, np.float64)
        before = conv.compute_cost(params, arch, X, Y)
        state = opt.init(params)
        for _ in range(20):
            AL, cache = conv.forward(params, arch, X)
            opt.update(params, conv.backward(params, arch, cache, Y, AL), state, 0.01)
        assert conv.compute_cost(params, arch, X, Y) < before


# --------------------------------------------------------------------------- the spec
def test_spec_forms():
    a = conv.parse_arch(" IN32, Conv16 ;conv32,conv64 , dense64,")
    assert (a.input_px, a.convs, a.dense) == (32, (16, 32, 64), (64,))
    assert a.text == "in32,conv16,conv32,conv64,dense64"
    assert conv.parse_arch(a.text) == a
    assert conv.parse_arch("in64,conv8").text == "conv8"  # the full size is the default


def test_mlp_spec_is_the_course_layers():
    from catdnn import PRESETS

    deep = conv.parse_arch("dense20,dense7,dense5")
    assert not deep.is_cnn
    assert deep.mlp_layers() == tuple(PRESETS["deep"].layers)
    assert conv.parse_arch("dense7").mlp_layers() == tuple(PRESETS["two-layer"].layers)
    assert conv.parse_arch("in32,dense7").mlp_layers() == (3072, 7, 1)
    assert conv.arch_from_layers(PRESETS["deep"].layers).text == "dense20,dense7,dense5"
    assert conv.arch_from_layers((3072, 7, 1)).text == "in32,dense7"
    with pytest.raises(ConfigError, match="convolutional"):
        conv.parse_arch("conv8,dense4").mlp_layers()


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("conv16,,dense4", "two commas"),
    ("conv16,pool2", "unknown step 'pool2'"),
    ("convx", "whole number after 'conv'"),
    ("conv-3", "whole number after 'conv'"),
    ("dense", "whole number after 'dense'"),
    ("conv16,in32", "must be the first step"),
    ("in30,conv16", "must divide"),
    ("in0,conv16", "must divide"),
    ("dense64,conv16", "after a dense layer"),
    ("conv0", "from 1 to"),
    ("conv100000", "from 1 to"),
    ("dense0", "from 1 to"),
    ("in8,conv2,conv2,conv2,conv2", "halve the side"),
    (",".join(["dense4"] * 30), "at most"),
])
def test_spec_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        conv.parse_arch(spec)


# --------------------------------------------------------------------------- settings
def test_preset_and_config_round_trip():
    cfg = conv.preset("cnn", learning_rate=0.001, seed=None)
    assert cfg.learning_rate == 0.001 and cfg.seed == conv.CNN_PRESETS["cnn"].seed
    assert conv.ConvConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown CNN setting"):
        conv.ConvConfig.from_dict({**cfg.to_dict(), "layers": [1]})
    with pytest.raises(ConfigError, match="unknown CNN preset"):
        conv.preset("resnet")
    assert conv.iterations_for(50, 209, 32) == 350 == cfg.iterations
    assert conv.iterations_for(3, 209, 0) == 3


@pytest.mark.parametrize("change, message", [
    ({"arch": "dense20,dense7"}, "no conv step"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"iterations": 0}, "iterations"),
    ({"shift": 17}, "shift"),
    ({"optimizer": "sgd"}, "optimizer must be one of"),
    ({"dtype": "float16"}, "dtype"),
    ({"batch_size": True}, "batch_size"),
])
def test_config_errors(change, message):
    from dataclasses import replace

    with pytest.raises(ConfigError, match=message):
        replace(conv.CNN_PRESETS["cnn"], **change).validate()


# --------------------------------------------------------------------------- training
SMALL = conv.ConvConfig(arch="in16,conv4,conv8,dense8", iterations=12, batch_size=16, learning_rate=0.003)


def _small_data(m=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((12288, m))
    Y = (np.arange(m) % 3 == 0).astype(np.float64).reshape(1, m)
    return X, Y


def test_training_is_seeded_and_yields_progress():
    X, Y = _small_data()
    a = conv.ConvTrainer(SMALL, X, Y)
    events = list(a.run())
    assert [e.iteration for e in events] == list(range(12))
    assert events[-1].iterations == 12 and events[-1].epoch == 3  # 48 images in batches of 16
    assert all(e.cost is not None and e.learning_rate == SMALL.learning_rate for e in events)
    assert a.status == "finished" and a.iterations_done == 12 and len(a.history) == 12
    b = conv.fit_cnn(SMALL, X, Y)
    for (Wa, ba), (Wb, bb) in zip(a.params(), b.params()):
        assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)
    c = conv.fit_cnn(conv.preset("cnn", **{**SMALL.to_dict(), "seed": 2}), X, Y)
    assert not np.array_equal(a.params()[0][0], c.params()[0][0])


def test_training_stops_between_iterations_and_continues_the_same():
    X, Y = _small_data()
    whole = conv.fit_cnn(SMALL, X, Y)
    t = conv.ConvTrainer(SMALL, X, Y)
    for e in t.run():
        if e.iteration == 4:
            break
    assert t.status == "stopped" and t.iterations_done == 5
    assert "stopped after 5 of 12" in t.message
    for _ in t.run():
        pass
    assert t.status == "finished"
    assert [c for _, c in t.history] == [c for _, c in whole.history]
    for (Wa, _), (Wb, _) in zip(t.params(), whole.params()):
        assert np.array_equal(Wa, Wb)


def test_accuracies_are_reported_when_asked():
    X, Y = _small_data()
    t = conv.ConvTrainer(SMALL, X, Y, X[:, :10], Y[:, :10], accuracy_every=5, cost_every=4)
    events = list(t.run())
    with_acc = [e.iteration for e in events if e.train_accuracy is not None]
    assert with_acc == [0, 5, 10, 11]
    assert all(events[i].test_accuracy is not None for i in with_acc)
    assert [i for i, _ in t.history] == [0, 4, 8, 11]


def test_a_short_run_lowers_the_cost_on_the_real_images(dataset):
    X, Y = dataset.train.X, dataset.train.Y
    cfg = conv.ConvConfig(arch="in16,conv8,conv16,dense16", iterations=conv.iterations_for(8, 209, 32),
                          learning_rate=0.003, flip=False, shift=0, tta=False)
    t = conv.ConvTrainer(cfg, X, Y)
    before = conv.compute_cost(t.params(), t.arch, X, Y)
    for _ in t.run():
        pass
    after = conv.compute_cost(t.params(), t.arch, X, Y)
    assert after < 0.9 * before


def test_a_divergent_run_is_reported():
    X, Y = _small_data()
    cfg = conv.ConvConfig(arch="in16,conv4,dense8", iterations=30, batch_size=0, optimizer="gd",
                          learning_rate=100.0, flip=False, shift=0)
    t = conv.ConvTrainer(cfg, X * 50, Y)
    list(t.run())
    assert t.status == "diverged" and "smaller learning rate" in t.message
    with pytest.raises(ConfigError, match="diverged"):
        conv.fit_cnn(cfg, X * 50, Y)


def test_bad_inputs_are_refused():
    X, Y = _small_data()
    with pytest.raises(ConfigError, match="12288"):
        conv.ConvTrainer(SMALL, X[:100], Y)
    with pytest.raises(ConfigError, match="both X_test and Y_test"):
        conv.ConvTrainer(SMALL, X, Y, X_test=X)


def test_importing_the_engine_pulls_in_no_ui_or_torch():
    code = ("import sys, catdnn, catdnn.conv, catdnn.validation, catdnn.evaluate; "
            "bad = [m for m in ('streamlit', 'plotly', 'torch') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
