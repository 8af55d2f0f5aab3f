"""Batch normalisation (issue 17, item 1): the math (gradient check, a forward checked by hand in training
and prediction), the solvers and optimisers, the settings, model files, the CLI and links."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from catdnn import ModelFileError, TrainConfig, load_model, save_model
from catdnn.config import PRESETS, preset_name
from catdnn.errors import ConfigError
from catdnn.model_io import model_to_bytes
from catdnn.network import BatchNorm, backward, forward, gradient_check, init_params, predict_proba, sigmoid
from catdnn.share import config_from_query, config_to_query
from catdnn.solvers import DirectSolver, GramSolver, solver_choice
from catdnn.train import Trainer, fit

ROOT = Path(__file__).resolve().parent.parent


def _net(layers, seed=0, m=9):
    rng = np.random.RandomState(seed)
    X = rng.randn(layers[0], m)
    Y = (rng.rand(1, m) > 0.5).astype(float)
    params = [(W, b + rng.randn(*b.shape) * 0.1) for W, b in init_params(layers, "he", seed=seed + 1)]
    bn = BatchNorm.init(layers)
    bn.params = [(rng.uniform(0.5, 1.5, g.shape), rng.randn(*b.shape) * 0.3) for g, b in bn.params]
    return params, bn, X, Y


# --------------------------------------------------------------------------- the math
@pytest.mark.parametrize("layers", [[4, 3, 1], [6, 5, 4, 1], [3, 7, 2, 3, 1]])
@pytest.mark.parametrize("lambd", [0.0, 0.7])
def test_gradient_check_covers_gamma_and_beta(layers, lambd):
    params, bn, X, Y = _net(layers, seed=len(layers))
    assert gradient_check(params, X, Y, lambd=lambd, bn=bn) < 1e-7


def test_gradient_check_with_batch_norm_and_dropout_masks():
    params, bn, X, Y = _net([5, 6, 4, 1], seed=3)
    rng = np.random.default_rng(0)
    masks = [(rng.random((6, 9)) < 0.8) / 0.8, (rng.random((4, 9)) < 0.7) / 0.7]
    assert gradient_check(params, X, Y, masks=masks, bn=bn) < 1e-7


def test_gradients_have_the_structure_of_params_plus_gamma_beta_and_b_has_none():
    params, bn, X, Y = _net([4, 3, 2, 1])
    AL, cache = forward(params, X, bn=bn)
    grads = backward(params, cache, Y, AL, bn=bn)
    learned = params + bn.params
    assert len(grads) == len(learned) == 5
    for layer, glayer in zip(learned, grads):
        assert [g.shape for g in glayer] == [p.shape for p in layer]
    # b[1], b[2] cancel in Z − μ: their gradient is 0 (the output layer's b[3] has one)
    assert not grads[0][1].any() and not grads[1][1].any() and grads[2][1].any()


# a net [2, 2, 1] whose batch-norm forward is worked out by hand below
W1 = np.array([[1.0, 0.0], [0.0, 2.0]])
W2 = np.array([[1.0, 1.0]])
X_HAND = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]])  # Z[1] = [[1, 2, 3], [0, 2, 4]]
GAMMA, BETA = np.array([[2.0], [1.0]]), np.array([[0.5], [0.0]])


def _hand_net():
    params = [(W1.copy(), np.zeros((2, 1))), (W2.copy(), np.zeros((1, 1)))]
    return params, BatchNorm([(GAMMA.copy(), BETA.copy())], [(np.array([[1.0], [1.0]]), np.array([[4.0], [1.0]]))])


def test_training_forward_by_hand():
    params, bn = _hand_net()
    AL, cache = forward(params, X_HAND, bn=bn)
    # row 1: μ = 2, σ² = 2/3, Z_norm = [-1, 0, 1]·√1.5; Z̃ = 2·Z_norm + 0.5; ReLU -> [0, 0.5, 2√1.5 + 0.5]
    # row 2: μ = 2, σ² = 8/3, Z_norm = [-2, 0, 2]/√(8/3) = [-1, 0, 1]·√1.5; Z̃ = Z_norm; ReLU -> [0, 0, √1.5]
    s = math.sqrt(1.5)
    expected_ZL = np.array([[0.0, 0.5, 3 * s + 0.5]])
    np.testing.assert_allclose(cache[-1][1], expected_ZL, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(AL, sigmoid(expected_ZL), rtol=1e-7)
    _Zn, _inv, mu, var = cache.bn[0]
    np.testing.assert_allclose(mu, [[2.0], [2.0]])
    np.testing.assert_allclose(var, [[2 / 3], [8 / 3]])
    # the running averages, momentum 0.9, from μ = 1, σ² = (4, 1)
    bn.record(cache.bn)
    np.testing.assert_allclose(bn.running[0][0], [[0.9 + 0.2], [0.9 + 0.2]])
    np.testing.assert_allclose(bn.running[0][1], [[3.6 + 0.2 / 3], [0.9 + 0.8 / 3]])


def test_prediction_forward_by_hand_uses_the_running_averages():
    params, bn = _hand_net()
    # row 1: (Z − 1)/√4 = [0, 0.5, 1]; Z̃ = 2·that + 0.5 = [0.5, 1.5, 2.5]
    # row 2: (Z − 1)/√1 = [-1, 1, 3]; Z̃ = that; ReLU -> [0, 1, 3];  Z[2] = [0.5, 2.5, 5.5]
    expected = sigmoid(np.array([0.5, 2.5, 5.5]))
    np.testing.assert_allclose(predict_proba(params, X_HAND, bn=bn), expected, rtol=1e-7)
    # one image alone gets the same P(cat) (no batch statistics at prediction)
    np.testing.assert_allclose(predict_proba(params, X_HAND[:, 2:], bn=bn), predict_proba(params, X_HAND, bn=bn)[2:],
                               rtol=1e-14)


def test_without_batch_norm_forward_is_unchanged():
    params, _bn, X, Y = _net([4, 3, 1])
    AL, cache = forward(params, X)
    assert cache.bn is None
    np.testing.assert_array_equal(AL, sigmoid(params[1][0] @ np.maximum(params[0][0] @ X + params[0][1], 0)
                                              + params[1][1]))


# --------------------------------------------------------------------------- settings
def test_off_by_default_and_the_presets_keep_it_off():
    assert TrainConfig().batch_norm is False
    assert all(not p.batch_norm for p in PRESETS.values())
    assert preset_name(replace(PRESETS["deep"], batch_norm=True)) == "custom"
    assert "batch norm" in TrainConfig(batch_norm=True).techniques()


@pytest.mark.parametrize("changes, message", [
    (dict(batch_norm="yes"), "batch_norm must be true or false"),
    (dict(batch_norm=True, layers=(12288, 1)), "this network has none"),
    (dict(batch_norm=True, batch_size=1), "at least 2 examples per batch"),
])
def test_impossible_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()




def test_batch_norm_keeps_the_gram_solver_where_it_is_exact_and_says_so():
    # dZ[1] goes through the normalisation but is still multiplied by X_bᵀ: W1 stays in the span of the
    # inputs (tests/test_techniques.py checks the Gram iterates against the direct ones, with batch norm)
    cfg = TrainConfig(layers=(20, 5, 1), batch_norm=True, optimizer="momentum")
    cls, reason = solver_choice("auto", 20, 30, cfg.layers, 2500, cfg)
    assert cls is GramSolver and "with momentum and batch norm, W1 stays" in reason
    cls, reason = solver_choice("auto", 20, 30, cfg.layers, 2500, replace(cfg, optimizer="adam"))
    assert cls is DirectSolver and "Adam" in reason


def test_a_direct_step_equals_the_shared_math_with_the_optimiser_on_gamma_and_beta():
    params, bn, X, Y = _net([4, 3, 2, 1], m=12)
    cfg = TrainConfig(layers=(4, 3, 2, 1), batch_norm=True, learning_rate=0.1)
    ref_params = [(W.copy(), b.copy()) for W, b in params]
    ref_bn = bn.copy()
    solver = DirectSolver(params, X, Y, 0.1, config=cfg, bn=bn)
    solver.step(False)
    AL, cache = forward(ref_params, X, bn=ref_bn)
    grads = backward(ref_params, cache, Y, AL, bn=ref_bn)
    for (P, dP), got in zip(zip(ref_params + ref_bn.params, grads), solver.params() + solver.batch_norm().params):
        for a, da, b in zip(P, dP, got):
            np.testing.assert_allclose(b, a - 0.1 * da, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(solver.batch_norm().running[1][0], 0.1 * cache.bn[1][2], rtol=1e-13)


# --------------------------------------------------------------------------- real data
SMALL_DEEP = (12288, 20, 7, 5, 1)


@pytest.mark.parametrize("techniques, solver", [
    (dict(optimizer="gd"), "gram"),
    (dict(optimizer="momentum", batch_size=32, flip=True), "gram"),
    (dict(optimizer="adam", learning_rate=0.001, batch_size=64, shift=2, keep_prob=0.9, l2=0.5), "direct"),
])
def test_batch_norm_trains_with_every_optimiser_batches_and_augmentation(dataset, techniques, solver):
    m = 60
    X, Y = dataset.train.X[:, :m], dataset.train.Y[:, :m]
    cfg = TrainConfig(layers=SMALL_DEEP, iterations=16, batch_norm=True, **{"learning_rate": 0.05, **techniques})
    t = Trainer(cfg, X, Y, cost_every=1)
    for _ in t.run():
        pass
    assert t.status == "finished" and t.solver_name == solver
    costs = [c for _, c in t.history]
    assert all(np.isfinite(costs))
    bn = t.batch_norm()
    assert any(not np.allclose(g, 1.0) for g, _ in bn.params)  # γ learned
    assert any(not np.allclose(mu, 0.0) for mu, _ in bn.running)  # running averages recorded


def test_a_batch_norm_run_on_the_real_data_trains_and_round_trips_through_a_file(dataset, tmp_path):
    model = fit(TrainConfig(layers=SMALL_DEEP, iterations=60, batch_norm=True), dataset, cost_every=1, progress=False)
    costs = [c for _, c in model.history]
    assert costs[-1] < 0.8 * costs[0]  # the cost falls
    assert model.bn is not None and len(model.bn.params) == 3
    path = tmp_path / "bn.npz"
    save_model(model, path)
    back = load_model(path)
    assert back.config.batch_norm and back.bn is not None
    np.testing.assert_array_equal(back.predict_proba(dataset.test.X), model.predict_proba(dataset.test.X))
    # prediction uses the running averages: the same P(cat) for an image alone as in the whole test set
    np.testing.assert_allclose(model.predict_proba(dataset.test.X[:, 3:4]), model.predict_proba(dataset.test.X)[3:4],
                               rtol=1e-12)


# --------------------------------------------------------------------------- model files
@pytest.fixture(scope="module")
def bn_model():
    rng = np.random.RandomState(0)
    X = rng.rand(12288, 12)
    Y = (rng.rand(1, 12) > 0.5).astype(float)
    cfg = TrainConfig(layers=(12288, 3, 2, 1), learning_rate=0.01, iterations=5, init="he", seed=4, batch_norm=True)
    return fit(cfg, X=X, Y=Y, cost_every=1, progress=False)


def _arrays(model):
    with np.load(io.BytesIO(model_to_bytes(model)), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _meta(arrays, edit):
    import json

    meta = json.loads(str(arrays["meta"]))
    edit(meta)
    return {**arrays, "meta": np.array(json.dumps(meta))}


def test_a_model_file_keeps_gamma_beta_and_the_running_statistics(bn_model):
    arrays = _arrays(bn_model)
    assert {"gamma1", "beta1", "mu1", "var1", "gamma2", "beta2", "mu2", "var2"} <= set(arrays)
    back = load_model(model_to_bytes(bn_model))
    for (g, b), (g2, b2) in zip(bn_model.bn.params + bn_model.bn.running, back.bn.params + back.bn.running):
        np.testing.assert_array_equal(g, g2)
        np.testing.assert_array_equal(b, b2)
    assert (back.bn.momentum, back.bn.epsilon) == (bn_model.bn.momentum, bn_model.bn.epsilon)


def _drop(arrays, key):
    return {k: v for k, v in arrays.items() if k != key}


def _config_off(meta):
    meta["config"]["batch_norm"] = False


@pytest.mark.parametrize("change, message", [
    (lambda a: _drop(a, "var2"), "batch norm on but array var2 is missing"),
    (lambda a: {**a, "gamma1": np.ones((4, 1))}, r"gamma1 has shape \(4, 1\), expected \(3, 1\)"),
    (lambda a: {**a, "mu1": a["mu1"].astype(np.float32)}, "mu1 has dtype float32"),
    (lambda a: {**a, "beta2": np.full((2, 1), np.nan)}, "beta2 contains NaN"),
    (lambda a: {**a, "var1": -np.ones((3, 1))}, "var1, a running variance, has negative entries"),
    (lambda a: _meta(a, _config_off), "holds batch-norm arrays .* but its settings have batch_norm off"),
    (lambda a: _meta(a, lambda m: m.pop("bn")), "no batch-norm description"),
    (lambda a: _meta(a, lambda m: m["bn"].update(epsilon=0)), "epsilon 0 is not a valid value"),
])
def test_inconsistent_batch_norm_in_a_model_file_is_refused(bn_model, change, message):
    with pytest.raises(ModelFileError, match=message):
        load_model(_bytes(change(_arrays(bn_model))), name="bad.npz")


# --------------------------------------------------------------------------- CLI and links
def test_link_round_trip_with_batch_norm():
    cfg = TrainConfig(batch_norm=True, optimizer="adam", learning_rate=0.001)
    query = config_to_query(cfg)
    assert query["batch-norm"] == "1"
    back, warnings = config_from_query(query)
    assert warnings == [] and back == cfg
    assert "batch-norm" not in config_to_query(TrainConfig())


def test_cli_batch_norm_flag_reaches_the_config_and_the_model_file(data_dir, tmp_path):
    path = tmp_path / "bn.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "catdnn", "train", "--preset", "deep", "--iterations", "30", "--print-every", "10",
         "--batch-norm", "--data-dir", str(data_dir), "--save", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr
    assert "batch norm" in proc.stderr and "Gram solver: with gradient descent and batch norm, W1 stays" in proc.stderr
    model = load_model(path)
    assert model.config.batch_norm and model.bn is not None


def test_saliency_of_a_batch_norm_model_is_the_gradient_of_its_prediction():
    from catdnn.probe import saliency

    params, bn, _X, _Y = _net([6, 5, 4, 1], seed=2)
    bn.running = [(np.random.RandomState(1).randn(*mu.shape), np.full(var.shape, 1.7)) for mu, var in bn.running]
    x = np.random.RandomState(3).rand(6)
    eps = 1e-6
    numeric = []
    for i in range(6):
        d = np.zeros(6)
        d[i] = eps
        plus = predict_proba(params, (x + d)[:, None], bn=bn)[0]
        minus = predict_proba(params, (x - d)[:, None], bn=bn)[0]
        numeric.append((plus - minus) / (2 * eps))
    np.testing.assert_allclose(saliency(params, x, bn=bn), numeric, rtol=1e-6, atol=1e-10)


def test_inside_the_network_uses_the_batch_norm_of_the_prediction():
    from catdnn.probe import dead_units, layer_activations

    params, bn, X, _Y = _net([6, 5, 4, 1], seed=5)
    acts = layer_activations(params, X[:, 0], bn=bn)
    assert acts[-1][0, 0] == pytest.approx(predict_proba(params, X[:, :1], bn=bn)[0], rel=1e-14)
    _AL, cache = forward(params, X, bn=bn, running=True)
    assert [d.tolist() for d in dead_units(params, X, bn=bn)] == [
        (Z <= 0).all(axis=1).tolist() for _A, Z in cache[:-1]]


def test_the_accuracy_curve_of_a_batch_norm_run_is_the_prediction_with_the_running_averages(dataset):
    X, Y = dataset.train.X[:, :60], dataset.train.Y[:, :60]
    cfg = TrainConfig(layers=SMALL_DEEP, iterations=1, batch_norm=True, seed=2)
    t = Trainer(cfg, X, Y, accuracy_every=1)
    list(t.run())
    # iteration 0 is measured at the first weights: γ = 1, β = 0, running μ = 0 and σ² = 1, not the batch's own
    first = predict_proba(init_params(cfg.layers, cfg.init, cfg.seed), X, bn=BatchNorm.init(cfg.layers))
    assert t.accuracy_history[0][:2] == (0, float(np.mean((first > 0.5) == Y[0])))


def test_the_cost_axis_says_the_cost_uses_the_batch_statistics():
    from catdnn.figures import cost_meaning

    assert cost_meaning(TrainConfig(batch_norm=True)) == "cross-entropy with each batch's own μ and σ² (batch norm)"
    assert cost_meaning(TrainConfig()) == "cross-entropy"


# --------------------------------------------------------------------------- convolutional nets
def _tiny_cnn(spec, seed=0):
    from catdnn import cnn
    from catdnn.arch import parse_arch

    arch = parse_arch(spec, source=(8, 8, 3))
    rng = np.random.default_rng(seed)
    X = rng.random((8 * 8 * 3, 5))
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    params = [(W, rng.normal(scale=0.1, size=b.shape)) for W, b in cnn.init_cnn(arch, "he", seed=3, dtype=np.float64)]
    bn = BatchNorm.of_sizes(list(arch.convs) + list(arch.dense_layers[1:-1]))
    bn.params = [(rng.uniform(0.5, 1.5, g.shape), rng.normal(scale=0.3, size=b.shape)) for g, b in bn.params]
    return arch, params, bn, X, Y


@pytest.mark.parametrize("spec", ["conv2,conv3,dense4", "in4,conv2,dense3", "conv3", "conv2,conv2,conv2"])
def test_cnn_gradient_check_covers_gamma_and_beta(spec):
    from catdnn import cnn

    arch, params, bn, X, Y = _tiny_cnn(spec)
    assert cnn.gradient_check(params, arch, X, Y, bn=bn) < 1e-7
    assert cnn.gradient_check(params, arch, X, Y, lambd=0.7, bn=bn) < 1e-7


def test_cnn_batch_norm_normalises_each_channel_over_every_position_of_every_image():
    from catdnn import cnn

    arch, params, bn, X, _Y = _tiny_cnn("conv2,dense3")
    bn.params[0] = (np.ones((2, 1)), np.zeros((2, 1)))
    _AL, cache = cnn.forward(params, arch, X, bn=bn)
    Zt = cache[0][1]  # (m, H, W, C), normalised
    np.testing.assert_allclose(Zt.mean(axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(Zt.var(axis=(0, 1, 2)), 1.0, rtol=1e-6)
    # prediction: the running averages, the same P(cat) for an image alone as among others
    together = cnn.predict_proba(params, arch, X, bn=bn)
    np.testing.assert_allclose(cnn.predict_proba(params, arch, X[:, 2:3], bn=bn), together[2:3], rtol=1e-12)


def test_a_cnn_with_batch_norm_trains_and_round_trips_through_a_file(dataset, tmp_path):
    from catdnn.probe import feature_map_images, saliency

    cfg = TrainConfig(arch="in16,conv4,conv8,dense8", batch_size=16, optimizer="adam", learning_rate=0.01,
                      iterations=24, init="he", flip=True, shift=2, batch_norm=True, dtype="float32")
    m = 64
    model = fit(cfg, X=dataset.train.X[:, :m], Y=dataset.train.Y[:, :m], X_test=dataset.test.X[:, :20],
                Y_test=dataset.test.Y[:, :20], cost_every=1, progress=False)
    assert model.bn is not None and [g.shape for g, _ in model.bn.params] == [(4, 1), (8, 1), (8, 1)]
    assert model.bn.params[0][0].dtype == np.float32
    assert any(not np.allclose(mu, 0.0) for mu, _ in model.bn.running)
    costs = [c for _, c in model.history]
    assert np.isfinite(costs).all() and np.mean(costs[-6:]) < np.mean(costs[:6])
    path = tmp_path / "cnn_bn.npz"
    save_model(model, path)
    back = load_model(path)
    Xt = dataset.test.X[:, :20]
    np.testing.assert_array_equal(back.predict_proba(Xt), model.predict_proba(Xt))
    arrays = _arrays(model)
    with pytest.raises(ModelFileError, match="var3 is missing"):
        load_model(_bytes(_drop(arrays, "var3")))
    with pytest.raises(ModelFileError, match=r"gamma1 has shape \(8, 1\), expected \(4, 1\) .*4 channels"):
        load_model(_bytes({**arrays, "gamma1": np.ones((8, 1), np.float32)}))
    x = dataset.test.X[:, :1]
    assert feature_map_images(model.params, model.arch, x, 1, bn=model.bn).shape == (4, 16, 16)
    assert np.isfinite(saliency(model.params, x, arch=model.arch, bn=model.bn)).all()


def test_cnn_input_gradient_with_batch_norm_is_the_gradient_of_its_prediction():
    from catdnn import cnn

    arch, params, bn, X, _Y = _tiny_cnn("conv2,conv2,dense3", seed=4)
    rng = np.random.default_rng(5)
    bn.running = [(rng.normal(size=mu.shape), rng.uniform(0.5, 2.0, var.shape)) for mu, var in bn.running]
    x = X[:, :1].copy()

    def logit(x):
        return float(cnn.forward(params, arch, x, bn=bn, running=True)[1].dense[-1][1][0, 0])

    _p, dz = cnn.logit_input_gradient(params, arch, x, bn=bn)
    eps = 1e-6
    for i in rng.choice(x.shape[0], 12, replace=False):
        d = np.zeros_like(x)
        d[i] = eps
        assert dz[i] == pytest.approx((logit(x + d) - logit(x - d)) / (2 * eps), rel=1e-5, abs=1e-9)


def test_cli_batch_norm_on_a_convolutional_net(data_dir, tmp_path):
    path = tmp_path / "cnn_bn.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "catdnn", "train", "--arch", "in16,conv4,dense8", "--batch-size", "32", "--optimizer",
         "adam", "--lr", "0.01", "--iterations", "7", "--batch-norm", "--data-dir", str(data_dir), "--save", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr
    model = load_model(path)
    assert model.is_cnn and model.config.batch_norm and [g.shape for g, _ in model.bn.params] == [(4, 1), (8, 1)]


# --------------------------------------------------------------------------- the app with a batch-norm model
def test_predict_and_inside_pages_with_a_batch_norm_model(dataset):
    from tests.app_support import INSIDE, PREDICT, app, assert_clean, images

    skdata = pytest.importorskip("skimage.data")
    model = fit(TrainConfig(layers=(12288, 7, 5, 1), iterations=30, batch_norm=True), dataset, progress=False)
    at = app(PREDICT, model).run()
    photo = (Path(skdata.data_dir) / "chelsea.png").read_bytes()
    at.file_uploader(key="predict_files").set_value(("chelsea.png", photo, "image/png")).run()
    assert_clean(at)
    assert not at.error and len([c for c in at.caption if c.value.startswith("Verdict:")]) == 1
    assert images(at) == 3  # the photo, what the network sees, where it looks (the saliency map)
    at = app(INSIDE, model).run()
    assert_clean(at)
    assert not at.error


def test_a_cnn_model_with_batch_norm_and_a_conv_bias_predicts_with_the_bias():
    # issue 18's attack review: the biases moved after the pooling, and with batch norm they were left out,
    # so a model file whose conv biases are not 0 predicted without them (training keeps them at 0)
    from catdnn import cnn
    from catdnn.arch import parse_arch

    arch = parse_arch("in16,conv4,dense3")
    params = cnn.init_cnn(arch, "he", 3, np.float64)
    params[0] = (params[0][0], np.full_like(params[0][1], 0.5))
    bn = BatchNorm.of_sizes([4, 3], np.float64)
    X = np.random.default_rng(2).random((12288, 5))
    _AL, cache = cnn.forward_maps(params, arch, cnn.to_input(arch, X, np.float64), bn=bn, running=True)
    A = cache[0][3]  # the first layer's output, pooled
    fm = cnn.feature_maps(params, arch, X, 1, bn=bn)  # its ReLU before pooling, the Inside page's view
    pooled = np.maximum(np.maximum(fm[:, ::2, ::2], fm[:, 1::2, ::2]), np.maximum(fm[:, ::2, 1::2], fm[:, 1::2, 1::2]))
    assert np.allclose(pooled, A, rtol=1e-12, atol=1e-12)
    zero = [(params[0][0], np.zeros_like(params[0][1]))] + params[1:]
    assert not np.allclose(cnn.predict_proba(params, arch, X, bn=bn), cnn.predict_proba(zero, arch, X, bn=bn))
