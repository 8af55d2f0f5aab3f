"""Optimisers, learning-rate schedules and mini-batches: the parts of a training step that are not
the network's math.

Everything works on lists indexed by layer, as :mod:`catdnn.network` does: ``params`` is a list of
``(W, b)``, ``grads`` a list of ``(dW, db)`` of the same shapes, and an optimiser's state holds
lists of the same structure (``state.v[l - 1] == (vW[l], vb[l])``). None of it knows what a layer
computes, so a convolutional layer's ``(kernels, biases)`` fit the same way.

Optimisers (:data:`OPTIMIZERS`, the course's formulas; ``t`` counts updates from 1)

* ``"gd"``       ``W -= α·dW``  (:func:`catdnn.network.update`, the course's step)
* ``"momentum"`` ``v = β·v + (1-β)·dW;  W -= α·v``
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
from dataclasses import dataclass, field

import numpy as np

from .network import update


# --------------------------------------------------------------------------- optimisers
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

    def init(self, params) -> OptimizerState:
        return OptimizerState()

    def update(self, params, grads, state: OptimizerState, lr: float) -> None:
        """Update ``params`` in place; the gradients are consumed."""
        state.t += 1
        update(params, grads, lr)


@dataclass(frozen=True)
class Momentum:
    """Gradient descent with momentum: ``v = β·v + (1-β)·dW``, ``W -= α·v``."""

    beta: float = 0.9
    name = "momentum"

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
class Adam:
    """Adam with bias correction (see the module docstring)."""

    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    name = "adam"

    def init(self, params) -> OptimizerState:
        return OptimizerState(v=_zeros_like(params), s=_zeros_like(params))

    def update(self, params, grads, state: OptimizerState, lr: float) -> None:
        """Update ``params`` and both moments in place; the gradients are consumed."""
        state.t += 1
        b1, b2, t = self.beta1, self.beta2, state.t
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t  # bias corrections
        for layer, glayer, vlayer, slayer in zip(params, grads, state.v, state.s):
            for P, dP, v, s in zip(layer, glayer, vlayer, slayer):
                v *= b1  # v = β1·v + (1-β1)·dP
                v += (1.0 - b1) * dP
                s *= b2  # s = β2·s + (1-β2)·dP²
                np.square(dP, out=dP)
                dP *= 1.0 - b2
                s += dP
                denom = np.sqrt(s / c2)  # √ŝ + ε
                denom += self.epsilon
                P -= lr * (v / c1) / denom  # P -= α·v̂ / (√ŝ + ε)


#: Optimisers by name: the names are the strings the CLI and the dashboard offer.
OPTIMIZERS: dict[str, Callable[..., object]] = {"gd": GradientDescent, "momentum": Momentum, "adam": Adam}

OPTIMIZER_DESCRIPTIONS = {
    "gd": "gradient descent (the course's)",
    "momentum": "gradient descent with momentum β",
    "adam": "Adam (β1, β2, ε, bias correction)",
}


def make_optimizer(config):
    """The optimiser a :class:`~catdnn.config.TrainConfig` asks for, with its hyperparameters."""
    name = getattr(config, "optimizer", "gd")
    if name == "momentum":
        return Momentum(beta=float(config.beta))
    if name == "adam":
        return Adam(beta1=float(config.beta1), beta2=float(config.beta2), epsilon=float(config.epsilon))
    return GradientDescent()


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
