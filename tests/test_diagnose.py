"""Diagnoses of failed runs on the real dataset: exploding cost and dead ReLU networks."""

import math
from dataclasses import replace

import numpy as np
import pytest

from catdnn import PRESETS, Trainer
from catdnn.diagnose import diagnose, prior_cost, signal
from catdnn.evaluate import auc
from catdnn.network import INIT_DESCRIPTIONS, compute_cost, forward, init_params
from catdnn.probe import dead_units


def test_prior_cost_of_the_training_set(dataset):
    p = 72 / 209
    assert prior_cost(dataset.train.Y) == pytest.approx(-(p * np.log(p) + (1 - p) * np.log(1 - p)))
    assert f"{prior_cost(dataset.train.Y):.6f}" == "0.643974"
    assert prior_cost(np.ones((1, 4))) == 0.0


def _run(dataset, lr, iterations=300, **settings):
    cfg = replace(PRESETS["deep"], learning_rate=lr, iterations=iterations, **settings)
    t = Trainer(cfg, dataset.train.X, dataset.train.Y, cost_every=1)
    for _ in t.run():
        pass
    return t


def test_a_healthy_run_has_no_diagnosis(dataset):
    t = _run(dataset, 0.0075)
    assert t.status == "finished"
    assert diagnose(t.history, dataset.train.Y, 0.0075) == []


def test_an_exploding_rate_stops_the_run_as_diverged(dataset):
    t = _run(dataset, 5.0)  # costs 0.772, 0.740, then 357 524 at iteration 2
    assert t.status == "diverged" and t.iterations_done == 2
    assert "the cost exploded to 3.575e+05" in t.message and "Try a smaller learning rate (e.g. 0.5)" in t.message
    assert [i for i, _ in t.history] == [0, 1, 2]  # the explosion is on the curve too
    assert t.history[2][1] == pytest.approx(357524, rel=1e-4)


def test_dead_network_without_explosion(dataset):
    t = _run(dataset, 1.0)
    assert t.status == "finished"
    messages = diagnose(t.history, dataset.train.Y, 1.0)
    assert len(messages) == 1 and "stopped learning" in messages[0] and "ReLU units have died" in messages[0]
    assert "stuck at 0.643974" in messages[0]


def test_a_cost_that_ends_above_its_start(dataset):
    t = _run(dataset, 10.0)  # oscillates without exploding and ends at 0.7986 > 0.7717
    assert t.status == "finished"
    messages = diagnose(t.history, dataset.train.Y, 10.0)
    assert len(messages) == 1 and messages[0].startswith("the cost ended at 0.7986, above where it started")


def test_the_weights_show_a_dead_layer_that_few_costs_cannot(dataset):
    cfg = replace(PRESETS["two-layer"], learning_rate=0.5, iterations=200)
    t = Trainer(cfg, dataset.train.X, dataset.train.Y, cost_every=100)
    for _ in t.run():
        pass
    assert len(t.history) == 3  # 0, 100, 199: too few to see a flat curve
    assert diagnose(t.history, dataset.train.Y, 0.5) == []
    messages = diagnose(t.history, dataset.train.Y, 0.5, params=t.params(), X=dataset.train.X)
    assert len(messages) == 1 and "all 7 ReLU units of layer 1 output 0 for every training image" in messages[0]


@pytest.fixture(scope="module")
def small_init(dataset):
    """The deep net from ×0.01 weights (the init lesson's first run, at the tests' 300 iterations)."""
    return _run(dataset, 0.0075, init="small")


def test_a_vanished_signal_is_blamed_on_the_init_not_the_rate(dataset, small_init):
    """Issue 20 item 2: ×0.01 on the deep net answers non-cat because the signal vanishes, so the cure is the
    init; a smaller learning rate, which the old text prescribed, leaves it worse."""
    X, Y = dataset.train.X, dataset.train.Y
    params = small_init.params()
    (message,) = diagnose(small_init.history, Y, 0.0075, params=params, X=X)
    s = signal(params, X, Y)
    assert message.startswith("the network answers “non-cat” for every training image")
    assert "signal vanishes" in message and "Initial weights too small" in message
    # learner review item 6: the init lesson shows Xavier ahead of He on this net, so neither is "the" cure
    assert "such as He" not in message and "He init" not in message
    assert (f"scaled to each layer's size: Xavier's {INIT_DESCRIPTIONS['xavier']} or He's {INIT_DESCRIPTIONS['he']}"
            in message) and "init lesson trains both" in message
    assert f"P(cat) differs by only {s.p_range:.1e}" in message and f"‖dW[1]‖ is {s.grad_norms[0]:.1e}" in message
    assert " → ".join(f"{z:.3g}" for z in s.z_std) in message
    assert "Try a smaller learning rate" not in message and "learned nothing" not in message
    assert s.p_range < 1e-3 and s.grad_norms[0] < 1e-4
    slower = _run(dataset, 0.00075, init="small")  # "a smaller learning rate only slows it further"
    assert slower.history[-1][1] > small_init.history[-1][1]


def test_a_net_that_ranks_the_images_has_not_learned_nothing(dataset):
    """Issue 20 item 4: He init at α 0.05 for 500 iterations answers non-cat for every image at a cost far below
    the constant answer's: it ranks the images (AUC), its P(cat) just never crosses 0.5."""
    X, Y = dataset.train.X, dataset.train.Y
    t = _run(dataset, 0.05, iterations=500, init="he")
    params = t.params()
    (message,) = diagnose(t.history, Y, 0.05, params=params, X=X)
    AL, _ = forward(params, X)
    cost, area = compute_cost(AL, Y), auc(AL[0], Y)
    assert cost < prior_cost(Y) - 0.05 and area > 0.75 and AL.max() < 0.5  # seed 1: 0.531, 0.82, 0.42
    assert "learned nothing" not in message and "most common answer" not in message
    assert f"its cost {cost:.3f} is below the {prior_cost(Y):.3f}" in message
    assert f"ranks the training images (AUC {area:.2f}" in message
    assert f"so it has learned something, but its P(cat) never rises above 0.5 (it reaches {AL.max():.2f})" in message


def _output_at(params, p: float, spread: float):
    """``params`` with an output layer answering about ``p`` for every image, varying by about ``spread``."""
    (W1, b1), (W2, b2) = params
    rng = np.random.RandomState(0)
    return [(W1, b1 + 1.0), (spread * rng.randn(*W2.shape), np.full_like(b2, math.log(p / (1 - p))))]


def test_learned_nothing_but_the_most_common_answer_only_at_the_prior_cost(dataset):
    """The only case where the old sentence is true: the most common answer, at the constant answer's cost."""
    X, Y = dataset.train.X, dataset.train.Y
    p = float(Y.mean())
    params = _output_at(init_params([12288, 3, 1], "xavier", seed=1), p, 0.01)
    (message,) = diagnose([(0, 0.9), (100, 0.8)], Y, 0.1, params=params, X=X)
    AL, _ = forward(params, X)
    assert abs(compute_cost(AL, Y) - prior_cost(Y)) < 0.01 and not signal(params, X, Y).vanished
    assert message.startswith("the network answers “non-cat” for every training image (66% of them are non-cats; "
                              "0 of its 3 hidden ReLU units output 0 for every image)")
    assert "learned nothing but the most common answer" in message and "smaller learning rate (0.01)" in message


def test_a_constant_cat_is_not_called_the_most_common_answer(dataset):
    """Cats are 34 % of the training images: a net that answers "cat" for all has not learned the common answer."""
    X, Y = dataset.train.X, dataset.train.Y
    params = _output_at(init_params([12288, 3, 1], "xavier", seed=1), 0.6, 0.01)
    (message,) = diagnose([(0, 0.9), (100, 0.8)], Y, 0.1, params=params, X=X)
    AL, _ = forward(params, X)
    cost = compute_cost(AL, Y)
    assert message.startswith("the network answers “cat” for every training image (34% of them are cats")
    assert "most common answer" not in message and "learned nothing" not in message
    assert f"its cost {cost:.3f} is above the {prior_cost(Y):.3f}" in message and cost > prior_cost(Y)
    assert f"its P(cat) never falls below 0.5 (it reaches {AL.min():.2f})" in message
    assert "learned something" not in message


def test_a_dead_unit_of_a_deeper_layer_can_come_back_and_one_of_layer_1_cannot(dataset):
    """Issue 20 item 9, the fact behind the Inside page's caption: under plain gradient descent a dead unit of
    layer 2 or 3 comes back to life as layer 1 changes; a dead unit of layer 1 never does."""
    X, Y = dataset.train.X, dataset.train.Y
    t = Trainer(replace(PRESETS["deep"], learning_rate=0.05, iterations=20), X, Y)
    revived, before = set(), None
    for _ in t.run():
        dead = dead_units(t.params(), X)
        if before is not None:
            revived |= {(l, int(u)) for l, (a, b) in enumerate(zip(before, dead), start=1)
                        for u in np.flatnonzero(a & ~b)}
        before = dead
    assert any(l > 1 for l, _ in revived)  # seed 1: unit 6 of layer 2 after the second step
    assert not any(l == 1 for l, _ in revived)


def test_a_healthy_model_has_no_diagnosis_from_its_weights(dataset):
    t = _run(dataset, 0.0075)
    assert diagnose(t.history, dataset.train.Y, 0.0075, params=t.params(), X=dataset.train.X) == []
