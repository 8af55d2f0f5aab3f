"""Lessons in one click: a few runs that answer one of the second course's questions, and what they show.

A :class:`Lesson` is data: the runs to train (each a :class:`~catdnn.config.TrainConfig`), a rough
time, and an intro. :func:`summarise` turns the runs' :class:`~catdnn.sweep.SweepResult` into a
:class:`LessonOutcome`: each run's curve and accuracies, and three sentences computed from those
numbers (and from the dataset), never written in advance: a run that ends elsewhere is described
as it ended. The dashboard's Lessons page trains a lesson with :func:`catdnn.sweep.sweep` and draws
the outcome; nothing here imports streamlit.

The three lessons (:data:`LESSONS`):

* ``init``: ×0.01, Xavier and He on the course's deep net. ×0.01 stalls at the cost of always
  answering the fraction of cats; :func:`signal_at_init` measures why (the signal and the gradients
  at the first iteration).
* ``optimizers``: gradient descent, momentum and Adam on the two-layer net, the same iterations.
  Adam runs at a smaller rate, and :func:`adam_first_step` says why: its first step moves every
  weight by exactly ±rate, and 12288 pixel inputs add up.
* ``regularization``: the deep net without regularisation, with L2 and with dropout: the train/test
  gap of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .config import TrainConfig
from .data import N_X
from .network import backward, forward, init_params

#: How a run must end for its numbers to be explained.
COMPLETE = ("finished",)


@dataclass(frozen=True)
class LessonRun:
    """One run of a lesson: its legend name and its settings beyond the lesson's ``base``."""

    name: str
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Lesson:
    """A lesson: the runs it trains and how it is introduced.

    ``iterations`` is every run's budget (tests shorten it); ``seconds`` is roughly how long the whole
    lesson takes on a 2-core machine; ``accuracy`` says whether its point is the train/test accuracies
    (then the page draws them next to the cost curves).
    """

    key: str
    title: str
    question: str
    base: TrainConfig
    runs: tuple
    iterations: int
    seconds: int
    accuracy: bool = False

    def configs(self) -> list[TrainConfig]:
        """The runs' configs, in the order of ``runs`` (each validated)."""
        return [replace(self.base, iterations=int(self.iterations), **r.settings).validate() for r in self.runs]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs]


DEEP = (N_X, 20, 7, 5, 1)
TWO_LAYER = (N_X, 7, 1)
#: Adam's rate in the optimizers lesson (gradient descent and momentum keep the course's 0.0075).
ADAM_RATE = 0.0001

LESSONS: dict[str, Lesson] = {
    "init": Lesson(
        "init", "Initialisation",
        "Why does the course's ×0.01 init stall on the deep net, when Xavier and He learn?",
        TrainConfig(layers=DEEP, learning_rate=0.0075, iterations=2500),
        (LessonRun("×0.01 (small)", {"init": "small"}), LessonRun("Xavier", {"init": "xavier"}),
         LessonRun("He", {"init": "he"})),
        iterations=2500, seconds=5),
    "optimizers": Lesson(
        "optimizers", "Optimizers",
        "Gradient descent, momentum and Adam on the two-layer net, the same number of iterations: which gets "
        "further, and at what learning rate?",
        TrainConfig(layers=TWO_LAYER, learning_rate=0.0075, iterations=1000, init="small"),
        (LessonRun("gradient descent", {"optimizer": "gd"}), LessonRun("momentum β=0.9", {"optimizer": "momentum"}),
         LessonRun(f"Adam, rate {ADAM_RATE:g}", {"optimizer": "adam", "learning_rate": ADAM_RATE})),
        iterations=1000, seconds=10),
    "regularization": Lesson(
        "regularization", "Regularisation",
        "The deep net fits its training images almost perfectly: do L2 or dropout close the gap to the test "
        "images?",
        TrainConfig(layers=DEEP, learning_rate=0.0075, iterations=2500),
        (LessonRun("no regularisation"), LessonRun("L2 λ=0.7", {"l2": 0.7}),
         LessonRun("dropout keep=0.8", {"keep_prob": 0.8})),
        iterations=2500, seconds=5, accuracy=True),
}


@dataclass
class RunSummary:
    """What a lesson shows of one run (no model: the outcome is kept in the session)."""

    name: str
    config: TrainConfig
    status: str
    message: str = ""
    history: list = field(default_factory=list)  # [(iteration, cost)]
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    elapsed: float = 0.0
    weight_norm: float | None = None  # Σ‖W[l]‖² of the trained model

    @property
    def final_cost(self) -> float | None:
        """The last finite cost of the run (with L2, the penalty included)."""
        costs = [c for _, c in self.history if c is not None and math.isfinite(c)]
        return costs[-1] if costs else None

    @property
    def gap(self) -> float | None:
        """Train accuracy minus test accuracy."""
        if self.train_accuracy is None or self.test_accuracy is None:
            return None
        return self.train_accuracy - self.test_accuracy


@dataclass
class LessonOutcome:
    """A trained lesson: each run's summary (in the lesson's order) and the three sentences."""

    lesson: Lesson
    runs: list
    sentences: list
    dataset: str = ""  # the dataset's name

    @property
    def complete(self) -> bool:
        return all(r.status in COMPLETE for r in self.runs)


# --------------------------------------------------------------------------- measured facts
def prior_cost(cat_fraction: float) -> float:
    """The cross-entropy of always answering P(cat) = ``cat_fraction``: its entropy, −p·ln p − (1−p)·ln(1−p)."""
    p = float(cat_fraction)
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


@dataclass(frozen=True)
class InitSignal:
    """The network at its first iteration: how big the signal and the gradients are.

    ``z_std[l-1]`` is the standard deviation of ``Z[l]`` over the units and images; ``p_range`` is the
    spread (max − min) of P(cat) over the images; ``grad_norms[l-1]`` is ‖dW[l]‖.
    """

    z_std: tuple
    p_range: float
    grad_norms: tuple


def signal_at_init(layers, init: str, seed: int, X: np.ndarray, Y: np.ndarray) -> InitSignal:
    """Forward and backward once at the initial weights.

    Parameters
    ----------
    layers : sequence of int
        ``[n_x, n_1, ..., 1]``.
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    """
    params = init_params(layers, init, seed)
    AL, cache = forward(params, X)  # AL: (1, m)
    grads = backward(params, cache, Y, AL)
    return InitSignal(tuple(float(np.std(Z)) for _, Z in cache), float(np.max(AL) - np.min(AL)),
                      tuple(float(np.linalg.norm(dW)) for dW, _ in grads))


def adam_first_step(rate: float, X: np.ndarray) -> float:
    """How far Adam's first step can move a unit of layer 1 on an average image: ``rate · mean Σᵢ|xᵢ|``.

    Adam's first update (bias-corrected) is ``rate · g/(|g| + ε)``: every weight moves by ±rate whatever
    the size of its gradient (less only where the gradient is as small as ε), so a first-layer unit's
    ``Z`` can move by up to ``rate`` times the sum of an image's inputs. ``X`` is the ndarray of shape
    (n_x, m).
    """
    return float(rate * np.mean(np.sum(np.abs(X), axis=0)))


# --------------------------------------------------------------------------- summaries
def summarise(lesson: Lesson, results, dataset) -> LessonOutcome:
    """The lesson's outcome from its :class:`~catdnn.sweep.SweepResult` (any order; missing runs count as
    not run), with three sentences true of these numbers and of ``dataset`` (a :class:`~catdnn.data.Dataset`)."""
    by_index = {r.index: r for r in results}
    runs = []
    for i, (spec, config) in enumerate(zip(lesson.runs, lesson.configs())):
        res = by_index.get(i)
        if res is None:
            runs.append(RunSummary(spec.name, config, "not run", "the lesson stopped before this run finished"))
            continue
        norm = None
        if res.model is not None:
            norm = float(sum(np.sum(np.square(W)) for W, _ in res.model.params))
        runs.append(RunSummary(spec.name, res.config, res.status, res.message, list(res.history),
                               res.train_accuracy, res.test_accuracy, res.elapsed, norm))
    outcome = LessonOutcome(lesson, runs, [], str(getattr(dataset, "name", "")))
    if not outcome.complete:
        bad = [r for r in runs if r.status not in COMPLETE]
        outcome.sentences = [
            f"The explanation needs every run to finish, and {len(bad)} of {len(runs)} did not: "
            + "; ".join(f"{r.name} {r.status}" + (f" ({r.message})" if r.message else "") for r in bad) + "."]
        return outcome
    outcome.sentences = _EXPLAIN[lesson.key](lesson, runs, dataset)
    return outcome


def _init(lesson: Lesson, runs: list, ds) -> list[str]:
    small, xavier, he = runs
    p = float(np.mean(ds.train.Y))
    m = ds.train.m
    h = prior_cost(p)
    c = small.final_cost
    n = lesson.iterations
    if abs(c - h) < 0.01:
        first = (f"With ×0.01 the cost stalls at {c:.3f}: the cost of always answering P(cat) = {p:.3f}, the "
                 f"fraction of cats among the {m} training images (−p·ln p − (1−p)·ln(1−p) = {h:.3f})")
        if small.train_accuracy is not None and abs(small.train_accuracy - max(p, 1 - p)) < 1e-9:
            common = ds.classes[1] if p > 0.5 else ds.classes[0]
            first += f", and its train accuracy {small.train_accuracy:.3f} is the share of {common} images"
        first += "."
    else:
        first = (f"With ×0.01 the cost ends at {c:.3f} after {n:,} iterations (always answering the fraction of "
                 f"cats, P(cat) = {p:.3f}, would cost {h:.3f}).")
    s = signal_at_init(lesson.base.layers, "small", small.config.seed, ds.train.X, ds.train.Y)
    k = signal_at_init(lesson.base.layers, "he", he.config.seed, ds.train.X, ds.train.Y)
    layers = len(s.z_std)
    second = (f"At the start each ×0.01 layer shrinks the signal: the spread of Z falls from {s.z_std[0]:.2g} in "
              f"layer 1 to {s.z_std[-1]:.1e} in layer {layers}, so P(cat) differs by only {s.p_range:.1e} across "
              f"the images (He: {k.p_range:.2f}) and ‖dW[1]‖ is {s.grad_norms[0]:.1e} against He's "
              f"{k.grad_norms[0]:.3g}: the gradients of the early layers vanish, and "
              + ("the network settles on answering the cat fraction." if abs(c - h) < 0.01 else
                 "the network learns slowly if at all."))
    learned = all(r.final_cost < h - 0.01 for r in (xavier, he))
    third = ("Xavier (randn/√n) and He (randn·√(2/n)) "
             + ("keep the signal's size from layer to layer and learn: " if learned else f"after {n:,} iterations: ")
             + f"cost {xavier.final_cost:.3f} and {he.final_cost:.3f}, test accuracy {xavier.test_accuracy:.2f} and "
             f"{he.test_accuracy:.2f}.")
    return [first, second, third]


def rises(history) -> int:
    """How many times a cost curve ([(iteration, cost)]) goes up from one recorded point to the next."""
    costs = [c for _, c in history if c is not None and math.isfinite(c)]
    return sum(1 for x, y in zip(costs, costs[1:]) if y > x)


def _relative(a: float, b: float) -> str:
    """How ``b`` compares with ``a``: "within 5% of", "12% below", "30% above"."""
    rel = (b - a) / a if a else 0.0
    if abs(rel) < 0.05:
        return "within 5% of"
    return f"{abs(rel):.0%} {'below' if rel < 0 else 'above'}"


def _optimizers(lesson: Lesson, runs: list, ds) -> list[str]:
    gd, mom, adam = runs
    n = lesson.iterations
    a, b, c = gd.final_cost, mom.final_cost, adam.final_cost
    first = (f"After {n:,} iterations on the two-layer net, gradient descent reaches cost {a:.3f}, momentum {b:.3f} "
             f"and Adam {c:.3f} (test accuracy {gd.test_accuracy:.2f}, {mom.test_accuracy:.2f} and "
             f"{adam.test_accuracy:.2f}).")
    beta = mom.config.beta
    up_gd, up_mom = rises(gd.history), rises(mom.history)
    smooth = (f", and its curve is smoother (the cost went up at {up_mom} of its {len(mom.history)} recorded "
              f"iterations, gradient descent's at {up_gd})" if up_gd > up_mom else "")
    second = (f"Momentum (β = {beta:g}) steps along an average of about the last {1 / (1 - beta):.0f} gradients, with "
              f"steps the size of gradient descent's at the same rate {mom.config.learning_rate:g}: it ends "
              f"{_relative(a, b)} gradient descent's cost{smooth}.")
    rate, gd_rate = adam.config.learning_rate, gd.config.learning_rate
    shift = adam_first_step(rate, ds.train.X)
    outcome = (f"it reaches a cost {a / c:.1f}× lower than gradient descent's" if c < min(a, b) else
               f"even so it ends {_relative(a, c)} gradient descent's cost here")
    third = (f"Adam moves every weight by about its rate whatever the size of its gradient, and {N_X:,} pixel "
             f"inputs add up (its first step can move a layer-1 unit by up to {shift:.2f} on an average image at rate "
             f"{rate:g}, "
             f"{adam_first_step(gd_rate, ds.train.X):.0f} at {gd_rate:g}), hence a rate {gd_rate / rate:.0f}× "
             f"smaller than gradient descent's; {outcome}.")
    return [first, second, third]


def _regularization(lesson: Lesson, runs: list, ds) -> list[str]:
    plain, l2, drop = runs
    n_test = ds.test.m
    first = (f"Without regularisation the deep net reaches train accuracy {plain.train_accuracy:.3f} but test "
             f"{plain.test_accuracy:.3f}: a gap of {plain.gap:.2f}.")
    lam = l2.config.l2
    penalty = lam / (2 * ds.train.m) * l2.weight_norm if l2.weight_norm is not None else None
    shrink = ""
    if plain.weight_norm is not None and l2.weight_norm is not None:
        verb = "shrinks" if l2.weight_norm < plain.weight_norm else "does not shrink"
        shrink = (f" {verb} the weights (Σ‖W‖² {plain.weight_norm:.0f} without, {l2.weight_norm:.0f} with; the "
                  f"penalty adds {penalty:.3f} to its cost) and")
    keep = drop.config.keep_probs()[0]
    second = (f"L2 (λ = {lam:g}){shrink} ends at train {l2.train_accuracy:.3f}, test {l2.test_accuracy:.3f} (gap "
              f"{l2.gap:.2f}); dropout (keep {keep:g}) at train {drop.train_accuracy:.3f}, test "
              f"{drop.test_accuracy:.3f} (gap {drop.gap:.2f}).")
    moved = {r.name: round((r.test_accuracy - plain.test_accuracy) * n_test) for r in (l2, drop)}
    if all(abs(k) <= 1 for k in moved.values()):
        fits = min(r.train_accuracy for r in runs) >= 0.95
        closed = min(l2.gap, drop.gap) <= plain.gap / 2
        third = (f"Neither changes the test accuracy by more than one of the {n_test} test images ({1 / n_test:.2f} "
                 "each): " + (f"the net still fits nearly all of its {ds.train.m} training images either way, and "
                              if fits else "")
                 + ("regularisation alone does not close the gap here." if not closed else
                    "what narrows the gap is a lower train accuracy, not a higher test accuracy."))
    else:
        parts = [f"{name} {'gains' if k > 0 else 'loses'} {abs(k)} of the {n_test} test images" if k else
                 f"{name} leaves the test accuracy as it was" for name, k in moved.items()]
        third = (f"{parts[0][:1].upper()}{parts[0][1:]} and {parts[1]} against no regularisation ({1 / n_test:.2f} "
                 "each): a test set this small moves in steps of one image, so read small differences with care.")
    return [first, second, third]


_EXPLAIN = {"init": _init, "optimizers": _optimizers, "regularization": _regularization}
