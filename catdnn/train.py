"""Training: one training loop for everyone, and ``fit()`` (the settings are :mod:`catdnn.config`).

The loop is :meth:`Trainer.run`, a generator that performs one parameter update per iteration (on
the whole training set, or on a mini-batch) and yields a :class:`Progress` event after each.
Whoever consumes it (the CLI, the tests, the dashboard's Train page) can stop between any two
iterations simply by not asking for the next event; the partial model is then
:meth:`Trainer.model`. :func:`fit` drains the generator.

The per-iteration math sits in a *solver* (:class:`catdnn.solvers.Solver`: direct, Gram, or a
convolutional net's): it owns the current parameters and knows how to take a step, so another
network, or a faster way of computing the same iterates, replaces it without touching the loop.
The loop alone keeps the histories, the timing, the Stop and the divergence rule
(:data:`EXPLODE_FACTOR`). The loop draws what is random about each step and passes it on: the
examples of the step (:class:`~catdnn.optim.MiniBatches`, a new permutation every epoch), their
augmentation (:func:`catdnn.augment.draw`) and the step's learning rate (the schedule of
:data:`catdnn.optim.SCHEDULES`). Every draw comes from a generator seeded from the run's seed
(:func:`~catdnn.optim.seeded_generators`), kept in the Trainer, so a stopped run continues exactly
as an uninterrupted one.

Counting: ``iteration`` is always a 0-based index (the course's ``i``), ``iterations`` a run's
length, and ``iterations_done`` how many have been completed.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple

import numpy as np

from . import augment
from .cnn import init_cnn
from .config import TrainConfig
from .data import COURSE_NAME, N_X, load_dataset
from .errors import ConfigError
from .model import Model
from .network import init_params, score
from .notebook import progress_bar
from .optim import SCHEDULES, MiniBatches, seeded_generators
from .solvers import Batch, DirectSolver, GramOverflowError, Solver, solver_choice

#: A cost this many times above the run's starting cost (at least 1) stops the run as diverged.
EXPLODE_FACTOR = 10.0


# --------------------------------------------------------------------------- the loop
class Progress(NamedTuple):
    """What the training loop reports after each iteration (immutable; a named tuple, as one is built per
    iteration: a third of a frozen dataclass's cost)."""

    iteration: int  # 0-based index of the iteration just done (the course's ``i``)
    iterations: int  # how many the run will do in all
    cost: float | None  # cost before this iteration's update, when it was computed
    train_accuracy: float | None  # accuracy on the training set, when it was computed
    test_accuracy: float | None  # accuracy on the test set, when it was computed
    elapsed: float  # seconds of training so far
    epoch: int = 0  # 0-based epoch of this iteration (with full batches, the iteration itself)
    learning_rate: float | None = None  # the rate this iteration's update used

    @property
    def iterations_done(self) -> int:
        """Iterations completed (this one included)."""
        return self.iteration + 1


def latest_accuracies(accuracy_history) -> tuple:
    """The most recent train and test accuracies of ``[(iteration, train, test)]`` (None where never measured)."""
    train = test = None
    for _i, a, b in accuracy_history:
        train = a if a is not None else train
        test = b if b is not None else test
    return train, test


def _divergence(cost: float, first_cost: float) -> str:
    """Why a reported cost means the run diverged ("" if it does not).

    NaN or infinite, or more than :data:`EXPLODE_FACTOR` times above where the run
    started (at least 1): a step overshot so far that the run is lost.
    """
    if math.isnan(cost):
        return "the cost became NaN"
    if math.isinf(cost):
        return "the cost became infinite"
    limit = EXPLODE_FACTOR * max(first_cost, 1.0)
    if cost > limit:
        return f"the cost exploded to {cost:,.4g} (it started at {first_cost:.4g})"
    return ""


@dataclass
class Trainer:
    """A training run: holds the state, :meth:`run` advances it.

    Parameters
    ----------
    config : TrainConfig
    X, Y : ndarrays of shape (n_x, m) and (1, m)
    X_test, Y_test : ndarrays of shape (n_x, m_test) and (1, m_test), optional
    cost_every : int
        Compute the cost every this many iterations (and at the first and the last).
    accuracy_every : int
        Also compute train/test accuracy every this many iterations; 0 = only at the end.
    solver : str
        "auto" (default), or a name from ``SOLVERS``. After construction ``solver_name`` says which
        runs and ``solver_reason`` why, in one line. A convolutional net (``config.arch``) always runs
        on :class:`catdnn.solvers.CnnSolver`, whose solver name is "cnn".
    stats_every : int
        Record per-layer gradient norms and activation statistics (:func:`catdnn.probe.layer_stats`,
        one extra forward and backward pass on the training set) every this many iterations, and at
        the first and the last, into ``stats``; 0 (default) = never. MLPs only: a convolutional
        net records none (the statistics are the dense layers' math).
    """

    config: TrainConfig
    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    cost_every: int = 100
    accuracy_every: int = 0
    solver: str = "auto"
    classes: tuple = ("non-cat", "cat")
    dataset: str = COURSE_NAME  # the display name of the dataset X and Y come from (the Model keeps it)
    stats_every: int = 0
    history: list = field(default_factory=list)  # [(iteration, cost)]
    accuracy_history: list = field(default_factory=list)  # [(iteration, train_acc, test_acc)]
    stats: list = field(default_factory=list)  # [probe.LayerStats], with stats_every
    status: str = "ready"  # ready | running | stopped | finished | diverged
    message: str = ""
    iterations_done: int = 0  # iterations completed
    elapsed: float = 0.0

    def __post_init__(self):
        X, Y = self.X, self.Y
        if X.ndim != 2 or Y.shape != (1, X.shape[1]):
            raise ConfigError(f"X must be (n_x, m) and Y (1, m); got {X.shape} and {Y.shape}")
        if (self.X_test is None) != (self.Y_test is None):
            raise ConfigError("give both X_test and Y_test, or neither")
        self.config.validate(n_x=X.shape[0], m=X.shape[1])
        if int(self.cost_every) < 1:
            raise ConfigError("cost_every must be at least 1")
        if int(self.stats_every) < 0:
            raise ConfigError("stats_every must be 0 (off) or more")
        cfg = self.config
        if (cfg.flip or cfg.shift or cfg.tta) and X.shape[0] != N_X:
            raise ConfigError(
                f"flips, shifts and mirror averaging work on 64×64×3 images ({N_X} inputs), not on "
                f"{X.shape[0]} inputs"
            )
        cls, self.solver_reason = solver_choice(self.solver, X.shape[0], X.shape[1], cfg.layers, cfg.iterations, cfg)
        if cfg.is_cnn:
            params = init_cnn(cfg.parsed_arch(), cfg.init, cfg.seed, np.dtype(cfg.dtype))
        else:
            params = init_params(cfg.layers, cfg.init, cfg.seed)
        self._rngs = seeded_generators(cfg.seed)
        lr = float(cfg.learning_rate)
        try:
            self._solver: Solver = cls(params, X, Y, lr, self.X_test, config=cfg, rng=self._rngs["dropout"])
        except GramOverflowError:
            if self.solver != "auto":
                raise
            self._solver = DirectSolver(params, X, Y, lr, self.X_test, config=cfg, rng=self._rngs["dropout"])
            self.solver_reason = "direct solver: the Gram matrix XᵀX overflows for these inputs"
        self._batches = MiniBatches(X.shape[1], int(cfg.batch_size), self._rngs["batches"])
        self._augmenting = bool(cfg.flip or cfg.shift)
        # the course's kind of run: every step on all examples as they are, at one rate
        self._plain_steps = self._batches.full and not self._augmenting and cfg.schedule == "constant"
        # the step's output is the clean prediction on the training set only for the course's kind of step
        # (with batch norm the step normalises by the batch's own μ and σ², a prediction by the running averages)
        self._step_is_train_output = self._batches.full and not (self._augmenting or cfg.dropout or cfg.tta
                                                                 or cfg.batch_norm)

    @property
    def solver_name(self) -> str:
        """ "gram", "direct" or "cnn": the solver that runs (``solver_reason`` says why)."""
        return self._solver.name

    @property
    def epochs_done(self) -> float:
        """Passes over the training set completed, counted in iterations (fractional with mini-batches)."""
        return self.iterations_done / self._batches.per_epoch

    def _next_batch(self):
        """This iteration's :class:`~catdnn.solvers.Batch` (or None: all examples, as they are), its
        epoch and its learning rate."""
        cfg = self.config
        index, epoch = self._batches.next()
        lr = SCHEDULES[cfg.schedule](float(cfg.learning_rate), epoch, float(cfg.decay), int(cfg.decay_every))
        if index is None and not self._augmenting:
            return None, epoch, lr
        k = self.X.shape[1] if index is None else len(index)
        aug = augment.draw(self._rngs["augment"], k, bool(cfg.flip), int(cfg.shift))
        return Batch(index, aug), epoch, lr

    def run(self) -> Iterator[Progress]:
        """Train until done, yielding a :class:`Progress` after every iteration.

        Stop early by not asking for more (``break``, or ``close()`` on the generator): the state
        then says "stopped" and :meth:`model` gives the partial model. Calling ``run()`` again
        continues where it stopped.
        """
        cfg = self.config
        last = cfg.iterations - 1
        ce, ae, se = int(self.cost_every), int(self.accuracy_every), int(self.stats_every)
        has_test = self.X_test is not None
        self.status = "running"
        first_cost = None
        plain, step, lr0 = self._plain_steps, self._solver.step, float(cfg.learning_rate)
        # The steps run with overflow and invalid values silenced (a diverging run is reported below, not
        # warned about), in a context of their own: entering it costs a tenth of a `with np.errstate`
        # per iteration, and the consumer's own settings hold between the events.
        quiet = contextvars.copy_context()
        quiet.run(np.errstate(over="ignore", invalid="ignore").__enter__)
        t0 = time.perf_counter() - self.elapsed
        try:
            for i in range(self.iterations_done, cfg.iterations):
                need_cost = i % ce == 0 or i == last
                need_acc = ae > 0 and (i % ae == 0 or i == last) and not (  # (a stop measured it already)
                    self.accuracy_history and self.accuracy_history[-1][0] == i)
                if se and (i % se == 0 or i == last):  # at the parameters before the update
                    stats = self._solver.layer_stats(i)
                    if stats is not None:  # None: the solver has none (a convolutional net)
                        self.stats.append(stats)
                test_acc = score(self._solver.proba_test(), self.Y_test) if need_acc and has_test else None
                train_acc = None
                if need_acc and not self._step_is_train_output:  # at the parameters before the update
                    train_acc = score(self._solver.proba_train(), self.Y)
                if plain:  # all examples as they are, at the solver's own rate
                    epoch, lr = i, lr0
                    cost, AL = quiet.run(step, need_cost)
                else:
                    batch, epoch, lr = self._next_batch()
                    cost, AL = quiet.run(step, need_cost, batch, lr)
                if cost is not None:
                    if first_cost is None:
                        first_cost = self.history[0][1] if self.history else cost
                    why = _divergence(cost, first_cost)
                    if why and math.isfinite(cost):
                        self.history.append((i, cost))  # the explosion belongs on the curve
                    if why:
                        self.status = "diverged"
                        self.message = (
                            f"training diverged at iteration {i}: {why} with learning rate "
                            f"{cfg.learning_rate:g}. Try a smaller learning rate (e.g. "
                            f"{cfg.learning_rate / 10:g})."
                        )
                        self.elapsed = time.perf_counter() - t0
                        return
                self.iterations_done = i + 1
                if cost is not None:
                    self.history.append((i, cost))
                if need_acc and self._step_is_train_output:
                    train_acc = score(AL[0], self.Y)
                if need_acc:
                    self.accuracy_history.append((i, train_acc, test_acc))
                self.elapsed = time.perf_counter() - t0
                yield Progress(i, cfg.iterations, cost, train_acc, test_acc, self.elapsed, epoch, lr)
            self.status = "finished"
            self.message = f"finished {cfg.iterations} iterations in {self.elapsed:.2f} s"
        finally:
            if self.status == "running":
                self.status = "stopped"
                self.message = f"stopped after {self.iterations_done} of {cfg.iterations} iterations"
            if ae > 0 and self.status != "diverged" and self.iterations_done and (
                    not self.accuracy_history or self.accuracy_history[-1][0] < self.iterations_done):
                # the points above are measured before their iteration's update; this one after the last, so
                # that the curve ends at the accuracies the model reports
                self.accuracy_history.append((self.iterations_done, *self._accuracies()))

    def params(self):
        """A copy of the current parameters, list of ``(W, b)``."""
        return self._solver.params()

    def batch_norm(self):
        """A copy of the current :class:`catdnn.network.BatchNorm` (γ, β, running averages), or None
        without batch norm; ``network.predict_proba(params(), X, bn=batch_norm())`` is the model's P(cat)."""
        return self._solver.batch_norm()

    def _accuracies(self) -> tuple:
        """Train and test accuracy (test None without a test set) of the current parameters."""
        train = score(self._solver.proba_train(), self.Y)
        return train, (score(self._solver.proba_test(), self.Y_test) if self.X_test is not None else None)

    def model(self):
        """The current model (final, or partial after a stop), with its accuracies measured now.

        Raises :class:`ConfigError` after a divergence: its weights are not usable.
        """
        if self.status == "diverged":
            raise ConfigError(self.message)
        params = self.params()  # (first: the Gram solver then predicts on the test set with W1 at hand)
        train_acc, test_acc = self._accuracies()
        return Model(
            params=params,
            bn=self.batch_norm(),
            config=self.config,
            classes=tuple(self.classes),
            dataset=str(self.dataset),
            history=list(self.history),
            accuracy_history=list(self.accuracy_history),
            iterations_done=self.iterations_done,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            status=self.status,
            train_seconds=self.elapsed,
            stats=list(self.stats),
        )


_CONFIG_FIELDS = frozenset(f.name for f in fields(TrainConfig))  # fit()'s keywords that are settings


def fit(
    config: TrainConfig | str,
    dataset=None,
    *,
    X=None,
    Y=None,
    X_test=None,
    Y_test=None,
    on_progress: Callable[[Progress], None] | None = None,
    progress=None,
    **trainer_options,
):
    """Train to the end and return the :class:`~catdnn.model.Model`.

    ``config`` is a :class:`TrainConfig` or a preset's name (``fit("deep")``); settings given by
    name replace its own (``fit("deep", iterations=500)``). Give either a
    :class:`~catdnn.data.Dataset` or arrays ``X`` ``(n_x, m)``, ``Y`` ``(1, m)`` and optionally
    ``X_test``, ``Y_test``; with neither, the course's dataset (:func:`~catdnn.data.load_dataset`).
    ``on_progress`` is called with every :class:`Progress`. ``progress`` draws a text bar
    (:func:`catdnn.notebook.progress_bar`): None = when a person watches (a notebook, a prompt),
    True, False, or a stream to write it to.
    Raises :class:`ConfigError` for an unknown preset, or if the run diverges (its message suggests a smaller rate).
    """
    # -- notebook niceties (issue 15 §5): a preset by name, the course's dataset by default, a progress bar
    label = config if isinstance(config, str) else ""
    settings = {k: trainer_options.pop(k) for k in list(trainer_options) if k in _CONFIG_FIELDS}
    if isinstance(config, str):
        config = TrainConfig.preset(config, **settings)
    elif settings:
        config = replace(config, **settings)
    if dataset is None and X is None:
        dataset = load_dataset()
    bar = progress_bar(progress, label)
    # --
    if dataset is not None:
        X, Y = dataset.train.X, dataset.train.Y
        X_test, Y_test = dataset.test.X, dataset.test.Y
        trainer_options.setdefault("classes", dataset.classes)
        trainer_options.setdefault("dataset", dataset.name)
    trainer = Trainer(config, X, Y, X_test, Y_test, **trainer_options)
    try:
        for event in trainer.run():
            if bar is not None:
                bar(event)
            if on_progress is not None:
                on_progress(event)
    finally:
        if bar is not None:
            bar.close()
    return trainer.model()
