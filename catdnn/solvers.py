"""The solvers, side by side: the direct path, the Gram path and the convolutional net, behind one
small interface (:class:`Solver`).

A solver owns the current parameters of one training run and knows how to take one step
(:meth:`Solver.step`: one parameter update on one batch), what the network says about the training
and test images (:meth:`~Solver.proba_train`, :meth:`~Solver.proba_test`), what its parameters are
(:meth:`~Solver.params`) and its per-layer statistics (:meth:`~Solver.layer_stats`). The training
loop (:class:`catdnn.train.Trainer`) is the same for all three: it draws each step's batch, its
augmentation and its learning rate, and decides when the run has diverged.

The MLP's two solvers call the one copy of the math in :mod:`catdnn.network` (``forward``,
``backward``, ``dropout``, ``l2_cost``) and the optimisers of :mod:`catdnn.optim`: the direct
solver for every layer, the Gram solver for layers 2..L. The Gram solver computes only the first
layer differently, except in the course's own kind of step (plain descent on all examples), where a
fused copy of layers 2..L in reused arrays earns its place by a benchmark (``GramSolver._course_step``;
tested against the general step to 1e-12; bench/README, "the Gram path's overhead per iteration").
:class:`CnnSolver` steps a convolutional net (:mod:`catdnn.cnn`) with the same
optimisers.

The techniques a :class:`~catdnn.config.TrainConfig` turns on reach the solvers as: the batch of
each step (:class:`Batch`: which examples, how they are augmented; drawn by the training loop),
the learning rate of each step (the loop's schedule), and, from the config, L2's λ, the dropout
keep probabilities, the optimiser, and test-time mirror averaging.

The Gram solver: the same iterates, with the first layer's work done in the span of the inputs
-----------------------------------------------------------------------------------------------
Gradient descent adds to ``W[1]`` the matrix ``-α · dZ[1]·X_bᵀ / m_b`` at every step, where
``X_b`` are the batch's inputs, columns of the training inputs ``X``. So after any number of steps

    W[1] = W[1]_0 + B·Xᵀ        with B of shape (n_1, m), updated by  B[:, batch] -= α · dZ[1] / m_b,

and the first layer's forward pass is ``W[1]·X_b = W[1]_0·X_b + B·(XᵀX)[:, batch]``. With the Gram
matrix ``G = XᵀX`` (m, m) and ``P0 = W[1]_0·X`` (n_1, m) computed once, an iteration's first-layer
work drops from ``O(n_1·n_x·m_b)`` (``W1·X_b`` and ``dZ1·X_bᵀ``) to ``O(n_1·m·m_b)``; for the
course's data (n_x = 12288, m = 209) that is about 59 times fewer flops.

The same holds, exactly, for every technique whose update of ``W[1]`` is a linear combination,
with scalar coefficients, of ``W[1]`` itself and of gradients ``dZ·X_bᵀ``:

* **L2** (``dW1 += λ/m_b · W1``) shrinks ``W[1]_0``'s share too: ``W[1] = s ⊙ W[1]_0 + B·Xᵀ`` with a
  scale ``s`` of shape (n_1, 1) (one per row; they stay equal). Layer 1's "parameter" is then the
  coefficient matrix ``K = [B | s]`` of shape (n_1, m+1), and its gradient in those coordinates is
  ``dK = [dZ[1]/m_b scattered to the batch's columns + λ/m_b·B | λ/m_b·s]``: the map ``K -> W1`` is
  linear, so any update that is linear in the gradients gives the same ``W1`` applied to ``K``.
  The bias ``b[1]`` is kept apart (it is not decayed).
* **Momentum** (``v = β·v + (1-β)·dW``, ``W -= α·v``): linear, so the optimiser of
  :mod:`catdnn.optim` runs unchanged on ``(K, b1)``; its velocity for layer 1 is in K's
  coordinates.
* **Mini-batches**: the batch's columns of G (``G[:, batch]``) and of P0; the scatter of ``dZ[1]``
  goes to those columns of B.
* **Flips**: the mirror image of a training image is another input, ``F·x`` (F permutes the
  pixels), so the basis becomes ``X̃ = [X, F·X]`` (2m columns): ``G̃ = [[XᵀX, XᵀFX], [XᵀFX, XᵀX]]``
  (F is symmetric and F² = I) and a batch uses column i or m+i for example i as it was drawn.
* **Dropout on the hidden layers**: ``dZ[1] = dA[1] ⊙ D[1]/p ⊙ ReLU'(Z[1])`` is still multiplied by
  ``X_bᵀ``: exact. (Dropout on the *inputs* would not be, since ``X ⊙ D`` leaves the span of X;
  catdnn drops hidden units only, as the course does.)
* **Learning-rate schedules**: a scalar α per step: exact.
* **Batch norm** (:class:`catdnn.network.BatchNorm`): ``Z[1]`` is normalised by the batch's μ and σ²
  after it is computed (in Gram form, as before), and ``dZ[1]`` comes back through the
  normalisation, but ``dW[1]`` is still ``dZ[1]·X_bᵀ / m_b``: W1 stays in the span, exact. ``b[1]``
  has no gradient (it cancels in ``Z[1] − μ``); γ and β of every hidden layer join the optimiser's
  list after layers 2..L.
* **RMSprop and Adam are not**: they divide every weight's step by its own ``√s + ε``, elementwise, which leaves
  the span. **Random shifts** would need every shifted copy of every image in the basis (up to
  ``2·(2s+1)²·m`` columns): too large. With either, "auto" takes the direct solver and says why
  (:func:`solver_choice`); asking for the Gram solver by name is refused.

Layers 2..L are the direct path's own code (:func:`catdnn.network.forward`,
:func:`~catdnn.network.backward` with ``input_grad`` to get ``dA[1]``), and the same optimiser
updates them (the course's step: the same equations written out, each bias a column of its weights).
The iterates are the direct path's up to rounding (different summation order),
which the tests bound at 1e-9 relative for every technique the Gram solver accepts; the course's
printed numbers are unchanged. ``W[1]`` is rebuilt (``s ⊙ W1_0 + B·X̃ᵀ``, one ``n_1·m·n_x``
product; the mirrored half as ``flip_rows(B_F·Xᵀ)``) only when someone asks for the parameters,
and cached until the next step. Predictions on other images ``Xq`` (the test set, mirror images
for test-time averaging) use the cross-Gram ``X̃ᵀXq``, built the first time they are asked for;
X is never modified (the dataset's arrays are read-only).

Large m: G is m×m, so its memory and its per-iteration work overtake the direct path's near
``m ≈ 2·n_x``, and building G (``n_x·m²`` flops) costs about ``m / (6·n_1)`` full-batch direct
iterations. :func:`gram_pays_off` is the rule drawn from that (checked on ``bench/bench_scaling.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from . import augment, cnn
from .conv_layers import Workspace
from .errors import ConfigError
from .network import (
    BatchNorm,
    all_finite,
    backward,
    batch_norm_backward,
    batch_norm_forward,
    cost_from_logits,
    descent_step,
    dropout,
    forward,
    l2_cost,
    mirror_average,
    predict_proba,
    relu,
    relu_backward,
    sigmoid,
    update,
)
from .optim import OPTIMIZERS, GradientDescent, make_optimizer, seeded_generators
from .probe import LayerStats, layer_stats, summarise_layers

#: "auto" takes the Gram solver only while its m×m matrix is at most this many times the size of X
#: (beyond m = 2·n_x, B·G costs more than W1·X: it cannot pay off).
GRAM_MAX_SIZE_RATIO = 2.0
#: ... and only for runs long enough to pay for building G: at least m / (GRAM_PAYBACK·n_1)
#: iterations (building G costs about m / (6·n_1) direct iterations; 4 leaves a margin).
GRAM_PAYBACK = 4.0


def gram_pays_off(n_x: int, m: int, layers, iterations: int | None = None, *, batch: int | None = None) -> bool:
    """Whether :class:`GramSolver` beats :class:`DirectSolver` for this shape: a simple rule.

    ``m`` is the number of columns of the Gram matrix (the training images, twice that with
    flips), ``batch`` the examples per iteration (default: full batch, m). The rule: ``m ≤ 2·n_x``
    (the Gram matrix stays within twice X's size), and the run has at least
    ``m² / (4·n_1·batch)`` iterations to repay building G, i.e. ``m / (4·n_1)`` for full batches
    (``iterations`` None: a long run). On ``bench/bench_scaling.py`` it picks the faster path at
    every m from 209 to 20 000 for the course's 2500 iterations.
    """
    if len(layers) < 2 or m > GRAM_MAX_SIZE_RATIO * n_x:
        return False
    batch = m if batch is None else min(int(batch), m)
    return iterations is None or iterations * GRAM_PAYBACK * int(layers[1]) * batch >= m * m


#: XᵀX is built in blocks of at most this many columns (see :func:`gram_matrix`).
GRAM_BLOCK = 4096


def gram_matrix(X: np.ndarray, block: int = GRAM_BLOCK) -> np.ndarray:
    """``XᵀX`` for X of shape (n_x, m), as ndarray of shape (m, m), in symmetric blocks.

    ``X.T @ X`` takes NumPy's SYRK shortcut (half the flops of a general product), which crashes
    the process (SIGSEGV inside OpenBLAS) for large m: measured at m = 20 000, n_x = 12288 with
    NumPy 2.4 / OpenBLAS 0.3.31 (numpy/numpy#19685 is the same crash). So m is cut into blocks of
    at most ``block`` columns: diagonal blocks use the SYRK shortcut at a size known to be safe,
    the blocks above the diagonal are ordinary products, mirrored below. Same flops as one SYRK;
    for m ≤ ``block`` (the course's m = 209) it is exactly ``X.T @ X``.
    """
    m = X.shape[1]
    if m <= block:
        return X.T @ X  # (m, n_x) @ (n_x, m) -> (m, m), SYRK
    G = np.empty((m, m))
    edges = list(range(0, m, block)) + [m]
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        Xi = X[:, a:b]
        G[a:b, a:b] = Xi.T @ Xi  # (k, n_x) @ (n_x, k), SYRK on a small block
        for c, d in zip(edges[i + 1:-1], edges[i + 2:]):
            Gij = Xi.T @ X[:, c:d]  # (k, n_x) @ (n_x, l) -> (k, l), GEMM
            G[a:b, c:d] = Gij
            G[c:d, a:b] = Gij.T
    return G


class GramOverflowError(ConfigError, ArithmeticError):
    """XᵀX overflows although X is finite: the Gram solver would not reproduce the direct path."""




@dataclass(frozen=True)
class Batch:
    """One iteration's examples and their augmentation, as drawn by the training loop.

    ``index``: int ndarray of shape (k,), the examples (columns of X) of this step, or None for all
    m in order (full batch); ``aug``: the :class:`~catdnn.augment.Draw` for those k examples.
    """

    index: np.ndarray | None = None
    aug: augment.Draw = field(default_factory=augment.Draw)


@runtime_checkable
class Solver(Protocol):
    """What the training loop asks of a solver: the contract of :class:`DirectSolver`,
    :class:`GramSolver` and :class:`CnnSolver`, written once.

    A solver is built from the run's initial parameters, the training set ``X`` ``(n_x, m)`` and
    ``Y`` ``(1, m)``, the default learning rate, an optional test set and the
    :class:`~catdnn.config.TrainConfig`; it owns (and updates) the parameters from then on.
    """

    name: str  # "direct", "gram" or "cnn", as Trainer.solver_name reports it

    def step(self, need_cost: bool, batch: Batch | None = None, lr: float | None = None) -> tuple:
        """One iteration: forward at the current parameters on the batch, then update them.

        ``batch`` (:class:`Batch`): the examples of this step and their augmentation, as the loop
        drew them; None = all m, as they are. ``lr``: this step's learning rate; None = the
        solver's own. Returns ``(cost, AL)``: the cost at the parameters *before* the update
        (``None`` unless ``need_cost``; with L2 it includes ``λ/(2m_b)·Σ‖W‖²``) and the output
        ``AL`` of shape ``(1, m_b)``; ``(nan, AL)`` without updating when the output is not finite
        (the loop then reports the run as diverged).
        """
        ...

    def proba_train(self) -> np.ndarray:
        """P(cat) on the training set at the current parameters (no dropout, no augmentation; with
        test-time averaging, the mean over each image and its mirror image), shape ``(m,)``."""
        ...

    def proba_test(self) -> np.ndarray:
        """P(cat) on the test set at the current parameters, shape ``(m_test,)`` (as proba_train)."""
        ...

    def params(self, copy: bool = True) -> list:
        """The current parameters, a list of ``(W, b)`` (copies unless ``copy`` is False, for reading only)."""
        ...

    def layer_stats(self, iteration: int) -> LayerStats | None:
        """:class:`catdnn.probe.LayerStats` at the current parameters on the training set, or None
        when the solver has none (a convolutional net: the statistics are the dense layers' math)."""
        ...

    def batch_norm(self) -> BatchNorm | None:
        """A copy of the current batch norm (γ, β, running averages), or None when the run has none."""
        ...


@dataclass(frozen=True)
class _Techniques:
    """What a solver reads from a TrainConfig (everything off without one)."""

    lambd: float = 0.0  # L2 λ
    keep: tuple | None = None  # keep probability per hidden layer, None without dropout
    optimizer: object = field(default_factory=GradientDescent)
    tta: bool = False
    flip: bool = False
    batch_norm: bool = False

    @classmethod
    def of(cls, config) -> _Techniques:
        if config is None:
            return cls()
        return cls(
            lambd=float(config.l2),
            keep=config.keep_probs() if config.dropout else None,
            optimizer=make_optimizer(config),
            tta=bool(config.tta),
            flip=bool(config.flip),
            batch_norm=bool(getattr(config, "batch_norm", False)),
        )

    @property
    def plain(self) -> bool:
        """The course's step: gradient descent, no L2, no dropout, no batch norm."""
        return self.optimizer.name == "gd" and not self.lambd and self.keep is None and not self.batch_norm


def _batch_norm_of(t: _Techniques, params, bn):
    """The solver's batch norm: ``bn`` if given, else :meth:`BatchNorm.init` (γ = 1, β = 0) for ``params``'
    layers when the config asks for it; None without batch norm."""
    if not t.batch_norm:
        return None
    dims = [W.shape[1] for W, _ in params] + [params[-1][0].shape[0]]  # [n_0, ..., n_L]
    return bn if bn is not None else BatchNorm.init(dims)


def _dropout_rng(config, rng):
    if rng is not None:
        return rng
    return seeded_generators(getattr(config, "seed", 1))["dropout"]


class _CourseArrays:
    """The arrays :meth:`GramSolver._course_step` writes into, kept from one step to the next, for a network of
    ``sizes`` ``[n_1, ..., n_L]`` on ``m`` examples: ``Z[l]``, ``[A[l]; 1]`` (hidden layers; ``A[l]`` a view of
    its first rows), ``Z[l] > 0``, ``dA[l]`` (which becomes ``dZ[l]``), ``[dW[l] | db[l]]`` (layers 2..L), ``A[L]``
    and ReLU's zeros."""

    def __init__(self, sizes, m: int):
        self.Z = [np.empty((n, m)) for n in sizes]
        self.A1 = [np.ones((n + 1, m)) for n in sizes[:-1]]
        self.A = [A1[:-1] for A1 in self.A1]
        self.mask = [np.empty((n, m), dtype=bool) for n in sizes[:-1]]
        self.dA = [np.empty((n, m)) for n in sizes]
        self.dWb = [np.empty((n, n_prev + 1)) for n_prev, n in zip(sizes[:-1], sizes[1:])]
        self.db1 = np.empty((sizes[0], 1))
        self.AL = np.empty((1, m))
        self.zeros = [np.zeros((n, m)) for n in sizes[:-1]]


class GramSolver:
    """Training with ``W[1] = s ⊙ W[1]_0 + B·X̃ᵀ`` (see the module docstring).

    Same interface as :class:`DirectSolver`. Exact for gradient descent and momentum, with L2,
    dropout, mini-batches, flips and any learning-rate schedule; not for RMSprop, Adam or shifts
    (:func:`gram_exactness` says why; the constructor refuses them).

    Parameters
    ----------
    params : list of (W, b)
        Initial parameters; the solver owns them (layers 2..L are updated in place).
    X : ndarray of shape (n_x, m)
        Never modified (the dataset's arrays are read-only).
    Y : ndarray of shape (1, m)
    learning_rate : float
        The rate of a step given none (see :meth:`step`).
    X_test : ndarray of shape (n_x, m_test), optional
    config : TrainConfig, optional
        The techniques (L2, dropout, optimiser, flips, test-time averaging); none without it.
    rng : np.random.Generator, optional
        Draws the dropout masks (default: the config seed's dropout stream).
    """

    name = "gram"

    def __init__(self, params, X, Y, learning_rate, X_test=None, *, config=None, rng=None, bn=None):
        why = gram_exactness(config)
        if why:
            raise ConfigError(f"the Gram solver is not exact here: {why}; use the direct solver")
        # float64 like the direct path's products (a no-op, no copy, for the dataset's arrays)
        X = np.asarray(X, dtype=np.float64)
        X_test = None if X_test is None else np.asarray(X_test, dtype=np.float64)
        self.X, self.Y, self.lr, self.X_test = X, Y, float(learning_rate), X_test
        self._tech = t = _Techniques.of(config)
        self._rng = _dropout_rng(config, rng) if t.keep is not None else None
        W1, b1 = params[0]
        self._W1_0 = W1  # (n_1, n_x), never changes
        self._b1 = b1  # (n_1, 1), updated in place
        self._rest = params[1:]  # layers 2..L, plain (W, b), updated in place
        self._bn = _batch_norm_of(t, params, bn)  # γ, β and running averages of layers 1..L-1, or None
        self.m = X.shape[1]
        # The basis X̃: the training images, and their mirror images with flips (M columns).
        G = gram_matrix(X)  # (m, m) = XᵀX
        if not np.isfinite(G).all() and np.isfinite(X).all():
            raise GramOverflowError(
                "the Gram matrix XᵀX overflows for these inputs (|x| above about 1e150); "
                "use the direct solver"
            )
        P0 = W1 @ X  # (n_1, n_x) @ (n_x, m) -> (n_1, m)
        if t.flip:
            FX = augment.flip(X)  # (n_x, m), the mirror images; only while building
            XtFX = X.T @ FX  # (m, n_x) @ (n_x, m) -> (m, m), symmetric
            G = np.block([[G, XtFX], [XtFX.T, G]])  # (2m, 2m) = [X, FX]ᵀ[X, FX]
            P0 = np.concatenate([P0, W1 @ FX], axis=1)  # (n_1, 2m) = W1_0·[X, FX]
            del FX
        self._G, self._P0 = G, P0
        M = self.M = G.shape[0]
        # Layer 1's coefficients K = [B | s], (n_1, M+1): W1 = s ⊙ W1_0 + B·X̃ᵀ, starting at B = 0, s = 1.
        self._K = np.zeros((W1.shape[0], M + 1))
        self._K[:, M] = 1.0
        self._B, self._s = self._K[:, :M], self._K[:, M:]  # views
        self._w0_sq = np.sum(np.square(W1), axis=1, keepdims=True)  # ‖W1_0 row‖², (n_1, 1), for L2's cost
        self._opt = t.optimizer
        # gradient descent without L2 or dropout: B updated in place, no dK (with batch norm too)
        self._plain = t.optimizer.name == "gd" and not t.lambd and t.keep is None
        # the course's step (plain descent, no batch norm, no flips, two layers or more) on all m examples takes
        # _course_step, in arrays reused from step to step (built by its first call)
        self._course = self._plain and self._bn is None and M == self.m and bool(self._rest)
        self._arrays = None
        self._wide = None
        if self._course:  # layers 2..L live in [W | b], (n_l, n_{l-1} + 1); W and b are views of it (see _course_step)
            self._wide = [np.concatenate([W, b], axis=1) for W, b in self._rest]
            self._rest = [(Wb[:, :-1], Wb[:, -1:]) for Wb in self._wide]
        # what the optimiser updates, built once (the arrays are updated in place): (K, b1), layers 2..L, γ and β
        self._learned = [(self._K, self._b1)] + self._rest + (self._bn.params if self._bn is not None else [])
        self._tail_bn = None if self._bn is None else self._bn.tail(1)  # batch norm of layers 2..L-1 (shared arrays)
        self._state = self._opt.init(self._learned)
        self._queries = {}  # cross-Gram of other inputs, built on demand
        self._steps = 0
        self._cache = None  # (steps, W1, b1) of the last materialisation
        self._z1_cache = (-1, None)  # (steps, Z[1] on the training set) of the last _z1_train
        # Once the train accuracy is asked for (a run whose step output is not the clean prediction), proba_test
        # predicts on both sets in one pass and keeps the training set's half: (steps, P(cat) on the training set)
        self._train_proba, self._train_asked = (-1, None), False

    # ------------------------------------------------------------------ the iteration
    def _z1(self, P0, G):
        """Z[1] = W[1]·Xq + b[1] = B·(X̃ᵀXq) + s ⊙ (W1_0·Xq) + b[1], shape (n_1, k), from ``P0 = W1_0·Xq``
        (n_1, k) and ``G = X̃ᵀXq`` (M, k)."""
        Z1 = self._B @ G  # (n_1, M) @ (M, k) -> (n_1, k)
        if self._tech.lambd:  # s < 1 only with L2
            Z1 += self._s * P0
        else:
            Z1 += P0
        Z1 += self._b1
        return Z1

    def _z1_train(self):
        """Z[1] on the training set at the current parameters, shape (n_1, m), computed once per step: a
        clean prediction on the training set (the train accuracy, measured before a step) and the next
        full-batch step share it, one B·G product fewer. Read only."""
        steps, Z1 = self._z1_cache
        if steps != self._steps:
            m = self.m
            Z1 = self._z1(self._P0[:, :m], self._G[:, :m])  # (n_1, m)
            self._z1_cache = (self._steps, Z1)
        return Z1

    def _output(self, Z1):
        """A[L] from Z[1] at the current parameters, without dropout (batch norm: the running averages),
        shape (1, k)."""
        if not self._rest:
            return sigmoid(Z1)
        bn = self._bn
        if bn is not None:  # Z̃[1] with the running μ, σ²
            Z1 = batch_norm_forward(Z1, *bn.params[0], bn.epsilon, *bn.running[0])[0]
        return forward(self._rest, relu(Z1), bn=self._tail_bn, running=True)[0]

    def _w1_norm_sq(self, BG=None) -> float:
        """‖W1‖² = Σ_r s_r²‖W1_0[r]‖² + 2 s_r·(B[r]·P0[r]) + B[r]·G̃·B[r]ᵀ, without building W1
        (``BG``: ``B·G̃`` of shape (n_1, M), if already at hand)."""
        B, s = self._B, self._s
        if BG is None:
            BG = B @ self._G  # (n_1, M) @ (M, M) -> (n_1, M)
        return float(np.sum(s * s * self._w0_sq) + 2.0 * np.sum(s * np.sum(B * self._P0, axis=1, keepdims=True))
                     + np.sum(B * BG))

    def step(self, need_cost: bool, batch: Batch | None = None, lr: float | None = None):
        """One iteration: forward at the current parameters on the batch, then update them.

        Parameters
        ----------
        need_cost : bool
        batch : Batch, optional
            The examples of this step and their augmentation; default: all m, as they are.
        lr : float, optional
            This step's learning rate; default: the solver's.

        Returns
        -------
        ``(cost, AL)``: the cost before the update (None unless ``need_cost``; with L2 it includes
        ``λ/(2m_b)·Σ‖W‖²``) and the output ``AL`` of shape ``(1, m_b)``; ``(nan, AL)`` without
        updating if the output is not finite.
        """
        if batch is None and self._course:
            return self._course_step(need_cost, self.lr if lr is None else float(lr))
        t, m = self._tech, self.m
        lr = self.lr if lr is None else float(lr)
        mirror = None if batch is None else batch.aug.mirror
        if mirror is None and (batch is None or batch.index is None):  # full batch, as is
            cols = None
            Gb, P0b, Yb = (self._G, self._P0, self.Y) if self.M == m else (self._G[:, :m], self._P0[:, :m], self.Y)
        else:
            idx = np.arange(m) if batch.index is None else batch.index
            cols = idx if mirror is None else idx + m * mirror  # column m+i is example i's mirror image
            Gb, P0b = self._G[:, cols], self._P0[:, cols]
            Yb = self.Y if batch.index is None else self.Y[:, idx]
        mb = Yb.shape[1]
        BG = None
        if need_cost and t.lambd and Gb is self._G:  # B·G̃ is Z[1]'s first term: keep it for ‖W1‖²
            BG = self._B @ Gb  # (n_1, M) @ (M, M) -> (n_1, M)
            Z1 = BG + self._s * P0b
            Z1 += self._b1
        elif cols is None:  # Z[1] = W[1]·X + b[1], (n_1, m): perhaps measured already, by a prediction
            Z1 = self._z1_train()
        else:
            Z1 = self._z1(P0b, Gb)  # Z[1] = W[1]·X_b + b[1], (n_1, m_b)
        bn, tail_bn, norm1, plain = self._bn, self._tail_bn, None, self._plain
        if bn is not None:  # Z̃[1] = γ[1]·(Z[1] − μ)/√(σ² + ε) + β[1], the batch's μ, σ²
            Z1, norm1 = batch_norm_forward(Z1, *bn.params[0], bn.epsilon)
        A1 = relu(Z1)  # A[1] = ReLU(Z[1]) (ReLU(Z̃[1]) with batch norm)
        mask1 = None
        if t.keep is not None:
            A1, mask1 = dropout(A1, t.keep[0], self._rng)  # A[1] ⊙ D[1] / keep_prob[1]
        if self._rest:  # layers 2..L: the shared math, on A[1]
            AL, cache = forward(self._rest, A1, t.keep[1:] if t.keep is not None else None, self._rng, bn=tail_bn)
            ZL = cache[-1][1]
        else:  # a single layer: Z[1] is the output's logit
            AL, ZL = sigmoid(Z1), Z1
        if not all_finite(ZL):
            return math.nan, AL
        cost = None
        if need_cost:
            cost = cost_from_logits(ZL, Yb)
            if t.lambd:
                cost += l2_cost(self._rest, t.lambd, mb) + t.lambd / (2 * mb) * self._w1_norm_sq(BG)
        # Plain descent: backward gives α times the gradients (α/m_b folded into dZ[L] once), so every update
        # below is a subtraction, and dZ[1] arrives as α·dZ[1]/m_b.
        scale = lr if plain else None
        if self._rest:
            grads, dA1 = backward(self._rest, cache, Yb, AL, lambd=t.lambd, input_grad=True,
                                  bn=tail_bn, scale=scale)  # layers 2..L (then γ, β of 2..L-1), dA[1]
            if mask1 is not None:
                dA1 *= mask1  # dA[1] ⊙ D[1] / keep_prob[1]
            dZ = relu_backward(dA1, Z1)  # dZ[1] = dA[1] ⊙ ReLU'(Z[1]), (n_1, m_b)
            if bn is not None:  # dZ[1] through the normalisation: still multiplied by X_bᵀ, so W1 stays in the span
                dZ, dgamma1, dbeta1 = batch_norm_backward(dZ, bn.params[0][0], norm1,
                                                          examples=1 if plain else None)
                L1 = len(self._rest)  # layers 2..L's (dW, db), then γ, β of layer 1, then of layers 2..L-1
                grads = grads[:L1] + [(dgamma1, dbeta1)] + grads[L1:]
        else:
            grads = []
            dZ = AL - Yb  # (1, m_b): fused sigmoid + cross-entropy
            if plain:
                dZ *= lr / mb
        if plain:  # gradient descent in K's coordinates, without building dK: B[:, batch] -= α·dZ[1]/m_b
            if bn is None:  # (with batch norm b[1] has no gradient)
                self._b1 -= np.add.reduce(dZ, axis=1, keepdims=True)  # b[1] -= α·db[1]
            if cols is None and self.M == m:
                self._B -= dZ
            elif cols is None:
                self._B[:, :m] -= dZ
            else:
                self._B[:, cols] -= dZ
            self._state.t += 1  # layers 2..L (and every γ, β): the steps are α·gradients already
            update(self._learned[1:], grads, 1.0)
        else:  # any linear optimiser on (K, b1): dK = [dZ[1]/m_b on the batch's columns + λ/m_b·B | λ/m_b·s]
            dZ /= mb
            # db[1] = Σ_i dZ[1] / m_b (0 with batch norm: b[1] cancels in Z[1] − μ)
            db1 = np.zeros_like(self._b1) if bn is not None else np.add.reduce(dZ, axis=1, keepdims=True)
            dK = (t.lambd / mb) * self._K if t.lambd else np.zeros_like(self._K)
            if cols is None:
                dK[:, :m] += dZ
            else:
                dK[:, cols] += dZ
            self._opt.update(self._learned, [(dK, db1)] + grads, self._state, lr)
        if bn is not None:  # the running averages of μ and σ², for prediction
            bn.record([norm1] + cache.bn)
        self._steps += 1
        return cost, AL

    def _course_step(self, need_cost: bool, lr: float):
        """:meth:`step` for the course's kind of step (see ``self._course``): the general step's equations in
        fewer NumPy calls, every result in an array kept from the last step.

        Layers 2..L are :func:`catdnn.network.forward`, :func:`~catdnn.network.backward` (``scale=lr``,
        ``input_grad``) and :func:`~catdnn.network.update` written out with the bias as a column of the weights,
        ``Z[l] = [W[l] | b[l]]·[A[l-1]; 1]`` and ``α·[dW[l] | db[l]] = dZ[l]·[A[l-1]; 1]ᵀ``: one product instead
        of a product and a broadcast addition, one instead of a product and a row sum, one subtraction instead
        of two. The sums are the same up to rounding (the bias is added inside the product); the tests hold the
        iterates to the general step's within 1e-12. Layer 1 is the general step's, bit for bit (``np.dot`` with
        ``out``: the same BLAS product as ``@``, with less of NumPy's work around it). ``AL`` is one
        of the kept arrays: read it before the next step. Measured: bench/README, "the Gram path's overhead per
        iteration"."""
        bufs = self._arrays
        if bufs is None:
            bufs = self._arrays = _CourseArrays([self._B.shape[0]] + [W.shape[0] for W, _b in self._rest], self.m)
        Zs, As, A1s, masks, dAs, dWbs, zeros = bufs.Z, bufs.A, bufs.A1, bufs.mask, bufs.dA, bufs.dWb, bufs.zeros
        wide, rest, dot = self._wide, self._rest, np.dot
        L = len(wide)
        # Z[1] = B·G + P0 + b[1], (n_1, m): perhaps measured already at these parameters, by a prediction
        steps, Z1 = self._z1_cache
        if steps == self._steps:  # (into the step's array: the masks below read it)
            np.copyto(Zs[0], Z1)
            Z1 = Zs[0]
        else:
            Z1 = dot(self._B, self._G, out=Zs[0])  # (n_1, M) @ (M, m) -> (n_1, m)
            np.add(Z1, self._P0, out=Z1)
            np.add(Z1, self._b1, out=Z1)
        np.maximum(Z1, zeros[0], out=As[0])  # A[1] = ReLU(Z[1])
        for l in range(1, L + 1):  # layers 2..L: Z[l] = W[l]·A[l-1] + b[l] = [W[l] | b[l]]·[A[l-1]; 1]
            Z = dot(wide[l - 1], A1s[l - 1], out=Zs[l])  # (n_l, n_{l-1} + 1) @ (n_{l-1} + 1, m) -> (n_l, m)
            if l < L:
                np.maximum(Z, zeros[l], out=As[l])  # A[l] = ReLU(Z[l])
        ZL, AL = Z, bufs.AL
        np.negative(ZL, out=AL)  # A[L] = σ(Z[L]) = 1 / (1 + e^(−Z[L]))
        np.exp(AL, out=AL)
        np.add(AL, 1.0, out=AL)
        np.divide(1.0, AL, out=AL)
        if not math.isfinite(np.add.reduce(ZL, axis=None)) and not all_finite(ZL):  # (a sum can overflow)
            return math.nan, AL
        cost = cost_from_logits(ZL, self.Y) if need_cost else None
        # backward with scale = α: dZ[L] = α/m·(A[L] − Y); then every gradient is α times its own, already / m
        dZ = np.subtract(AL, self.Y, out=dAs[L])
        np.multiply(dZ, lr / self.m, out=dZ)
        for l in range(L, 0, -1):  # layers L..2, then dA[1]
            Wb, dWb = wide[l - 1], dWbs[l - 1]
            dot(dZ, A1s[l - 1].T, out=dWb)  # α·[dW[l] | db[l]] = dZ[l]·[A[l-1]; 1]ᵀ: (n_l, m) @ (m, n_{l-1} + 1)
            dA = dot(rest[l - 1][0].T, dZ, out=dAs[l - 1])  # dA[l-1] = W[l]ᵀ·dZ[l], before W[l] moves
            np.subtract(Wb, dWb, out=Wb)  # W[l] -= α·dW[l], b[l] -= α·db[l]
            mask = np.greater(Zs[l - 1], 0, out=masks[l - 1])
            dZ = np.multiply(dA, mask, out=dA)  # dZ[l-1] = dA[l-1] ⊙ ReLU'(Z[l-1])
        np.subtract(self._b1, np.add.reduce(dZ, axis=1, keepdims=True, out=bufs.db1), out=self._b1)
        np.subtract(self._B, dZ, out=self._B)  # B -= α·dZ[1]/m
        self._state.t += 1
        self._steps += 1
        return cost, AL

    # ------------------------------------------------------------------ predictions and params
    def _query(self, key: str, inputs):
        """``(W1_0·Xq, X̃ᵀXq)`` for the inputs ``Xq = inputs()`` (n_x, k), built once per key."""
        if key not in self._queries:
            Xq = inputs()
            P0 = self._W1_0 @ Xq  # (n_1, n_x) @ (n_x, k) -> (n_1, k)
            C = self.X.T @ Xq  # (m, n_x) @ (n_x, k) -> (m, k)
            if self._tech.flip:  # (FX)ᵀXq = Xᵀ(F·Xq)
                C = np.concatenate([C, self.X.T @ augment.flip(Xq)], axis=0)  # (2m, k)
            self._queries[key] = (P0, C)
        return self._queries[key]

    def proba_train(self) -> np.ndarray:
        """P(cat) on the training set at the current parameters (no dropout), shape ``(m,)``;
        with test-time averaging, the mean over each image and its mirror image."""
        m = self.m
        if not self._tech.tta:
            steps, p = self._train_proba
            if steps == self._steps:  # measured with the test set's, by proba_test
                return p.copy()
            self._train_asked = True
            return self._output(self._z1_train())[0]
        p = self._output(self._z1_train())[0]
        if self._tech.flip:  # the mirror images are columns m..2m-1 of the basis
            mirrored = self._P0[:, m:], self._G[:, m:]
        else:
            mirrored = self._query("train mirrored", lambda: augment.flip(self.X))
        return mirror_average(p, self._output(self._z1(*mirrored))[0])

    def proba_test(self) -> np.ndarray:
        """P(cat) on the test set at the current parameters, shape ``(m_test,)`` (see proba_train)."""
        X, Xt = self.X, self.X_test
        # Direct, W1·X_test, when the cross-Gram would be larger than X_test, or when W1 is at hand for these
        # parameters and the cross-Gram not built yet (a run's end: the model's parameters, then its accuracies;
        # 12 ms for the course's cross-Gram against 1 ms for W1·X_test)
        if self.M > X.shape[0] or ("test" not in self._queries and self._cache is not None
                                   and self._cache[0] == self._steps):
            return predict_proba(self.params(copy=False), Xt, tta=self._tech.tta, bn=self._bn)
        Z1 = self._z1(*self._query("test", lambda: Xt))  # (n_1, m_test)
        if not self._tech.tta and self._train_asked:
            # one pass over the test and the training images: the network's small arrays make a pass cost about
            # the same on 259 columns as on 50 or 209, so the train accuracy's pass comes almost free
            p = self._output(np.concatenate([Z1, self._z1_train()], axis=1))[0]  # (n_1, m_test + m)
            k = Z1.shape[1]
            self._train_proba = (self._steps, p[k:])
            return p[:k]
        p = self._output(Z1)[0]
        if not self._tech.tta:
            return p
        mirrored = self._query("test mirrored", lambda: augment.flip(Xt))
        return mirror_average(p, self._output(self._z1(*mirrored))[0])

    def layer_stats(self, iteration: int):
        """:func:`catdnn.probe.layer_stats` at the current parameters, without building W[1]: Z[1] in
        Gram form, layers 2..L by the shared math, and ‖dW[1]‖ = ‖dZ[1]·Xᵀ‖ / m from
        ‖dZ·Xᵀ‖² = Σ (dZ·XᵀX) ⊙ dZ, with XᵀX the Gram matrix's first m×m block. A snapshot then
        costs about one iteration instead of several full-size products (tests: equal to rounding). With
        batch norm, the shared :func:`catdnn.probe.layer_stats` on the materialised parameters."""
        if self._bn is not None:
            return layer_stats(self.params(copy=False), self.X, self.Y, iteration, bn=self._bn)
        m = self.m
        Z1 = self._z1_train()  # (n_1, m), no dropout
        A1 = relu(Z1)
        if self._rest:
            AL, cache = forward(self._rest, A1)
            grads, dA1 = backward(self._rest, cache, self.Y, AL, input_grad=True)
            dZ1 = relu_backward(dA1, Z1)  # (n_1, m)
            acts = [A1] + [A for A, _Z in cache[1:]] + [AL]
        else:  # one layer: Z[1] is the output's logit
            AL = sigmoid(Z1)
            grads, dZ1, acts = [], AL - self.Y, [AL]
        sq = float(np.sum((dZ1 @ self._G[:m, :m]) * dZ1))  # (n_1, m) @ (m, m) -> (n_1, m)
        norm1 = math.sqrt(max(sq, 0.0)) / m
        return summarise_layers(iteration, [norm1] + [np.linalg.norm(dW) for dW, _db in grads], acts)

    def _materialise(self):
        """``W1 = s ⊙ W1_0 + B·X̃ᵀ`` (n_1, n_x) and ``b1``; cached until the next step."""
        if self._cache is None or self._cache[0] != self._steps:
            m = self.m
            W1 = self._B[:, :m] @ self.X.T  # (n_1, m) @ (m, n_x) -> (n_1, n_x)
            if self._tech.flip:  # B_F·(F·X)ᵀ = flip_rows(B_F·Xᵀ)
                W1 += augment.flip_rows(self._B[:, m:] @ self.X.T)
            W1 += self._s * self._W1_0
            self._cache = (self._steps, W1, self._b1.copy())
        return self._cache[1:]

    def params(self, copy: bool = True):
        """The current parameters as a list of ``(W, b)``, layer 1 materialised (copies unless ``copy``
        is False, for reading only)."""
        W1, b1 = self._materialise()
        params = [(W1, b1)] + list(self._rest)
        return [(W.copy(), b.copy()) for W, b in params] if copy else params

    def batch_norm(self) -> BatchNorm | None:
        """A copy of the current batch norm, or None without it."""
        return None if self._bn is None else self._bn.copy()


class DirectSolver:
    """Training on ``(W, b)`` lists, every layer by :mod:`catdnn.network`: the course's algorithm,
    plus any technique of the config.

    Parameters
    ----------
    params : list of (W, b)
        Initial parameters; the solver owns (and updates) them.
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    learning_rate : float
        The rate of a step given none (see :meth:`step`).
    X_test : ndarray of shape (n_x, m_test), optional
    config : TrainConfig, optional
        The techniques (L2, dropout, optimiser, batch norm, test-time averaging); none without it.
    rng : np.random.Generator, optional
        Draws the dropout masks (default: the config seed's dropout stream).
    bn : BatchNorm, optional
        The initial batch norm when the config asks for it (default: :meth:`BatchNorm.init`, γ = 1,
        β = 0); the solver owns it. The optimiser updates ``params + bn.params`` as one list, and
        each step folds the batch's μ and σ² into the running averages.
    """

    name = "direct"

    def __init__(self, params, X, Y, learning_rate, X_test=None, *, config=None, rng=None, bn=None):
        self._params = params
        self.X, self.Y, self.lr, self.X_test = X, Y, float(learning_rate), X_test
        self._tech = t = _Techniques.of(config)
        self._rng = _dropout_rng(config, rng) if t.keep is not None else None
        self._opt = t.optimizer
        self._plain = t.plain
        self._bn = _batch_norm_of(t, params, bn)
        self._state = self._opt.init(self._learned())

    def _learned(self) -> list:
        """What the optimiser updates: ``params``, then batch norm's ``(γ, β)`` per hidden layer."""
        return self._params if self._bn is None else self._params + self._bn.params

    def step(self, need_cost: bool, batch: Batch | None = None, lr: float | None = None):
        """One iteration: forward at the current parameters on the batch, then update them.

        Parameters and return value as :meth:`GramSolver.step`: ``(cost, AL)``, the cost at the
        parameters *before* the update (``None`` unless ``need_cost``) and the output ``AL`` of
        shape ``(1, m_b)``; ``(nan, AL)`` without updating when the output is not finite (the run
        diverged).
        """
        t = self._tech
        lr = self.lr if lr is None else float(lr)
        X, Y = self.X, self.Y
        if batch is not None:
            if batch.index is not None:
                X, Y = X[:, batch.index], Y[:, batch.index]  # (n_x, m_b), (1, m_b)
            X = augment.apply(X, batch.aug)
        if self._plain:
            return descent_step(self._params, X, Y, lr, need_cost)  # the course's step, bit for bit
        params, bn = self._params, self._bn
        AL, cache = forward(params, X, t.keep, self._rng, bn=bn)
        ZL = cache[-1][1]
        if not all_finite(ZL):
            return math.nan, AL
        cost = cost_from_logits(ZL, Y) + l2_cost(params, t.lambd, Y.shape[1]) if need_cost else None
        self._opt.update(self._learned(), backward(params, cache, Y, AL, lambd=t.lambd, bn=bn), self._state, lr)
        if bn is not None:
            bn.record(cache.bn)  # the running averages of μ and σ², for prediction
        return cost, AL

    def proba_train(self) -> np.ndarray:
        """P(cat) on the training set at the current parameters (no dropout; batch norm's running
        averages), shape ``(m,)``; with test-time averaging, the mean over each image and its mirror image."""
        return predict_proba(self._params, self.X, tta=self._tech.tta, bn=self._bn)

    def proba_test(self) -> np.ndarray:
        """P(cat) on the test set at the current parameters, shape ``(m_test,)`` (see proba_train)."""
        return predict_proba(self._params, self.X_test, tta=self._tech.tta, bn=self._bn)

    def params(self, copy: bool = True):
        """The current parameters as a list of ``(W, b)`` (copies unless ``copy`` is False)."""
        return [(W.copy(), b.copy()) for W, b in self._params] if copy else list(self._params)

    def batch_norm(self) -> BatchNorm | None:
        """A copy of the current batch norm, or None without it."""
        return None if self._bn is None else self._bn.copy()

    def layer_stats(self, iteration: int):
        """:func:`catdnn.probe.layer_stats` at the current parameters on the training set (with batch
        norm, in training mode: the training set's own statistics)."""
        return layer_stats(self._params, self.X, self.Y, iteration, bn=self._bn)


#: The solver name of a convolutional net's runs (:class:`CnnSolver`).
CNN_SOLVER = "cnn"


def cnn_solver_reason(config) -> str:
    """Why a convolutional net's run uses the "cnn" solver, in one line (``Trainer.solver_reason``)."""
    return (f"{CNN_SOLVER} solver: a convolutional net ({config.arch}), each 3×3 convolution one matrix product "
            f"on the image patches (im2col), in {config.dtype}")


class _Flat(NamedTuple):
    """Arrays copied into one flat array: ``array``, and ``layers``, the same structure of views into it."""

    array: np.ndarray
    layers: list


def _flatten(layers: list) -> _Flat:
    """A :class:`_Flat` of ``layers`` (a list of tuples of arrays, e.g. ``[(W, b), ...]``), in that order."""
    array = np.concatenate([a.reshape(-1) for layer in layers for a in layer])
    views, at = [], 0
    for layer in layers:
        views.append(tuple(array[at:(at := at + a.size)].reshape(a.shape) for a in layer))
    return _Flat(array, views)


class CnnSolver:
    """Training a convolutional net (:mod:`catdnn.cnn`): mini-batches, any optimiser of
    :mod:`catdnn.optim`, L2, flips and shifts as the loop draws them, in the config's dtype.

    Parameters
    ----------
    params : list of (W, b)
        Initial parameters (:func:`catdnn.cnn.init_cnn`), conv layers first; the solver owns them.
    X : ndarray of shape (12288, m)
        The training images as columns; the input step (:func:`catdnn.conv_layers.downsample`) is
        done once, in the parameters' dtype.
    Y : ndarray of shape (1, m)
    learning_rate : float
        The rate of a step given none.
    X_test : ndarray of shape (12288, m_test), optional
    config : TrainConfig
        The architecture (``arch``), L2, the optimiser, batch norm and test-time averaging.
    rng : unused (a convolutional net has no dropout); accepted for the common constructor.
    """

    name = CNN_SOLVER

    def __init__(self, params, X, Y, learning_rate, X_test=None, *, config, rng=None):
        self._params = params
        self.X, self.Y, self.lr, self.X_test = X, Y, float(learning_rate), X_test
        self.arch = config.parsed_arch()
        self._lambd = float(config.l2)
        self._tta = bool(config.tta)
        dtype = params[0][0].dtype
        # the input step and the layout of maps, once: (m, s, s, C), a batch's images contiguous
        self._maps = cnn.to_input(self.arch, X, dtype)
        self._test_maps = None  # the test images' maps, made at the first measurement
        self._Y = np.asarray(Y, dtype=dtype)
        self._opt = make_optimizer(config)
        self._bn = None
        if getattr(config, "batch_norm", False):  # conv channels, then the dense head's hidden units
            self._bn = BatchNorm.of_sizes(list(self.arch.convs) + list(self.arch.dense_layers[1:-1]), dtype)
        # Everything the optimiser updates lives in one flat array (the parameters are views into it), so
        # that an update is a dozen NumPy calls on one array instead of a dozen per array: element by
        # element the same arithmetic, so the same values
        self._flat = _flatten(self._learned())
        self._params = self._flat.layers[:len(params)]
        if self._bn is not None:
            self._bn.params = self._flat.layers[len(params):]
        self._state = self._opt.init([(self._flat.array,)])
        self._ws = Workspace()  # a step's patches, maps and masks, reused by the next step

    def _learned(self) -> list:
        """What the optimiser updates: ``params``, then batch norm's ``(γ, β)`` per normalised layer."""
        return self._params if self._bn is None else self._params + self._bn.params

    def step(self, need_cost: bool, batch: Batch | None = None, lr: float | None = None):
        """One iteration (see :meth:`Solver.step`): the batch's images, augmented as drawn at the
        network's input side, forward and backward through :mod:`catdnn.cnn`, one optimiser update."""
        arch, lr = self.arch, self.lr if lr is None else float(lr)
        A0, Yb = self._maps, self._Y
        if batch is not None:  # (m_b, s, s, C), (1, m_b): the same pixels as augment.apply on the columns
            k = A0.shape[0] if batch.index is None else len(batch.index)
            out = self._ws.kept("batch", (k,) + A0.shape[1:], A0.dtype)
            A0 = augment.apply_maps(A0, batch.aug, batch.index, out)
            if batch.index is not None:
                Yb = Yb[:, batch.index]
        bn = self._bn
        AL, cache = cnn.forward_maps(self._params, arch, A0, bn=bn, ws=self._ws)
        ZL = cache.dense[-1][1]
        if not np.isfinite(ZL).all():
            return math.nan, AL
        cost = None
        if need_cost:
            cost = cost_from_logits(ZL, Yb) + l2_cost(self._params, self._lambd, Yb.shape[1])
        grads = cnn.backward(self._params, arch, cache, Yb, AL, lambd=self._lambd, bn=bn, ws=self._ws)
        flat_grads = np.concatenate([g.reshape(-1) for layer in grads for g in layer])  # in _flat's order
        self._opt.update([(self._flat.array,)], [(flat_grads,)], self._state, lr)
        if bn is not None:  # the running averages of μ and σ², for prediction
            bn.record(cache.bn + cache.dense.bn)
        return cost, AL

    def proba_train(self) -> np.ndarray:
        """P(cat) on the training set at the current parameters, shape ``(m,)`` (mirror-averaged with tta)."""
        return cnn.predict_proba_maps(self._params, self.arch, self._maps, tta=self._tta, bn=self._bn)

    def proba_test(self) -> np.ndarray:
        """P(cat) on the test set at the current parameters, shape ``(m_test,)``; the test images' input
        maps are made once, at the first measurement."""
        if self._test_maps is None:
            self._test_maps = cnn.to_input(self.arch, self.X_test, self._maps.dtype)
        return cnn.predict_proba_maps(self._params, self.arch, self._test_maps, tta=self._tta, bn=self._bn)

    def params(self, copy: bool = True):
        """The current parameters as a list of ``(W, b)`` (copies unless ``copy`` is False)."""
        return [(W.copy(), b.copy()) for W, b in self._params] if copy else list(self._params)

    def layer_stats(self, iteration: int) -> None:
        """None: a convolutional net records no per-layer statistics (they are the dense layers' math)."""
        return None

    def batch_norm(self) -> BatchNorm | None:
        """A copy of the current batch norm, or None without it."""
        return None if self._bn is None else self._bn.copy()


#: The MLP's solvers by name. Both compute the same iterates (up to rounding) wherever both apply.
SOLVERS: dict[str, type] = {"direct": DirectSolver, "gram": GramSolver}


def gram_exactness(config) -> str:
    """Why the Gram form is *not* exact for this config's techniques ("" when it is)."""
    if config is None:
        return ""
    optimizer = OPTIMIZERS.get(getattr(config, "optimizer", "gd"), GradientDescent)
    if optimizer.elementwise:
        return f"{optimizer.label} {optimizer.elementwise}, which takes W1 out of the span of the training images"
    if getattr(config, "shift", 0):
        return (f"random shifts of up to {config.shift} px make up to {(2 * config.shift + 1) ** 2} copies of "
                "each training image, too many for a Gram matrix")
    return ""


def _gram_why(config, m: int, n_x: int) -> str:
    """What keeps the Gram form exact for this config, in a few words."""
    kinds = [OPTIMIZERS.get(getattr(config, "optimizer", "gd"), GradientDescent).label]
    if config is not None:
        kinds += [name for name, on in (("L2", config.l2), ("dropout", config.dropout),
                                        ("batch norm", getattr(config, "batch_norm", False)),
                                        ("mini-batches", config.batch_size), ("flips", config.flip),
                                        ("lr decay", config.schedule != "constant")) if on]
    basis = f"{m} training images" + (" and their mirror images" if config is not None and config.flip else "")
    said = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"
    size = "2m×2m" if config is not None and config.flip else "m×m"
    return (f"with {said}, W1 stays its start scaled plus a mix of the {basis} (W1 = s·W1₀ + B·Xᵀ), so layer 1 "
            f"is computed in {size} instead of {n_x} inputs wide: faster, and the same iterates")


def solver_choice(name: str, n_x: int, m: int, layers, iterations: int | None = None, config=None):
    """``(solver class, reason)``: the solver for ``name`` ("auto", "direct", "gram" or "cnn") and one
    line saying why, for the Train page and the CLI.

    A convolutional net (``config.arch``) always takes :class:`CnnSolver` ("auto" or "cnn").

    "auto" takes the Gram solver when it is exact for the config's techniques
    (:func:`gram_exactness`) and pays off for this shape (:func:`gram_pays_off`), else the direct
    one. A solver asked for by name is obeyed, except the Gram solver where it is not exact
    (:class:`ConfigError`).
    """
    if config is not None and config.is_cnn:
        if name not in ("auto", CNN_SOLVER):
            raise ConfigError(f"a convolutional net trains with the {CNN_SOLVER!r} solver, not {name!r}")
        return CnnSolver, cnn_solver_reason(config)
    if name not in ("auto", *SOLVERS):
        raise ConfigError(f"unknown solver {name!r}: choose one of auto, {', '.join(SOLVERS)}")
    why_not = gram_exactness(config)
    if name == "gram" and why_not:
        raise ConfigError(f"the Gram solver is not exact here: {why_not}; use the direct solver (or auto)")
    if name != "auto":
        return SOLVERS[name], f"{name} solver, as asked"
    if why_not:
        return DirectSolver, f"direct solver: {why_not}, so the Gram form would not be exact"
    flips = config is not None and config.flip
    columns = 2 * m if flips else m
    batch = getattr(config, "batch_size", 0) or None
    if not gram_pays_off(n_x, columns, layers, iterations, batch=batch):
        run = f" and {iterations} iterations" if iterations else ""
        return DirectSolver, (f"direct solver: with {columns} Gram columns for {n_x} inputs{run} "
                              "the Gram matrix would not pay off")
    return GramSolver, f"Gram solver: {_gram_why(config, m, n_x)}"


def choose_solver(name: str, n_x: int, m: int, layers, iterations: int | None = None, config=None) -> type:
    """The solver class for ``name``; "auto" picks the faster exact one (see :func:`solver_choice`)."""
    return solver_choice(name, n_x, m, layers, iterations, config)[0]
