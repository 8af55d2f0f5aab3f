"""Sentences of the Home and Inside pages that state facts about the data or about training (issue 20, items
5 and 9): each is checked against the numbers it cites, computed from the dataset."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from catdnn import PRESETS, fit
from tests.app_support import ENTRY, INSIDE, app, assert_clean


def test_home_says_what_0_66_is_and_points_to_balanced_accuracy_and_auc(data_dir, dataset):
    """0.66 is the best constant answer on the test set, not the bar a net must beat to have learned: the training
    set is 34 % cats, so a net that learned only its prior scores 0.34."""
    at = app(ENTRY).run()
    assert_clean(at)
    (caption,) = [c.value for c in at.caption if "constant answer" in c.value]
    test_cats, train_cats = float(np.mean(dataset.test.Y)), float(np.mean(dataset.train.Y))
    best, answer = (test_cats, "cat") if test_cats >= 0.5 else (1 - test_cats, "non-cat")
    common = 1 if train_cats > 0.5 else 0
    prior_only = float(np.mean(dataset.test.Y == common))
    assert f"**{best:.2f}** is the best constant answer on the test set (always “{answer}”)" in caption
    assert f"the test set is {test_cats:.0%} cats, the training set {train_cats:.0%}" in caption
    assert f"most common answer (“{dataset.classes[common]}”) scores {prior_only:.2f} on the test set" in caption
    assert "balanced accuracy" in caption and "AUC" in caption
    assert "to have learned anything" not in caption
    assert (f"{best:.2f}", f"{prior_only:.2f}") == ("0.66", "0.34")  # the course's data


def test_inside_says_a_dead_unit_stays_dead_only_in_layer_1(data_dir, dataset):
    """Deeper units can come back as the layers below them change (tests/test_diagnose.py shows one)."""
    model = fit(replace(PRESETS["deep"], iterations=20), dataset)
    at = app(INSIDE, model).run()
    assert_clean(at)
    (caption,) = [c.value for c in at.caption if "gets a zero gradient" in c.value]
    assert "In layer 1, plain gradient descent never brings it back" in caption
    assert "A dead unit of a deeper layer can come back" in caption
    assert "so gradient descent never brings it back" not in caption


def test_an_auc_of_a_flat_p_cat_says_what_it_ranks(data_dir, dataset):
    """Learner review item 11: the deep net at ×0.01 init gives every test image nearly the same P(cat) (a span of a
    few 1e-6), and its test AUC (0.30) ranks those differences: said next to the AUC on Train and Misclassified,
    with the span computed, and only when the span is below evaluate.FLAT_SPREAD."""
    from catdnn import evaluate
    from tests.app_support import MISCLASSIFIED, TRAIN, session_of

    at = app(TRAIN).run()
    at.selectbox(key="train_init").set_value("small")
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    model = session_of(at).run.model
    p = model.predict_proba(dataset.test.X)
    span = float(p.max() - p.min())
    assert model.config.init == "small" and model.config.layers == PRESETS["deep"].layers
    assert span < evaluate.FLAT_SPREAD
    expected = (f"P(cat) spans only {span:.1e} across these {dataset.test.m} images (below {evaluate.FLAT_SPREAD:g}): "
                "the AUC ranks them by differences that small")
    assert any(c.value.startswith(f"Test AUC: {expected}") for c in at.caption)
    mis = app(MISCLASSIFIED, model).run()
    assert_clean(mis)
    assert any(c.value.startswith(f"AUC: {expected}") for c in mis.caption)
    healthy = fit(replace(PRESETS["two-layer"], iterations=30), dataset)
    q = healthy.predict_proba(dataset.test.X)
    assert float(q.max() - q.min()) >= evaluate.FLAT_SPREAD and evaluate.auc_caveat(q) == ""
    mis = app(MISCLASSIFIED, healthy).run()
    assert not any("P(cat) spans only" in c.value for c in mis.caption)
