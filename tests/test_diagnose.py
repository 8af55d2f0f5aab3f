"""Diagnoses of failed runs on the real dataset: exploding cost and dead ReLU networks."""

from dataclasses import replace

import numpy as np
import pytest

from catdnn import PRESETS, Trainer
from catdnn.diagnose import diagnose, prior_cost


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


def test_a_too_large_rate_explodes_then_dies(dataset):
    t = _run(dataset, 5.0)
    messages = diagnose(t.history, dataset.train.Y, 5.0)
    assert len(messages) == 2
    assert messages[0].startswith("the cost exploded") and "Try 0.5" in messages[0]
    assert "stuck at 0.643974" in messages[1] and "ReLU units have died" in messages[1]


def test_dead_network_without_explosion(dataset):
    t = _run(dataset, 1.0)
    messages = diagnose(t.history, dataset.train.Y, 1.0)
    assert len(messages) == 1 and "stopped learning" in messages[0]
