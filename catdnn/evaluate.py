"""Evaluating a model on a split: confusion matrix, mistakes ranked by confidence, baselines.

Pure NumPy functions on ``proba`` (P(cat) per example, ndarray of shape ``(m,)``) and ``labels``
(ndarray of shape ``(m,)`` in {0, 1}, 1 = cat). An example is predicted "cat" by the one decision
rule, :func:`catdnn.network.predicted` (``P(cat) > threshold``, by default ``THRESHOLD``).
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
