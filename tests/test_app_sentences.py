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
