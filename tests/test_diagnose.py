"""Diagnoses of failed runs on the real dataset: exploding cost and dead ReLU networks."""

from dataclasses import replace

import numpy as np
import pytest

from catdnn import PRESETS, Trainer
from catdnn.diagnose import diagnose, prior_cost
from catdnn.network import init_params


def test_prior_cost_of_the_training_set(dataset):
    p = 72 / 209
    assert prior_cost(dataset.train.Y) == pytest.approx(-(p * np.log(p) + (1 - p) * np.log(1 - p)))
    assert f"{prior_cost(dataset.train.Y):.6f}" == "0.643974"
    assert prior_cost(np.ones((1, 4))) == 0.0


def _run(dataset, lr, iterations=300):
    cfg = replace(PRESETS["deep"], learning_rate=lr, iterations=iterations)
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


def test_the_weights_show_a_constant_answer(dataset):
    # live hidden units, but an output layer that ignores them: the same answer for every image
    (W1, b1), (W2, b2) = init_params([12288, 3, 1], "xavier", seed=1)
    params = [(W1, b1 + 1.0), (np.zeros_like(W2), np.full_like(b2, -5.0))]
    history = [(0, 0.9), (100, 0.8)]
    messages = diagnose(history, dataset.train.Y, 0.1, params=params, X=dataset.train.X)
    assert len(messages) == 1
    assert messages[0].startswith("the network answers “non-cat” for every training image")
    assert "(0 of its 3 hidden ReLU units output 0 for every image)" in messages[0]


def test_a_healthy_model_has_no_diagnosis_from_its_weights(dataset):
    t = _run(dataset, 0.0075)
    assert diagnose(t.history, dataset.train.Y, 0.0075, params=t.params(), X=dataset.train.X) == []
