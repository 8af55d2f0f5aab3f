"""The two solvers, side by side: the direct path and the Gram path, behind one small interface.

A solver owns the current parameters of one training run and knows how to take one full-batch
gradient-descent step (:meth:`step`), what the network says about the training and test images
(:meth:`proba_train`, :meth:`proba_test`) and what its parameters are (:meth:`params`).
Both call the one copy of the math in :mod:`catdnn.network` (``forward``, ``backward``,
``update``): the direct solver for every layer, the Gram solver for layers 2..L. The Gram solver
computes only the first layer differently.

The Gram solver: the same gradient-descent iterates, with the first layer's work done in m×m.

Why it is exact
---------------
Full-batch gradient descent adds to ``W[1]`` the matrix ``-lr · dZ[1]·Xᵀ / m`` at every step: the
first layer's gradient always lies in the span of the training inputs. So after any number of steps

    W[1] = W[1]_0 + B·Xᵀ        with B of shape (n_1, m), updated by  B -= lr · dZ[1] / m,

and the first layer's forward pass is ``W[1]·X = W[1]_0·X + B·(XᵀX)``. With the Gram matrix
``G = XᵀX`` (m, m) and ``P0 = W[1]_0·X`` (n_1, m) computed once, an iteration's first-layer work
drops from ``O(n_1·n_x·m)`` (``W1·X`` and ``dZ1·Xᵀ``) to ``O(n_1·m²)`` (``B·G``); for the course's
data (n_x = 12288, m = 209) that is about 59 times fewer flops.

The bias rides along as a row of ones appended to X: ``[W1 b1] = [W1_0 b1_0] + B·[X; 1]ᵀ``
(``b1`` moves by ``-lr·Σ_j dZ[1]_j / m``, which is ``B``'s update times the ones row), so the
solver keeps ``G = [X; 1]ᵀ[X; 1] = XᵀX + 1·1ᵀ`` and ``P0 = W1_0·X + b1_0``, and one update of
``B`` moves both. Layers 2..L are the direct path's own code
(:func:`catdnn.network.forward`, :func:`~catdnn.network.backward` with ``input_grad`` to get
``dA[1]``, and :func:`~catdnn.network.update`). The iterates are the direct path's up to rounding
(different summation order), which the tests bound at 1e-9 relative; the course's printed
numbers are unchanged.

``W[1]`` and ``b[1]`` are rebuilt (``W1_0 + B·Xᵀ``, one ``n_1·m·n_x`` product; ``b1_0 + B·1``)
only when someone asks for the parameters (the end of a run, a Stop, a model file, a picture of
the weights) and cached until the next step. Test-set predictions use the cross-Gram matrix
``[X; 1]ᵀ[X_test; 1]`` (m, m_test), built the first time they are asked for; X is never
modified (the dataset's arrays are read-only).

Where it holds, and where it does not
-------------------------------------
* Full-batch gradient descent (the only optimiser today): exact.
* Mini-batches: still exact (``dZ_b·X_bᵀ`` is in the span of X; use the columns ``G[:, batch]``).
* L2 regularisation: exact with a scalar factor (``W[1] = s·W[1]_0 + B·Xᵀ``), but the bias is not
  decayed, so it would have to leave the ones row and be updated on its own.
* Momentum: exact (linear combinations of gradients). Adam / RMSprop: **not** exact (elementwise
  division by the second-moment estimate leaves the span), so such options must use the direct
  path; :func:`choose_solver` is where that decision belongs.
* Large m: G is m×m, so its memory and its per-iteration ``n_1·m²`` work overtake the direct
  path's ``n_1·n_x·m`` near ``m ≈ 2·n_x``, and building G (``n_x·m²`` flops, at about 1.5 times
  the speed of the skinny products) costs about ``m / (6·n_1)`` direct iterations.
  :func:`gram_pays_off` is the rule drawn from that (checked on ``bench/bench_scaling.py``).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .network import backward, cost_from_logits, descent_step, forward, relu, relu_backward, sigmoid, update

#: "auto" takes the Gram solver only while its m×m matrix is at most this many times the size of X
#: (beyond m = 2·n_x, B·G costs more than W1·X: it cannot pay off).
GRAM_MAX_SIZE_RATIO = 2.0
#: ... and only for runs long enough to pay for building G: at least m / (GRAM_PAYBACK·n_1)
#: iterations (building G costs about m / (6·n_1) direct iterations; 4 leaves a margin).
GRAM_PAYBACK = 4.0


def gram_pays_off(n_x: int, m: int, layers, iterations: int | None = None) -> bool:
    """Whether :class:`GramSolver` beats :class:`DirectSolver` for this shape: a simple rule.

    ``m ≤ 2·n_x`` (the Gram matrix stays within twice X's size) and the run has at least
    ``m / (4·n_1)`` iterations (``iterations`` None: a long run). On ``bench/bench_scaling.py``
    it picks the faster path at every m from 209 to 20 000 for the course's 2500 iterations.
    """
    if len(layers) < 2 or m > GRAM_MAX_SIZE_RATIO * n_x:
        return False
    return iterations is None or iterations * GRAM_PAYBACK * int(layers[1]) >= m


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


class GramSolver:
    """Full-batch gradient descent with ``W[1] = W[1]_0 + B·Xᵀ`` (see the module docstring).

    Same interface as :class:`DirectSolver`.

    Parameters
    ----------
    params : list of (W, b)
        Initial parameters; the solver owns them (layers 2..L are updated in place).
    X : ndarray of shape (n_x, m)
        Never modified (the dataset's arrays are read-only).
    Y : ndarray of shape (1, m)
    learning_rate : float
    X_test : ndarray of shape (n_x, m_test), optional
    """

    name = "gram"

    def __init__(self, params, X, Y, learning_rate, X_test=None):
        # float64 like the direct path's products (a no-op, no copy, for the dataset's arrays)
        X = np.asarray(X, dtype=np.float64)
        X_test = None if X_test is None else np.asarray(X_test, dtype=np.float64)
        self.X, self.Y, self.lr, self.X_test = X, Y, float(learning_rate), X_test
        W1, b1 = params[0]
        self._W1_0, self._b1_0 = W1, b1  # (n_1, n_x) and (n_1, 1), never change
        self._rest = params[1:]  # layers 2..L, plain (W, b), updated in place
        m = X.shape[1]
        # [W1 b1] = [W1_0 b1_0] + B·[X; 1]ᵀ: the bias is the row of ones appended to X.
        self._B = np.zeros((W1.shape[0], m))  # (n_1, m)
        G = gram_matrix(X)  # (m, m) = XᵀX
        if not np.isfinite(G).all() and np.isfinite(X).all():
            raise GramOverflowError(
                "the Gram matrix XᵀX overflows for these inputs (|x| above about 1e150); "
                "use the direct solver"
            )
        G += 1.0  # [X; 1]ᵀ·[X; 1] = XᵀX + 1·1ᵀ
        self._G = G
        self._P0 = W1 @ X  # (n_1, n_x) @ (n_x, m) -> (n_1, m)
        self._P0 += b1  # [W1_0 b1_0]·[X; 1]
        self._test = None  # (P0_test (n_1, m_test), [X; 1]ᵀ[X_test; 1] (m, m_test)), built on demand
        self._steps = 0
        self._cache = None  # (steps, W1, b1) of the last materialisation

    # ------------------------------------------------------------------ the iteration
    def _z1(self, P0, G):
        """Z[1] = [W1_0 b1_0]·[X; 1] + B·([X; 1]ᵀ[X; 1]), shape (n_1, k) for the k columns of G."""
        Z1 = self._B @ G  # (n_1, m) @ (m, k) -> (n_1, k)
        Z1 += P0
        return Z1

    def _output(self, Z1):
        """A[L] from Z[1] at the current parameters, shape (1, k)."""
        if not self._rest:
            return sigmoid(Z1)
        return forward(self._rest, relu(Z1))[0]

    def step(self, need_cost: bool):
        """One iteration: forward at the current parameters, then update them.

        Returns ``(cost, AL)``: the cost before the update (None unless ``need_cost``) and the
        output ``AL`` of shape ``(1, m)``; ``(nan, AL)`` without updating if the output is not finite.
        """
        Z1 = self._z1(self._P0, self._G)  # Z[1] = W[1]·X + b[1], (n_1, m)
        if self._rest:  # layers 2..L: the shared math, on A[1] = relu(Z[1])
            AL, cache = forward(self._rest, relu(Z1))
            ZL = cache[-1][1]
        else:  # a single layer: Z[1] is the output's logit
            AL, ZL = sigmoid(Z1), Z1
        if not np.isfinite(ZL).all():
            return math.nan, AL
        cost = cost_from_logits(ZL, self.Y) if need_cost else None
        if self._rest:
            grads, dA1 = backward(self._rest, cache, self.Y, AL, input_grad=True)  # layers 2..L, and dA[1]
            update(self._rest, grads, self.lr)
            dZ = relu_backward(dA1, Z1)  # dZ[1] = dA[1] ⊙ ReLU'(Z[1]), (n_1, m)
        else:
            dZ = AL - self.Y  # (1, m): fused sigmoid + cross-entropy
        dZ *= self.lr / dZ.shape[1]
        self._B -= dZ  # [W1 b1] -= α·[dW1 db1] = α·(dZ1/m)·[X; 1]ᵀ
        self._steps += 1
        return cost, AL

    # ------------------------------------------------------------------ predictions and params
    def proba_train(self) -> np.ndarray:
        """P(cat) on the training set at the current parameters, shape ``(m,)``."""
        return self._output(self._z1(self._P0, self._G))[0]

    def proba_test(self) -> np.ndarray:
        """P(cat) on the test set at the current parameters, shape ``(m_test,)``."""
        X, Xt = self.X, self.X_test
        if X.shape[1] > X.shape[0]:  # the cross-Gram would be larger than X_test: go direct
            W1, b1 = self._materialise()
            Z1 = W1 @ Xt  # (n_1, n_x) @ (n_x, m_test) -> (n_1, m_test)
            Z1 += b1
            return self._output(Z1)[0]
        if self._test is None:
            P0 = self._W1_0 @ Xt  # (n_1, n_x) @ (n_x, m_test) -> (n_1, m_test)
            P0 += self._b1_0
            C = X.T @ Xt  # (m, n_x) @ (n_x, m_test) -> (m, m_test)
            C += 1.0
            self._test = (P0, C)
        return self._output(self._z1(*self._test))[0]

    def _materialise(self):
        """``W1 = W1_0 + B·Xᵀ`` (n_1, n_x) and ``b1 = b1_0 + B·1`` (n_1, 1); cached until the next step."""
        if self._cache is None or self._cache[0] != self._steps:
            W1 = self._B @ self.X.T  # (n_1, m) @ (m, n_x) -> (n_1, n_x)
            W1 += self._W1_0
            b1 = np.sum(self._B, axis=1, keepdims=True)  # (n_1, 1)
            b1 += self._b1_0
            self._cache = (self._steps, W1, b1)
        return self._cache[1:]

    def params(self):
        """A copy of the current parameters as a list of ``(W, b)``, layer 1 materialised."""
        W1, b1 = self._materialise()
        return [(W1.copy(), b1.copy())] + [(W.copy(), b.copy()) for W, b in self._rest]



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
        self.X, self.Y, self.lr, self.X_test = X, Y, float(learning_rate), X_test

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


#: Solvers by name. Both compute the same iterates (up to rounding).
SOLVERS: dict[str, type] = {"direct": DirectSolver, "gram": GramSolver}


def choose_solver(name: str, n_x: int, m: int, layers, iterations: int | None = None) -> type:
    """The solver class for ``name``; "auto" picks the faster exact one for this shape.

    Every solver here is exact for full-batch gradient descent (today's only optimiser); "auto"
    takes the Gram solver when :func:`gram_pays_off` says so. An option for which the Gram
    reformulation is not exact (e.g. Adam) must make "auto" return the direct solver.
    """
    if name == "auto":
        return GramSolver if gram_pays_off(n_x, m, layers, iterations) else DirectSolver
    if name not in SOLVERS:
        raise ConfigError(f"unknown solver {name!r}: choose one of auto, {', '.join(SOLVERS)}")
    return SOLVERS[name]
