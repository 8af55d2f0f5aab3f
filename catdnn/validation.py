"""Validation that never peeks at the test set: stratified splits and k-fold CV of the training
images, early stopping and model selection on balanced accuracy or AUC.

Everything here takes the *training* labels (and images) only: a validation fold is carved out of
the 209 training images, so the 50 test images are never used to choose anything (a learning
rate, a width, a number of epochs, when to stop). Report the test accuracy once, at the end.

Scores come from :data:`METRICS`. Plain accuracy is there for reporting but cannot choose: about
two training images in three are non-cats, so "always non-cat" scores 0.656, and a raw-pixel MLP
early in training (or a poor one) sits right there. :func:`catdnn.evaluate.balanced_accuracy`
(0.5 for any constant answer) and :func:`catdnn.evaluate.auc` (threshold-free) do not reward it.

* :func:`stratified_split` and :func:`stratified_kfold`: index sets, each fold keeping the share
  of cats, drawn from a seeded generator; :func:`fold_dataset`: one fold as a dataset of its own
  (what a sweep's runs train on to score a setting, :mod:`catdnn.search`).
* :class:`EarlyStopping`: remembers the best score, its iteration and its parameters; says stop
  after ``patience`` evaluations without improvement. :func:`watch` runs any trainer's
  :meth:`run` (the MLP's :class:`catdnn.train.Trainer` or :class:`catdnn.conv.ConvTrainer`) under it.
* :func:`cross_validate`: k-fold scores of one setting, at several checkpoints of one run per fold
  (so a number of epochs is chosen along with the rest), and :func:`select` the best setting.

A network whose predictions are not all finite (a diverged run) has no score: early stopping never
keeps it, and a fold that did not reach a checkpoint, or reached it with such predictions, counts
as a *failed* fold there (see :class:`CVResult` for how failures rank).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .evaluate import auc, balanced_accuracy, metrics

#: Scores by name, ``f(proba (m,), labels (m,)) -> float | None``; higher is better.
METRICS: dict[str, Callable] = {
    "balanced_accuracy": balanced_accuracy,
    "auc": auc,
    "accuracy": lambda p, y: metrics(p, y)["accuracy"],
}
#: The metrics allowed to choose settings or stop training.
SELECTION_METRICS = ("balanced_accuracy", "auc")


def _metric(name: str) -> Callable:
    if name not in SELECTION_METRICS:
        raise ConfigError(f"choose by {' or '.join(SELECTION_METRICS)}, not {name!r}: plain accuracy "
                          "rewards always answering the majority class")
    return METRICS[name]


def score_of(metric: str, proba, labels) -> float | None:
    """``metric``'s score of ``proba`` (shape (m,)) against ``labels``; None when it has none: the
    score is undefined (one class only) or a prediction is not finite (NaN or ±inf: a diverged
    network, whose weights must never be kept or chosen)."""
    p = np.asarray(proba, dtype=np.float64)
    if not np.isfinite(p).all():
        return None
    s = _metric(metric)(p, labels)
    return None if s is None or not np.isfinite(s) else float(s)


def _labels(labels) -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if y.size and not np.isin(y, (0, 1)).all():
        raise ConfigError("labels must be 0 or 1")
    return y.astype(np.int64)


# --------------------------------------------------------------------------- splits
def stratified_split(labels, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices, each class split in the same proportion.

    Parameters
    ----------
    labels : ndarray of shape (m,) or (1, m), in {0, 1}
    fraction : float in (0, 1)
        Share of each class that goes to validation (rounded, at least one of each class that has
        two or more examples).
    seed : int
        Seeds the generator that shuffles each class.

    Returns
    -------
    train_idx, val_idx : sorted int ndarrays, disjoint, together ``0..m-1``
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"the validation fraction must be between 0 and 1, not {fraction!r}")
    y = _labels(labels)
    rng = np.random.default_rng(int(seed))
    val = []
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(fraction * idx.size))
        if idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        val.append(idx[:k])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(y.size), val_idx)
    return train_idx, val_idx


def stratified_kfold(labels, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` folds ``(train_idx, val_idx)``: the validation sets are disjoint, cover every example
    once, and each holds its class's share (the class sizes differ by at most one between folds).

    Raises :class:`ConfigError` when a class has fewer than ``k`` examples.
    """
    y = _labels(labels)
    k = int(k)
    if k < 2:
        raise ConfigError(f"k-fold needs k ≥ 2, not {k}")
    rng = np.random.default_rng(int(seed))
    chunks = [[] for _ in range(k)]
    offset = 0
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        if idx.size < k:
            raise ConfigError(f"{k}-fold CV needs at least {k} examples of each class; class {c} has {idx.size}")
        parts = np.array_split(idx, k)
        for j in range(k):  # rotate so the larger remainders do not all land in the first folds
            chunks[(j + offset) % k].append(parts[j])
        offset += idx.size % k
    folds = []
    everything = np.arange(y.size)
    for j in range(k):
        val_idx = np.sort(np.concatenate(chunks[j]))
        folds.append((np.setdiff1d(everything, val_idx), val_idx))
    return folds


def fold_dataset(ds, k: int, seed: int, index: int):
    """Fold ``index`` of :func:`stratified_kfold` (``k``, ``seed``) of ``ds``'s *training* images as a
    :class:`~catdnn.data.Dataset` of its own: the fold's training part as ``train`` and its validation
    part as ``test``. Training it anywhere a dataset trains (the worker pool, a Dask worker) never
    touches ``ds.test``: its "test" accuracy is the fold's validation accuracy.
    """
    from dataclasses import replace

    from .data import Split

    k, index = int(k), int(index)
    if not 0 <= index < k:
        raise ConfigError(f"fold {index} does not exist: {k}-fold CV has folds 0 to {k - 1}")
    tr_idx, va_idx = stratified_kfold(ds.train.labels, k, seed)[index]
    images, labels = ds.train.images, ds.train.labels
    return replace(ds, train=Split(images[tr_idx], labels[tr_idx]), test=Split(images[va_idx], labels[va_idx]))


# --------------------------------------------------------------------------- early stopping
@dataclass
class EarlyStopping:
    """Keep the best parameters by a validation score; stop after ``patience`` evaluations without
    an improvement of more than ``min_delta``.

    ``history`` is ``[(iteration, score)]``; ``best_params`` a copy of the parameters at
    ``best_iteration`` (None before the first :meth:`update`).
    """

    metric: str = "auc"
    patience: int = 5
    min_delta: float = 0.0
    best_score: float = -np.inf
    best_iteration: int = -1
    best_params: list | None = None
    history: list = field(default_factory=list)
    _waited: int = 0

    def __post_init__(self):
        _metric(self.metric)
        if int(self.patience) < 1:
            raise ConfigError("patience must be at least 1 evaluation")

    def update(self, iteration: int, score: float | None, params=None) -> bool:
        """Record ``score`` at ``iteration`` (keeping a copy of ``params`` if it is the best so far);
        True when training should stop. A missing or non-finite ``score`` (see :func:`score_of`) is
        recorded as ``-inf``: it never becomes the best, so NaN weights are never kept."""
        s = -np.inf if score is None or not np.isfinite(score) else float(score)
        self.history.append((int(iteration), s))
        if s > self.best_score + self.min_delta:
            self.best_score, self.best_iteration, self._waited = s, int(iteration), 0
            if params is not None:
                self.best_params = [tuple(np.array(p, copy=True) for p in layer) for layer in params]
            return False
        self._waited += 1
        return self._waited >= int(self.patience)


def watch(trainer, proba_val: Callable[[], np.ndarray], Y_val, stopper: EarlyStopping,
          every: int) -> Iterator:
    """Run ``trainer.run()``, scoring the validation set every ``every`` iterations (and at the last)
    and stopping when ``stopper`` says so; yields the trainer's progress events.

    Parameters
    ----------
    trainer : catdnn.train.Trainer or catdnn.conv.ConvTrainer (anything with ``run()`` and ``params()``)
    proba_val : callable
        ``proba_val() -> ndarray of shape (m_val,)``: P(cat) of the trainer's *current* network on
        the validation images (never the test images).
    Y_val : ndarray of shape (1, m_val)
    every : int
        Iterations between evaluations.
    """
    _metric(stopper.metric)
    every = max(int(every), 1)
    run = trainer.run()
    try:
        for event in run:
            yield event
            if (event.iteration + 1) % every == 0 or event.iteration + 1 == event.iterations:
                score = score_of(stopper.metric, proba_val(), Y_val)
                if stopper.update(event.iteration, score, trainer.params()):
                    break
    finally:
        run.close()  # the trainer records "stopped"


# --------------------------------------------------------------------------- cross-validation
@dataclass(frozen=True)
class CVResult:
    """k-fold scores of one setting at one or more checkpoints.

    ``scores[checkpoint]`` holds one entry per fold, in fold order: the fold's score there, or NaN
    when the fold *failed* there (its run stopped or diverged before the checkpoint, or its
    predictions there were not finite, or the score was undefined). ``folds`` is the number of
    folds (k); a list shorter than ``folds`` counts its missing entries as failed.

    How failures rank (:meth:`rank`, :attr:`best_checkpoint`, :func:`select`): **a checkpoint with
    fewer failed folds always ranks above one with more**, whatever the means; among equals the
    higher mean over the completed folds wins. Not "a failed fold scores the worst possible":
    that penalty is on the metric's scale and weighs 1/k of the mean, so whether an unstable
    setting still wins would depend on k and on how easy its other folds were (over 10 folds, nine
    AUCs of 0.95 and a failed fold's 0 average 0.855, above a stable 0.85), and the worst AUC, 0,
    is a perfectly inverted ranking, not "no model". A setting that diverges on a fold of the
    training images may well diverge on the final run over all of them, so it is no choice while
    a stable one exists, however good its easy folds look. :meth:`mean` and :meth:`std` are over
    the completed folds only; :meth:`completed`, :meth:`failed` and :meth:`describe` say how many.
    """

    name: str
    metric: str
    scores: dict  # {checkpoint: [score per fold, NaN where the fold failed]}
    seconds: float
    folds: int = 0  # k; 0: the longest list's length

    def __post_init__(self):
        longest = max((len(v) for v in self.scores.values()), default=0)
        object.__setattr__(self, "folds", max(int(self.folds), longest))

    def _completed(self, checkpoint) -> np.ndarray:
        s = np.asarray(self.scores[checkpoint], dtype=np.float64)
        return s[np.isfinite(s)]

    def completed(self, checkpoint) -> int:
        """How many folds have a score at ``checkpoint``."""
        return int(self._completed(checkpoint).size)

    def failed(self, checkpoint) -> int:
        """How many folds failed at ``checkpoint`` (diverged, stopped before it, non-finite output)."""
        return self.folds - self.completed(checkpoint)

    def mean(self, checkpoint) -> float:
        """The mean score over the folds that completed ``checkpoint`` (NaN if none did)."""
        s = self._completed(checkpoint)
        return float(np.mean(s)) if s.size else float("nan")

    def std(self, checkpoint) -> float:
        """The std of the scores of the folds that completed ``checkpoint`` (NaN if none did)."""
        s = self._completed(checkpoint)
        return float(np.std(s)) if s.size else float("nan")

    def rank(self, checkpoint) -> tuple:
        """Sort key, higher is better: fewer failed folds first, then the higher mean, then the
        earlier checkpoint."""
        mean = self.mean(checkpoint)
        early = -checkpoint if isinstance(checkpoint, (int, float)) else 0
        return (-self.failed(checkpoint), -np.inf if np.isnan(mean) else mean, early)

    def describe(self, checkpoint) -> str:
        """E.g. ``"0.912 ± 0.020 (5 folds)"`` or ``"0.930 ± 0.010 (3 of 4 folds, 1 failed)"``."""
        n, k = self.completed(checkpoint), self.folds
        if not n:
            return f"failed in all {k} folds"
        text = f"{self.mean(checkpoint):.3f} ± {self.std(checkpoint):.3f}"
        return text + (f" ({k} folds)" if n == k else f" ({n} of {k} folds, {k - n} failed)")

    @property
    def best_checkpoint(self):
        """The best checkpoint by :meth:`rank` (None without any checkpoint)."""
        return max(self.scores, key=self.rank, default=None)


def cross_validate(train_fold: Callable, X: np.ndarray, Y: np.ndarray, *, k: int = 5, seed: int = 0,
                   metric: str = "auc", name: str = "", checkpoints=None) -> CVResult:
    """Stratified k-fold CV over the training images only.

    Parameters
    ----------
    train_fold : callable
        ``train_fold(X_tr, Y_tr, X_val) -> {checkpoint: proba_val}``: trains on one fold's
        training part and returns P(cat) on its validation part at one or more checkpoints (e.g.
        ``{20: p, 40: p, 60: p}`` by epochs), each an ndarray of shape (m_val,). A fold whose run
        diverged returns only the checkpoints it reached.
    X : ndarray of shape (n_x, m) and Y (1, m): the *training* set
    checkpoints : iterable, optional
        The checkpoints ``train_fold`` was asked for: each is in the result even if no fold
        reached it (every fold failed there). By default, those some fold returned.

    Returns
    -------
    CVResult
        With an entry for every fold at every checkpoint: a fold that did not return a
        checkpoint, or returned non-finite P(cat) there, failed there (NaN).
    """
    _metric(metric)
    t0 = time.perf_counter()
    folds = stratified_kfold(Y, k, seed)
    per_fold = []
    for tr, va in folds:
        out = train_fold(X[:, tr], Y[:, tr], X[:, va])
        per_fold.append({c: score_of(metric, proba, Y[:, va]) for c, proba in out.items()})
    asked = list(checkpoints) if checkpoints is not None else []
    checkpoints = dict.fromkeys([*asked, *(c for fold in per_fold for c in fold)])  # asked for, then as given
    nan = float("nan")
    scores = {c: [nan if fold.get(c) is None else fold[c] for fold in per_fold] for c in checkpoints}
    return CVResult(name, metric, scores, time.perf_counter() - t0, len(folds))


def select(results) -> tuple:
    """The best ``(CVResult, checkpoint)`` of several settings: by :meth:`CVResult.rank` of each
    one's best checkpoint, so a setting that failed in fewer folds ranks above any that failed in
    more (the first given wins a tie). Raises :class:`ConfigError` when no setting has a checkpoint
    that any fold completed."""
    results = [r for r in results if r.best_checkpoint is not None and r.completed(r.best_checkpoint)]
    if not results:
        raise ConfigError("nothing to select from: no setting completed a checkpoint in any fold")
    best = max(results, key=lambda r: r.rank(r.best_checkpoint))
    return best, best.best_checkpoint
