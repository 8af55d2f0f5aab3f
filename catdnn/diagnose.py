"""Plain-language diagnoses of a training run, for the CLI and the app.

The failures a student meets as soon as the learning rate slider moves right:

* **exploding cost**: a step overshoots and the cost jumps far above where it started (the
  training loop stops such a run as diverged once the cost is :data:`catdnn.train.EXPLODE_FACTOR` times above
  its start); a milder overshoot leaves the cost *above* where it started at the end;
* **a dead network**: every ReLU unit of a layer outputs zero for every image, so the network
  answers the same probability for every image; its cost can then go no lower than the *prior
  cost* — the cross-entropy of always answering the fraction of cats in the training set (0.644
  for this dataset) — and gradient descent never brings the units back;
* **a constant answer**: not every unit is dead, but the network still says the same class for
  every training image.

Given the final weights, the dead layers and constant answers are read from them; from the cost
history alone, a dead network shows as a cost stuck at the prior cost.
"""

from __future__ import annotations

import math

import numpy as np

from .network import forward, predicted
from .probe import dead_masks


def prior_cost(Y: np.ndarray) -> float:
    """Cross-entropy of always answering the training set's cat fraction ``p``.

    ``-(p·log p + (1-p)·log(1-p))``; 0.643974 for the 72 cats among the 209 training images.

    Parameters
    ----------
    Y : ndarray of shape (1, m) or (m,), labels in {0, 1}
    """
    p = float(np.mean(Y))
    if p in (0.0, 1.0):
        return 0.0
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def diagnose(history, Y: np.ndarray, learning_rate: float, window: int = 3, *, params=None, X=None) -> list[str]:
    """Messages about what went wrong in a run, most important first (empty if nothing).

    Parameters
    ----------
    history : list of (iteration, cost)
    Y : ndarray of shape (1, m), the training labels
    learning_rate : float
    window : int
        How many of the last reported costs must sit at the prior cost to call the network dead
        (used when the weights are not given).
    params : list of (W, b), optional
        The final weights; with ``X`` they show dead layers directly, however few costs were kept.
    X : ndarray of shape (n_x, m), optional
        The training inputs.
    """
    messages = []
    smaller = f"{learning_rate / 10:g}"
    dead_layer = constant = None
    if params is not None and X is not None and params[0][0].shape[1] != X.shape[0]:
        params = None  # not an MLP on X (a convolutional net): judged by its cost history alone
    if params is not None and X is not None:
        AL, cache = forward(params, X)
        masks = dead_masks(cache)
        dead_layer = next((l for l, mask in enumerate(masks, start=1) if mask.all()), None)
        labels = predicted(AL)
        if labels.all() or not labels.any():
            constant = "cat" if labels.all() else "non-cat"
    if dead_layer is not None:
        n = params[dead_layer - 1][0].shape[0]
        messages.append(
            f"the network stopped learning: all {n} ReLU units of layer {dead_layer} output 0 for "
            f"every training image (they died), so it answers the same P(cat) for every image and "
            f"its cost can go no lower than {prior_cost(Y):.6f}, the cost of always answering the "
            f"fraction of cats ({float(np.mean(Y)):.3f}). This usually follows too large a step: try "
            f"a learning rate of {smaller} or less."
        )
    elif constant is not None:
        dead = sum(int(mask.sum()) for mask in masks)
        units = sum(mask.size for mask in masks)
        messages.append(
            f"the network answers “{constant}” for every training image: it has learned nothing "
            f"but the most common answer ({dead} of its {units} hidden ReLU units output 0 for every "
            f"image). Try a smaller learning rate ({smaller}), more iterations, or another seed."
        )
    if len(history) < 2:
        return messages
    first, last = history[0][1], history[-1][1]
    prior = prior_cost(Y)
    tail = [c for _, c in history[-window:]]
    if dead_layer is None and params is None and len(history) > window and all(abs(c - prior) < 1e-6 for c in tail):
        messages.append(
            f"the network stopped learning: the cost is stuck at {prior:.6f}, the cost of always "
            f"answering the fraction of cats ({float(np.mean(Y)):.3f}). Its ReLU units have died "
            f"(they output 0 for every image), usually after too large a step: try a learning rate "
            f"of {smaller} or less."
        )
    elif dead_layer is None and constant is None and last > first:
        messages.append(
            f"the cost ended at {last:.4f}, above where it started ({first:.4f}): the learning rate "
            f"{learning_rate:g} is too large for the steps to go downhill. Try {smaller}."
        )
    return messages
