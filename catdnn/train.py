"""Training: the configuration, one training loop for everyone, and ``fit()``.

The loop is :meth:`Trainer.run`, a generator that performs one full-batch gradient-descent step per
iteration and yields a :class:`Progress` event after each. Whoever consumes it (the CLI, the tests,
the dashboard's Train page) can stop between any two iterations simply by not asking for the next
event; the partial model is then :meth:`Trainer.model`. :func:`fit` drains the generator.

The per-iteration math sits in a *solver* (``DirectSolver`` below): it owns the current parameters
and knows how to take a step, so a faster way of computing the same iterates can replace it
without touching the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .diagnose import EXPLODE_FACTOR
from .errors import ConfigError
from .fast import GramOverflowError, GramSolver, gram_is_faster
from .network import INITS, THRESHOLD, descent_step, forward, init_params

N_X = 64 * 64 * 3  # 12288 inputs: a 64×64 RGB image, flattened

#: Hard limits, checked before any work starts (documented in the README).
MAX_ITERATIONS = 1_000_000
MAX_SEED = 2**32 - 1
MAX_LEARNING_RATE = 100.0
MAX_HIDDEN_LAYERS = 50
MAX_LAYER_SIZE = 100_000
#: Parameters of a model may take at most this many bytes (float64). Training takes about 3.5 times
#: the weights (gradients and temporaries; measured: 1.70 GB peak for 506 MiB of weights), so a run
#: at the limit stays under about 1.8 GiB.
MAX_PARAM_BYTES = 512 * 1024**2


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. The defaults are the course's deep network."""

    layers: tuple = (N_X, 20, 7, 5, 1)  # [n_x, n_1, ..., n_L]; n_L must be 1 (one sigmoid output)
    learning_rate: float = 0.0075  # the course's rate, for both of its networks
    iterations: int = 2500  # full-batch gradient-descent steps
    init: str = "xavier"  # weight scale by name, see catdnn.network.INITS
    seed: int = 1  # seeds np.random.RandomState for the weights; 1 reproduces the course

    def __post_init__(self):
        try:
            layers = tuple(self.layers)
        except TypeError:
            raise ConfigError(
                f"layers must be a list of layer sizes such as [12288, 20, 7, 5, 1], not {self.layers!r}"
            ) from None
        object.__setattr__(self, "layers", layers)

    @property
    def hidden(self) -> tuple:
        """The hidden layer sizes ``(n_1, ..., n_{L-1})``."""
        return self.layers[1:-1]

    def param_count(self) -> int:
        """Number of weights and biases."""
        return sum(n * (n_prev + 1) for n_prev, n in zip(self.layers[:-1], self.layers[1:]))

    def validate(self, n_x: int | None = N_X) -> TrainConfig:
        """Raise :class:`ConfigError` with a clear message if this run is impossible; return self."""
        layers = self.layers
        if len(layers) < 2:
            raise ConfigError(
                f"the layer list {list(layers)} is too short: it needs at least the input size and "
                "the output size, e.g. [12288, 1] (no hidden layer) or [12288, 20, 7, 5, 1]"
            )
        for i, n in enumerate(layers):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise ConfigError(f"layer size {n!r} (position {i}) is not a whole number")
            if n < 1:
                raise ConfigError(f"layer size {n} (position {i}) must be at least 1")
        if n_x is not None and layers[0] != n_x:
            raise ConfigError(
                f"the first layer size must be the number of inputs, {n_x} (64×64×3), not {layers[0]}"
            )
        if layers[-1] != 1:
            raise ConfigError(
                f"the last layer size must be 1 (one sigmoid output, P(cat)), not {layers[-1]}"
            )
        if len(layers) - 2 > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"{len(layers) - 2} hidden layers is too many (at most {MAX_HIDDEN_LAYERS})")
        for n in layers[1:-1]:
            if n > MAX_LAYER_SIZE:
                raise ConfigError(f"hidden layer size {n} is too large (at most {MAX_LAYER_SIZE:,})")
        nbytes = self.param_count() * 8
        if nbytes > MAX_PARAM_BYTES:
            raise ConfigError(
                f"layers {list(layers)} need {nbytes / 2**20:,.0f} MiB for the weights alone (about "
                f"{3.5 * nbytes / 2**30:,.1f} GiB to train); the limit is {MAX_PARAM_BYTES / 2**20:,.0f} "
                "MiB: use smaller hidden layers"
            )
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)):
            raise ConfigError(f"the learning rate {lr!r} is not a number")
        if not math.isfinite(lr) or lr <= 0 or lr > MAX_LEARNING_RATE:
            raise ConfigError(
                f"the learning rate must be a number above 0 and at most {MAX_LEARNING_RATE:g}, not {lr!r}"
            )
        it = self.iterations
        if isinstance(it, bool) or not isinstance(it, (int, np.integer)) or not 1 <= it <= MAX_ITERATIONS:
            raise ConfigError(f"iterations must be a whole number from 1 to {MAX_ITERATIONS:,}, not {it!r}")
        s = self.seed
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= MAX_SEED:
            raise ConfigError(f"the seed must be a whole number from 0 to {MAX_SEED}, not {s!r}")
        if not isinstance(self.init, str) or self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}: choose one of {', '.join(INITS)}")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {k: d[k] for k in ("layers", "learning_rate", "iterations", "init", "seed") if k in d}
        return cls(**known)

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """A named preset (see :data:`PRESETS`) with some fields replaced."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


#: The course's two networks, by the names the CLI and the dashboard use.
PRESETS: dict[str, TrainConfig] = {
    "two-layer": TrainConfig(layers=(N_X, 7, 1), init="small"),
    "deep": TrainConfig(layers=(N_X, 20, 7, 5, 1), init="xavier"),
}


def parse_layers(text: str) -> tuple:
    """Parse a comma-separated list of layer sizes, e.g. ``"12288,20,7,5,1"`` -> ``(12288, 20, 7, 5, 1)``.

    Semicolons count as commas and a trailing comma is ignored. Raises :class:`ConfigError`
    naming the first entry that is not a positive whole number.
    """
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]  # "20, 7," is "20, 7"
    if parts == [""]:
        return ()
    sizes = []
    for p in parts:
        shown = p if len(p) <= 20 else p[:17] + "..."
        if p == "":
            raise ConfigError(f"empty entry in the layer list {_short(text)!r} (two commas in a row?)")
        if not p.isascii() or not p.isdigit():
            if p.startswith("-") and p[1:].isdigit():
                raise ConfigError(f"layer size {shown} must be at least 1")
            raise ConfigError(f"layer size {shown!r} in {_short(text)!r} is not a whole number")
        n = int(p)
        if n < 1:
            raise ConfigError(f"layer size {n} in {_short(text)!r} must be at least 1")
        sizes.append(n)
    return tuple(sizes)


def _short(text: str, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- solvers
class DirectSolver:
    """Plain full-batch gradient descent on ``(W, b)`` lists: the course's algorithm.

    Parameters
    ----------
    params : list of (W, b)
        Initial parameters; the solver owns (and updates) them.
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    learning_rate : float
    X_test : ndarray of shape (n_x, m_test), optional
    """

    name = "direct"

    def __init__(self, params, X, Y, learning_rate, X_test=None):
        self._params = params
        self.X, self.Y, self.lr, self.X_test = X, Y, learning_rate, X_test

    def step(self, need_cost: bool):
        """One iteration: forward at the current parameters, then update them.

        Returns ``(cost, AL)``: the cost at the parameters *before* the update (``None`` unless
        ``need_cost``) and the output ``AL`` of shape ``(1, m)``. Returns ``(nan, AL)`` without
        updating when the output is not finite (the run diverged).
        """
        return descent_step(self._params, self.X, self.Y, self.lr, need_cost)

    def proba_train(self) -> np.ndarray:
        """P(cat) on the training set at the current parameters, shape ``(m,)``."""
        return forward(self._params, self.X)[0][0]

    def proba_test(self) -> np.ndarray:
        """P(cat) on the test set at the current parameters, shape ``(m_test,)``."""
        return forward(self._params, self.X_test)[0][0]

    def params(self):
        """A copy of the current parameters as a list of ``(W, b)``."""
        return [(W.copy(), b.copy()) for W, b in self._params]


#: Solvers by name. All compute the same iterates (up to rounding); "gram" is catdnn.fast's.
SOLVERS: dict[str, type] = {"direct": DirectSolver, "gram": GramSolver}


def choose_solver(name: str, n_x: int, m: int, layers, iterations: int | None = None) -> type:
    """The solver class for ``name``; "auto" picks the fastest exact one for this shape.

    Every solver here is exact for full-batch gradient descent (today's only optimiser); "auto"
    takes the Gram solver when :func:`catdnn.fast.gram_is_faster` predicts it wins for ``m``
    examples of ``n_x`` features over ``iterations`` steps (default: 2500), i.e. unless ``m`` is
    so large that the m×m Gram matrix costs more than it saves. An option for which the Gram
    reformulation is not exact (e.g. Adam) must make "auto" return the direct solver.
    """
    if name == "auto":
        return SOLVERS["gram"] if gram_is_faster(n_x, m, layers, iterations) else SOLVERS["direct"]
    if name not in SOLVERS:
        raise ConfigError(f"unknown solver {name!r}: choose one of auto, {', '.join(SOLVERS)}")
    return SOLVERS[name]


# --------------------------------------------------------------------------- the loop
@dataclass(frozen=True)
class Progress:
    """What the training loop reports after each iteration."""

    iteration: int  # 0-based index of the iteration just done (the course's ``i``)
    iterations: int  # how many the run will do in all
    cost: float | None  # cost before this iteration's update, when it was computed
    train_accuracy: float | None  # accuracy on the training set, when it was computed
    test_accuracy: float | None  # accuracy on the test set, when it was computed
    elapsed: float  # seconds of training so far

    @property
    def done(self) -> int:
        """Iterations completed."""
        return self.iteration + 1


def _divergence(cost: float, first_cost: float) -> str:
    """Why a reported cost means the run diverged ("" if it does not).

    NaN or infinite, or more than :data:`catdnn.diagnose.EXPLODE_FACTOR` times above where the run
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


def _accuracy(proba: np.ndarray, Y: np.ndarray) -> float:
    return float(np.mean((proba > THRESHOLD) == (Y.reshape(-1) == 1)))


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
        "auto" (default), or a name from ``SOLVERS``.
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
    history: list = field(default_factory=list)  # [(iteration, cost)]
    accuracy_history: list = field(default_factory=list)  # [(iteration, train_acc, test_acc)]
    status: str = "ready"  # ready | running | stopped | finished | diverged
    message: str = ""
    iteration: int = 0  # iterations completed
    elapsed: float = 0.0

    def __post_init__(self):
        X, Y = self.X, self.Y
        if X.ndim != 2 or Y.shape != (1, X.shape[1]):
            raise ConfigError(f"X must be (n_x, m) and Y (1, m); got {X.shape} and {Y.shape}")
        if (self.X_test is None) != (self.Y_test is None):
            raise ConfigError("give both X_test and Y_test, or neither")
        self.config.validate(n_x=X.shape[0])
        if int(self.cost_every) < 1:
            raise ConfigError("cost_every must be at least 1")
        params = init_params(self.config.layers, self.config.init, self.config.seed)
        cls = choose_solver(self.solver, X.shape[0], X.shape[1], self.config.layers, self.config.iterations)
        try:
            self._solver = cls(params, X, Y, float(self.config.learning_rate), self.X_test)
        except GramOverflowError:
            if self.solver != "auto":
                raise
            self._solver = DirectSolver(params, X, Y, float(self.config.learning_rate), self.X_test)

    @property
    def solver_name(self) -> str:
        return self._solver.name

    def run(self) -> Iterator[Progress]:
        """Train until done, yielding a :class:`Progress` after every iteration.

        Stop early by not asking for more (``break``, or ``close()`` on the generator): the state
        then says "stopped" and :meth:`model` gives the partial model. Calling ``run()`` again
        continues where it stopped.
        """
        cfg = self.config
        last = cfg.iterations - 1
        ce, ae = int(self.cost_every), int(self.accuracy_every)
        has_test = self.X_test is not None
        self.status = "running"
        first_cost = None
        t0 = time.perf_counter() - self.elapsed
        try:
            for i in range(self.iteration, cfg.iterations):
                need_cost = i % ce == 0 or i == last
                need_acc = ae > 0 and (i % ae == 0 or i == last)
                test_acc = _accuracy(self._solver.proba_test(), self.Y_test) if need_acc and has_test else None
                with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
                    cost, AL = self._solver.step(need_cost)
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
                self.iteration = i + 1
                if cost is not None:
                    self.history.append((i, cost))
                train_acc = _accuracy(AL[0], self.Y) if need_acc else None
                if need_acc:
                    self.accuracy_history.append((i, train_acc, test_acc))
                self.elapsed = time.perf_counter() - t0
                yield Progress(i, cfg.iterations, cost, train_acc, test_acc, self.elapsed)
            self.status = "finished"
            self.message = f"finished {cfg.iterations} iterations in {self.elapsed:.2f} s"
        finally:
            if self.status == "running":
                self.status = "stopped"
                self.message = f"stopped after {self.iteration} of {cfg.iterations} iterations"

    def params(self):
        """A copy of the current parameters, list of ``(W, b)``."""
        return self._solver.params()

    def model(self):
        """The current model (final, or partial after a stop), with its accuracies measured now.

        Raises :class:`ConfigError` after a divergence: its weights are not usable.
        """
        from .model_io import Model

        if self.status == "diverged":
            raise ConfigError(self.message)
        train_acc = _accuracy(self._solver.proba_train(), self.Y)
        test_acc = _accuracy(self._solver.proba_test(), self.Y_test) if self.X_test is not None else None
        return Model(
            params=self.params(),
            config=self.config,
            classes=tuple(self.classes),
            history=list(self.history),
            accuracy_history=list(self.accuracy_history),
            iterations_done=self.iteration,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            status=self.status,
            train_seconds=self.elapsed,
        )


def fit(
    config: TrainConfig,
    dataset=None,
    *,
    X=None,
    Y=None,
    X_test=None,
    Y_test=None,
    on_progress: Callable[[Progress], None] | None = None,
    **trainer_options,
):
    """Train to the end and return the :class:`~catdnn.model_io.Model`.

    Give either a :class:`~catdnn.data.Dataset` or arrays ``X`` ``(n_x, m)``, ``Y`` ``(1, m)`` and
    optionally ``X_test``, ``Y_test``. ``on_progress`` is called with every :class:`Progress`.
    Raises :class:`ConfigError` if the run diverges (its message suggests a smaller rate).
    """
    if dataset is not None:
        X, Y = dataset.train.X, dataset.train.Y
        X_test, Y_test = dataset.test.X, dataset.test.Y
        trainer_options.setdefault("classes", dataset.classes)
    trainer = Trainer(config, X, Y, X_test, Y_test, **trainer_options)
    for event in trainer.run():
        if on_progress is not None:
            on_progress(event)
    return trainer.model()
