"""Evaluating a model on a split: confusion matrix, mistakes ranked by confidence, baselines.

Pure NumPy functions on ``proba`` (P(cat) per example, ndarray of shape ``(m,)``) and ``labels``
(ndarray of shape ``(m,)`` in {0, 1}, 1 = cat). An example is predicted "cat" by the one decision
rule, :func:`catdnn.network.predicted` (``P(cat) > threshold``, by default ``THRESHOLD``).

About two photos in three are non-cats here, so plain accuracy flatters a model that leans to
"non-cat"; :func:`balanced_accuracy` and :func:`auc` do not, and they are what picks settings and
stops training early (:mod:`catdnn.validation`). :func:`metrics` gives all three.
"""

from __future__ import annotations

import numpy as np

from .network import THRESHOLD, predicted

#: The four cells of the confusion matrix, "cat" being the positive class.
CELLS = ("TP", "FP", "FN", "TN")
#: What each cell means, in words.
CELL_DESCRIPTIONS = {
    "TP": "cats called cat",
    "FP": "non-cats called cat",
    "FN": "cats called non-cat",
    "TN": "non-cats called non-cat",
}
#: The cells that are mistakes.
ERRORS = ("FP", "FN")


def _check(proba, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(proba, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"proba and labels differ in length: {p.shape[0]} and {y.shape[0]}")
    return p, y.astype(bool)


def _has_nan(proba) -> bool:
    return bool(np.isnan(np.asarray(proba, dtype=np.float64)).any())


def verdict(p: float, threshold: float = THRESHOLD) -> str:
    """"cat" or "non-cat" for one probability of cat (the rule of :func:`catdnn.network.predicted`)."""
    return "cat" if predicted(p, threshold)[0] else "non-cat"


def cells(proba, labels, threshold: float = THRESHOLD) -> np.ndarray:
    """The confusion-matrix cell of each example: ndarray of shape ``(m,)`` of "TP", "FP", "FN", "TN"."""
    p, y = _check(proba, labels)
    yhat = predicted(p, threshold).astype(bool)
    out = np.empty(p.shape, dtype="<U2")
    out[yhat & y] = "TP"
    out[yhat & ~y] = "FP"
    out[~yhat & y] = "FN"
    out[~yhat & ~y] = "TN"
    return out


def confusion(proba, labels, threshold: float = THRESHOLD) -> dict:
    """Counts per cell, ``{"TP": int, "FP": int, "FN": int, "TN": int}`` (in that order)."""
    c = cells(proba, labels, threshold)
    return {name: int(np.count_nonzero(c == name)) for name in CELLS}


def scores(counts: dict) -> dict:
    """Accuracy, precision and recall (of "cat") from :func:`confusion` counts; ``None`` when undefined."""
    tp, fp, fn, tn = (counts[k] for k in CELLS)
    total = tp + fp + fn + tn
    return {
        "accuracy": (tp + tn) / total if total else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def wrong_confidence(proba, labels) -> np.ndarray:
    """The probability the model gave to the wrong class, ndarray of shape ``(m,)``.

    ``proba`` for a non-cat, ``1 - proba`` for a cat: near 1 means confidently wrong.
    """
    p, y = _check(proba, labels)
    return np.where(y, 1.0 - p, p)


def select(proba, labels, threshold: float = THRESHOLD, which=ERRORS) -> np.ndarray:
    """Indices of the examples in the cells ``which``, most confidently wrong first.

    Sorted by :func:`wrong_confidence`, descending (ties by index): for mistakes, the worst
    first; for correct cells, the closest calls first.
    """
    c = cells(proba, labels, threshold)
    idx = np.flatnonzero(np.isin(c, list(which)))
    wrong = wrong_confidence(proba, labels)[idx]
    return idx[np.lexsort((idx, -wrong))]


def class_counts(labels, classes=("non-cat", "cat")) -> dict:
    """Number of examples per class name, ``{classes[0]: int, classes[1]: int}``."""
    y = np.asarray(labels).reshape(-1)
    return {name: int(np.count_nonzero(y == i)) for i, name in enumerate(classes)}


def constant_accuracy(labels, answer: int = 1) -> float:
    """Accuracy of always answering ``answer`` (1 = "cat"): the share of examples with that label."""
    y = np.asarray(labels).reshape(-1)
    return float(np.mean(y == answer)) if y.size else float("nan")


# --------------------------------------------------------------------------- class-balanced scores
def balanced_accuracy(proba, labels, threshold: float = THRESHOLD) -> float | None:
    """The mean of the recall of each class, ``(TP/(TP+FN) + TN/(TN+FP)) / 2``; None without both
    classes, NaN when a probability is NaN (the output of a diverged network is not a "non-cat").

    Unlike accuracy it does not reward answering the majority class: "always non-cat" scores 0.5
    here however rare cats are (on the course's training set its plain accuracy is 0.656).

    Parameters
    ----------
    proba : ndarray of shape (m,)
    labels : ndarray of shape (m,) or (1, m), in {0, 1}
    """
    c = confusion(proba, labels, threshold)
    pos, neg = c["TP"] + c["FN"], c["TN"] + c["FP"]
    if not pos or not neg:
        return None
    if _has_nan(proba):
        return float("nan")
    return (c["TP"] / pos + c["TN"] / neg) / 2.0


def auc(proba, labels) -> float | None:
    """Area under the ROC curve, by the rank statistic; None without both classes, NaN when a
    score is NaN (NaN has no rank: sorted last, an all-NaN output would score 1.0 whenever the cats
    came last).

    The probability that a random cat gets a higher P(cat) than a random non-cat, ties counted as
    one half: ``(R₁ - n₁(n₁+1)/2) / (n₁·n₀)`` where ``R₁`` is the sum of the cats' ranks among all
    ``m`` scores (tied scores share their average rank) — the Mann-Whitney U statistic over
    ``n₁·n₀``. It does not depend on a threshold: 0.5 is chance, 1 a perfect ranking.

    Parameters
    ----------
    proba : ndarray of shape (m,)
        Any scores that rank the examples (probabilities, logits).
    labels : ndarray of shape (m,) or (1, m), in {0, 1}
    """
    p, y = _check(proba, labels)
    n1 = int(np.count_nonzero(y))
    n0 = y.size - n1
    if not n1 or not n0:
        return None
    if _has_nan(p):
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    # average ranks (1-based) over runs of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
    ends = np.r_[starts[1:], p.size]  # exclusive
    run_rank = (starts + 1 + ends) / 2.0  # the mean of ranks starts+1 .. ends
    ranks = np.empty(p.size)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


#: P(cat) spanning less than this across a set of images: the network gives them all the same answer, and the
#: AUC ranks them by differences that small (the deep net at ×0.01 init spans 2.6e-6 on the test set).
FLAT_SPREAD = 1e-3


def auc_caveat(proba) -> str:
    """"" when P(cat) spans :data:`FLAT_SPREAD` or more across the images; else the sentence to show next to
    their AUC: what it ranks, with the span. ``proba``: ndarray of shape (m,)."""
    p = np.asarray(proba, dtype=float).ravel()
    if p.size < 2 or _has_nan(p):
        return ""
    span = float(p.max() - p.min())
    if span >= FLAT_SPREAD:
        return ""
    return (f"P(cat) spans only {span:.1e} across these {p.size:,} images (below {FLAT_SPREAD:g}): the AUC ranks "
            "them by differences that small, so it shows nothing about whether the network has learned.")


# --------------------------------------------------------------------------- ensembles
def mean_proba(probas) -> np.ndarray:
    """P(cat) of an ensemble: each image's P(cat) averaged over the members (soft voting).

    Parameters
    ----------
    probas : sequence of ndarray of shape (m,)
        One member's P(cat) per entry, for the same ``m`` images in the same order.

    Returns
    -------
    ndarray of shape (m,)
        NaN where a member's P(cat) is NaN: a diverged member leaves the ensemble without a score,
        it is not averaged away.
    """
    arrays = [np.asarray(p, dtype=np.float64).reshape(-1) for p in probas]
    if not arrays:
        raise ValueError("an ensemble needs at least one member's P(cat)")
    sizes = sorted({a.size for a in arrays})
    if len(sizes) > 1:
        raise ValueError(f"the members' P(cat) differ in length ({', '.join(map(str, sizes))}): "
                         "they must be for the same images")
    return np.mean(np.stack(arrays), axis=0)  # (members, m) -> (m,)


#: Scores that can pick a model on this data: plain accuracy cannot (see :func:`balanced_accuracy`).
SELECTION_METRICS = ("balanced_accuracy", "auc")


def metrics(proba, labels, threshold: float = THRESHOLD) -> dict:
    """Accuracy, balanced accuracy and AUC of ``proba`` against ``labels`` (None where undefined,
    all NaN when a probability is NaN).

    ``{"accuracy": float | None, "balanced_accuracy": float | None, "auc": float | None}``.
    """
    p, y = _check(proba, labels)
    acc = float(np.mean(predicted(p, threshold).astype(bool) == y)) if y.size else None
    if acc is not None and _has_nan(p):
        acc = float("nan")
    return {"accuracy": acc, "balanced_accuracy": balanced_accuracy(p, y, threshold), "auc": auc(p, y)}
