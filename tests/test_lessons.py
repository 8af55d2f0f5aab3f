"""catdnn.lessons: the lessons' runs, the facts they measure, and sentences that are true of the runs' numbers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from catdnn import Trainer, compute_cost
from catdnn.config import TrainConfig
from catdnn.lessons import (
    LESSONS,
    adam_first_step,
    prior_cost,
    rises,
    signal_at_init,
    summarise,
)
from catdnn.sweep import SweepResult, curve_options, sweep


def run(lesson, iterations=None):
    """Train a lesson's runs on the sweep runner (2 workers) and summarise them."""
    if iterations is not None:
        lesson = replace(lesson, iterations=iterations)
    configs = lesson.configs()
    return lesson, list(sweep(configs, workers=2, **curve_options(configs[0])))


def test_the_lessons_train_what_they_say():
    init, opt, reg = LESSONS["init"], LESSONS["optimizers"], LESSONS["regularization"]
    deep = (12288, 20, 7, 5, 1)
    assert [(c.init, c.layers, c.iterations, c.learning_rate) for c in init.configs()] == [
        (i, deep, 2500, 0.0075) for i in ("small", "xavier", "he")]
    assert [c.optimizer for c in opt.configs()] == ["gd", "momentum", "adam"]
    assert len({(c.layers, c.iterations, c.batch_size) for c in opt.configs()}) == 1  # the same net and budget
    assert [(c.l2, c.dropout) for c in reg.configs()] == [(0.0, False), (0.7, False), (0.0, True)]
    assert {c.layers for c in reg.configs()} == {deep} and reg.accuracy
    for lesson in LESSONS.values():
        assert len(lesson.names) == len(lesson.configs()) == 3 and lesson.seconds > 0


def test_prior_cost_is_the_cost_of_always_answering_the_cat_fraction(dataset):
    Y = dataset.train.Y
    p = float(Y.mean())
    assert prior_cost(p) == pytest.approx(compute_cost(np.full_like(Y, p), Y), abs=1e-12)
    assert prior_cost(p) == pytest.approx(0.644, abs=5e-4)
    assert prior_cost(0.5) == pytest.approx(math.log(2)) and prior_cost(0.0) == 0.0


def test_small_init_shrinks_the_signal_and_the_gradients(dataset):
    X, Y = dataset.train.X, dataset.train.Y
    small = signal_at_init((12288, 20, 7, 5, 1), "small", 1, X, Y)
    he = signal_at_init((12288, 20, 7, 5, 1), "he", 1, X, Y)
    assert len(small.z_std) == len(small.grad_norms) == 4
    assert list(small.z_std) == sorted(small.z_std, reverse=True)  # smaller at every layer
    assert small.z_std[-1] < 1e-3 * small.z_std[0]
    assert small.p_range < 1e-3 * he.p_range
    assert small.grad_norms[0] < 1e-3 * he.grad_norms[0]


def test_adams_first_step_moves_every_weight_by_its_rate(dataset):
    """The claim behind Adam's smaller rate, checked on the engine's own Adam step."""
    rate = 1e-4
    cfg = TrainConfig(layers=(12288, 7, 1), init="small", optimizer="adam", learning_rate=rate, iterations=1)
    trainer = Trainer(cfg, dataset.train.X, dataset.train.Y)
    from catdnn.network import init_params

    W0 = init_params(cfg.layers, cfg.init, cfg.seed)[0][0]
    for _ in trainer.run():
        pass
    dW = np.abs(trainer.model().params[0][0] - W0)
    assert dW.max() <= rate * (1 + 1e-9)  # at most ±rate, whatever the gradient's size...
    assert np.mean(np.abs(dW - rate) < 0.01 * rate) > 0.98  # ...and ±rate nearly everywhere (less where |g| ~ ε)
    X = dataset.train.X
    assert adam_first_step(rate, X) == pytest.approx(rate * X.sum(axis=0).mean())


def test_the_init_lesson_stalls_at_the_prior_cost_and_says_so(dataset):
    lesson, results = run(LESSONS["init"])
    out = summarise(lesson, results, dataset)
    assert out.complete and [r.name for r in out.runs] == lesson.names
    small, xavier, he = out.runs
    h = prior_cost(float(dataset.train.Y.mean()))
    assert small.final_cost == pytest.approx(h, abs=0.01)  # the course's ×0.01 stalls near 0.644
    assert xavier.final_cost < h - 0.1 and he.final_cost < h - 0.1
    first, second, third = out.sentences
    assert f"stalls at {small.final_cost:.3f}" in first and f"{h:.3f}" in first
    assert f"train accuracy {small.train_accuracy:.3f}" in first  # it answers non-cat for every image
    assert "vanish" in second and "settles on answering the cat fraction" in second
    assert f"cost {xavier.final_cost:.3f} and {he.final_cost:.3f}" in third and "learn" in third


def test_the_regularization_lesson_reports_each_gap(dataset):
    lesson, results = run(LESSONS["regularization"])
    out = summarise(lesson, results, dataset)
    plain, l2, drop = out.runs
    assert all(r.gap is not None for r in out.runs)
    text = " ".join(out.sentences)
    assert f"gap of {plain.gap:.2f}" in out.sentences[0]
    assert f"test {l2.test_accuracy:.3f} (gap {l2.gap:.2f})" in text
    assert f"test {drop.test_accuracy:.3f} (gap {drop.gap:.2f})" in text
    assert l2.weight_norm < plain.weight_norm and "shrinks the weights" in text
    moved = [round((r.test_accuracy - plain.test_accuracy) * dataset.test.m) for r in (l2, drop)]
    assert ("Neither changes the test accuracy" in text) == all(abs(k) <= 1 for k in moved)


def test_the_optimizers_lesson_compares_the_same_budget(dataset):
    lesson, results = run(LESSONS["optimizers"], iterations=150)
    out = summarise(lesson, results, dataset)
    gd, mom, adam = out.runs
    assert all(r.history[-1][0] == 149 for r in out.runs)  # every run had the same iterations
    first, second, third = out.sentences
    assert first.startswith("After 150 iterations")
    assert all(f"{r.final_cost:.3f}" in first for r in out.runs)
    assert "gradient descent's cost" in second
    assert ("smoother" in second) == (rises(gd.history) > rises(mom.history))
    assert f"{adam_first_step(adam.config.learning_rate, dataset.train.X):.2f}" in third
    assert ("lower than gradient descent's" in third) == (adam.final_cost < min(gd.final_cost, mom.final_cost))


def test_a_run_that_did_not_finish_is_named_instead_of_explained(dataset):
    lesson = LESSONS["init"]
    configs = lesson.configs()
    results = [SweepResult(0, configs[0], "finished", history=[(0, 0.7), (1, 0.69)], train_accuracy=0.6,
                           test_accuracy=0.4),
               SweepResult(1, configs[1], "diverged", "the cost exploded", history=[(0, 0.7), (1, 9.0)])]
    out = summarise(lesson, results, dataset)
    assert not out.complete and len(out.sentences) == 1
    assert "Xavier diverged (the cost exploded)" in out.sentences[0] and "He not run" in out.sentences[0]
    assert [r.status for r in out.runs] == ["finished", "diverged", "not run"]


def test_rises_counts_the_steps_up_of_a_curve():
    assert rises([(0, 1.0), (1, 2.0), (2, 1.5), (3, 1.7), (4, float("nan"))]) == 2
    assert rises([]) == 0
