"""Balanced accuracy and AUC (catdnn.evaluate) against hand-worked examples and a brute-force count."""

from __future__ import annotations

import numpy as np
import pytest

from catdnn import evaluate


def test_balanced_accuracy_by_hand():
    # 3 cats: 2 called cat; 5 non-cats: 4 called non-cat -> (2/3 + 4/5) / 2
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    proba = np.array([0.9, 0.6, 0.2, 0.1, 0.3, 0.4, 0.45, 0.7])
    assert evaluate.balanced_accuracy(proba, labels) == pytest.approx((2 / 3 + 4 / 5) / 2)
    # the threshold is the decision rule's
    assert evaluate.balanced_accuracy(proba, labels, threshold=0.15) == pytest.approx((3 / 3 + 1 / 5) / 2)


def test_balanced_accuracy_does_not_reward_the_majority_answer():
    labels = np.array([0] * 137 + [1] * 72)  # the training set's mix
    always_non_cat = np.zeros(labels.size)
    assert evaluate.metrics(always_non_cat, labels)["accuracy"] == pytest.approx(137 / 209)
    assert evaluate.balanced_accuracy(always_non_cat, labels) == 0.5
    assert evaluate.balanced_accuracy(np.ones(labels.size), labels) == 0.5


def test_undefined_without_both_classes():
    assert evaluate.balanced_accuracy([0.2, 0.9], [1, 1]) is None
    assert evaluate.auc([0.2, 0.9], [0, 0]) is None
    assert evaluate.metrics([0.2, 0.9], [1, 1]) == {"accuracy": 0.5, "balanced_accuracy": None, "auc": None}


def test_auc_by_hand():
    # the classic four-point example: one of the four cat/non-cat pairs is ordered wrongly
    assert evaluate.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert evaluate.auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert evaluate.auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0


def test_auc_counts_ties_as_half():
    # pairs (cat, non-cat): (0.5, 0.2) 1, (0.5, 0.5) ½, (0.9, 0.2) 1, (0.9, 0.5) 1 -> 3.5 / 4
    assert evaluate.auc([0.2, 0.5, 0.5, 0.9], [0, 1, 0, 1]) == pytest.approx(0.875)
    assert evaluate.auc(np.full(7, 0.3), [0, 1, 0, 1, 1, 0, 0]) == 0.5
    # labels as a (1, m) row, like Y
    assert evaluate.auc([0.2, 0.5, 0.5, 0.9], np.array([[0, 1, 0, 1]])) == pytest.approx(0.875)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_counting_every_pair(seed):
    rng = np.random.default_rng(seed)
    m = 60
    labels = rng.integers(0, 2, m)
    proba = rng.integers(0, 8, m) / 8.0  # many ties
    pos, neg = proba[labels == 1], proba[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert evaluate.auc(proba, labels) == pytest.approx(wins / (pos.size * neg.size), abs=1e-12)


def test_auc_depends_only_on_the_order():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    proba = rng.random(40)
    logits = np.log(proba / (1 - proba))
    assert evaluate.auc(logits, labels) == pytest.approx(evaluate.auc(proba, labels))


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        evaluate.auc([0.1, 0.2, 0.3], [0, 1])


@pytest.mark.parametrize("proba", [
    [np.nan] * 6,  # a diverged network: every P(cat) NaN (the sort put them last, with the cats: AUC 1.0)
    [0.1, 0.2, 0.3, np.nan, 0.8, 0.9],  # one NaN among real scores
])
def test_nan_scores_give_nan_not_a_finite_score(proba):
    # issue 19 B5: NaN predictions must not be ranked (nor thresholded) into a finite score
    labels = [0, 0, 0, 1, 1, 1]
    assert np.isnan(evaluate.auc(proba, labels))
    assert np.isnan(evaluate.balanced_accuracy(proba, labels))
    assert all(np.isnan(v) for v in evaluate.metrics(proba, labels).values())


# --------------------------------------------------------------------------- ensembles (issue 17 item 5)
def test_mean_proba_averages_each_image_over_the_members():
    # three members, two images: image 0 gets (0.2 + 0.5 + 0.8) / 3, image 1 (0.9 + 0.3 + 0.6) / 3
    members = [np.array([0.2, 0.9]), np.array([[0.5, 0.3]]), [0.8, 0.6]]
    assert evaluate.mean_proba(members) == pytest.approx([0.5, 0.6])
    # a member that diverged (NaN) leaves that image without a score, not averaged away
    assert np.isnan(evaluate.mean_proba([[0.2, np.nan], [0.4, 0.6]])).tolist() == [False, True]


def test_mean_proba_refuses_no_members_and_members_of_other_images():
    with pytest.raises(ValueError, match="at least one"):
        evaluate.mean_proba([])
    with pytest.raises(ValueError, match="differ in length"):
        evaluate.mean_proba([[0.1, 0.2], [0.1, 0.2, 0.3]])


def test_an_ensemble_predicts_the_mean_of_its_models_by_hand():
    from catdnn.config import TrainConfig
    from catdnn.errors import ConfigError
    from catdnn.model import Ensemble, Model

    rng = np.random.default_rng(3)
    X = rng.random((12288, 4))
    config = TrainConfig(layers=(12288, 2, 1))
    models, by_hand = [], []
    for scale in (0.01, -0.02):
        W1, b1 = scale * rng.standard_normal((2, 12288)), np.array([[0.1], [-0.2]])
        W2, b2 = np.array([[1.5, -0.7]]), np.array([[0.05]])
        models.append(Model([(W1, b1), (W2, b2)], config))
        A1 = np.maximum(W1 @ X + b1, 0.0)  # (2, 4)
        by_hand.append((1.0 / (1.0 + np.exp(-(W2 @ A1 + b2)))).ravel())  # (4,)
    assert Ensemble(models).predict_proba(X) == pytest.approx((by_hand[0] + by_hand[1]) / 2, rel=1e-12)
    assert Ensemble(models[:1]).predict_proba(X) == pytest.approx(by_hand[0], rel=1e-12)
    with pytest.raises(ConfigError, match="at least one model"):
        Ensemble([])
