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
* ``batch_norm``: the deep net at learning rates ×10 apart, without and with batch normalisation: the
  largest rate at which each still learns (:func:`learns`), how each run that does not learn ends
  (:func:`fate`: the plateau of always answering the cat fraction, above its start, diverged), and what
  the curves of the runs that learn show.
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
from .probe import dead_masks, dead_units
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
    lesson takes on an idle 2-core machine (:func:`estimate_seconds` scales it by the load, or a measured
    time); ``accuracy`` says whether its point is the train/test accuracies (then the page draws them next
    to the cost curves); ``cost_every`` how often the cost is recorded when the lesson's point needs every
    step (see :meth:`trainer_options`).
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
    by_rate: bool = False  # its point is how runs fare across learning rates: a diverged run is one of its
    #                        outcomes (explained, not refused), and the page draws final cost against rate

    @property
    def explained(self) -> tuple:
        """The statuses of the runs its sentences explain (another status stops the explanation)."""
        return COMPLETE + (("diverged",) if self.by_rate else ())

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
#: The batch-norm lesson's learning rates, ×10 apart, from about the course's deep-net rate (0.0075) up.
BN_RATES = (0.01, 0.1, 1.0, 10.0, 100.0)
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
        # RMSprop and Adam take the direct solver: measured 8.0 and 7.9 s of CPU each (one BLAS thread), about 10 s
        # a click on an idle 2-core machine; 46.6 s at load average 10-12 (learner review), 116 s at 17-20
        iterations=1000, seconds=10, cost_every=1),
    "regularization": Lesson(
        "regularization", "Regularisation",
        "The deep net fits its training images almost perfectly: do L2 or dropout close the gap to the test "
        "images?",
        TrainConfig(layers=DEEP, learning_rate=0.0075, iterations=2500),
        (LessonRun("no regularisation"), LessonRun("L2 λ=0.7", {"l2": 0.7}),
         LessonRun("dropout keep=0.8", {"keep_prob": 0.8})),
        iterations=2500, seconds=5, accuracy=True),
    "batch_norm": Lesson(
        "batch_norm", "Batch norm",
        f"The deep net at learning rates from {BN_RATES[0]:g} to {BN_RATES[-1]:g}, without and with batch "
        "normalisation: how much higher a rate does batch norm let it learn at, and what do the curves show?",
        TrainConfig(layers=DEEP, learning_rate=0.0075, iterations=500),
        tuple(LessonRun(f"no batch norm, rate {r:g}", {"learning_rate": r}) for r in BN_RATES)
        + tuple(LessonRun(f"batch norm, rate {r:g}", {"learning_rate": r, "batch_norm": True}) for r in BN_RATES),
        # measured on 2 cores: 6 s a click (AppTest, load average 12), 15 and 17 s in the browser (load average 16)
        iterations=500, seconds=15, by_rate=True),
}


def estimate_seconds(lesson: Lesson, load: float, cores: int, measured: tuple | None = None) -> float:
    """How long a click on ``lesson`` takes now, at ``load`` (the 1-minute load average) on ``cores`` cores.

    Once the load exceeds the cores, each process gets ``cores / load`` of a core, so a time measured at load
    ``a`` becomes ``time · max(1, load/cores) / max(1, a/cores)`` at ``load``. ``measured`` is ``(seconds, load
    then)`` of a click on this server; without one, ``lesson.seconds`` (an idle 2-core machine) is scaled.
    (The optimizers lesson, measured: 46.6 s at load 10-12 on 2 cores, where this gives 50-60 s from 10 s idle.)
    """
    slow = max(1.0, float(load) / max(int(cores), 1))
    if measured is not None:
        seconds, then = measured
        return float(seconds) * slow / max(1.0, float(then) / max(int(cores), 1))
    return float(lesson.seconds) * slow


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
    dead: tuple | None = None  # (hidden ReLU units that output 0 for every training image, hidden units) of an MLP

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
    learn_below: float | None = None  # a lesson by rate: a run learns when its cost ends below this (learns())
    wall: float | None = None  # how long the click took, in seconds (set by who timed it)

    @property
    def complete(self) -> bool:
        return all(r.status in self.lesson.explained for r in self.runs)


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
            if not model.config.arch:
                dead = dead_units(model.params, dataset.train.X, model.bn)
                summary.dead = (int(sum(mask.sum() for mask in dead)), sum(mask.size for mask in dead))
        runs.append(summary)
    outcome = LessonOutcome(lesson, runs, [], str(getattr(dataset, "name", "")))
    if lesson.by_rate:
        outcome.learn_below = prior_cost(float(np.mean(dataset.train.Y))) - PLATEAU_BAND
    if not outcome.complete:
        bad = [r for r in runs if r.status not in lesson.explained]
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
              f"{r_rate:g} (Adam's first step at its {rate:g}: {adam_first_step(rate, ds.train.X):.2f}). "
              f"{_rms_rate_reason(rms, adam, ds)} Recorded {_recorded(rms.history)}, its cost goes up at "
              f"{rises(rms.history)} of its "
              f"{len(rms.history) - 1:,} steps{_rise_size(rms.history, gd.history)}, {r_outcome}, and "
              f"{_compare_test(rms, [gd, mom], ds.test.m)}.")
    return [first, second, third, fourth]


def _rms_rate_reason(rms: RunSummary, adam: RunSummary, ds) -> str:
    """Why the lesson runs RMSprop at its rate, from what its run shows: its first step against Adam's (a larger
    rate jolts more), and how long its cost sits on the plateau of always answering the cat fraction even so (a
    smaller rate takes smaller steps off it)."""
    X, h = ds.train.X, prior_cost(float(np.mean(ds.train.Y)))
    mine = rmsprop_first_step(rms.config.learning_rate, rms.config.beta2, X)
    ratio = mine / adam_first_step(adam.config.learning_rate, X)
    big = f"its first step is already {ratio:.1f}× Adam's"
    first, left, _inside = plateau(rms.history, h)
    if first is None:
        return f"At that rate {big}, and its cost never sits on the plateau of always answering the cat fraction."
    on = f"its cost sits within {PLATEAU_BAND:g} of the cost of always answering the cat fraction ({h:.3f})"
    if left is None:
        return (f"At that rate {big}, yet {on} from iteration {first:,} to the end: in {rms.history[-1][0] + 1:,} "
                "iterations it does not leave that plateau.")
    return (f"The lesson chose that rate between two limits its run shows: {big}, and even so {on} from iteration "
            f"{first:,} to {left:,} before it falls; a smaller rate takes smaller steps off that plateau.")


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


# --------------------------------------------------------------------------- the batch-norm lesson
def learns(run: RunSummary, level: float) -> bool:
    """Whether a run learned: it finished with its last cost below the plateau of always answering the cat
    fraction (``level``, :func:`prior_cost`), by more than :data:`PLATEAU_BAND`."""
    return run.status == "finished" and run.final_cost is not None and run.final_cost < level - PLATEAU_BAND


def fate(run: RunSummary, level: float, explain: bool = True) -> str:
    """How a run that did not learn ends, from its curve: diverged, on the plateau of always answering the cat
    fraction (``level``; with its dead units, when known), above where it started, or just not below the plateau.
    ``explain=False`` leaves out what an earlier run's sentence already explained."""
    pts = [(i, c) for i, c in run.history if c is not None]
    if run.status == "diverged":
        i, c = pts[-1] if pts else (None, None)
        if c is None:
            return "diverges"
        what = f"its cost reaches {c:.3g}" if math.isfinite(c) else "its cost is not a number"
        return f"diverges at iteration {i:,} ({what})"
    c, start = run.final_cost, pts[0][1]
    if abs(c - level) < NEAR_PRIOR:
        text = f"settles at {c:.3f}" + (", the cost of always answering the cat fraction" if explain else " too")
        if run.dead is not None and run.dead[0]:
            text += (f", {run.dead[0]} of its {run.dead[1]} hidden units dead"
                     + (" (output 0 for every training image)" if explain else ""))
        return text
    swing = zigzag(run.history)
    if swing is not None:  # its last cost is one end of a swing: say the swing, not the last point
        low, high = swing
        where = (f"above where it started ({start:.3f})" if low >= start else
                 f"around where it started ({start:.3f})" if high >= start else
                 f"having started at {start:.3f}")
        return f"zig-zags between {low:.3f} and {high:.3f} over its last {ZIGZAG_POINTS} recorded steps, {where}"
    if c >= start:
        return f"ends at {c:.3f}, above where it started ({start:.3f})"
    return f"ends at {c:.3f}, not below {level - PLATEAU_BAND:.3f}"


#: A curve "zig-zags" when its cost goes up and down in turn over this many last recorded points.
ZIGZAG_POINTS = 10


def zigzag(history, points: int = ZIGZAG_POINTS) -> tuple | None:
    """``(low, high)`` of a cost curve's ([(iteration, cost)]) last ``points`` recorded costs when it goes up and
    down in turn at every one of them (a last cost is then one end of a swing); None otherwise."""
    costs = [c for _, c in history if c is not None and math.isfinite(c)][-int(points):]
    if len(costs) < points:
        return None
    steps = [y - x for x, y in zip(costs, costs[1:])]
    if any(d == 0 for d in steps) or any((a > 0) == (b > 0) for a, b in zip(steps, steps[1:])):
        return None
    return min(costs), max(costs)


def _cost(value: float) -> str:
    """A final cost as the batch-norm lesson writes it: 3 decimals, or 2 significant digits below 0.01."""
    return f"{value:.3f}" if value >= 0.01 else f"{value:.1e}"


def _run(run: RunSummary) -> str:
    """A batch-norm lesson run as its sentences name it: "no batch norm at 0.01", "batch norm at 10"."""
    return f"{'batch norm' if run.config.batch_norm else 'no batch norm'} at {run.config.learning_rate:g}"


def _rates(values) -> str:
    """Learning rates as a list in words: "0.01", "0.01 and 0.1", "0.01, 0.1 and 1"."""
    values = [f"{v:g}" for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _across_rates(label: str, runs: list, level: float, n: int) -> str:
    """One sentence on a group of runs (one per rate): where they learn, and how each of the others ends."""
    good = [r for r in runs if learns(r, level)]
    if good:
        start = good[0].history[0][1]
        where = (f"learns at rate{'s' if len(good) > 1 else ''} {_rates(r.config.learning_rate for r in good)} "
                 f"(in {n:,} iterations its cost falls from {start:.3f} to "
                 + ", ".join(_cost(r.final_cost) for r in good) + ")")
    else:
        where = "learns at none of the rates tried"
    others, said = [], set()
    for r in runs:
        if not learns(r, level):
            text = fate(r, level, explain=not said)
            said |= {"plateau"} if text.startswith("settles") else set()
            others.append(f"at {r.config.learning_rate:g} it {text}")
    return f"{label} the deep net {where}" + ("; " + "; ".join(others) if others else "") + "."


def _gain(plain: list, normed: list, level: float) -> str:
    """How much higher the largest rate tried at which the net learns is with batch norm than without."""
    rates = sorted({r.config.learning_rate for r in plain + normed})
    top = {name: max((r.config.learning_rate for r in runs if learns(r, level)), default=None)
           for name, runs in (("plain", plain), ("bn", normed))}
    steps = {round(b / a, 6) for a, b in zip(rates, rates[1:])}
    spacing = (f" (the rates tried are {steps.pop():g}× apart, so the measure is no finer than that)"
               if len(steps) == 1 else "")
    if top["bn"] is None:
        return "With batch norm it learns at none of the rates tried."
    above = " (the largest rate tried: its limit lies higher)" if top["bn"] == rates[-1] else ""
    if top["plain"] is None:
        return (f"Without batch norm it learns at none of the rates tried; with it, up to {top['bn']:g}"
                f"{above}.")
    ratio = top["bn"] / top["plain"]
    if ratio > 1:
        return (f"The largest rate tried at which it learns is {top['bn']:g} with batch norm{above} against "
                f"{top['plain']:g} without: {ratio:g}× higher{spacing}.")
    if ratio == 1:
        return f"Batch norm does not raise the largest rate tried at which it learns ({top['bn']:g} either way)."
    return (f"The largest rate tried at which it learns is lower with batch norm: {top['bn']:g} against "
            f"{top['plain']:g} without.")


def _bn_curves(plain: list, normed: list, level: float) -> str:
    """What the curves of the runs that learn show: at a rate both learn at, and how fast batch norm's best gets
    below the best final cost without it; how often the fastest rate's curve goes up."""
    good_plain = [r for r in plain if learns(r, level)]
    good_bn = [r for r in normed if learns(r, level)]
    if not good_bn:
        return ""
    parts = []
    shared = [(p, b) for p in good_plain for b in good_bn if p.config.learning_rate == b.config.learning_rate]
    if shared:
        p, b = shared[-1]
        side = "below" if b.final_cost < p.final_cost else "above"
        parts.append(f"At rate {p.config.learning_rate:g}, the largest at which both learn, batch norm's cost ends "
                     f"at {_cost(b.final_cost)}, {side} the {_cost(p.final_cost)} reached without")
    best = min(good_bn, key=lambda r: r.final_cost)
    if good_plain:
        target = min(good_plain, key=lambda r: r.final_cost)
        k = next((i for i, c in best.history if c is not None and c <= target.final_cost), None)
        if k is not None:
            parts.append(f"at rate {best.config.learning_rate:g} it reaches the lowest final cost without batch norm "
                         f"({_cost(target.final_cost)}, at rate {target.config.learning_rate:g}) at iteration {k:,} "
                         f"of {target.history[-1][0] + 1:,}, and ends at {_cost(best.final_cost)}")
    fastest = good_bn[-1]
    up = rises(fastest.history)
    if up:
        parts.append(f"at {fastest.config.learning_rate:g}, the largest rate at which it learns, its cost goes up "
                     f"at {up} of its {len(fastest.history) - 1:,} recorded steps, each by at most "
                     f"{max_rise(fastest.history):.2g}")
    else:
        parts.append(f"at {fastest.config.learning_rate:g}, the largest rate at which it learns, its cost never goes "
                     "up")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _bn_measure(plain: list, normed: list, level: float, test) -> str:
    """What batch norm's curves measure against what it predicts with, and the test accuracies of the runs that
    learn (the lowest training cost is not promised the best test accuracy) against always answering the test
    split's (``test``) most common class."""
    good = [r for r in plain + normed if learns(r, level) and r.test_accuracy is not None]
    bn_good = [r for r in normed if learns(r, level) and r.cross_entropy is not None]
    text = ""
    if bn_good:
        apart = max(abs(r.cross_entropy - r.final_cost) for r in bn_good)
        costs = ", ".join(_cost(r.cross_entropy) for r in bn_good)
        measures = cost_meaning(bn_good[0].config).replace(" (batch norm)", "")  # the sentence says whose
        text = (f"Batch norm's curves measure the {measures}; it predicts with their running "
                f"averages, and measured that way its final training costs ({costs}) are within {apart:.1g} of its "
                "curves' last points. ")
    if not good:
        return text.strip()
    tests = ", ".join(f"{_run(r)}: {r.test_accuracy:.2f}" for r in good)
    lowest = min(good, key=lambda r: r.final_cost)
    best = max(good, key=lambda r: r.test_accuracy)
    if lowest.test_accuracy == best.test_accuracy:
        verdict = f"the lowest training cost ({_run(lowest)}) also has the best test accuracy"
    else:
        verdict = (f"the lowest training cost ({_run(lowest)}, test {lowest.test_accuracy:.2f}) is not the best test "
                   f"accuracy ({_run(best)}, {best.test_accuracy:.2f})")
    rate, answer = majority(test)
    below = [r for r in good if round((r.test_accuracy - rate) * test.m) < 0]
    against = (f"Always answering “{answer}” scores {rate:.2f} on these {test.m} test images: "
               + (f"{len(below)} of the {len(good)} runs that learn score below it, and " if below else "")
               + f"the best, {_run(best)}, scores {against_majority(best.test_accuracy, test)}.")
    return text + f"Test accuracy of the runs that learn: {tests}; {verdict}. {against}"


def _batch_norm(lesson: Lesson, runs: list, ds) -> list[str]:
    plain = [r for r in runs if not r.config.batch_norm]
    normed = [r for r in runs if r.config.batch_norm]
    level = prior_cost(float(np.mean(ds.train.Y)))
    n = lesson.iterations
    first = (f"Always answering the cat fraction costs {level:.3f}: a run here learns when its cost ends below "
             f"{level - PLATEAU_BAND:.3f}.")
    sentences = [first, _across_rates("Without batch norm", plain, level, n),
                 _across_rates("With batch norm", normed, level, n), _gain(plain, normed, level)]
    return sentences + [t for t in (_bn_curves(plain, normed, level), _bn_measure(plain, normed, level, ds.test)) if t]


_EXPLAIN = {"init": _init, "optimizers": _optimizers, "regularization": _regularization, "batch_norm": _batch_norm}
