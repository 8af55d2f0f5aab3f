"""The network's math: init draw order, forward/backward by hand, gradient checks, prediction."""

from __future__ import annotations

import numpy as np
import pytest

from catdnn.network import (
    INITS,
    accuracy,
    backward,
    compute_cost,
    cost_from_logits,
    forward,
    gradient_check,
    init_params,
    predict,
    predict_proba,
    update,
)


def test_init_follows_the_course_draw_order():
    rng = np.random.RandomState(1)
    W1 = rng.randn(20, 12288) / np.sqrt(12288)
    W2 = rng.randn(7, 20) / np.sqrt(20)
    params = init_params([12288, 20, 7, 5, 1], "xavier", seed=1)
    np.testing.assert_array_equal(params[0][0], W1)
    np.testing.assert_array_equal(params[1][0], W2)
    assert [W.shape for W, _ in params] == [(20, 12288), (7, 20), (5, 7), (1, 5)]
    assert [b.shape for _, b in params] == [(20, 1), (7, 1), (5, 1), (1, 1)]
    assert all(W.dtype == np.float64 and not b.any() for W, b in params)


@pytest.mark.parametrize(
    "init, scale", [("small", lambda n: 0.01), ("xavier", lambda n: 1 / np.sqrt(n)), ("he", lambda n: np.sqrt(2 / n))]
)
def test_init_scales(init, scale):
    (W1, _), (W2, _) = init_params([400, 300, 1], init, seed=3)
    assert W1.std() == pytest.approx(scale(400), rel=0.02)
    rng = np.random.RandomState(3)
    np.testing.assert_allclose(W1, rng.randn(300, 400) * scale(400))


def test_init_is_deterministic_and_seed_dependent():
    a = init_params([10, 4, 1], "he", seed=5)
    b = init_params([10, 4, 1], "he", seed=5)
    c = init_params([10, 4, 1], "he", seed=6)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert not np.array_equal(a[0][0], c[0][0])


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        init_params([3, 1], "zeros")


def _hand_net():
    # [1, 1, 1]: W1 = 2, b1 = -1, W2 = 3, b2 = 0; two examples x = 1 (cat), x = 0.25 (non-cat)
    params = [(np.array([[2.0]]), np.array([[-1.0]])), (np.array([[3.0]]), np.array([[0.0]]))]
    X = np.array([[1.0, 0.25]])
    Y = np.array([[1.0, 0.0]])
    return params, X, Y


def test_forward_backward_by_hand():
    params, X, Y = _hand_net()
    AL, cache = forward(params, X)
    # Z1 = [1, -0.5] -> A1 = [1, 0]; Z2 = [3, 0] -> A2 = [sigmoid(3), 0.5]
    np.testing.assert_allclose(cache[0][1], [[1.0, -0.5]])
    np.testing.assert_allclose(AL, [[0.9525741268224334, 0.5]])
    # cost = -(log sigmoid(3) + log 0.5) / 2
    assert cost_from_logits(cache[-1][1], Y) == pytest.approx(0.37086726608, abs=1e-10)
    assert compute_cost(AL, Y) == pytest.approx(0.37086726608, abs=1e-10)
    (dW1, db1), (dW2, db2) = backward(params, cache, Y, AL)
    # dZ2 = A2 - Y = [-0.0474258732, 0.5]; dW2 = dZ2·A1ᵀ / 2; db2 = mean(dZ2)
    assert dW2[0, 0] == pytest.approx(-0.0237129365887833, abs=1e-12)
    assert db2[0, 0] == pytest.approx(0.2262870634112167, abs=1e-12)
    # dZ1 = W2ᵀ dZ2 * (Z1 > 0) = [-0.1422776196, 0]; dW1 = dZ1·Xᵀ / 2 = db1
    assert dW1[0, 0] == pytest.approx(-0.0711388097663500, abs=1e-12)
    assert db1[0, 0] == pytest.approx(-0.0711388097663500, abs=1e-12)


def test_one_update_step_by_hand():
    # logistic regression [2, 1]: W = [0.5, -0.5], b = 0, lr = 0.1
    params = [(np.array([[0.5, -0.5]]), np.array([[0.0]]))]
    X = np.array([[1.0, 2.0], [0.0, 1.0]])
    Y = np.array([[1.0, 0.0]])
    AL, cache = forward(params, X)
    update(params, backward(params, cache, Y, AL), 0.1)
    # Z = [0.5, 0.5], A = sigmoid(0.5) = 0.6224593312, dZ = [-0.3775406688, 0.6224593312]
    # dW = dZ·Xᵀ / 2 = [0.4336889968, 0.3112296656], db = 0.1224593312
    np.testing.assert_allclose(params[0][0], [[0.5 - 0.04336889968, -0.5 - 0.03112296656]], atol=1e-10)
    np.testing.assert_allclose(params[0][1], [[-0.01224593312]], atol=1e-10)


@pytest.mark.parametrize("init", list(INITS))
@pytest.mark.parametrize("layers", [[5, 1], [4, 3, 1], [6, 5, 4, 1], [3, 7, 2, 3, 1]])
def test_gradient_check(layers, init):
    rng = np.random.RandomState(len(layers) * 10 + len(init))
    m = 7
    X = rng.randn(layers[0], m)
    Y = (rng.rand(1, m) > 0.5).astype(float)
    params = init_params(layers, init, seed=2)
    # scale up tiny "small" weights so the check is not dominated by a flat cost surface
    params = [(W * (50 if init == "small" else 1) + 0.0, b + rng.randn(*b.shape) * 0.1) for W, b in params]
    rel = gradient_check(params, X, Y)
    assert rel < 1e-7, rel


def test_gradient_check_catches_a_wrong_gradient(monkeypatch):
    import catdnn.network as net

    real = net.backward

    def wrong(params, cache, Y, AL=None):
        grads = real(params, cache, Y, AL)
        dW, db = grads[0]
        return [(dW * 1.01, db)] + grads[1:]

    monkeypatch.setattr(net, "backward", wrong)
    rng = np.random.RandomState(0)
    X, Y = rng.randn(4, 6), (rng.rand(1, 6) > 0.5).astype(float)
    assert net.gradient_check(init_params([4, 3, 1], "he", 1), X, Y) > 1e-4


def test_cost_is_finite_for_saturated_outputs():
    Y = np.array([[1.0, 0.0]])
    ZL = np.array([[-1000.0, 1000.0]])  # confidently wrong: sigmoid gives exactly 0 and 1
    cost = cost_from_logits(ZL, Y)
    assert np.isfinite(cost) and cost == pytest.approx(1000.0)
    assert np.isfinite(compute_cost(np.array([[0.0, 1.0]]), Y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cost_from_probabilities_is_finite_at_0_and_1_in_any_float(dtype):
    # issue 19 B3: a floor of 1e-300 is 0 in float32, so log(0) gave inf
    Y = np.array([[1.0, 0.0, 1.0, 0.0]])
    AL = np.array([[0.0, 1.0, 1.0, 0.0]], dtype=dtype)  # two confidently wrong, two exactly right
    cost = compute_cost(AL, Y)
    assert np.isfinite(cost)
    assert cost > 40  # two wrong answers of four, each costing -log(smallest normal) ≥ 87 (float32)
    right = compute_cost(np.array([[1.0, 0.0]], dtype=dtype), np.array([[1.0, 0.0]]))
    assert right == 0.0


def test_gradient_check_perturbs_fortran_ordered_weights():
    # issue 19 B4: W = Wt.T is Fortran-ordered; reshape(-1) copied it, so the check perturbed nothing
    rng = np.random.RandomState(4)
    X, Y = rng.randn(5, 8), (rng.rand(1, 8) > 0.5).astype(float)
    params = init_params([5, 4, 3, 1], "he", seed=3)
    fortran = [(np.asfortranarray(W), b) for W, b in params]
    transposed = [(np.ascontiguousarray(W.T).T, b) for W, b in params]  # W = Wt.T
    assert all(W.flags.f_contiguous and not W.flags.c_contiguous for W, _ in fortran[:2])
    assert gradient_check(params, X, Y) < 1e-7
    assert gradient_check(fortran, X, Y) < 1e-7
    assert gradient_check(transposed, X, Y) < 1e-7
    np.testing.assert_array_equal(fortran[0][0], params[0][0])  # the caller's weights are left as they were


def test_predict_and_accuracy():
    params = [(np.array([[1.0, -1.0]]), np.array([[0.0]]))]
    X = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])  # z = [2, -2, 0]
    np.testing.assert_allclose(predict_proba(params, X), [0.8807970779778823, 0.11920292202211755, 0.5])
    np.testing.assert_array_equal(predict(params, X), [1, 0, 0])  # 0.5 is not above the threshold
    np.testing.assert_array_equal(predict(params, X, threshold=0.1), [1, 1, 1])
    assert accuracy(params, X, np.array([[1, 0, 1]])) == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- the fast path's pieces (issue 18)
@pytest.mark.parametrize("with_bn", [False, True])
@pytest.mark.parametrize("lambd", [0.0, 0.7])
def test_backward_with_a_scale_gives_the_scaled_gradients(with_bn, lambd):
    """backward(scale=α) returns α × every gradient, and α/m × dA0, to rounding: what the Gram solver subtracts."""
    from catdnn.network import BatchNorm

    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((6, 13)), (rng.random((1, 13)) < 0.5).astype(float)
    params = init_params([6, 5, 4, 1], "he", seed=2)
    bn = BatchNorm.init([6, 5, 4, 1]) if with_bn else None
    if bn is not None:  # γ, β away from 1, 0
        bn.params = [(g + rng.random(g.shape), b + rng.standard_normal(b.shape)) for g, b in bn.params]
    AL, cache = forward(params, X, bn=bn)
    grads, dA0 = backward(params, cache, Y, AL, lambd=lambd, bn=bn, input_grad=True)
    AL, cache = forward(params, X, bn=bn)
    scaled, dA0_scaled = backward(params, cache, Y, AL, lambd=lambd, bn=bn, input_grad=True, scale=0.37)
    assert len(scaled) == len(grads) == (5 if with_bn else 3)
    for (dW, db), (sW, sb) in zip(grads, scaled):
        np.testing.assert_allclose(sW, 0.37 * dW, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(sb, 0.37 * db, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(dA0_scaled, 0.37 / 13 * dA0, rtol=1e-12, atol=1e-16)  # dA0 is m × the derivative


def test_update_with_rate_one_subtracts_the_steps_as_given():
    params = [(np.ones((2, 3)), np.zeros((2, 1)))]
    update(params, [(np.full((2, 3), 0.25), np.full((2, 1), -0.5))], 1.0)
    np.testing.assert_array_equal(params[0][0], np.full((2, 3), 0.75))
    np.testing.assert_array_equal(params[0][1], np.full((2, 1), 0.5))


def test_all_finite_agrees_with_the_entrywise_test():
    from catdnn.network import all_finite

    assert all_finite(np.array([[1.0, -2.0, 3.0]]))
    assert all_finite(np.array([[1e308, 1e308]]))  # the sum overflows, every entry is finite
    assert all_finite(np.float32([[3e38, 3e38]]))
    assert all_finite(np.empty((1, 0)))
    for bad in (np.inf, -np.inf, np.nan):
        assert not all_finite(np.array([[1.0, bad, 2.0]]))
    assert not all_finite(np.array([[np.inf, -np.inf]]))  # inf - inf: NaN, still not finite


@pytest.mark.parametrize("shape", [(20, 209), (5,), (1, 70_000)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_is_max_with_zero_bit_for_bit(shape, dtype):
    """relu takes its 0 from a cached array of zeros on small arrays: the same values as np.maximum(Z, 0),
    signs of zero and NaN included, and a fresh writable result every time."""
    from catdnn.network import relu

    Z = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    flat = Z.reshape(-1)
    flat[:5] = [-0.0, 0.0, np.nan, np.inf, -np.inf]
    A = relu(Z)
    expected = np.maximum(Z, 0.0)
    assert A.dtype == expected.dtype and A.shape == Z.shape
    np.testing.assert_array_equal(A, expected)
    np.testing.assert_array_equal(np.signbit(A), np.signbit(expected))
    A[...] = 7.0  # the result is the caller's: writing to it leaves the next one alone
    np.testing.assert_array_equal(relu(Z), expected)
