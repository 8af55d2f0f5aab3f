"""Optimisers, learning-rate schedules and mini-batches: the parts of a training step that are not
the network's math.

Everything works on lists indexed by layer, as :mod:`catdnn.network` does: ``params`` is a list of
``(W, b)``, ``grads`` a list of ``(dW, db)`` of the same shapes, and an optimiser's state holds
lists of the same structure (``state.v[l - 1] == (vW[l], vb[l])``). None of it knows what a layer
computes, so a convolutional layer's ``(kernels, biases)`` fit the same way.

Optimisers (:data:`OPTIMIZERS`, the course's formulas; ``t`` counts updates from 1)

* ``"gd"``       ``W -= α·dW``  (:func:`catdnn.network.update`, the course's step)
* ``"momentum"`` ``v = β·v + (1-β)·dW;  W -= α·v``
* ``"rmsprop"``  ``s = β2·s + (1-β2)·dW²;  W -= α·dW/(√s + ε)``
* ``"adam"``     ``v = β1·v + (1-β1)·dW;  s = β2·s + (1-β2)·dW²;
  v̂ = v/(1-β1^t);  ŝ = s/(1-β2^t);  W -= α·v̂/(√ŝ + ε)``

Learning-rate schedules (:data:`SCHEDULES`; ``epoch`` is 0-based, ``d`` the decay rate)

* ``"constant"``     ``α = α0``
* ``"inverse-time"`` ``α = α0 / (1 + d·epoch)``
* ``"step"``         ``α = α0 / (1 + d·⌊epoch / k⌋)``, the course's ``schedule_lr_decay`` (k epochs a step)

Mini-batches (:class:`MiniBatches`): each epoch is a fresh permutation of the m examples drawn
from the run's generator, cut into batches of ``batch_size`` (the last one smaller when
``batch_size`` does not divide m). One iteration is one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

from .network import update


# --------------------------------------------------------------------------- optimisers
@dataclass(frozen=True)
class Hyperparameter:
    """One optimiser hyperparameter, declared once: the config's validation, the CLI's flag and help,
    the Train form's field and the link's key are all made from this.

    ``name`` is the :class:`~catdnn.config.TrainConfig` field, the CLI flag (``--name``), the link key
    and the optimiser classes' field; optimisers that share a name share the setting (the course's
    RMSprop and Adam both call their second-moment average β2).
    """

    name: str
    symbol: str  # as the course writes it: β, β1, β2, ε
    default: float
    help: str  # one line, the formula it enters
    low: float = 0.0
    high: float = 1.0
    open_low: bool = False  # whether ``low`` itself is refused
    open_high: bool = False  # whether ``high`` itself is refused
    step: float = 0.01  # the form's step
    scale: str = "1-log"  # how random search draws it (catdnn.search.SCALES): 1-β log-uniformly, as the course does


#: Every optimiser hyperparameter by name (the optimiser classes take theirs by these names).
HYPERPARAMETERS: dict[str, Hyperparameter] = {h.name: h for h in (
    Hyperparameter("beta", "β", 0.9, "velocity: v = β·v + (1-β)·dW", open_high=True),
    Hyperparameter("beta1", "β1", 0.9, "first moment: v = β1·v + (1-β1)·dW", open_high=True),
    Hyperparameter("beta2", "β2", 0.999, "second moment: s = β2·s + (1-β2)·dW²", open_high=True, step=0.001),
    Hyperparameter("epsilon", "ε", 1e-8, "added to √s so the step never divides by 0", open_low=True, step=1e-8,
                   scale="log"),
)}


def _hyper(name: str):
    """A dataclass field for hyperparameter ``name``, its default the declared one."""
    return field(default=HYPERPARAMETERS[name].default)


@dataclass
class OptimizerState:
    """An optimiser's memory: ``t`` updates done; ``v`` (first moments / velocity) and ``s`` (second
    moments), each None or a list of ``(vW, vb)`` with the parameters' structure."""

    t: int = 0
    v: list | None = None
    s: list | None = None


def _zeros_like(params) -> list:
    return [tuple(np.zeros_like(p) for p in layer) for layer in params]


@dataclass(frozen=True)
class GradientDescent:
    """Plain gradient descent: ``W -= α·dW`` for every parameter (the course's update)."""

    name = "gd"
    label = "gradient descent"
    description = "gradient descent (the course's)"
    elementwise = ""  # what makes the step not linear in the gradients ("" when it is)

    def init(self, params) -> OptimizerState:
        return OptimizerState()

    def update(self, params, grads, state: OptimizerState, lr: float) -> None:
        """Update ``params`` in place; the gradients are consumed."""
        state.t += 1
        update(params, grads, lr)


@dataclass(frozen=True)
class Momentum:
    """Gradient descent with momentum: ``v = β·v + (1-β)·dW``, ``W -= α·v``."""

    beta: float = _hyper("beta")
    name = "momentum"
    label = "momentum"
    description = "gradient descent with momentum β"
    elementwise = ""

    def init(self, params) -> OptimizerState:
        return OptimizerState(v=_zeros_like(params))

    def update(self, params, grads, state: OptimizerState, lr: float) -> None:
        """Update ``params`` and the velocity in place; the gradients are consumed."""
        state.t += 1
        for layer, glayer, vlayer in zip(params, grads, state.v):
            for P, dP, v in zip(layer, glayer, vlayer):
                v *= self.beta  # v = β·v + (1-β)·dP
                dP *= 1.0 - self.beta
                v += dP
                P -= lr * v  # P -= α·v


@dataclass(frozen=True)
class RMSprop:
    """RMSprop, the course's: ``S = β2·S + (1-β2)·dW²``, ``W -= α·dW/(√S + ε)`` (no bias correction)."""

    beta2: float = _hyper("beta2")
    epsilon: float = _hyper("epsilon")
    name = "rmsprop"
    label = "RMSprop"
    description = "RMSprop (β2, ε)"
    elementwise = "divides each weight's step by its own running RMS, elementwise"

    def init(self, params) -> OptimizerState:
        return OptimizerState(s=_zeros_like(params))

    def update(self, params, grads, state: OptimizerState, lr: float) -> None:
        """Update ``params`` and the second moments in place; the gradients are not consumed."""
        state.t += 1
        b2 = self.beta2
        for layer, glayer, slayer in zip(params, grads, state.s):
            for P, dP, s in zip(layer, glayer, slayer):
                s *= b2  # S = β2·S + (1-β2)·dP²
                s += (1.0 - b2) * np.square(dP)
                denom = np.sqrt(s)  # √S + ε
                denom += self.epsilon
                P -= lr * dP / denom  # P -= α·dP / (√S + ε)


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction (see the module docstring)."""

    beta1: float = _hyper("beta1")
    beta2: float = _hyper("beta2")
    epsilon: float = _hyper("epsilon")
    name = "adam"
    label = "Adam"
    description = "Adam (β1, β2, ε, bias correction)"
    elementwise = RMSprop.elementwise

    def init(self, params) -> OptimizerState:
        return OptimizerState(v=_zeros_like(params), s=_zeros_like(params))

    def update(self, params, grads, state: OptimizerState, lr: float) -> None:
        """Update ``params`` and both moments in place; the gradients are consumed."""
        state.t += 1
        b1, b2, t = self.beta1, self.beta2, state.t
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t  # bias corrections
        for layer, glayer, vlayer, slayer in zip(params, grads, state.v, state.s):
            for P, dP, v, s in zip(layer, glayer, vlayer, slayer):
                part = np.multiply(dP, 1.0 - b1)  # the one temporary array of the update
                v *= b1  # v = β1·v + (1-β1)·dP
                v += part
                s *= b2  # s = β2·s + (1-β2)·dP²
                np.square(dP, out=dP)
                dP *= 1.0 - b2
                s += dP
                denom = np.divide(s, c2, out=part)  # √ŝ + ε
                np.sqrt(denom, out=denom)
                denom += self.epsilon
                step = np.divide(v, c1, out=dP)  # α·v̂ / (√ŝ + ε)
                step *= lr
                step /= denom
                P -= step


#: Optimisers by name, in the course's order: the names are the strings the CLI and the dashboard
#: offer. An optimiser is a frozen dataclass whose fields are its hyperparameters (named in
#: :data:`HYPERPARAMETERS`), with ``name``, ``label``, ``description``, ``elementwise``, ``init`` and ``update``.
OPTIMIZERS: dict[str, Callable[..., object]] = {
    cls.name: cls for cls in (GradientDescent, Momentum, RMSprop, Adam)
}

OPTIMIZER_DESCRIPTIONS = {name: cls.description for name, cls in OPTIMIZERS.items()}


def hyperparameters(optimizer: str) -> tuple[Hyperparameter, ...]:
    """The hyperparameters optimiser ``optimizer`` takes, in its order (``()`` for an unknown name)."""
    cls = OPTIMIZERS.get(optimizer)
    return tuple(HYPERPARAMETERS[f.name] for f in fields(cls)) if cls is not None else ()


def users(name: str) -> list[str]:
    """The optimisers that take hyperparameter ``name``, by name."""
    return [opt for opt in OPTIMIZERS if any(h.name == name for h in hyperparameters(opt))]


def hyperparameter_label(name: str) -> str:
    """``"Adam's β1"``, ``"RMSprop's and Adam's β2"``: a hyperparameter as a message names it."""
    owners = " and ".join(f"{OPTIMIZERS[opt].label}'s" for opt in users(name))
    return f"{owners} {HYPERPARAMETERS[name].symbol}"


def optimizer_text(config) -> str:
    """The optimiser with its hyperparameters' values, e.g. ``"Adam β1=0.9 β2=0.999 ε=1e-08"`` ("" for
    plain gradient descent, the course's)."""
    name = getattr(config, "optimizer", "gd")
    if name not in OPTIMIZERS or name == "gd":
        return ""
    values = " ".join(f"{h.symbol}={getattr(config, h.name):g}" for h in hyperparameters(name))
    return f"{OPTIMIZERS[name].label} {values}"


#: What :func:`optimizer_text` starts with, for each optimiser but plain gradient descent.
OPTIMIZER_LABELS = tuple(cls.label + " " for name, cls in OPTIMIZERS.items() if name != "gd")


def inapplicable(optimizer: str, given) -> tuple[str, list[str]] | None:
    """The first hyperparameter in ``given`` (names) that ``optimizer`` does not take, with the
    optimisers that do; None when every one applies."""
    own = {h.name for h in hyperparameters(optimizer)}
    for name in given:
        if name not in own:
            return name, users(name)
    return None


def make_optimizer(config):
    """The optimiser a :class:`~catdnn.config.TrainConfig` asks for, with its hyperparameters."""
    cls = OPTIMIZERS[getattr(config, "optimizer", "gd")]
    return cls(**{h.name: float(getattr(config, h.name)) for h in hyperparameters(cls.name)})


# --------------------------------------------------------------------------- learning-rate schedules
def constant(lr0: float, epoch: int, decay: float, every: int) -> float:
    """``α0``: no decay."""
    return lr0


def inverse_time(lr0: float, epoch: int, decay: float, every: int) -> float:
    """``α0 / (1 + d·epoch)``."""
    return lr0 / (1.0 + decay * epoch)


def step(lr0: float, epoch: int, decay: float, every: int) -> float:
    """``α0 / (1 + d·⌊epoch / every⌋)``: the course's scheduled decay, one step every ``every`` epochs."""
    return lr0 / (1.0 + decay * (epoch // every))


#: Learning-rate schedules by name: ``f(α0, epoch, decay, every) -> α``.
SCHEDULES: dict[str, Callable[[float, int, float, int], float]] = {
    "constant": constant,
    "inverse-time": inverse_time,
    "step": step,
}

SCHEDULE_DESCRIPTIONS = {
    "constant": "α0",
    "inverse-time": "α0 / (1 + d·epoch)",
    "step": "α0 / (1 + d·⌊epoch / k⌋)",
}


# --------------------------------------------------------------------------- mini-batches
@dataclass
class MiniBatches:
    """The examples of each iteration: a reshuffled permutation per epoch, cut into batches.

    Parameters
    ----------
    m : int
        Number of training examples.
    batch_size : int
        Examples per batch; 0 (or at least m) means the whole set in its order every iteration
        (full-batch, the course's), and nothing is drawn.
    rng : np.random.Generator
        Draws one permutation per epoch, in order; the state lives here, so stopping between two
        iterations and going on gives the same batches as an uninterrupted run.
    """

    m: int
    batch_size: int
    rng: np.random.Generator
    epoch: int = 0  # the epoch of the next batch
    _order: np.ndarray | None = field(default=None, repr=False)
    _pos: int = 0

    @property
    def full(self) -> bool:
        return self.batch_size <= 0 or self.batch_size >= self.m

    @property
    def per_epoch(self) -> int:
        """Iterations (batches) per epoch."""
        return 1 if self.full else -(-self.m // self.batch_size)

    def next(self):
        """``(index, epoch)`` of the next iteration: ``index`` an int ndarray of shape (k,), or None
        for the whole training set in order."""
        if self.full:
            epoch, self.epoch = self.epoch, self.epoch + 1
            return None, epoch
        if self._order is None or self._pos >= self.m:
            if self._order is not None:
                self.epoch += 1
            self._order, self._pos = self.rng.permutation(self.m), 0
        index = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return index, self.epoch


def seeded_generators(seed: int, names=("batches", "dropout", "augment")) -> dict:
    """Independent ``np.random.Generator`` streams for one run, all derived from its seed.

    Separate streams keep one technique's draws from moving another's: turning dropout on does not
    change which examples each mini-batch holds.
    """
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}
