"""Plain-language diagnoses of a training run, from its cost history (for the CLI and the app).

Two failures a student meets as soon as the learning rate slider moves right:

* **exploding cost**: a step overshoots and the cost jumps far above where it started (the
  training loop stops such a run as diverged once the cost is :data:`EXPLODE_FACTOR` times above
  its start); a milder overshoot leaves the cost *above* where it started at the end;
* **a dead network**: the ReLU units all output zero, the network answers the same probability
  for every image, and the cost sits at the *prior cost* — the cross-entropy of always answering
  the fraction of cats in the training set (0.644 for this dataset) — and never moves again.
"""

from __future__ import annotations

import math

import numpy as np

#: A cost this many times above the starting cost (at least 1) stops the run as diverged.
EXPLODE_FACTOR = 10.0


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


def diagnose(history, Y: np.ndarray, learning_rate: float, window: int = 3) -> list[str]:
    """Messages about what went wrong in a run, most important first (empty if nothing).

    Parameters
    ----------
    history : list of (iteration, cost)
    Y : ndarray of shape (1, m), the training labels
    learning_rate : float
    window : int
        How many of the last reported costs must sit at the prior cost to call the network dead.
    """
    messages = []
    if len(history) < 2:
        return messages
    first, last = history[0][1], history[-1][1]
    smaller = f"{learning_rate / 10:g}"
    prior = prior_cost(Y)
    tail = [c for _, c in history[-window:]]
    if len(history) > window and all(abs(c - prior) < 1e-6 for c in tail):
        messages.append(
            f"the network stopped learning: the cost is stuck at {prior:.6f}, the cost of always "
            f"answering the fraction of cats ({float(np.mean(Y)):.3f}). Its ReLU units have died "
            f"(they output 0 for every image), usually after too large a step: try a learning rate "
            f"of {smaller} or less."
        )
    elif last > first:
        messages.append(
            f"the cost ended at {last:.4f}, above where it started ({first:.4f}): the learning rate "
            f"{learning_rate:g} is too large for the steps to go downhill. Try {smaller}."
        )
    return messages
