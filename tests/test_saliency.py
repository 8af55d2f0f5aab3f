"""What the network looks at, and what training records about its layers: ``probe.saliency`` (the
gradient of P(cat) with respect to the input pixels) against central differences, its heat map and
overlay, ``probe.layer_stats`` and the training loop's ``stats_every``."""

from __future__ import annotations

import numpy as np
import pytest

from catdnn import TrainConfig, fit, probe
from catdnn.augment import flip
from catdnn.data import IMAGE_SHAPE, N_X
from catdnn.model_io import load_model, model_to_bytes
from catdnn.network import forward, init_params, predict_proba
from catdnn.train import Trainer


def central_differences(f, x: np.ndarray, index, eps: float = 1e-5) -> np.ndarray:
    out = []
    for i in index:
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        out.append((f(plus) - f(minus)) / (2 * eps))
    return np.array(out)


@pytest.mark.parametrize("layers, init", [((N_X, 1), "small"), ((N_X, 7, 1), "he"), ((N_X, 6, 4, 3, 1), "he")])
@pytest.mark.parametrize("tta", [False, True])
def test_saliency_is_the_gradient_of_p_cat(layers, init, tta):
    rng = np.random.default_rng(3)
    params = init_params(layers, init, seed=5)
    x = rng.random((N_X, 1))  # an image scaled to [0, 1]
    g = probe.saliency(params, x, tta=tta)
    assert g.shape == (N_X,) and g.dtype == np.float64
    index = rng.choice(N_X, 40, replace=False)
    numeric = central_differences(lambda v: float(predict_proba(params, v, tta=tta)[0]), x, index)
    assert np.linalg.norm(g[index] - numeric) / np.linalg.norm(numeric) < 1e-7


def test_the_mirror_average_is_symmetric():
    """With mirror averaging, the saliency of an image is the mirror image of its mirror's saliency."""
    params = init_params((N_X, 5, 1), "he", seed=2)
    x = np.random.default_rng(0).random((N_X, 1))
    a = probe.saliency(params, x, tta=True)
    b = probe.saliency(params, flip(x), tta=True)
    np.testing.assert_allclose(a, flip(b.reshape(-1, 1))[:, 0], rtol=1e-12, atol=1e-18)


def test_a_saturated_network_has_a_zero_map_not_nan():
    W = np.full((1, N_X), 10.0)  # Z = 10·Σx ≫ 0: P(cat) is 1 to the last bit
    params = [(W, np.zeros((1, 1)))]
    x = np.ones((N_X, 1))
    assert forward(params, x)[0][0, 0] == 1.0
    g = probe.saliency(params, x)
    assert np.all(g == 0.0)
    heat = probe.saliency_map(g)
    assert heat.shape == IMAGE_SHAPE[:2] and np.all(heat == 0.0)


def test_the_heat_map_is_the_largest_colour_per_pixel_scaled_to_one():
    g = np.zeros(IMAGE_SHAPE)
    g[3, 4, 2] = -2.0  # the strongest pixel, through its blue, negative
    g[10, 20, 0] = 0.5
    g[10, 20, 1] = -1.0
    heat = probe.saliency_map(g.reshape(-1))
    assert heat.shape == (64, 64) and heat.max() == 1.0
    assert heat[3, 4] == 1.0 and heat[10, 20] == 0.5 and np.count_nonzero(heat) == 2


def test_the_overlay_is_an_image_of_the_same_size():
    image = np.random.default_rng(1).integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)
    heat = np.zeros(IMAGE_SHAPE[:2])
    heat[0, 0] = 1.0
    out = probe.saliency_overlay(image, heat)
    assert out.shape == IMAGE_SHAPE and out.dtype == np.uint8
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 80  # the hot pixel is red-yellow


# --------------------------------------------------------------------------- statistics during training
def test_layer_stats_are_the_gradient_norms_and_activations_of_the_math():
    rng = np.random.default_rng(4)
    params = init_params((30, 6, 4, 1), "he", seed=3)
    X, Y = rng.standard_normal((30, 12)), (rng.random((1, 12)) > 0.5).astype(float)
    s = probe.layer_stats(params, X, Y, iteration=7)
    assert s.iteration == 7 and len(s.grad_norms) == len(s.mean_activations) == 3 and len(s.zero_fractions) == 2
    # layer 1 by hand
    Z1 = params[0][0] @ X + params[0][1]
    A1 = np.maximum(Z1, 0)
    assert s.mean_activations[0] == pytest.approx(A1.mean()) and s.zero_fractions[0] == pytest.approx(np.mean(Z1 <= 0))
    AL = forward(params, X)[0]
    assert s.mean_activations[-1] == pytest.approx(AL.mean())
    # the output layer's gradient: dW[L] = (A[L] - Y)·A[L-1]ᵀ / m
    A2 = np.maximum(params[1][0] @ A1 + params[1][1], 0)
    assert s.grad_norms[-1] == pytest.approx(np.linalg.norm((AL - Y) @ A2.T / 12))


def test_the_training_loop_records_statistics_every_k_iterations(dataset):
    cfg = TrainConfig(layers=(N_X, 5, 3, 1), iterations=25)
    trainer = Trainer(cfg, dataset.train.X, dataset.train.Y, stats_every=10)
    for _ in trainer.run():
        pass
    assert [s.iteration for s in trainer.stats] == [0, 10, 20, 24]  # and the last
    first = trainer.stats[0]
    ref = probe.layer_stats(init_params(cfg.layers, cfg.init, cfg.seed), dataset.train.X, dataset.train.Y, 0)
    # the Gram solver takes ‖dW[1]‖ from XᵀX: equal up to the summation order
    assert first.iteration == ref.iteration == 0 and first.zero_fractions == ref.zero_fractions
    np.testing.assert_allclose(first.grad_norms, ref.grad_norms, rtol=1e-12)
    np.testing.assert_allclose(first.mean_activations, ref.mean_activations, rtol=1e-12)
    model = trainer.model()
    assert model.stats == trainer.stats
    assert load_model(model_to_bytes(model)).stats == []  # files keep no statistics


def test_statistics_do_not_change_the_run(dataset):
    """Recording reads the parameters: the iterates (Gram solver) are the same with and without it."""
    cfg = TrainConfig(layers=(N_X, 7, 1), init="small", iterations=60)
    plain = fit(cfg, dataset)
    recorded = fit(cfg, dataset, stats_every=7)
    assert plain.history == recorded.history and not plain.stats and len(recorded.stats) == 10
    for (W, b), (W2, b2) in zip(plain.params, recorded.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


def test_stats_every_must_not_be_negative(dataset):
    from catdnn.errors import ConfigError

    with pytest.raises(ConfigError, match="stats_every"):
        Trainer(TrainConfig(layers=(N_X, 1), iterations=5), dataset.train.X, dataset.train.Y, stats_every=-1)


@pytest.mark.parametrize("layers", [(12288, 20, 7, 5, 1), (12288, 7, 1), (12288, 1)])
def test_the_gram_solvers_statistics_are_those_of_the_materialised_network(dataset, layers):
    """The Gram solver's snapshot (Z[1] in Gram form, ‖dW[1]‖ from XᵀX) equals probe.layer_stats on the
    built parameters, to rounding (a different summation order)."""
    cfg = TrainConfig(layers=layers, iterations=40, seed=3)
    trainer = Trainer(cfg, dataset.train.X, dataset.train.Y, stats_every=13, solver="gram")
    seen = []
    for event in trainer.run():
        if event.iteration + 1 in (13, 26):  # after this update: the parameters of the next snapshot
            seen.append((event.iteration + 1, probe.layer_stats(trainer.params(), dataset.train.X, dataset.train.Y)))
    by_iteration = {s.iteration: s for s in trainer.stats}
    assert sorted(by_iteration) == [0, 13, 26, 39] and len(seen) == 2
    for i, ref in seen:
        got = by_iteration[i]
        np.testing.assert_allclose(got.grad_norms, ref.grad_norms, rtol=1e-8)
        np.testing.assert_allclose(got.mean_activations, ref.mean_activations, rtol=1e-8)
        # a Z within rounding of 0 may land on either side in the two summation orders: one value of 4180
        np.testing.assert_allclose(got.zero_fractions, ref.zero_fractions, rtol=0, atol=1.5 / (20 * 209))
