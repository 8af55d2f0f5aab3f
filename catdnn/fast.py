"""The Gram solver: the same gradient-descent iterates, with the first layer's work done in m×m.

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
(:func:`catdnn.network.backward_update`). The iterates are the direct path's up to rounding
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
  path; :func:`catdnn.train.choose_solver` is where that decision belongs.
* Large m: G is m×m, so its memory and its per-iteration ``n_1·m²`` work overtake the direct
  path's ``n_1·n_x·m`` near ``m ≈ 2·n_x``, and building G (``n_x·m²``) costs ``m / (4·n_1)``
  direct iterations. :func:`gram_is_faster` weighs these.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .network import backward_update, cost_from_logits, forward_layers, sigmoid

#: "auto" never takes the Gram solver when its m×m matrix would hold more than this many times as
#: many numbers as X (n_x·m): beyond m = 2·n_x it cannot pay off anyway (B·G costs more than W1·X).
GRAM_MAX_SIZE_RATIO = 2.0
#: Relative speeds (flops per second), measured with bench/bench_scaling.py on a 2-core AVX-512
#: OpenBLAS machine: building G (compute-bound SYRK/GEMM blocks) ran at 68–91 GFlop/s; the direct
#: path's first layer (two skinny GEMMs with n_1 rows, memory-bound once X leaves the cache) and
#: B·G (skinny too) both at about 48–52 GFlop/s. Only the ratios matter; 1.5 is on the safe side.
RATE_SYRK = 1.5
RATE_SKINNY = 1.0
#: Fixed Python/NumPy overhead of one iteration, in "skinny flops" (about 60 small NumPy calls).
STEP_OVERHEAD_FLOPS = 2e6


def cost_model(n_x: int, m: int, layers, iterations: int | None = None) -> tuple[float, float]:
    """Predicted time, in units of skinny-GEMM flops, of ``iterations`` steps: ``(direct, gram)``.

    Only the first layer differs between the paths; the rest is counted once in both. With
    ``iterations`` None the setup is amortised over the course's 2500 iterations.
    """
    n1 = int(layers[1])
    it = 2500 if iterations is None else max(int(iterations), 1)
    rest = sum(2.0 * 3 * a * b * m for a, b in zip(layers[1:-1], layers[2:]))  # forward + backward
    common = it * (rest + STEP_OVERHEAD_FLOPS)
    direct = common + it * 4.0 * n1 * n_x * m  # W1·X and dZ1·Xᵀ
    setup = (n_x * m * m) / RATE_SYRK + 2.0 * n1 * n_x * m  # G = XᵀX (symmetric), P0 = W1_0·X
    gram = common + setup + it * (2.0 * n1 * m * m + 4.0 * n1 * m)  # B·G, and the update of B
    return direct, gram


def gram_is_faster(n_x: int, m: int, layers, iterations: int | None = None) -> bool:
    """Whether :class:`GramSolver` should beat the direct path for this shape (and fits in memory)."""
    if len(layers) < 2 or m > GRAM_MAX_SIZE_RATIO * n_x:
        return False
    direct, gram = cost_model(n_x, m, layers, iterations)
    return gram < direct


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

    Same interface as :class:`catdnn.train.DirectSolver`.

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
        return forward_layers(self._rest, np.maximum(Z1, 0.0))[0]

    def step(self, need_cost: bool):
        """One iteration: forward at the current parameters, then update them.

        Returns ``(cost, AL)``: the cost before the update (None unless ``need_cost``) and the
        output ``AL`` of shape ``(1, m)``; ``(nan, AL)`` without updating if the output is not finite.
        """
        Z1 = self._z1(self._P0, self._G)  # (n_1, m)
        if self._rest:
            AL, inputs, Zs = forward_layers(self._rest, np.maximum(Z1, 0.0))
            ZL = Zs[-1]
        else:  # a single layer: Z[1] is the output's logit
            AL, ZL = sigmoid(Z1), Z1
        if not np.isfinite(ZL).all():
            return math.nan, AL
        cost = cost_from_logits(ZL, self.Y) if need_cost else None
        dZ = AL - self.Y  # (1, m): fused sigmoid + cross-entropy
        if self._rest:
            dA1 = backward_update(self._rest, inputs, Zs, dZ, self.lr, return_dA=True)  # layers 2..L
            dZ = np.multiply(dA1, Z1 > 0, out=dA1)  # (n_1, m), ReLU derivative
        dZ *= self.lr / dZ.shape[1]
        self._B -= dZ  # [W1 b1] -= lr·[dW1 db1] = lr·(dZ1/m)·[X; 1]ᵀ
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

