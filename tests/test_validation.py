"""Validation without peeking (catdnn.validation): stratified splits and folds, early stopping, CV."""

from __future__ import annotations

import numpy as np
import pytest

from catdnn import validation
from catdnn.errors import ConfigError
from catdnn.train import Progress


def _labels(n0=137, n1=72, seed=0):
    y = np.array([0] * n0 + [1] * n1)
    return np.random.default_rng(seed).permutation(y)


# --------------------------------------------------------------------------- splits
def test_split_is_stratified_disjoint_and_complete():
    y = _labels()
    tr, va = validation.stratified_split(y, 0.2, seed=3)
    assert np.intersect1d(tr, va).size == 0
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(y.size))
    assert np.count_nonzero(y[va] == 1) == round(0.2 * 72)
    assert np.count_nonzero(y[va] == 0) == round(0.2 * 137)


def test_split_is_seeded():
    y = _labels()
    a = validation.stratified_split(y, 0.25, seed=1)
    b = validation.stratified_split(y.reshape(1, -1), 0.25, seed=1)  # a (1, m) row like Y
    c = validation.stratified_split(y, 0.25, seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_split_keeps_both_classes_on_both_sides():
    y = np.array([0] * 10 + [1] * 2)
    tr, va = validation.stratified_split(y, 0.1)
    assert set(y[va]) == {0, 1} and set(y[tr]) == {0, 1}


@pytest.mark.parametrize("fraction", [0, 1, -0.5, 1.5])
def test_split_refuses_a_bad_fraction(fraction):
    with pytest.raises(ConfigError, match="fraction"):
        validation.stratified_split(_labels(), fraction)


def test_kfold_on_the_training_labels(dataset):
    y = dataset.train.Y.reshape(-1)
    folds = validation.stratified_kfold(dataset.train.Y, k=5, seed=0)
    assert len(folds) == 5
    vals = [va for _, va in folds]
    assert np.array_equal(np.sort(np.concatenate(vals)), np.arange(y.size))  # each image validated once
    for tr, va in folds:
        assert np.intersect1d(tr, va).size == 0
        assert tr.size + va.size == y.size
    cats = [int(np.count_nonzero(y[va] == 1)) for va in vals]
    non_cats = [int(np.count_nonzero(y[va] == 0)) for va in vals]
    assert max(cats) - min(cats) <= 1 and max(non_cats) - min(non_cats) <= 1
    assert max(v.size for v in vals) - min(v.size for v in vals) <= 1
    again = validation.stratified_kfold(dataset.train.Y, k=5, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))


def test_kfold_errors():
    with pytest.raises(ConfigError, match="k ≥ 2"):
        validation.stratified_kfold(_labels(), k=1)
    with pytest.raises(ConfigError, match="class 1 has 3"):
        validation.stratified_kfold(np.array([0] * 20 + [1] * 3), k=5)
    with pytest.raises(ConfigError, match="0 or 1"):
        validation.stratified_kfold(np.array([0, 1, 2] * 5), k=2)


# --------------------------------------------------------------------------- early stopping
def test_early_stopping_keeps_the_best_and_waits_patience():
    stop = validation.EarlyStopping("auc", patience=2)
    params = [(np.ones((2, 2)), np.zeros((2, 1)))]
    assert not stop.update(0, 0.6, params)
    params[0][0][:] = 5.0  # the stopper holds a copy, not the live arrays
    assert not stop.update(1, 0.8, params)
    params[0][0][:] = 7.0
    assert not stop.update(2, 0.7, params)
    assert stop.update(3, None, params)  # undefined scores count as no improvement
    assert stop.best_iteration == 1 and stop.best_score == 0.8
    assert np.all(stop.best_params[0][0] == 5.0)
    assert [i for i, _ in stop.history] == [0, 1, 2, 3]


def test_plain_accuracy_cannot_choose():
    with pytest.raises(ConfigError, match="majority class"):
        validation.EarlyStopping("accuracy")
    with pytest.raises(ConfigError, match="majority class"):
        validation.cross_validate(lambda *a: {}, np.zeros((2, 10)), _labels(5, 5).reshape(1, -1),
                                  metric="accuracy")


class _Scripted:
    """A stand-in trainer whose validation score follows a script."""

    def __init__(self, n):
        self.n, self.done, self.status, self.w = n, 0, "ready", np.zeros(1)

    def run(self):
        self.status = "running"
        try:
            for i in range(self.done, self.n):
                self.w = self.w + 1
                self.done = i + 1
                yield Progress(i, self.n, 0.0, None, None, 0.0)
            self.status = "finished"
        finally:
            if self.status == "running":
                self.status = "stopped"

    def params(self):
        return [(self.w.copy(), np.zeros(1))]


def test_watch_stops_the_trainer_at_patience():
    t = _Scripted(100)
    y = np.array([[0, 1, 0, 1]])
    script = iter([[0.1, 0.2, 0.3, 0.4], [0.1, 0.9, 0.2, 0.8], [0.9, 0.1, 0.2, 0.8], [0.9, 0.1, 0.8, 0.2]])
    stop = validation.EarlyStopping("auc", patience=2)
    events = list(validation.watch(t, lambda: next(script), y, stop, every=10))
    assert t.status == "stopped" and t.done == 40 and len(events) == 40
    assert [s for _, s in stop.history] == [0.75, 1.0, 0.25, 0.0]
    assert stop.best_iteration == 19 and stop.best_score == 1.0
    assert stop.best_params[0][0][0] == 20.0  # the weights after 20 iterations


def test_watch_with_the_real_mlp_trainer(dataset):
    from catdnn import TrainConfig, Trainer
    from catdnn.network import predict_proba

    X, Y = dataset.train.X, dataset.train.Y
    tr, va = validation.stratified_split(Y, 0.2, seed=0)
    t = Trainer(TrainConfig(layers=(12288, 3, 1), iterations=40, learning_rate=0.005), X[:, tr], Y[:, tr])
    stop = validation.EarlyStopping("balanced_accuracy", patience=1000)
    list(validation.watch(t, lambda: predict_proba(t.params(), X[:, va]), Y[:, va], stop, every=10))
    assert t.status == "finished" and [i for i, _ in stop.history] == [9, 19, 29, 39]
    assert stop.best_params is not None


# --------------------------------------------------------------------------- cross-validation
def test_cross_validate_sees_only_the_training_images_and_scores_checkpoints():
    rng = np.random.default_rng(0)
    y = _labels(30, 20).reshape(1, -1)
    X = np.vstack([np.arange(50.0), rng.random(50)])  # row 0 names each image
    seen = []

    def train_fold(X_tr, Y_tr, X_val):
        seen.append((set(X_tr[0]), set(X_val[0])))
        assert X_tr.shape[1] + X_val.shape[1] == 50
        truth = y[0, X_val[0].astype(int)]
        return {10: truth * 0.8 + 0.1, 20: np.full(truth.size, 0.5)}  # perfect at 10, chance at 20

    r = validation.cross_validate(train_fold, X, y, k=5, seed=1, metric="auc", name="perfect then chance")
    assert len(seen) == 5
    assert all(not (a & b) for a, b in seen)
    assert set().union(*(b for _, b in seen)) == set(range(50))
    assert r.mean(10) == 1.0 and r.mean(20) == 0.5 and r.std(10) == 0.0
    assert r.best_checkpoint == 10

    worse = validation.CVResult("worse", "auc", {5: [0.7, 0.8]}, 0.0)
    best, checkpoint = validation.select([worse, r])
    assert best is r and checkpoint == 10
