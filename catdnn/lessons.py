"""Lessons in one click: a few runs that answer one of the second course's questions, and what they show.

A :class:`Lesson` is data: the runs to train (each a :class:`~catdnn.config.TrainConfig`), a rough
time, and an intro. :func:`summarise` turns the runs' :class:`~catdnn.sweep.SweepResult` into a
:class:`LessonOutcome`: each run's curve and accuracies, and sentences computed from those numbers
(and from the dataset), never written in advance: a run that ends elsewhere is described as it
ended. Every fact and every qualifier ("keeps", "smoother", "stays on the plateau", "equals") is
decided from the runs; a curve is described as it is drawn (plateaus, late starts, test accuracies
near the best constant answer). The dashboard's Lessons page trains a lesson with
:func:`catdnn.sweep.sweep` (with :meth:`Lesson.trainer_options`) and draws the outcome; nothing here
imports streamlit.

The three lessons (:data:`LESSONS`):

* ``init``: ×0.01 (the course's two-layer init), Xavier (its deep init) and He on the deep net.
  :func:`signal_at_init` measures what each does to the signal and to each layer's ‖dW‖ at the first
  iteration, :func:`first_steps` replays the first iterations (how far the first step goes, which units it
  leaves dead); the curves show which stalls, which sits on the plateau and for how long.
* ``optimizers``: gradient descent, momentum, RMSprop and Adam on the two-layer net, the same
  iterations, the cost recorded at every iteration (so gradient descent's zig-zag shows). Adam and
  RMSprop run at smaller rates, a choice :func:`adam_first_step` and :func:`rmsprop_first_step`
  explain: Adam's first step moves every weight by exactly ±rate, the course's RMSprop's (no bias
  correction) by ±rate/√(1−β2), and 12288 pixel inputs add up.
* ``regularization``: the deep net without regularisation, with L2 and with dropout: the train/test
  gap of each, and what each cost curve measures (:func:`cost_meaning`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .config import TrainConfig
from .data import N_X
from .diagnose import NEAR_PRIOR, VANISHED_GRADIENT, Signal, signal
from .evaluate import auc, balanced_accuracy
from .figures import cost_meaning
from .network import compute_cost, forward, init_params
from .probe import dead_masks
from .sweep import curve_options
from .train import Trainer

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
    (then the page draws them next to the cost curves); ``cost_every`` how often the cost is recorded
    when the lesson's point needs every step (see :meth:`trainer_options`).
    """

    key: str
    title: str
    question: str
    base: TrainConfig
    runs: tuple
    iterations: int
    seconds: int
    accuracy: bool = False
    cost_every: int = 0  # record the cost every this many iterations; 0 = the sweep's default (about 500 points)

    def configs(self) -> list[TrainConfig]:
        """The runs' configs, in the order of ``runs`` (each validated)."""
        return [replace(self.base, iterations=int(self.iterations), **r.settings).validate() for r in self.runs]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    def trainer_options(self) -> dict:
        """The :class:`~catdnn.train.Trainer` options its sweep runs with (how often the cost is recorded)."""
        return {"cost_every": int(self.cost_every)} if self.cost_every else curve_options(self.configs()[0])


DEEP = (N_X, 20, 7, 5, 1)
TWO_LAYER = (N_X, 7, 1)
#: Adam's rate in the optimizers lesson (gradient descent and momentum keep the course's 0.0075).
ADAM_RATE = 0.0001
#: RMSprop's rate there: its first step is 1/√(1−β2) ≈ 32 times its rate (measured over 1000 iterations:
#: at 1e-5 it still answers non-cat for every training image, at 3e-5 it reaches train accuracy 0.87).
RMSPROP_RATE = 0.00003

LESSONS: dict[str, Lesson] = {
    "init": Lesson(
        "init", "Initialisation",
        "The two-layer net's ×0.01 init, the course's deep init (Xavier, randn/√n) and He on the deep net: which "
        "ones learn, how soon, and why?",
        TrainConfig(layers=DEEP, learning_rate=0.0075, iterations=2500),
        (LessonRun("×0.01 (small)", {"init": "small"}), LessonRun("Xavier", {"init": "xavier"}),
         LessonRun("He", {"init": "he"})),
        iterations=2500, seconds=5),
    "optimizers": Lesson(
        "optimizers", "Optimizers",
        "Gradient descent, momentum, RMSprop and Adam on the two-layer net, the same number of iterations: which "
        "gets further, and at what learning rate?",
        TrainConfig(layers=TWO_LAYER, learning_rate=0.0075, iterations=1000, init="small"),
        (LessonRun("gradient descent", {"optimizer": "gd"}), LessonRun("momentum β=0.9", {"optimizer": "momentum"}),
         LessonRun(f"RMSprop, rate {RMSPROP_RATE:g}", {"optimizer": "rmsprop", "learning_rate": RMSPROP_RATE}),
         LessonRun(f"Adam, rate {ADAM_RATE:g}", {"optimizer": "adam", "learning_rate": ADAM_RATE})),
        iterations=1000, seconds=15, cost_every=1),
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
    cross_entropy: float | None = None  # the trained model's cross-entropy on the training set: full net, no penalty
    test_balanced: float | None = None  # the trained model's balanced accuracy on the test set
    test_auc: float | None = None  # and its AUC there

    @property
    def final_cost(self) -> float | None:
        """The last finite cost of the run, as recorded: what it minimises (see :func:`cost_meaning`)."""
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
    """A trained lesson: each run's summary (in the lesson's order) and the sentences that explain it."""

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


def signal_at_init(layers, init: str, seed: int, X: np.ndarray, Y: np.ndarray) -> Signal:
    """Forward and backward once at the initial weights (:func:`catdnn.diagnose.signal`).

    Parameters
    ----------
    layers : sequence of int
        ``[n_x, n_1, ..., 1]``.
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    """
    return signal(init_params(layers, init, seed), X, Y)


@dataclass(frozen=True)
class FirstSteps:
    """What a run's first ``steps`` iterations of gradient descent do (see :func:`first_steps`).

    ``step`` is ‖α·dW[1]‖, how far the first update moves layer 1's weights; ``dead_at_init`` and ``dead``
    count the hidden ReLU units that output 0 for every training image, per hidden layer, before and after
    the steps (``units``: each hidden layer's size); ``after`` is the :class:`Signal` after them;
    ``costs`` the cost before the first step and after the last.
    """

    steps: int
    step: float
    units: tuple
    dead_at_init: tuple
    dead: tuple
    after: Signal
    costs: tuple


def _dead(params, X: np.ndarray) -> tuple:
    return tuple(int(mask.sum()) for mask in dead_masks(forward(params, X)[1]))


def first_steps(config: TrainConfig, X: np.ndarray, Y: np.ndarray, steps: int) -> FirstSteps:
    """Replay the first ``steps`` iterations of a run (its own config, the one training loop, the cost
    recorded at every one), for what a recorded curve is too coarse to show.

    ``step`` is ``α·‖dW[1]‖`` at the initial weights: the first update of plain gradient descent.
    X : ndarray of shape (n_x, m); Y : ndarray of shape (1, m)
    """
    start = init_params(config.layers, config.init, config.seed)
    trainer = Trainer(replace(config, iterations=int(steps)), X, Y, cost_every=1)
    history = [(p.iteration, p.cost) for p in trainer.run() if getattr(p, "cost", None) is not None]
    params = trainer.model().params
    return FirstSteps(int(steps), config.learning_rate * signal(start, X, Y).grad_norms[0],
                      tuple(W.shape[0] for W, _ in start[:-1]), _dead(start, X), _dead(params, X),
                      signal(params, X, Y), (history[0][1], compute_cost(trainer.model().predict_proba(X)[None, :], Y)))


def adam_first_step(rate: float, X: np.ndarray) -> float:
    """How far Adam's first step can move a unit of layer 1 on an average image: ``rate · mean Σᵢ|xᵢ|``.

    Adam's first update (bias-corrected) is ``rate · g/(|g| + ε)``: every weight moves by ±rate whatever
    the size of its gradient (less only where the gradient is as small as ε), so a first-layer unit's
    ``Z`` can move by up to ``rate`` times the sum of an image's inputs. ``X`` is the ndarray of shape
    (n_x, m).
    """
    return float(rate * np.mean(np.sum(np.abs(X), axis=0)))


def rmsprop_first_step(rate: float, beta2: float, X: np.ndarray) -> float:
    """How far the course's RMSprop's first step can move a unit of layer 1 on an average image.

    With ``S`` starting at 0 and no bias correction, the first update is ``rate · g/(√(1−β2)·|g| + ε)``:
    most weights move by ±rate/√(1−β2), none further (less where √(1−β2)·|g| is not far above ε), so this is
    :func:`adam_first_step` at ``rate/√(1−β2)``. ``X`` is the ndarray of shape (n_x, m).
    """
    return adam_first_step(rate / math.sqrt(1.0 - beta2), X)


# --------------------------------------------------------------------------- summaries
def summarise(lesson: Lesson, results, dataset) -> LessonOutcome:
    """The lesson's outcome from its :class:`~catdnn.sweep.SweepResult` (any order; missing runs count as
    not run), with sentences true of these numbers and of ``dataset`` (a :class:`~catdnn.data.Dataset`)."""
    by_index = {r.index: r for r in results}
    runs = []
    for i, (spec, config) in enumerate(zip(lesson.runs, lesson.configs())):
        res = by_index.get(i)
        if res is None:
            runs.append(RunSummary(spec.name, config, "not run", "the lesson stopped before this run finished"))
            continue
        summary = RunSummary(spec.name, res.config, res.status, res.message, list(res.history),
                             res.train_accuracy, res.test_accuracy, res.elapsed)
        if res.model is not None:
            model = res.model
            summary.weight_norm = float(sum(np.sum(np.square(W)) for W, _ in model.params))
            summary.cross_entropy = compute_cost(model.predict_proba(dataset.train.X)[None, :], dataset.train.Y)
            p_test = model.predict_proba(dataset.test.X)
            summary.test_balanced = balanced_accuracy(p_test, dataset.test.Y)
            summary.test_auc = auc(p_test, dataset.test.Y)
        runs.append(summary)
    outcome = LessonOutcome(lesson, runs, [], str(getattr(dataset, "name", "")))
    if not outcome.complete:
        bad = [r for r in runs if r.status not in COMPLETE]
        outcome.sentences = [
            f"The explanation needs every run to finish, and {len(bad)} of {len(runs)} did not: "
            + "; ".join(f"{r.name} {r.status}" + (f" ({r.message})" if r.message else "") for r in bad) + "."]
        return outcome
    outcome.sentences = _EXPLAIN[lesson.key](lesson, runs, dataset)
    return outcome


#: A cost within this of the prior cost sits on the plateau of always answering the cat fraction.
PLATEAU_BAND = 0.03
#: A stretch on the plateau at least this fraction of the budget is called a plateau in the sentences.
PLATEAU_SHARE = 0.2
#: Test images within which a test accuracy is "only" that many above or below the best constant answer.
NEAR_MAJORITY_IMAGES = 2
#: A layer's gradient "vanishes" at init when it is at least this many times below He's on the same net.
VANISH_RATIO = 100.0
#: The init lesson replays this many first iterations of Xavier and He (its recorded curve is coarser).
FIRST_STEPS = 5
#: A layer's signal ends "kept" when the spread of Z in the last layer is within this factor of layer 1's.
KEPT_FACTOR = 2.0


def plateau(history, level: float, band: float = PLATEAU_BAND) -> tuple:
    """Where a cost curve ([(iteration, cost)]) reaches ``level`` and when it leaves it downwards:
    ``(first, left, inside)``, the first recorded iteration within ``band`` of ``level``, the first one
    after it below ``level − band`` (None: it never falls below), and the share of the recorded points
    in between that are within the band (1.0: it stays there). ``(None, None, 0.0)`` if the curve never
    comes within the band."""
    pts = [(i, c) for i, c in history if c is not None and math.isfinite(c)]
    first = next((i for i, c in pts if abs(c - level) <= band), None)
    if first is None:
        return None, None, 0.0
    left = next((i for i, c in pts if i > first and c < level - band), None)
    between = [c for i, c in pts if first <= i and (left is None or i < left)]
    return first, left, sum(abs(c - level) <= band for c in between) / len(between)


def signal_verb(sig: Signal) -> str:
    """What the layers do to the signal at init, from the spread of Z in the last layer against layer 1's."""
    ratio = sig.z_std[-1] / sig.z_std[0] if sig.z_std[0] else 0.0
    if ratio < 1 / KEPT_FACTOR:
        return "shrinks the signal"
    if ratio > KEPT_FACTOR:
        return "grows the signal"
    return "keeps the signal's size"


def majority(split) -> tuple:
    """The best constant answer on a split: ``(its accuracy, the class name)``."""
    p = float(np.mean(split.Y))
    return (p, "cat") if p >= 0.5 else (1 - p, "non-cat")


def against_majority(accuracy: float, split) -> str:
    """A test accuracy against always answering the split's most common class, in images."""
    rate, answer = majority(split)
    k = round((accuracy - rate) * split.m)
    if k == 0:
        return f"no better than always answering “{answer}” ({rate:.2f})"
    word = "only " if abs(k) <= NEAR_MAJORITY_IMAGES else ""
    side = "more" if k > 0 else "fewer"
    return (f"{word}{abs(k)} test image{'s' if abs(k) != 1 else ''} {side} than always answering “{answer}” "
            f"({rate:.2f})")


def _curve(run: RunSummary, h: float, n: int, ds) -> str:
    """One init run's curve as drawn, and its test accuracy against the best constant answer."""
    first, left, inside = plateau(run.history, h)
    low = h - PLATEAU_BAND
    near = (f"stays within {PLATEAU_BAND:g} of {h:.3f}" if inside == 1.0 else
            f"is within {PLATEAU_BAND:g} of {h:.3f} at {math.floor(100 * inside)}% of its recorded points")
    if first is not None and left is None:
        shape = f"{near} from iteration {first:,} to the end ({run.final_cost:.3f})"
    elif first is not None and (left - first) >= PLATEAU_SHARE * n:
        shape = (f"{near} from iteration {first:,} to {left:,} ({(left - first) / n:.0%} of its {n:,} iterations) "
                 f"before it falls, and ends at {run.final_cost:.3f}")
    elif first is not None:
        shape = f"falls below {low:.3f} at iteration {left:,} and ends at {run.final_cost:.3f}"
    else:
        shape = f"ends at {run.final_cost:.3f}"
    extra = ""
    if run.test_balanced is not None and run.test_auc is not None:
        extra = f"; its balanced accuracy is {run.test_balanced:.2f} and its AUC {run.test_auc:.2f}"
    return (f"{run.name}'s cost {shape}; its test accuracy {run.test_accuracy:.2f} is "
            f"{against_majority(run.test_accuracy, ds.test)}{extra}")


def _init(lesson: Lesson, runs: list, ds) -> list[str]:
    small, xavier, he = runs
    p = float(np.mean(ds.train.Y))
    m = ds.train.m
    h = prior_cost(p)
    c = small.final_cost
    n = lesson.iterations
    stalled = abs(c - h) < NEAR_PRIOR
    if stalled:
        first = (f"With ×0.01 the cost stalls at {c:.3f}: the cost of always answering P(cat) = {p:.3f}, the "
                 f"fraction of cats among the {m} training images (−p·ln p − (1−p)·ln(1−p) = {h:.3f})")
        if small.train_accuracy is not None and abs(small.train_accuracy - max(p, 1 - p)) < 1e-9:
            common = ds.classes[1] if p > 0.5 else ds.classes[0]
            first += f", and its train accuracy {small.train_accuracy:.3f} is the share of {common} images"
            q = float(np.mean(ds.test.Y))
            share = q if p > 0.5 else 1 - q
            if small.test_accuracy is not None and abs(small.test_accuracy - share) < 1e-9:
                first += f" (its test accuracy {small.test_accuracy:.2f} is their share among the test images)"
        first += "."
    else:
        first = (f"With ×0.01 the cost ends at {c:.3f} after {n:,} iterations (always answering the fraction of "
                 f"cats, P(cat) = {p:.3f}, would cost {h:.3f}).")
    X, Y, layers = ds.train.X, ds.train.Y, lesson.base.layers
    s = signal_at_init(layers, "small", small.config.seed, X, Y)
    x = signal_at_init(layers, "xavier", xavier.config.seed, X, Y)
    k = signal_at_init(layers, "he", he.config.seed, X, Y)
    second = (f"At the start each ×0.01 layer shrinks the signal: the spread of Z falls from {s.z_std[0]:.2g} in "
              f"layer 1 to {s.z_std[-1]:.1e} in layer {len(s.z_std)}, so P(cat) differs by only {s.p_range:.1e} "
              f"across the images (He: {k.p_range:.2f}). ‖dW‖ is {norms(s.grad_norms)} in layers 1 to "
              f"{len(s.grad_norms)} (He: {norms(k.grad_norms)}): {vanishing(s, k, 'He')}"
              + (", and the network settles on answering the cat fraction." if stalled else "."))
    third = (f"At init, on these ReLU layers, Xavier (randn/√n) {signal_verb(x)}: the spread of Z goes {x.path()} "
             f"from layer 1 to {len(x.z_std)}; He (randn·√(2/n)) {signal_verb(k)}: {k.path()}.")
    fourth = f"{_curve(xavier, h, n, ds)}. {_curve(he, h, n, ds)}."
    return [first, second, third, fourth, _first_steps(xavier, he, X, Y)]


def norms(values) -> str:
    """Gradient norms as the lessons write them: "9.97e-05, 1.15e-04" below 0.01, else 3 significant digits."""
    return ", ".join(f"{v:.3g}" if v >= 0.01 else f"{v:.2e}" for v in values)


def vanishing(s: Signal, ref: Signal, ref_name: str) -> str:
    """Which layers' gradients vanish at ``s`` (at least :data:`VANISH_RATIO` times below ``ref``'s), from the
    norms layer by layer: every layer, some of them (named), or none."""
    ratios = [r / g if g else math.inf for g, r in zip(s.grad_norms, ref.grad_norms)]
    low = [layer for layer, q in enumerate(ratios, start=1) if q >= VANISH_RATIO]
    least = min(ratios[layer - 1] for layer in low) if low else 0.0
    times = f"{int(least):,}×" if math.isfinite(least) else "infinitely"
    if len(low) == len(ratios):
        return f"the gradients vanish in every layer alike, each at least {times} smaller than {ref_name}'s"
    if low:
        which = ", ".join(str(layer) for layer in low)
        return (f"the gradients vanish in layer{'s' if len(low) > 1 else ''} {which} (at least {times} smaller than "
                f"{ref_name}'s), not in the others")
    return f"no layer's gradient is {VANISH_RATIO:g}× smaller than {ref_name}'s"


def _steps_clause(name: str, f: FirstSteps) -> str:
    dead, was, units = sum(f.dead), sum(f.dead_at_init), sum(f.units)
    return (f"{name}'s first step moves W[1] by {f.step:.3g} (α·‖dW[1]‖), and after {f.steps} iterations its cost "
            f"has gone from {f.costs[0]:.3f} to {f.costs[1]:.3f}, {dead} of its {units} hidden ReLU units output 0 "
            f"for every training image ({was} at init), ‖dW[1]‖ is {f.after.grad_norms[0]:.3g} and P(cat) differs "
            f"by {f.after.p_range:.2g} across the images")


def _first_steps(xavier: RunSummary, he: RunSummary, X: np.ndarray, Y: np.ndarray) -> str:
    """The first iterations of Xavier and He replayed: how far each first step goes and what is left after
    them; "no longer learns" only where ‖dW[1]‖ has fallen below :data:`~catdnn.diagnose.VANISHED_GRADIENT`."""
    fx, fk = (first_steps(r.config, X, Y, FIRST_STEPS) for r in (xavier, he))
    text = (f"At α = {he.config.learning_rate:g} the first steps differ: {_steps_clause('Xavier', fx)}; "
            f"{_steps_clause('He', fk)}.")
    for (name, f), (other, g) in (((xavier.name, fx), (he.name, fk)), ((he.name, fk), (xavier.name, fx))):
        if f.after.grad_norms[0] < VANISHED_GRADIENT <= g.after.grad_norms[0] and f.step > g.step:
            text += (f" After a first step {f.step / g.step:.1f}× as long as {other}'s, {name}'s layer 1 gets no "
                     f"gradient to learn from after {f.steps} iterations (‖dW[1]‖ below {VANISHED_GRADIENT:g}), while "
                     f"{other}'s does.")
    return text


def rises(history) -> int:
    """How many times a cost curve ([(iteration, cost)]) goes up from one recorded point to the next."""
    costs = [c for _, c in history if c is not None and math.isfinite(c)]
    return sum(1 for x, y in zip(costs, costs[1:]) if y > x)


def max_rise(history) -> float:
    """The largest step up of a cost curve ([(iteration, cost)]) from one recorded point to the next (0: none)."""
    costs = [c for _, c in history if c is not None and math.isfinite(c)]
    return max([y - x for x, y in zip(costs, costs[1:]) if y > x], default=0.0)


def first_below(a, b) -> int | None:
    """The first iteration recorded in both curves at which ``b``'s cost is below ``a``'s (None: never)."""
    costs = dict(a)
    return next((i for i, c in b if i in costs and c < costs[i]), None)


def crossings(a, b) -> int:
    """How many times curve ``b`` crosses curve ``a`` (goes from above to below or back), over the iterations
    recorded in both."""
    costs = dict(a)
    sides = [c > costs[i] for i, c in b if i in costs and c != costs[i]]
    return sum(1 for x, y in zip(sides, sides[1:]) if x != y)


def last_above(a, b) -> int | None:
    """The last iteration recorded in both curves at which ``b``'s cost is above ``a``'s (None: never)."""
    costs = dict(a)
    above = [i for i, c in b if i in costs and c > costs[i]]
    return above[-1] if above else None


def _rise_size(history, gd_history) -> str:
    """How big a curve's steps up are, next to gradient descent's: a count of rises alone hides that."""
    mine, gd = max_rise(history), max_rise(gd_history)
    if not mine:
        return ""
    return f", each by at most {mine:.2g} (gradient descent's by up to {gd:.2g})"


def _relative(a: float, b: float) -> str:
    """How ``b`` compares with ``a``: "within 5% of", "12% below", "30% above"."""
    rel = (b - a) / a if a else 0.0
    if abs(rel) < 0.05:
        return "within 5% of"
    return f"{abs(rel):.0%} {'below' if rel < 0 else 'above'}"


def _recorded(history) -> str:
    """How often a curve was recorded: "at every iteration", "every 5 iterations"."""
    every = history[1][0] - history[0][0] if len(history) > 1 else 1  # from iteration 0, every k (and the last)
    return "at every iteration" if every == 1 else f"every {every} iterations"


def _compare_test(run: RunSummary, others: list, m: int) -> str:
    """``run``'s test accuracy against the best of ``others``, in test images."""
    best = max(others, key=lambda r: r.test_accuracy)
    k = round((run.test_accuracy - best.test_accuracy) * m)
    if k == 0:
        return f"its test accuracy {run.test_accuracy:.2f} equals {best.name}'s"
    side = "more" if k > 0 else "fewer"
    return (f"its test accuracy {run.test_accuracy:.2f} is {abs(k)} test image{'s' if abs(k) != 1 else ''} {side} "
            f"than {best.name}'s ({best.test_accuracy:.2f})")


#: The optimizers lesson compares the ends of the curves over this many last iterations (a zig-zag's range).
TAIL_ITERATIONS = 100


def _against_gd(gd_cost: float, momentum_cost: float, cost: float, verb: str) -> str:
    """How a run's final training cost compares with gradient descent's: "it <verb> a training cost k× lower
    than gradient descent's" when it beats both gradient descent and momentum, else by how much it differs."""
    if cost < min(gd_cost, momentum_cost):
        return f"it {verb} a training cost {gd_cost / cost:.1f}× lower than gradient descent's"
    return f"it ends {_relative(gd_cost, cost)} gradient descent's training cost"


def _optimizers(lesson: Lesson, runs: list, ds) -> list[str]:
    gd, mom, rms, adam = runs
    n = lesson.iterations
    a, b, c, d = gd.final_cost, mom.final_cost, adam.final_cost, rms.final_cost
    first = (f"After {n:,} iterations on the two-layer net, gradient descent reaches training cost {a:.3f}, "
             f"momentum {b:.3f}, RMSprop {d:.3f} and Adam {c:.3f} (test accuracy {gd.test_accuracy:.2f}, "
             f"{mom.test_accuracy:.2f}, {rms.test_accuracy:.2f} and {adam.test_accuracy:.2f}).")
    beta = mom.config.beta
    up_gd, up_mom = rises(gd.history), rises(mom.history)
    steps = len(gd.history) - 1
    recorded = f"Recorded {_recorded(gd.history)}, gradient descent's cost goes up at {up_gd} of its {steps:,} steps"
    end = gd.history[-1][0]
    tail = [(i, cost) for i, cost in gd.history if i >= end - TAIL_ITERATIONS]
    low = min(cost for _, cost in tail)
    if up_gd:
        ups = [i for (i, x), (_, y) in zip(gd.history, gd.history[1:]) if y > x]
        recorded += f", from iteration {ups[0]:,} on"
        if rises(tail):
            recorded += (f" (over its last {TAIL_ITERATIONS} iterations it zig-zags between {low:.3f} and "
                         f"{max(cost for _, cost in tail):.3f})")
    recorded += f"; momentum's goes up at {up_mom} of its {len(mom.history) - 1:,}"
    if up_mom < up_gd:
        recorded += ": its curve is smoother"
    behind = last_above(gd.history, mom.history)
    if behind is None:
        where = "its cost is never above gradient descent's"
    elif behind >= mom.history[-1][0]:
        where = "its cost is still above gradient descent's at the end"
    else:
        where = f"its cost is above gradient descent's until iteration {behind:,}"
        below, times = first_below(gd.history, mom.history), crossings(gd.history, mom.history)
        if times > 1:  # gradient descent's zig-zag crosses momentum's curve back and forth
            where = (f"its cost first drops below gradient descent's at iteration {below:,}, and the two curves "
                     f"cross {times} times until iteration {behind + 1:,} as gradient descent zig-zags")
    second = (f"{recorded}. Momentum (β = {beta:g}) steps along an average of about the last "
              f"{1 / (1 - beta):.0f} gradients, at the same rate {mom.config.learning_rate:g}: {where}, and it ends "
              f"at {b:.3f}, {_relative(low, b)} the lowest cost gradient descent reaches in its last "
              f"{TAIL_ITERATIONS} iterations ({low:.3f}).")
    rate, gd_rate = adam.config.learning_rate, gd.config.learning_rate
    outcome = f"{_against_gd(a, b, c, 'reaches')}, and {_compare_test(adam, [gd, mom], ds.test.m)}"
    third = (f"Adam moves every weight by about its rate whatever the size of its gradient, and {N_X:,} pixel "
             f"inputs add up: its first step can move a layer-1 unit by up to {adam_first_step(rate, ds.train.X):.2f} "
             f"on an average image at rate {rate:g}, {adam_first_step(gd_rate, ds.train.X):.0f} at {gd_rate:g}. "
             f"The lesson chose to run it at a rate {gd_rate / rate:.0f}× smaller than gradient descent's: "
             f"{outcome}.")
    r_rate, beta2 = rms.config.learning_rate, rms.config.beta2
    r_outcome = _against_gd(a, b, d, "ends at")
    fourth = (f"RMSprop, the course's, has no bias correction: S starts at 0, so its first step moves most weights by "
              f"its rate / √(1 − β2) = {1 / math.sqrt(1 - beta2):.1f}× its rate (β2 = {beta2:g}), up to "
              f"{rmsprop_first_step(r_rate, beta2, ds.train.X):.2f} on a layer-1 unit on an average image at rate "
              f"{r_rate:g} (Adam's first step at its {rate:g}: {adam_first_step(rate, ds.train.X):.2f}). The lesson "
              f"chose that rate; recorded {_recorded(rms.history)}, its cost goes up at {rises(rms.history)} of its "
              f"{len(rms.history) - 1:,} steps{_rise_size(rms.history, gd.history)}, {r_outcome}, and "
              f"{_compare_test(rms, [gd, mom], ds.test.m)}.")
    return [first, second, third, fourth]


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
    sentences = [first, second, third]
    if all(r.cross_entropy is not None for r in runs):
        curves = "; ".join(f"{r.name}: {cost_meaning(r.config)}, ends at {r.final_cost:.3f}" for r in runs)
        full = ", ".join(f"{r.cross_entropy:.3f}" for r in runs)
        sentences.append(f"Each cost curve is what its run minimises ({curves}). Measured the same way for all three "
                         f"(the cross-entropy of the full network, no units dropped, no penalty), the final training "
                         f"costs are {full}.")
    return sentences


_EXPLAIN = {"init": _init, "optimizers": _optimizers, "regularization": _regularization}
