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


@pytest.mark.parametrize("metric, first, first_score", [
    ("auc", [0.1, 0.4, 0.35, 0.8], 0.75),
    ("balanced_accuracy", [0.9, 0.1, 0.2, 0.3], 0.25),
])
def test_early_stopping_never_keeps_a_network_with_non_finite_predictions(metric, first, first_score):
    # issue 19 B5: all-NaN P(cat) with the cats last scored AUC 1.0 (and balanced accuracy 0.5, as
    # "always non-cat"), so the stopper kept the NaN weights as the best model
    t = _Scripted(40)
    y = np.array([[0, 0, 1, 1]])
    script = iter([first, [np.nan] * 4, [0.1, 0.2, np.inf, 0.9], [0.1, np.nan, 0.9, 0.8]])
    stop = validation.EarlyStopping(metric, patience=10)
    list(validation.watch(t, lambda: next(script), y, stop, every=10))
    assert stop.best_iteration == 9 and stop.best_score == first_score
    assert stop.best_params[0][0][0] == 10.0  # the weights after 10 iterations, not later ones
    assert [s for _, s in stop.history][1:] == [-np.inf] * 3


def _stable_and_unstable(failure: str):
    """train_fold of two settings on 4 folds: a stable one (AUC < 1 at checkpoint 20 on every fold)
    and an unstable one, perfect at 20 on three folds, which fails the fourth before 20 ("diverged":
    checkpoint missing) or reaches it with NaN weights ("nan")."""
    rng = np.random.default_rng(5)
    y = _labels(24, 12, seed=2).reshape(1, -1)
    X = np.vstack([np.arange(36.0), rng.random(36)])  # row 0 names each image, row 1 is noise
    calls = {"unstable": 0}

    def stable(X_tr, Y_tr, X_val):
        truth = y[0, X_val[0].astype(int)]
        return {10: np.full(truth.size, 0.5), 20: 0.4 * truth + X_val[1]}

    def unstable(X_tr, Y_tr, X_val):
        calls["unstable"] += 1
        truth = y[0, X_val[0].astype(int)]
        out = {10: np.full(truth.size, 0.5), 20: truth * 0.8 + 0.1}
        if calls["unstable"] == 4:  # the fourth fold blows up between the checkpoints
            if failure == "diverged":
                del out[20]
            else:
                out[20] = np.full(truth.size, np.nan)
        return out

    return X, y, stable, unstable


@pytest.mark.parametrize("failure", ["diverged", "nan"])
def test_a_fold_that_fails_counts_as_a_failure_not_as_a_missing_fold(failure):
    # issue 19 B2: CV averaged each checkpoint over the folds that reached it, so a setting that
    # diverged on one fold was scored on its easy folds and chosen over a stable one
    X, y, stable, unstable = _stable_and_unstable(failure)
    s = validation.cross_validate(stable, X, y, k=4, seed=0, name="stable")
    u = validation.cross_validate(unstable, X, y, k=4, seed=0, name="unstable")
    best, checkpoint = validation.select([u, s])
    assert best is s and checkpoint == 20
    assert s.folds == u.folds == 4
    assert (s.completed(20), s.failed(20)) == (4, 0) and s.describe(20).endswith("(4 folds)")
    assert (u.completed(20), u.failed(20)) == (3, 1) and u.mean(20) == 1.0
    assert u.describe(20) == "1.000 ± 0.000 (3 of 4 folds, 1 failed)"
    assert 0.5 < s.mean(20) < u.mean(20)  # on its easy folds the unstable setting looks better...
    assert u.best_checkpoint == 10  # ...but its checkpoint that every fold completed ranks first


def test_a_setting_with_a_failed_fold_ranks_below_every_setting_without():
    ok = validation.CVResult("ok", "auc", {10: [0.6, 0.6, 0.6, 0.6]}, 0.0)
    one_failed = validation.CVResult("one failed", "auc", {10: [1.0, 1.0, 1.0, np.nan]}, 0.0)
    short = validation.CVResult("short list", "auc", {10: [1.0, 1.0, 1.0]}, 0.0, folds=4)
    assert short.failed(10) == 1
    assert validation.select([one_failed, short, ok])[0] is ok
    assert validation.select([one_failed, short])[0] is one_failed  # equal failures: the mean, then the order
    nothing = validation.CVResult("all failed", "auc", {10: [np.nan] * 4}, 0.0)
    assert nothing.describe(10) == "failed in all 4 folds"
    with pytest.raises(ConfigError, match="no setting completed"):
        validation.select([nothing, validation.CVResult("no checkpoint", "auc", {}, 0.0)])


def test_cross_validate_with_the_real_trainer_reports_a_setting_that_diverged_in_every_fold(dataset):
    # A learning rate of 10 diverges at once on every fold: the real Trainer's run just ends (status
    # "diverged"), so its train_fold returns no checkpoint at all. Before issue 19 B2 the setting
    # had no score anywhere and select() failed on it with max()'s ValueError.
    from catdnn import TrainConfig, Trainer
    from catdnn.network import predict_proba

    X, Y = dataset.train.X, dataset.train.Y

    def fold(lr, statuses):
        def train_fold(X_tr, Y_tr, X_val):
            t = Trainer(TrainConfig(layers=(X.shape[0], 1), iterations=20, learning_rate=lr), X_tr, Y_tr, cost_every=1)
            out = {e.iterations_done: predict_proba(t.params(), X_val)
                   for e in t.run() if e.iterations_done in (10, 20)}
            statuses.append(t.status)
            return out
        return train_fold

    seen = {"stable": [], "diverging": []}
    stable = validation.cross_validate(fold(0.005, seen["stable"]), X, Y, k=3, name="stable", checkpoints=(10, 20))
    wild = validation.cross_validate(fold(10.0, seen["diverging"]), X, Y, k=3, name="diverging",
                                     checkpoints=(10, 20))
    assert seen == {"stable": ["finished"] * 3, "diverging": ["diverged"] * 3}
    assert [wild.failed(c) for c in (10, 20)] == [3, 3] and wild.describe(20) == "failed in all 3 folds"
    assert [stable.failed(c) for c in (10, 20)] == [0, 0]
    best, checkpoint = validation.select([wild, stable])
    assert best is stable and checkpoint in (10, 20)
