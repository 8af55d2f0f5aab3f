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
  every training image. Three different runs do this, and each gets its own sentence: the signal
  vanished through the layers (P(cat) nearly the same for every image, ‖dW[1]‖ tiny: the
  initialisation's fault, and a smaller rate makes it worse); the cost sits at the prior cost (it
  has learned nothing but the most common answer); or the cost is well below the prior cost (it
  ranks the images, by its AUC, but P(cat) never crosses 0.5).

Given the final weights, the dead layers and constant answers are read from them; from the cost
history alone, a dead network shows as a cost stuck at the prior cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .evaluate import FLAT_SPREAD, auc
from .network import INIT_DESCRIPTIONS, backward, compute_cost, forward, predicted
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


#: P(cat) differing by less than this across the training images: the signal has vanished on its way up.
VANISHED_SPREAD = FLAT_SPREAD
#: ‖dW[1]‖ below this: layer 1 no longer learns (on the deep net, seed 1, ×0.01 starts at 1.0e-4, Xavier at 6.2).
VANISHED_GRADIENT = 1e-4
#: A cost within this of the prior cost is "the cost of always answering the cat fraction".
NEAR_PRIOR = 0.01
#: A training AUC above this is "ranks the training images" (0.5 is a ranking by chance).
RANKS_AUC = 0.6


@dataclass(frozen=True)
class Signal:
    """How big the signal and the gradients are at some weights, on some images.

    ``z_std[l-1]`` is the standard deviation of ``Z[l]`` over the units and images; ``p_range`` is the
    spread (max − min) of P(cat) over the images; ``grad_norms[l-1]`` is ‖dW[l]‖ of the cross-entropy.
    """

    z_std: tuple
    p_range: float
    grad_norms: tuple

    @property
    def vanished(self) -> bool:
        """P(cat) nearly the same for every image, or ‖dW[1]‖ tiny (:data:`VANISHED_SPREAD`,
        :data:`VANISHED_GRADIENT`)."""
        return self.p_range < VANISHED_SPREAD or self.grad_norms[0] < VANISHED_GRADIENT

    def path(self) -> str:
        """The spread of Z layer by layer, "0.45 → 0.38 → 0.28 → 0.15"."""
        return " → ".join(f"{z:.3g}" for z in self.z_std)


def signal(params, X: np.ndarray, Y: np.ndarray) -> Signal:
    """Forward and backward once at ``params`` (a list of ``(W, b)``), without dropout or penalty.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    """
    AL, cache = forward(params, X)  # AL: (1, m)
    grads = backward(params, cache, Y, AL)
    return Signal(tuple(float(np.std(Z)) for _, Z in cache), float(np.max(AL) - np.min(AL)),
                  tuple(float(np.linalg.norm(dW)) for dW, _ in grads))


def _constant_answer(constant: str, AL: np.ndarray, cache, params, X: np.ndarray, Y: np.ndarray,
                     smaller: str) -> str:
    """The sentence for a network that answers ``constant`` for every training image: why, from its numbers."""
    masks = dead_masks(cache)
    dead = sum(int(mask.sum()) for mask in masks)
    units = sum(mask.size for mask in masks)
    p = float(np.mean(Y))
    prior, cost = prior_cost(Y), compute_cost(AL, Y)
    common = "cat" if p > 0.5 else "non-cat"
    share = p if constant == "cat" else 1 - p
    start = (f"the network answers “{constant}” for every training image ({share:.0%} of them are "
             f"{constant}s; {dead} of its {units} hidden ReLU units output 0 for every image)")
    s = signal(params, X, Y)
    if s.vanished:
        return (f"{start}: the signal vanishes on its way through the layers (the spread of Z goes "
                f"{s.path()}), so P(cat) differs by only {s.p_range:.1e} between images and ‖dW[1]‖ is "
                f"{s.grad_norms[0]:.1e}. Initial weights too small for this depth do this (×0.01 on a deep net, "
                f"for one), not too large a step: a smaller learning rate only slows it further. Start from "
                f"weights scaled to each layer's size: Xavier's {INIT_DESCRIPTIONS['xavier']} or He's "
                f"{INIT_DESCRIPTIONS['he']} (made for ReLU layers); the Lessons page's init lesson trains both on the "
                f"course's deep net and compares them.")
    if abs(cost - prior) < NEAR_PRIOR and constant == common:
        return (f"{start}: its cost {cost:.3f} is that of always answering the fraction of cats "
                f"({prior:.3f}), so it has learned nothing but the most common answer. Try a smaller "
                f"learning rate ({smaller}), more iterations, or another seed.")
    side = "rises above" if constant == "non-cat" else "falls below"
    bound = float(np.max(AL)) if constant == "non-cat" else float(np.min(AL))
    crossing = f"its P(cat) never {side} 0.5 (it reaches {bound:.2f}), so every answer is the same"
    if cost < prior:
        area = auc(AL[0], Y)
        ranks = area is not None and area > RANKS_AUC
        rank = f" and it ranks the training images (AUC {area:.2f}; 0.5 is chance)" if ranks else ""
        return (f"{start}: its cost {cost:.3f} is below the {prior:.3f} of always answering the fraction of cats"
                f"{rank}, so it has learned something, but {crossing}. More iterations may carry it across; "
                f"balanced accuracy and AUC show its progress better than accuracy.")
    return (f"{start}: its cost {cost:.3f} is above the {prior:.3f} of always answering the fraction of cats, and "
            f"{crossing}. Try more iterations or another seed.")


def diagnose(history, Y: np.ndarray, learning_rate: float, window: int = 3, *, params=None, X=None,
             bn=None) -> list[str]:
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
    bn : catdnn.network.BatchNorm, optional
        The final batch norm, with ``params`` (prediction's running averages).
    """
    messages = []
    smaller = f"{learning_rate / 10:g}"
    dead_layer = constant = None
    if params is not None and X is not None and params[0][0].shape[1] != X.shape[0]:
        params = None  # not an MLP on X (a convolutional net): judged by its cost history alone
    if params is not None and X is not None:
        AL, cache = forward(params, X, bn=bn, running=True)
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
        messages.append(_constant_answer(constant, AL, cache, params, X, Y, smaller))
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
