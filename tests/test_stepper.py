"""The Step mode's engine (catdnn.stepper): its numbers are network.forward / backward / update's own, on the
same parameters, to the last bit; one iteration of it is one iteration of training; a CNN is refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from catdnn import PRESETS, TrainConfig, Trainer
from catdnn.errors import ConfigError
from catdnn.network import (
    BatchNorm,
    backward,
    batch_norm_backward,
    compute_cost,
    descent_step,
    forward,
    init_params,
    relu_backward,
    update,
)
from catdnn.stepper import (
    CORNER_COLS,
    CORNER_ROWS,
    MAX_WEIGHT_BYTES,
    MAX_WORK,
    PHASES,
    Shown,
    Stepper,
    digits_for_change,
    first_examples,
)


def assert_shows(shown, array, symbol, layer):
    """``shown`` describes ``array`` exactly: its name, shape, first entries and norm."""
    assert (shown.symbol, shown.layer, shown.shape) == (symbol, layer, array.shape)
    np.testing.assert_array_equal(shown.corner, array[:CORNER_ROWS, :CORNER_COLS])
    assert shown.norm == float(np.linalg.norm(array))


def by_symbol(layer_step) -> dict:
    return {a.symbol: a for a in layer_step.arrays}


@pytest.mark.parametrize("preset", ["two-layer", "deep"])
def test_every_number_is_the_engines_own(dataset, preset):
    """Forward, backward and update on 30 images: each array shown is the one network.forward / backward /
    update compute on the same parameters (exact), and the cost after is compute_cost at the updated ones."""
    config = PRESETS[preset]
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 30)
    stepper = Stepper(config, X, Y)
    params = init_params(config.layers, config.init, config.seed)
    L = len(params)

    fwd = stepper.forward()
    AL, cache = forward(params, X)
    assert fwd.phase == "forward" and fwd.iteration == 0 and [s.layer for s in fwd.layers] == list(range(1, L + 1))
    assert fwd.cost == compute_cost(AL, Y)
    for l, step in enumerate(fwd.layers, start=1):
        A = AL if l == L else cache[l][0]
        assert_shows(by_symbol(step)["Z"], cache[l - 1][1], "Z", l)
        assert_shows(by_symbol(step)["A"], A, "A", l)
        assert f"Z^{{[{l}]}}" in step.equations[0] and f"W^{{[{l}]}}" in step.equations[0]

    bwd = stepper.backward()
    grads = backward(params, cache, Y, AL)
    assert [s.layer for s in bwd.layers] == list(range(L, 0, -1)) and bwd.cost is None
    # the course's dZ and dA, from the engine's forward: dZ[L] = A[L] - Y, dA[l] = W[l+1]ᵀ dZ[l+1], dZ = dA ⊙ ReLU'(Z)
    dZ = AL - Y
    for step in bwd.layers:
        l = step.layer
        shown = by_symbol(step)
        assert_shows(shown["dZ"], dZ, "dZ", l)
        assert_shows(shown["dW"], grads[l - 1][0], "dW", l)
        assert_shows(shown["db"], grads[l - 1][1], "db", l)
        if l == L:
            assert_shows(shown["Y"], Y, "Y", None)
            assert "dA" not in shown
        if l > 1:
            dA = params[l - 1][0].T @ dZ
            assert_shows(by_symbol(bwd.layers[L - l + 1])["dA"], dA, "dA", l - 1)
            dZ = relu_backward(dA.copy(), cache[l - 2][1])

    upd = stepper.update()
    before = [(W.copy(), b.copy()) for W, b in params]
    update(params, grads, config.learning_rate)
    for step, (W, b), (W0, b0), (W_now, b_now) in zip(upd.layers, params, before, stepper.params):
        l = step.layer
        np.testing.assert_array_equal(W_now, W)
        np.testing.assert_array_equal(b_now, b)
        assert_shows(by_symbol(step)[r"\Delta W"], W - W0, r"\Delta W", l)
        assert_shows(by_symbol(step)[r"\Delta b"], b - b0, r"\Delta b", l)
        assert_shows(by_symbol(step)["W"], W, "W", l)
    assert upd.cost == compute_cost(forward(params, X)[0], Y)
    assert stepper.iteration == 1 and stepper.next_phase == "forward"


def test_the_deep_net_steps_as_it_trains(dataset):
    """Three iterations on all 209 images from seed 1: the course's first cost 0.771749, and each cost the
    one the training step (network.descent_step) computes; the cost falls."""
    stepper = Stepper(PRESETS["deep"], dataset.train.X, dataset.train.Y)
    params = init_params(PRESETS["deep"].layers, "xavier", 1)
    costs = []
    for i in range(3):
        records = [stepper.step() for _ in PHASES]
        assert [r.phase for r in records] == list(PHASES) and {r.iteration for r in records} == {i}
        expected, _AL = descent_step(params, dataset.train.X, dataset.train.Y, 0.0075)
        assert records[0].cost == pytest.approx(expected, rel=1e-14, abs=0)
        costs.append((records[0].cost, records[2].cost))
    assert f"{costs[0][0]:.6f}" == "0.771749"
    assert all(after < before for before, after in costs)
    assert costs[1][0] == costs[0][1] and costs[2][0] == costs[1][1]  # the cost after is the next one's before
    for (W, b), (W_train, b_train) in zip(stepper.params, params):
        np.testing.assert_array_equal(W, W_train)
        np.testing.assert_array_equal(b, b_train)


def test_given_weights_are_copied_never_changed(dataset):
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 5)
    params = init_params(PRESETS["two-layer"].layers, "small", 3)
    kept = [(W.copy(), b.copy()) for W, b in params]
    stepper = Stepper(PRESETS["two-layer"], X, Y, params=params)
    for _ in PHASES:
        stepper.step()
    for (W, b), (W0, b0) in zip(params, kept):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    assert not np.array_equal(stepper.params[0][0], params[0][0])


def test_a_convolutional_net_is_refused_with_a_message(dataset):
    with pytest.raises(ConfigError, match="convolutional net.*step through an MLP"):
        Stepper(PRESETS["cnn"], dataset.train.X, dataset.train.Y)


def bn_start(layers, seed=5):
    """γ and β away from their 1 and 0, so that a test tells them apart from the defaults and from each other."""
    rng = np.random.default_rng(seed)
    bn = BatchNorm.init(layers)
    bn.params = [(1 + 0.3 * rng.standard_normal(g.shape), 0.2 * rng.standard_normal(b.shape)) for g, b in bn.params]
    return bn


@pytest.mark.parametrize("preset", ["two-layer", "deep"])
def test_every_batch_norm_number_is_the_engines_own(dataset, preset):
    """Issue 17 items 1 and 4: a batch-norm net steps forward, backward and update on 30 images, each hidden layer
    showing μ, σ², Z_norm, γ, β, Z̃ forward and dZ̃, dγ, dβ, dZ backward: the arrays network.forward / backward /
    update compute on the same parameters (exact), Z[l] = W·A + b to rounding (the cache holds Z_norm in its place),
    γ and β updated like W and b, and the cost after measured with the batch's own statistics."""
    config = replace(PRESETS[preset], batch_norm=True)
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 30)
    params = init_params(config.layers, config.init, config.seed)
    bn = bn_start(config.layers)
    stepper = Stepper(config, X, Y, params=params, bn=bn)
    L = len(params)

    fwd = stepper.forward()
    AL, cache = forward(params, X, bn=bn)
    assert fwd.cost == compute_cost(AL, Y)
    for l, step in enumerate(fwd.layers, start=1):
        shown = by_symbol(step)
        A_prev = X if l == 1 else cache[l - 1][0]
        assert_shows(shown["A"], AL if l == L else cache[l][0], "A", l)
        if l == L:  # the output layer is not normalised
            assert set(shown) == {"Z", "A"}
            assert_shows(shown["Z"], cache[l - 1][1], "Z", l)
            continue
        Z_norm, _inv_std, mu, var = cache.bn[l - 1]
        gamma, beta = bn.params[l - 1]
        assert list(shown) == ["Z", r"\mu", r"{\sigma^2}", r"Z_{\mathrm{norm}}", r"\gamma", r"\beta", r"\tilde{Z}", "A"]
        assert_shows(shown[r"\mu"], mu, r"\mu", l)
        assert_shows(shown[r"{\sigma^2}"], var, r"{\sigma^2}", l)
        assert_shows(shown[r"Z_{\mathrm{norm}}"], Z_norm, r"Z_{\mathrm{norm}}", l)
        assert_shows(shown[r"\gamma"], gamma, r"\gamma", l)
        assert_shows(shown[r"\beta"], beta, r"\beta", l)
        assert_shows(shown[r"\tilde{Z}"], cache[l - 1][1], r"\tilde{Z}", l)
        Z = params[l - 1][0] @ A_prev + params[l - 1][1]
        np.testing.assert_allclose(shown["Z"].corner, Z[:CORNER_ROWS, :CORNER_COLS], rtol=1e-12, atol=1e-12)
        assert shown["Z"].norm == pytest.approx(float(np.linalg.norm(Z)), rel=1e-12)
        np.testing.assert_allclose(mu, Z.mean(axis=1, keepdims=True), rtol=1e-12, atol=1e-15)  # the course's μ, σ²
        np.testing.assert_allclose(var, Z.var(axis=1, keepdims=True), rtol=1e-12)
        assert any(r"\sqrt{{\sigma^2}^{[" in eq for eq in step.equations)

    bwd = stepper.backward()
    grads = backward(params, cache, Y, AL, bn=bn)
    dZ = AL - Y
    for step in bwd.layers:
        l = step.layer
        shown = by_symbol(step)
        assert_shows(shown["dZ"], dZ, "dZ", l)
        assert_shows(shown["dW"], grads[l - 1][0], "dW", l)
        assert_shows(shown["db"], grads[l - 1][1], "db", l)
        if l < L:
            dgamma, dbeta = grads[L + l - 1]
            assert_shows(shown[r"d\gamma"], dgamma, r"d\gamma", l)
            assert_shows(shown[r"d\beta"], dbeta, r"d\beta", l)
            assert not shown["db"].norm  # b cancels in Z − μ
        if l > 1:
            dA = params[l - 1][0].T @ dZ
            below = by_symbol(bwd.layers[L - l + 1])
            assert_shows(below["dA"], dA, "dA", l - 1)
            dZ_tilde = relu_backward(dA.copy(), cache[l - 2][1])
            assert_shows(below[r"d\tilde{Z}"], dZ_tilde, r"d\tilde{Z}", l - 1)
            dZ, dgamma, dbeta = batch_norm_backward(dZ_tilde, bn.params[l - 2][0], cache.bn[l - 2])
            np.testing.assert_array_equal(dgamma, grads[L + l - 2][0])

    upd = stepper.update()
    update(params + bn.params, grads, config.learning_rate)
    bn.record(cache.bn)
    for step, (W, b), (W_now, b_now) in zip(upd.layers, params, stepper.params):
        np.testing.assert_array_equal(W_now, W)
        np.testing.assert_array_equal(b_now, b)
        assert_shows(by_symbol(step)["W"], W, "W", step.layer)
    for l, ((g, b), (g_now, b_now)) in enumerate(zip(bn.params, stepper.bn.params), start=1):
        np.testing.assert_array_equal(g_now, g)
        np.testing.assert_array_equal(b_now, b)
        assert_shows(by_symbol(upd.layers[l - 1])[r"\gamma"], g, r"\gamma", l)
        assert by_symbol(upd.layers[l - 1])[r"\Delta\gamma"].norm > 0
    for (mu, v), (mu_now, v_now) in zip(bn.running, stepper.bn.running):  # recorded as training records them
        np.testing.assert_array_equal(mu_now, mu)
        np.testing.assert_array_equal(v_now, v)
    assert upd.cost == compute_cost(forward(params, X, bn=bn)[0], Y)


def test_a_batch_norm_net_steps_as_it_trains(dataset):
    """Three iterations of the deep net with batch norm on 50 images: the costs and the weights, γ and β are
    the training loop's (the direct solver, cost at every iteration), to rounding."""
    config = replace(PRESETS["deep"], batch_norm=True, iterations=3)
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 50)
    stepper = Stepper(config, X, Y)
    costs = [[stepper.step() for _ in PHASES][0].cost for _ in range(3)]
    trainer = Trainer(config, X, Y, cost_every=1, solver="direct")
    trained = [p.cost for p in trainer.run() if p.cost is not None]
    np.testing.assert_allclose(costs, trained, rtol=1e-12)
    model = trainer.model()
    for (W, b), (W_t, b_t) in zip(stepper.params + stepper.bn.params, model.params + model.bn.params):
        np.testing.assert_allclose(W, W_t, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(b, b_t, rtol=1e-10, atol=1e-14)


def test_batch_norm_settings_that_do_not_fit_are_named(dataset):
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 4)
    with pytest.raises(ConfigError, match="γ and β were given for a network without batch norm"):
        Stepper(PRESETS["deep"], X, Y, bn=BatchNorm.init(PRESETS["deep"].layers))
    with pytest.raises(ConfigError, match="γ and β do not match the hidden layers"):
        Stepper(replace(PRESETS["deep"], batch_norm=True), X, Y, bn=BatchNorm.init(PRESETS["two-layer"].layers))
    with pytest.raises(ConfigError, match="at least 2 images in a batch .* 1 image is chosen here"):
        Stepper(replace(PRESETS["deep"], batch_norm=True), X[:, :1], Y[:, :1])


def test_phases_go_in_order_and_bad_settings_are_named(dataset):
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 4)
    stepper = Stepper(PRESETS["two-layer"], X, Y)
    with pytest.raises(ConfigError, match="next step of iteration 1 is forward, not update"):
        stepper.update()
    stepper.forward()
    with pytest.raises(ConfigError, match="not forward"):
        stepper.forward()
    with pytest.raises(ConfigError, match="learning rate"):
        Stepper(TrainConfig(layers=(12288, 7, 1), learning_rate=-1.0), X, Y)
    with pytest.raises(ConfigError, match="do not match the layers"):
        Stepper(PRESETS["deep"], X, Y, params=init_params((12288, 7, 1)))
    with pytest.raises(ConfigError, match="at least 1"):
        first_examples(X, Y, 0)
    assert first_examples(X, Y, 10)[0].shape == (12288, 4)


def test_backward_hands_out_its_deltas_without_changing_the_gradients(dataset):
    """``deltas`` only records: the gradients are bit for bit those of a backward pass without it."""
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 12)
    params = init_params(PRESETS["deep"].layers, "xavier", 2)
    AL, cache = forward(params, X)
    deltas = ["stale"]
    for (dW, db), (dW0, db0) in zip(backward(params, cache, Y, AL, deltas=deltas), backward(params, cache, Y, AL)):
        np.testing.assert_array_equal(dW, dW0)
        np.testing.assert_array_equal(db, db0)
    assert len(deltas) == len(params) and deltas[-1][0] is None
    assert [dZ.shape for _dA, dZ in deltas] == [(n, 12) for n in PRESETS["deep"].layers[1:]]
    bn = bn_start(PRESETS["deep"].layers)  # with batch norm: each hidden layer's dZ̃ too, the gradients unchanged
    AL, cache = forward(params, X, bn=bn)
    for g, g0 in zip(backward(params, cache, Y, AL, deltas=deltas, bn=bn), backward(params, cache, Y, AL, bn=bn)):
        np.testing.assert_array_equal(g[0], g0[0])
        np.testing.assert_array_equal(g[1], g0[1])
    assert [len(d) for d in deltas] == [3, 3, 3, 2]
    for l, (dA, _dZ, dZ_tilde) in enumerate(deltas[:-1], start=1):
        np.testing.assert_array_equal(dZ_tilde, relu_backward(dA.copy(), cache[l - 1][1]))


def test_the_step_mode_refuses_work_beyond_its_limits():
    """It computes in the server's process: at most MAX_WEIGHT_BYTES of weights, at most MAX_WORK multiply-adds
    (weights × images) per pass; each refusal says what to change, before any weight is drawn."""
    X, Y = np.zeros((12288, 2)), np.zeros((1, 2))
    assert TrainConfig(layers=(12288, 1000, 1)).param_count() * 8 > MAX_WEIGHT_BYTES
    with pytest.raises(ConfigError, match="at most 64 MiB of weights.*train this one on the Train page"):
        Stepper(TrainConfig(layers=(12288, 1000, 1)), X, Y)
    config = TrainConfig(layers=(12288, 600, 1))  # 7.4 million weights: 56 MiB
    most = MAX_WORK // config.param_count()
    X, Y = np.zeros((12288, most + 1)), np.zeros((1, most + 1))
    with pytest.raises(ConfigError, match=f"take at most {most:,} images, or a smaller network"):
        Stepper(config, X, Y)
    assert Stepper(config, X[:, :most], Y[:, :most]).m == most


def test_numbers_of_every_size_are_written_for_latex():
    shown = Shown.of("Z", 1, np.array([[0.0, 1234.5678, -2.5e-7, np.inf], [-np.inf, np.nan, 0.5, 7.0]]))
    text = shown.latex()
    assert r"0 & 1235 & -2.50\mathrm{e}{-7} & \infty \\ -\infty & \text{NaN} & 0.5 & 7" in text
    assert text.startswith(r"\lVert Z^{[1]} \rVert = \text{NaN},")


def entries_written(latex: str) -> list[float]:
    """The first entries of a Shown's LaTeX, as written (its bmatrix's numbers)."""
    body = latex.split(r"\begin{bmatrix}")[1].split(r"\end{bmatrix}")[0]
    cells = [c.strip() for row in body.split(r"\\") for c in row.split("&")]
    return [float(c.replace(r"\mathrm{e}{", "e").rstrip("}")) for c in cells if c and not c.startswith("\\")]


def test_an_update_writes_the_weights_with_the_digits_that_show_their_change(dataset):
    """Learner review of issue 17: γ was written [1, 1, 1] after an update of Δγ = 2.19e-4. Every entry written
    after an update differs from the one written before wherever the update changed it, and the running μ and σ²
    the update records are shown, equal to the engine's."""
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 5)
    stepper = Stepper(replace(PRESETS["deep"], batch_norm=True), X, Y)
    before = [(W.copy(), g.copy(), b.copy()) for (W, _), (g, b) in zip(stepper.params, stepper.bn.params)]
    stepper.forward(), stepper.backward()
    upd = stepper.update()
    for l, (W0, g0, b0) in enumerate(before, start=1):
        shown = by_symbol(upd.layers[l - 1])
        for symbol, old in ((r"\gamma", g0), (r"\beta", b0), ("W", W0)):
            a = shown[symbol]
            new_written, old_written = entries_written(a.latex()), entries_written(Shown.of(symbol, l, old).latex(
                a.digits))
            moved = (a.corner != old[:CORNER_ROWS, :CORNER_COLS]).ravel()
            assert moved.any()
            assert all(n != o for n, o, m in zip(new_written, old_written, moved) if m), (symbol, l)
        mu, var = stepper.bn.running[l - 1]
        assert_shows(shown[r"\mu_{\mathrm{run}}"], mu, r"\mu_{\mathrm{run}}", l)
        assert_shows(shown[r"{\sigma^2_{\mathrm{run}}}"], var, r"{\sigma^2_{\mathrm{run}}}", l)
        assert any(r"\mu_{\mathrm{run}}" in eq for eq in upd.layers[l - 1].equations)
    assert digits_for_change(np.array([1.000219]), np.array([1.0])) == 7
    assert digits_for_change(np.array([0.5]), np.array([0.1])) == 3
