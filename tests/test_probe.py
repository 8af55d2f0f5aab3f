"""catdnn.probe: weights as images, one image layer by layer, dead units, the small gradient check;
and the figure builders the "Inside the network" and Train pages draw them with."""

from __future__ import annotations

import numpy as np
import pytest

import catdnn.network
from catdnn import probe
from catdnn.data import flatten_images
from catdnn.network import forward, gradient_check, init_params, param_count, predict_proba
from ui import figures


# --------------------------------------------------------------------------- the first layer as images
def test_symmetric_normalise_puts_zero_in_the_middle():
    w = np.array([-2.0, -1.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(probe.symmetric_normalise(w), [0.0, 0.25, 0.5, 0.625, 0.75])
    # the sign is kept and the largest |w| reaches an end, whichever sign it has
    np.testing.assert_allclose(probe.symmetric_normalise(np.array([0.0, 4.0, -1.0])), [0.5, 1.0, 0.375])
    np.testing.assert_array_equal(probe.symmetric_normalise(np.zeros((2, 3))), np.full((2, 3), 0.5))


def test_weight_images_reshape_each_row_like_the_flattened_images():
    rng = np.random.default_rng(0)
    W1 = rng.normal(size=(5, 12288)) * 0.01
    img = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    img[0, 3, 5, 2] = 255  # one bright blue pixel at row 3, column 5
    W1[2] = -0.3 * flatten_images(img)[:, 0]  # a unit that dislikes exactly that pixel's blue
    out = probe.weight_images(W1)
    assert out.shape == (5, 64, 64, 3) and out.dtype == np.uint8
    assert out[2, 3, 5, 2] == 0  # its most negative weight is black ...
    mask = np.ones((64, 64, 3), dtype=bool)
    mask[3, 5, 2] = False
    assert (out[2][mask] == 128).all()  # ... and every zero weight mid-grey
    np.testing.assert_array_equal(out[4], np.rint(255 * (0.5 + 0.5 * W1[4] / np.abs(W1[4]).max())).reshape(64, 64, 3))
    assert probe.weight_images(W1, units=[4, 1]).shape == (2, 64, 64, 3)
    np.testing.assert_array_equal(probe.weight_images(W1, units=[4])[0], out[4])


def test_weight_images_refuse_a_layer_that_is_not_images():
    with pytest.raises(ValueError, match="does not reshape"):
        probe.weight_images(np.zeros((3, 100)))


def test_initial_first_layer_is_the_runs_random_start():
    for init, seed in (("xavier", 1), ("small", 9)):
        full = init_params([12288, 20, 7, 5, 1], init, seed=seed)
        np.testing.assert_array_equal(probe.initial_first_layer((12288, 20, 7, 5, 1), init, seed), full[0][0])


def test_choose_units_by_norm_or_in_order():
    W = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 0.0], [0.0, -3.0]])
    np.testing.assert_allclose(probe.unit_norms(W), [1, 3, 2, 3])
    assert probe.choose_units(W, 3, "norm").tolist() == [1, 3, 2]  # largest first, ties by index
    assert probe.choose_units(W, 2, "first").tolist() == [0, 1]
    assert probe.choose_units(W, 99, "norm").tolist() == [1, 3, 2, 0]  # capped at n_l
    assert probe.choose_units(W, 0, "first").tolist() == [0]
    with pytest.raises(ValueError):
        probe.choose_units(W, 2, "random")


# --------------------------------------------------------------------------- one image through the network
def test_layer_activations_match_a_manual_forward_pass():
    rng = np.random.default_rng(1)
    params = init_params([30, 6, 4, 1], "he", seed=2)
    params = [(W, rng.normal(size=b.shape) * 0.1) for W, b in params]
    X = rng.random((30, 5))
    x = X[:, [3]]
    acts = probe.layer_activations(params, x)
    assert [a.shape for a in acts] == [(6, 1), (4, 1), (1, 1)]
    (W1, b1), (W2, b2), (W3, b3) = params
    A1 = np.maximum(W1 @ x + b1, 0)
    A2 = np.maximum(W2 @ A1 + b2, 0)
    A3 = 1 / (1 + np.exp(-(W3 @ A2 + b3)))
    for got, want in zip(acts, (A1, A2, A3)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert acts[-1][0, 0] == pytest.approx(predict_proba(params, X)[3], rel=1e-12)
    # the same for a 1-D column, and the same as the cached forward pass on the whole batch
    np.testing.assert_allclose(probe.layer_activations(params, X[:, 3])[1], A2)
    _AL, cache = forward(params, X)
    np.testing.assert_allclose(acts[1][:, 0], cache[2][0][:, 3])  # cache[2] = (A[2], Z[3])


def test_shape_line_states_the_course_shapes():
    layers = (12288, 20, 7, 5, 1)
    assert probe.shape_line(layers, 1) == (
        "Z[1] = W[1]·A[0] + b[1]: (20, 12288)·(12288, 1) + (20, 1) → A[1] is (20, 1)"
    )
    assert probe.shape_line(layers, 4).endswith("(1, 5)·(5, 1) + (1, 1) → A[4] is (1, 1)")


# --------------------------------------------------------------------------- dead units
def _net_with_known_dead_units():
    """Inputs in [0, 1], 3 features. Layer 1 has 4 units:
    0: all weights -1, bias -0.1  -> Z < 0 always: dead
    1: all weights +1, bias 0.1   -> Z > 0 always: alive
    2: weights 0, bias 0          -> Z = 0 always: A = 0 always, dead
    3: weight +1 on feature 0, bias -0.5 -> alive only where x0 > 0.5: not dead
    Layer 2 has 2 units: 0 reads only unit 0 (dead input) with bias -1 -> dead; 1 reads unit 1 -> alive.
    """
    W1 = np.array([[-1.0, -1, -1], [1, 1, 1], [0, 0, 0], [1, 0, 0]])
    b1 = np.array([[-0.1], [0.1], [0.0], [-0.5]])
    W2 = np.array([[5.0, 0, 0, 0], [0, 1, 0, 0]])
    b2 = np.array([[-1.0], [0.0]])
    W3, b3 = np.array([[1.0, 1.0]]), np.zeros((1, 1))
    return [(W1, b1), (W2, b2), (W3, b3)]


def test_dead_units_on_a_net_where_the_answer_is_known():
    params = _net_with_known_dead_units()
    X = np.array([[0.0, 0.2, 0.9, 1.0], [0.5, 0.1, 0.3, 1.0], [1.0, 0.0, 0.7, 0.2]])  # (3, 4)
    dead = probe.dead_units(params, X)
    assert [d.shape for d in dead] == [(4,), (2,)]
    assert dead[0].tolist() == [True, False, True, False]
    assert dead[1].tolist() == [True, False]
    # unit 3 of layer 1 is 0 on some images but not all: 0 for this image, not dead
    zeros = [(probe.layer_activations(params, X[:, j])[0][3, 0] == 0) for j in range(4)]
    assert any(zeros) and not all(zeros)
    assert probe.dead_units(params[-1:], np.ones((2, 3))) == []  # no hidden layer, nothing to die


# --------------------------------------------------------------------------- the small gradient check
@pytest.fixture
def big_net():
    rng = np.random.default_rng(3)
    params = init_params([12288, 20, 7, 5, 1], "xavier", seed=1)
    params = [(W, rng.normal(size=b.shape) * 0.1) for W, b in params]
    X = rng.random((12288, 12))
    Y = (rng.random((1, 12)) > 0.5).astype(np.float64)
    return params, X, Y


def test_small_network_keeps_the_depth_and_the_models_own_weights(big_net):
    params, X, Y = big_net
    small, Xs, Ys, layers = probe.small_network(params, X, Y, n_features=16, max_units=6, m=5)
    assert layers == [16, 6, 6, 5, 1]
    assert [W.shape for W, _ in small] == [(6, 16), (6, 6), (5, 6), (1, 5)]
    assert [b.shape for _, b in small] == [(6, 1), (6, 1), (5, 1), (1, 1)]
    assert Xs.shape == (16, 5) and Ys.shape == (1, 5)
    pixels = np.linspace(0, 12287, 16).round().astype(int)
    np.testing.assert_array_equal(Xs, X[pixels, :5])
    np.testing.assert_array_equal(Ys, Y[:, :5])
    # W[l] restricted to the kept units and inputs, rescaled by sqrt(n_{l-1} / k_{l-1})
    np.testing.assert_allclose(small[0][0], params[0][0][:6, pixels] * np.sqrt(12288 / 16))
    np.testing.assert_allclose(small[1][0], params[1][0][:6, :6] * np.sqrt(20 / 6))
    np.testing.assert_allclose(small[3][0], params[3][0][:, :5] * 1.0)
    np.testing.assert_array_equal(small[2][1], params[2][1])
    assert small[0][0] is not params[0][0] and not np.shares_memory(small[1][1], params[1][1])
    assert param_count(layers) == 6 * 17 + 6 * 7 + 5 * 7 + 6


def test_the_small_gradient_check_passes_for_the_real_backward(big_net):
    small, Xs, Ys, _layers = probe.small_network(*big_net)
    difference = gradient_check(small, Xs, Ys)
    assert difference < 1e-7
    assert probe.gradient_check_verdict(difference)[0] == "great"


@pytest.mark.parametrize("bug", ["no 1/m", "no relu derivative", "wrong sign"])
def test_the_small_gradient_check_catches_a_broken_backward(big_net, monkeypatch, bug):
    real_backward = catdnn.network.backward

    def broken(params, cache, Y, AL=None):
        if bug == "no relu derivative":
            cache = [(A_prev, np.abs(Z) + 1.0) for A_prev, Z in cache[:-1]] + [cache[-1]]  # every unit "active"
        grads = real_backward(params, cache, Y, AL)
        if bug == "no 1/m":
            return [(dW * Y.shape[1], db * Y.shape[1]) for dW, db in grads]
        if bug == "wrong sign":
            return [(dW, db) for dW, db in grads[:-1]] + [(-grads[-1][0], -grads[-1][1])]
        return grads

    small, Xs, Ys, _layers = probe.small_network(*big_net)
    monkeypatch.setattr(catdnn.network, "backward", broken)
    difference = gradient_check(small, Xs, Ys)
    assert difference > 1e-3
    assert probe.gradient_check_verdict(difference)[0] == "wrong"


def test_gradient_check_verdicts_follow_the_course():
    assert [probe.gradient_check_verdict(d)[0] for d in (3e-10, 2e-6, 4e-4, 0.2, float("nan"))] == [
        "great", "probably fine", "suspicious", "wrong", "wrong"]


def test_kink_count():
    params = [(np.array([[1.0], [1.0]]), np.array([[0.0], [-0.3]])), (np.array([[1.0, 1.0]]), np.zeros((1, 1)))]
    X = np.array([[1e-7, 0.3, 0.5]])  # Z[1] = [[1e-7, .3, .5], [-.3, 1e-7, .2]] (up to rounding)
    assert probe.kink_count(params, X) == 2


# --------------------------------------------------------------------------- figures
def test_activation_figure_marks_zeros_and_dead_units():
    a = np.array([[0.5], [0.0], [1.5], [0.0]])
    fig = figures.activation_figure(a, np.array([False, False, False, True]), title="Layer 1")
    bars, zero, dead = fig["data"]
    assert bars["type"] == "bar" and bars["x"] == [1, 2, 3, 4] and bars["y"] == [0.5, 0.0, 1.5, 0.0]
    assert zero["x"] == [2] and "this image" in zero["name"]
    assert dead["x"] == [4] and "every training image" in dead["name"]
    assert fig["layout"]["title"]["text"] == "Layer 1"
    assert len(figures.activation_figure(np.ones(3))["data"]) == 1  # nothing is zero: bars only


def test_compare_costs_figure_has_one_trace_per_run():
    runs = [("#1 deep", [(0, 0.77), (100, 0.5), (200, float("nan"))]), ("#2 two-layer", [(0, 0.69)])]
    fig = figures.compare_costs_figure(runs)
    assert [t["name"] for t in fig["data"]] == ["#1 deep", "#2 two-layer"]
    assert fig["data"][0]["x"] == [0, 100] and fig["data"][0]["mode"] == "lines"
    assert fig["data"][1]["mode"] == "markers"
    assert fig["data"][0]["line"]["color"] != fig["data"][1]["line"]["color"]
