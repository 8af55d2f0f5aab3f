"""The Step mode's engine (catdnn.stepper): its numbers are network.forward / backward / update's own, on the
same parameters, to the last bit; one iteration of it is one iteration of training; a CNN is refused."""

from __future__ import annotations

import numpy as np
import pytest

from catdnn import PRESETS, TrainConfig
from catdnn.errors import ConfigError
from catdnn.network import backward, compute_cost, descent_step, forward, init_params, relu_backward, update
from catdnn.stepper import CORNER_COLS, CORNER_ROWS, MAX_WEIGHT_BYTES, MAX_WORK, PHASES, Shown, Stepper, first_examples


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


def test_a_batch_norm_network_is_refused_with_a_message(dataset):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="trained with batch norm.*two-layer or deep preset"):
        Stepper(replace(PRESETS["deep"], batch_norm=True), dataset.train.X[:, :4], dataset.train.Y[:, :4])


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
