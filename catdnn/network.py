"""The network's math as pure functions: init, forward, cost, backward, predict, gradient check.

Shapes follow the course (see ``catdnn/__init__.py``): ``X`` is ``(n_x, m)``, ``W[l]`` is
``(n_l, n_{l-1})``, ``b[l]`` is ``(n_l, 1)``. Hidden layers use ReLU, the output layer a sigmoid,
and the cost is binary cross-entropy. ``params`` is a list of ``(W, b)`` tuples, one per layer.

Batch normalisation (optional, :class:`BatchNorm`, the second course's formulas) normalises each
hidden layer's pre-activation: ``Z̃[l] = γ[l]·(Z[l] − μ)/√(σ² + ε) + β[l]``, then ``A[l] = ReLU(Z̃[l])``.
Its learned ``(γ, β)`` ride in a list parallel to ``params`` (one pair per hidden layer), and
:func:`backward` returns their gradients after the ``(dW, db)`` ones, so an optimiser updates
``params + bn.params`` as one list of pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Params = list  # list[tuple[np.ndarray, np.ndarray]]: [(W1, b1), (W2, b2), ...]


# --------------------------------------------------------------------------- initialisation
def _small(rng: np.random.RandomState, n: int, n_prev: int) -> np.ndarray:
    return rng.randn(n, n_prev) * 0.01  # the course's two-layer init


def _xavier(rng: np.random.RandomState, n: int, n_prev: int) -> np.ndarray:
    return rng.randn(n, n_prev) / np.sqrt(n_prev)  # the course's deep init


def _he(rng: np.random.RandomState, n: int, n_prev: int) -> np.ndarray:
    return rng.randn(n, n_prev) * np.sqrt(2.0 / n_prev)


#: Init schemes by name; the names are the strings the CLI and the dashboard offer.
INITS: dict[str, Callable[[np.random.RandomState, int, int], np.ndarray]] = {
    "small": _small,
    "xavier": _xavier,
    "he": _he,
}

INIT_DESCRIPTIONS = {
    "small": "randn × 0.01 (the course's two-layer init)",
    "xavier": "randn / √n₍ₗ₋₁₎ (the course's deep init)",
    "he": "randn × √(2 / n₍ₗ₋₁₎)",
}


def init_params(layer_dims, init: str = "xavier", seed: int = 1) -> Params:
    """Draw initial weights layer by layer, exactly in the course's order.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``.
    init : {"small", "xavier", "he"}
        Weight scale; biases start at zero.
    seed : int
        Seeds a fresh ``np.random.RandomState``; ``W[l]`` is drawn with ``randn(n_l, n_{l-1})``
        for l = 1..L in turn, so seed 1 reproduces the course.

    Returns
    -------
    list of (W, b)
        ``W`` of shape ``(n_l, n_{l-1})`` and ``b`` of shape ``(n_l, 1)``, float64.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    draw = INITS[init]
    rng = np.random.RandomState(seed)
    dims = [int(d) for d in layer_dims]
    return [(draw(rng, n, n_prev), np.zeros((n, 1))) for n_prev, n in zip(dims[:-1], dims[1:])]


# --------------------------------------------------------------------------- activations
def sigmoid(Z: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, without overflow warnings for very negative ``Z``."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-Z))


#: Read-only arrays of zeros by (shape, dtype), for :func:`relu` on small arrays.
_ZEROS: dict = {}
#: :func:`relu` takes its 0 from an array of zeros of Z's shape up to this many entries: NumPy's maximum
#: against a scalar is about 2.5 times slower than against an array on a dense layer's (n_l, m) (measured:
#: 7.2 µs against 2.6 µs on 20×209 float64; the same values, bit for bit). Larger arrays (a convolutional
#: net's maps) keep the scalar, without a cached array of their size.
RELU_ZEROS_MAX = 1 << 16


def relu(Z: np.ndarray) -> np.ndarray:
    """Elementwise ``max(Z, 0)``."""
    if Z.size > RELU_ZEROS_MAX:
        return np.maximum(Z, 0.0)
    key = (Z.shape, Z.dtype)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) >= 64:  # a bounded cache: shapes come and go (batches, test sets)
            _ZEROS.clear()
        zeros = _ZEROS[key] = np.zeros(Z.shape, Z.dtype)
        zeros.flags.writeable = False
    return np.maximum(Z, zeros)


#: The decision rule everywhere (CLI, pages, accuracies): "cat" when P(cat) > THRESHOLD.
THRESHOLD = 0.5


def relu_backward(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``dZ = dA ⊙ ReLU'(Z)``: ``dA`` where ``Z > 0``, else 0 (written into ``dA``, which is consumed)."""
    return np.multiply(dA, Z > 0, out=dA)


def param_count(layers) -> int:
    """Number of weights and biases of a network with layer sizes ``[n_0, n_1, ..., n_L]``."""
    return int(sum(n * (n_prev + 1) for n_prev, n in zip(layers[:-1], layers[1:])))


# --------------------------------------------------------------------------- forward / cost / backward
class Cache(list):
    """What :func:`forward` keeps for :func:`backward`: a list with one ``(A_prev, Z)`` per layer.

    ``A_prev`` is the layer's input as used (after dropout), of shape ``(n_{l-1}, m)``, and ``Z``
    its pre-activation ``Z[l]``, of shape ``(n_l, m)``. ``masks`` is None when the pass used no
    dropout, else the inverted-dropout mask of each hidden layer's output, ``masks[l - 1]`` for
    ``A[l]`` (l = 1..L-1): None where nothing was dropped, else ``D[l] / keep_prob[l]`` (values 0
    or 1/keep_prob) of shape ``(n_l, m)``.

    With batch normalisation, a hidden layer's ``Z`` is ``Z̃[l]``, the normalised, scaled and shifted
    pre-activation that the ReLU receives, and ``bn[l - 1]`` holds ``(Z_norm, 1/√(σ² + ε), μ, σ²)``
    of that layer (``Z_norm`` of shape ``(n_l, m)``, the others ``(n_l, 1)``); ``bn`` is None without.
    ``bn_running`` says whether μ and σ² were the running averages (prediction) rather than the batch's.
    """

    __slots__ = ("masks", "bn", "bn_running")


#: Batch norm's defaults: the running averages' momentum and the ε under the square root.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-8


@dataclass
class BatchNorm:
    """Batch normalisation of the hidden layers: learned ``γ``, ``β`` and the running averages.

    Attributes
    ----------
    params : list of (gamma, beta)
        One pair per hidden layer (l = 1..L-1), each of shape ``(n_l, 1)``; learned like ``(W, b)``.
    running : list of (mu, var)
        One pair per hidden layer, each of shape ``(n_l, 1)``: exponentially weighted averages of the
        training batches' ``μ`` and ``σ²`` (:meth:`record`), used at prediction.
    momentum : float
        ``μ_run = momentum·μ_run + (1 − momentum)·μ_batch`` (the same for ``σ²``).
    epsilon : float
        ``ε`` in ``√(σ² + ε)``.
    """

    params: list
    running: list
    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON

    @classmethod
    def init(cls, layer_dims, dtype=np.float64) -> BatchNorm:
        """``γ = 1``, ``β = 0``, running ``μ = 0`` and ``σ² = 1`` for the hidden layers of ``[n_0, ..., n_L]``."""
        return cls.of_sizes(list(layer_dims)[1:-1], dtype)

    @classmethod
    def of_sizes(cls, sizes, dtype=np.float64) -> BatchNorm:
        """``γ = 1``, ``β = 0``, running ``μ = 0``, ``σ² = 1`` for normalised layers of these sizes (units,
        or a convolutional net's channels), each ``(n, 1)``."""
        sizes = [int(n) for n in sizes]
        return cls([(np.ones((n, 1), dtype), np.zeros((n, 1), dtype)) for n in sizes],
                   [(np.zeros((n, 1), dtype), np.ones((n, 1), dtype)) for n in sizes])

    def tail(self, k: int) -> BatchNorm:
        """The batch norm of the layers from the ``k``-th normalised one on (sharing the arrays)."""
        return BatchNorm(self.params[k:], self.running[k:], self.momentum, self.epsilon)

    def record(self, norms) -> None:
        """Fold a training pass's batch statistics into the running averages, in place: ``norms`` is
        its ``cache.bn`` (one ``(Z_norm, 1/√(σ² + ε), μ, σ²)`` per hidden layer)."""
        k = self.momentum
        for (mu_run, var_run), (_Zn, _inv, mu, var) in zip(self.running, norms):
            mu_run *= k  # μ_run = k·μ_run + (1 − k)·μ
            mu_run += (1.0 - k) * mu
            var_run *= k  # σ²_run = k·σ²_run + (1 − k)·σ²
            var_run += (1.0 - k) * var

    def copy(self) -> BatchNorm:
        return BatchNorm([(g.copy(), b.copy()) for g, b in self.params],
                         [(mu.copy(), v.copy()) for mu, v in self.running], self.momentum, self.epsilon)


def batch_norm_forward(Z: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float,
                       mu: np.ndarray | None = None, var: np.ndarray | None = None):
    """``Z̃ = γ·(Z − μ)/√(σ² + ε) + β`` for one layer; the batch's ``μ``, ``σ²`` unless given (prediction).

    Parameters
    ----------
    Z : ndarray of shape (n_l, m)
    gamma, beta : ndarray of shape (n_l, 1)
    mu, var : ndarray of shape (n_l, 1), optional
        The running averages at prediction; None in training: ``μ = 1/m Σ_i z(i)``,
        ``σ² = 1/m Σ_i (z(i) − μ)²``.

    Returns
    -------
    Z_tilde : ndarray of shape (n_l, m)
    norm : tuple ``(Z_norm, 1/√(σ² + ε), μ, σ²)``, what :func:`backward` and :meth:`BatchNorm.record` need
    """
    if mu is None:
        m = Z.shape[1]
        mu = np.add.reduce(Z, axis=1, keepdims=True) / m  # μ = 1/m Σ_i z(i): (n_l, 1)
        Zc = Z - mu
        var = np.add.reduce(np.square(Zc), axis=1, keepdims=True) / m  # σ² = 1/m Σ_i (z(i) − μ)²: (n_l, 1)
    else:
        Zc = Z - mu
    inv_std = 1.0 / np.sqrt(var + epsilon)  # 1/√(σ² + ε): (n_l, 1)
    Z_norm = np.multiply(Zc, inv_std, out=Zc)  # Z_norm = (Z − μ)/√(σ² + ε): (n_l, m), in Zc's memory
    Z_tilde = gamma * Z_norm  # Z̃ = γ·Z_norm + β
    Z_tilde += beta
    return Z_tilde, (Z_norm, inv_std, mu, var)


def batch_norm_backward(dZ_tilde: np.ndarray, gamma: np.ndarray, norm, running: bool = False,
                        examples: int | None = None):
    """Gradients through :func:`batch_norm_forward`: with the batch's statistics (training), or with
    ``running`` through fixed μ and σ² (prediction: ``dZ = γ/√(σ² + ε) · dZ̃``, as a saliency map needs).

    ``dZ_tilde`` is ``dZ̃[l]`` in this module's scale (``m`` times the derivative of the mean cost,
    as every ``dZ`` of :func:`backward`). Returns ``(dZ, dgamma, dbeta)``: ``dZ[l]`` of shape
    ``(n_l, m)`` in the same scale, ``dγ = Σ_i dZ̃ ⊙ Z_norm / m`` and ``dβ = Σ_i dZ̃ / m``, ``(n_l, 1)``.
    ``examples``: the ``m`` of that scale when the columns are not the examples (a convolutional
    net's channel, whose columns are every position of every image: ``N = m·H·W``); default the columns.
    """
    Z_norm, inv_std = norm[0], norm[1]
    N = dZ_tilde.shape[1]
    m = N if examples is None else int(examples)
    sum_g = np.add.reduce(dZ_tilde * Z_norm, axis=1, keepdims=True)  # Σ_i dZ̃ ⊙ Z_norm
    sum_b = np.add.reduce(dZ_tilde, axis=1, keepdims=True)  # Σ_i dZ̃
    dgamma, dbeta = (sum_g / m, sum_b / m) if m != 1 else (sum_g, sum_b)  # dγ = Σ_i dZ̃ ⊙ Z_norm / m, dβ = Σ_i dZ̃ / m
    if running:  # μ and σ² do not depend on Z
        return dZ_tilde * (gamma * inv_std), dgamma, dbeta
    # With dZ_norm = γ·dZ̃ and means over the N columns the statistics were taken on:
    # dZ = (dZ_norm − mean(dZ_norm) − Z_norm ⊙ mean(dZ_norm ⊙ Z_norm)) / √(σ² + ε)
    #    = γ/√(σ² + ε) · (dZ̃ − Σ dZ̃ / N − Z_norm ⊙ Σ (dZ̃ ⊙ Z_norm) / N)
    dZ = dZ_tilde - (dbeta if m == N else sum_b / N)
    dZ -= Z_norm * (dgamma if m == N else sum_g / N)
    dZ *= gamma * inv_std
    return dZ, dgamma, dbeta


def dropout(A: np.ndarray, keep_prob: float, rng: np.random.Generator):
    """Inverted dropout of an activation: ``D = (rand < keep_prob)``, ``A ⊙ D / keep_prob``.

    Parameters
    ----------
    A : ndarray of shape (n_l, m)
    keep_prob : float in (0, 1]
    rng : np.random.Generator

    Returns
    -------
    A_dropped : ndarray of shape (n_l, m)
        A new array; the expected value of each unit is unchanged (hence "inverted").
    mask : ndarray of shape (n_l, m) or None
        ``D / keep_prob`` (0 or 1/keep_prob); None (and ``A`` itself) when ``keep_prob`` is 1.
    """
    if keep_prob >= 1.0:
        return A, None
    mask = (rng.random(A.shape) < keep_prob) / keep_prob  # D[l] / keep_prob
    return A * mask, mask


def forward(params: Params, X: np.ndarray, keep_prob=None, rng: np.random.Generator | None = None, masks=None,
            *, bn: BatchNorm | None = None, running: bool = False):
    """Forward propagation: ``[LINEAR -> RELU -> DROPOUT] * (L-1) -> LINEAR -> SIGMOID``.

    Dropout is off unless asked for (it is a training-time technique; predictions never use it).
    Works on any tail of a network too (``params[k:]`` with ``A[k]`` as ``X`` and the tail's keep
    probabilities): its last layer is the sigmoid output.

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_0, m)
    keep_prob : sequence of float, optional
        One keep probability per hidden layer (length L-1); 1 keeps every unit of that layer.
    rng : np.random.Generator, optional
        Draws the dropout masks, layer by layer (needed when some ``keep_prob`` is below 1).
    masks : list of (ndarray or None), optional
        Use these masks (``D[l] / keep_prob[l]``, as in :attr:`Cache.masks`) instead of drawing:
        the same dropped units again, as the gradient check needs.
    bn : BatchNorm, optional
        Batch-normalise every hidden layer (``[LINEAR -> BATCHNORM -> RELU -> DROPOUT]``) with
        ``bn.params``' γ and β: with the batch's own μ and σ² (training), or with ``running``
        with ``bn.running``'s averages (prediction).
    running : bool
        Use the running averages (prediction) instead of the batch's statistics.

    Returns
    -------
    AL : ndarray of shape (1, m)
        The output probabilities ``A[L] = sigmoid(Z[L])``.
    cache : Cache
        Per layer ``(A_prev, Z)``: its input ``A[l-1]`` of shape ``(n_{l-1}, m)`` and ``Z[l]`` of
        shape ``(n_l, m)``; and ``cache.masks``, the dropout masks of the hidden layers.
    """
    cache = Cache()
    drop = keep_prob is not None or masks is not None
    cache.masks = [] if drop else None
    cache.bn = [] if bn is not None else None
    cache.bn_running = bool(running)
    A = X
    L = len(params)
    for l, (W, b) in enumerate(params, start=1):
        Z = W @ A  # Z[l] = W[l]·A[l-1] + b[l]: (n_l, n_{l-1}) @ (n_{l-1}, m) -> (n_l, m)
        Z += b
        if bn is not None and l < L:  # Z̃[l] = γ[l]·(Z[l] − μ)/√(σ² + ε) + β[l]
            gamma, beta = bn.params[l - 1]
            stats = bn.running[l - 1] if running else (None, None)
            Z, norm = batch_norm_forward(Z, gamma, beta, bn.epsilon, *stats)
            cache.bn.append(norm)
        cache.append((A, Z))
        if l == L:
            break
        A = relu(Z)  # A[l] = ReLU(Z[l]) (ReLU(Z̃[l]) with batch norm)
        if drop:
            if masks is not None:
                mask = masks[l - 1]  # the given mask D[l] / keep_prob[l], or None
                A = A if mask is None else A * mask
            else:
                A, mask = dropout(A, keep_prob[l - 1], rng)  # A[l] = A[l] ⊙ D[l] / keep_prob[l]
            cache.masks.append(mask)
    return sigmoid(Z), cache  # A[L] = σ(Z[L])


def all_finite(A: np.ndarray) -> bool:
    """Whether every entry of ``A`` is finite: ``np.isfinite(A).all()`` without ndarray.all's Python wrapper
    (called once per training step)."""
    return bool(np.logical_and.reduce(np.isfinite(A), axis=None))


def l2_cost(params: Params, lambd: float, m: int) -> float:
    """The L2 regularisation term of the cost, ``λ/(2m) · Σ_l ‖W[l]‖²`` (the biases are not decayed)."""
    if not lambd:
        return 0.0
    return float(lambd / (2 * m) * sum(np.sum(np.square(W)) for W, _ in params))


def cost_from_logits(ZL: np.ndarray, Y: np.ndarray) -> float:
    """Binary cross-entropy computed from the output logits, never taking ``log(0)``.

    ``-y·log σ(z) - (1-y)·log(1-σ(z)) = log(1 + e^z) - y·z``, evaluated with ``np.logaddexp``.

    Parameters
    ----------
    ZL : ndarray of shape (1, m)
    Y : ndarray of shape (1, m)
    """
    m = Y.shape[1]
    return float(np.sum(np.logaddexp(0.0, ZL) - Y * ZL) / m)


def compute_cost(AL: np.ndarray, Y: np.ndarray) -> float:
    """Binary cross-entropy ``-1/m Σ (y log a + (1-y) log(1-a))`` from probabilities.

    Probabilities are clipped away from 0 and 1 so the result is always finite, whatever the
    float type of ``AL``: the floor is the smallest normal number of that type
    (``np.finfo(dtype).tiny``: 2.2e-308 in float64, 1.2e-38 in float32, where a fixed 1e-300
    would round to 0), so a confidently wrong answer costs at most ``-log(tiny)`` (708 in
    float64, 87 in float32). Prefer :func:`cost_from_logits` when the logits are at hand (it is
    exact in that regime too).

    Parameters
    ----------
    AL : ndarray of shape (1, m), any float dtype (other dtypes are read as float64)
    Y : ndarray of shape (1, m)
    """
    m = Y.shape[1]
    AL = np.asarray(AL)
    if not np.issubdtype(AL.dtype, np.floating):
        AL = AL.astype(np.float64)
    tiny = np.finfo(AL.dtype).tiny
    A = np.clip(AL, tiny, None)
    A1 = np.clip(1.0 - AL, tiny, None)
    return float(-np.sum(Y * np.log(A) + (1.0 - Y) * np.log(A1)) / m)


def backward(params: Params, cache, Y: np.ndarray, AL: np.ndarray | None = None, *, lambd: float = 0.0,
             input_grad: bool = False, deltas: list | None = None, bn: BatchNorm | None = None,
             scale: float | None = None):
    """Backward propagation of the mean cross-entropy (plus ``λ/(2m)·Σ‖W‖²`` when ``lambd``).

    The sigmoid and the cross-entropy are fused: ``dZ[L] = A[L] - Y``. Dropout masks in
    ``cache.masks`` are applied to ``dA[l]`` as they were to ``A[l]``. The gradient with respect
    to the input (``dA[0]``) is computed only with ``input_grad``: for a whole network nobody
    needs it; a solver that owns the layer below a tail of the network does.

    Parameters
    ----------
    params : list of (W, b)
    cache : Cache (or a list of (A_prev, Z)), as returned by :func:`forward`
    Y : ndarray of shape (1, m)
    AL : ndarray of shape (1, m), optional
        The forward output; recomputed from the cache when omitted.
    lambd : float
        L2 regularisation λ: adds ``λ/m · W[l]`` to every ``dW[l]``.
    input_grad : bool
        Also return ``dA[0]``.
    deltas : list, optional
        Filled (replacing its contents) with one ``(dA, dZ)`` per layer, ``deltas[l - 1]`` for layer
        ``l``: ``dA[l]`` of shape ``(n_l, m)`` (None for the output layer, whose ``dZ`` is fused) and
        ``dZ[l]`` of shape ``(n_l, m)``, the arrays this pass computed (``dA`` copied before the ReLU
        mask consumes it). For showing them (the Step page, :mod:`catdnn.stepper`); off, it costs nothing.
        With batch norm, ``dZ`` is the gradient of the pre-activation before normalisation, and a
        hidden layer's entry is ``(dA, dZ, dZ̃)``, with ``dZ̃[l]`` of shape ``(n_l, m)``, the gradient
        of the normalised ``Z̃[l]`` that the ReLU received.
    bn : BatchNorm, optional
        The batch norm of the :func:`forward` that made the cache (its ``cache.bn``; training mode, or
        the running averages for an input gradient): the gradients then go through it, and
        ``(dγ, dβ)`` of each hidden layer follow the ``(dW, db)``.
    scale : float, optional
        Return ``scale`` times every gradient, e.g. a learning rate α, so that gradient descent is
        ``W -= dW`` (:func:`update` with α = 1). The factor ``scale/m`` is applied once, to ``dZ[L]``,
        instead of dividing every gradient by m: fewer operations per layer, the same values up to
        rounding. ``dA0`` and ``deltas`` (m times the derivatives without it) come out ``scale/m``
        times theirs. None (default): the gradients as above.

    Returns
    -------
    grads : list of (dW, db), then with ``bn`` one (dgamma, dbeta) per hidden layer
        ``dW[l]`` of shape ``(n_l, n_{l-1})`` and ``db[l]`` of shape ``(n_l, 1)``; with ``bn``,
        ``grads[L + l - 1] = (dγ[l], dβ[l])`` of shape ``(n_l, 1)`` each: the structure of
        ``params + bn.params``. With batch norm a hidden layer's ``db[l]`` is 0 (the mean
        subtraction cancels ``b[l]``; it stays at its initial 0).
    dA0 : ndarray of shape (n_0, m)
        Only with ``input_grad``: ``(grads, dA0)``.
    """
    m = Y.shape[1]
    L = len(params)
    masks = getattr(cache, "masks", None)
    if AL is None:
        AL = sigmoid(cache[-1][1])
    grads = [None] * (L if bn is None else 2 * L - 1)
    if deltas is not None:
        deltas[:] = [None] * L
    dZ = AL - Y  # dZ[L] = A[L] - Y, (1, m): fused sigmoid + cross-entropy
    per = m  # what each dW[l], db[l] is divided by (the mean over the examples)
    if scale is not None:  # scale·dZ[L]/m: every gradient below comes out scaled and already divided by m
        dZ *= scale / m
        per, lambd = 0, lambd * scale
    dA = None
    dA_shown = None  # dA[l] as computed, kept only for ``deltas``
    for l in range(L - 1, -1, -1):
        A_prev, _ = cache[l]
        W = params[l][0]
        normed = bn is not None and l < L - 1
        dZ_tilde = None
        if normed:  # dZ[l] from dZ̃[l] through the normalisation; dγ[l], dβ[l]
            dZ_tilde = dZ
            dZ, dgamma, dbeta = batch_norm_backward(dZ_tilde, bn.params[l][0], cache.bn[l], cache.bn_running,
                                                    examples=per or 1)
            grads[L + l] = (dgamma, dbeta)
        dW = dZ @ A_prev.T  # dW[l] = dZ[l]·A[l-1]ᵀ / m (+ λ/m·W[l]): (n_l, m) @ (m, n_{l-1}) -> (n_l, n_{l-1})
        if per:
            dW /= per
        if lambd:
            dW += (lambd / m) * W
        if normed:
            b = params[l][1]
            db = np.zeros(b.shape, b.dtype)  # b[l] cancels in Z[l] − μ: no gradient (np.zeros: cheaper than zeros_like)
        else:
            db = np.add.reduce(dZ, axis=1, keepdims=True)  # db[l] = Σ_i dZ[l] / m: (n_l, 1)
            if per:
                db /= per
        grads[l] = (dW, db)
        if deltas is not None:
            deltas[l] = (dA_shown, dZ) if dZ_tilde is None else (dA_shown, dZ, dZ_tilde)
        if l > 0 or input_grad:
            dA = W.T @ dZ  # dA[l-1] = W[l]ᵀ·dZ[l]: (n_{l-1}, n_l) @ (n_l, m) -> (n_{l-1}, m)
        if l > 0:
            if masks is not None and masks[l - 1] is not None:
                dA *= masks[l - 1]  # dA[l-1] = dA[l-1] ⊙ D[l-1] / keep_prob[l-1]
            if deltas is not None:
                dA_shown = dA.copy()
            dZ = relu_backward(dA, cache[l - 1][1])  # dZ[l-1] = dA[l-1] ⊙ ReLU'(Z[l-1]) (dZ̃[l-1] with batch norm)
    return (grads, dA) if input_grad else grads


def update(params: Params, grads, learning_rate: float) -> None:
    """Gradient-descent step, in place: ``W[l] -= α·dW[l]``, ``b[l] -= α·db[l]`` for every layer.

    The gradients are consumed (scaled by α in place): they are fresh arrays from :func:`backward`.
    α = 1 skips the scaling (``x·1 = x`` exactly): the gradients are the steps already
    (``backward(..., scale=α)``).
    """
    for layer, glayer in zip(params, grads):  # (W, b) and (dW, db), or any tuples of arrays alike
        for P, dP in zip(layer, glayer):
            if learning_rate != 1.0:
                dP *= learning_rate
            P -= dP


def descent_step(params: Params, X: np.ndarray, Y: np.ndarray, learning_rate: float, need_cost: bool = True):
    """One full-batch gradient-descent iteration on ``params``, in place: forward, cost, backward, update.

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_0, m)
    Y : ndarray of shape (1, m)

    Returns
    -------
    cost : float or None
        The cost *before* the update (None unless ``need_cost``); NaN if the output is not finite,
        in which case nothing is updated.
    AL : ndarray of shape (1, m)
        The output before the update.
    """
    AL, cache = forward(params, X)
    ZL = cache[-1][1]
    if not all_finite(ZL):
        return float("nan"), AL
    cost = cost_from_logits(ZL, Y) if need_cost else None
    update(params, backward(params, cache, Y, AL), learning_rate)
    return cost, AL


# --------------------------------------------------------------------------- prediction
def predict_proba(params: Params, X: np.ndarray, tta: bool = False, bn: BatchNorm | None = None) -> np.ndarray:
    """P(cat) for every column of ``X``.

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_x, m)
    tta : bool
        Test-time augmentation: the mean of P(cat) for each image and its mirror image
        (:func:`mirror_average`).
    bn : BatchNorm, optional
        The network's batch norm: prediction uses its running averages of μ and σ².

    Returns
    -------
    ndarray of shape (m,)
    """
    AL, _ = forward(params, X, bn=bn, running=True)
    if not tta:
        return AL[0]
    from .augment import flip

    return mirror_average(AL[0], forward(params, flip(X), bn=bn, running=True)[0][0])


def mirror_average(proba: np.ndarray, proba_mirror: np.ndarray) -> np.ndarray:
    """Test-time augmentation's prediction: ``(P(cat | x) + P(cat | mirror of x)) / 2``, shape (m,)."""
    return (proba + proba_mirror) / 2.0


def predicted(proba, threshold: float = THRESHOLD) -> np.ndarray:
    """The decision rule: labels (1 = cat) from probabilities of cat, ``P(cat) > threshold``.

    Parameters
    ----------
    proba : ndarray of shape (m,) (or any shape holding m probabilities)

    Returns
    -------
    ndarray of shape (m,), int64
    """
    return (np.asarray(proba, dtype=np.float64).reshape(-1) > threshold).astype(np.int64)


def predict(params: Params, X: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Labels (1 = cat) for every column of ``X`` (shape ``(n_x, m)``); returns ndarray of shape (m,), int64."""
    return predicted(predict_proba(params, X), threshold)


def score(proba, Y, threshold: float = THRESHOLD) -> float:
    """Accuracy of probabilities ``proba`` (shape ``(m,)``) against labels ``Y`` (shape ``(1, m)`` or ``(m,)``)."""
    return float(np.mean(predicted(proba, threshold) == np.asarray(Y).reshape(-1)))


def accuracy(params: Params, X: np.ndarray, Y: np.ndarray, threshold: float = THRESHOLD) -> float:
    """Fraction of the columns of ``X`` (shape ``(n_x, m)``) whose label matches ``Y`` ``(1, m)``."""
    return score(predict_proba(params, X), Y, threshold)


# --------------------------------------------------------------------------- gradient check
def gradient_check(params: Params, X: np.ndarray, Y: np.ndarray, epsilon: float = 1e-6, *,
                   lambd: float = 0.0, masks=None, bn: BatchNorm | None = None) -> float:
    """Compare :func:`backward` with central differences of the cost; return the relative error.

    ``||g - g_approx|| / (||g|| + ||g_approx||)`` over all parameters. Below about 1e-7 means the
    analytic gradient is right. Cost ``O(#params)`` forward passes: use it on tiny nets.

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    lambd : float
        L2 regularisation λ: the cost then includes ``λ/(2m)·Σ‖W‖²``.
    masks : list of (ndarray or None), optional
        Fixed dropout masks, one per hidden layer (``D[l] / keep_prob``, see :class:`Cache`): the
        cost is then a smooth function of the weights, and its gradient is checked.
    bn : BatchNorm, optional
        Batch norm in training mode (the batch's statistics): γ and β are checked too, after the
        weights and biases.
    """
    params = [(W.astype(np.float64, copy=True), b.astype(np.float64, copy=True)) for W, b in params]
    m = Y.shape[1]
    with_bn = {}
    if bn is not None:
        bn = bn.copy()
        with_bn = {"bn": bn}

    def cost() -> float:
        AL, cache = forward(params, X, masks=masks, **with_bn)
        return cost_from_logits(cache[-1][1], Y) + l2_cost(params, lambd, m)

    AL, cache = forward(params, X, masks=masks, **with_bn)
    # (λ and bn passed only when set: a test may stand in a backward of the plain signature)
    grads = backward(params, cache, Y, AL, **with_bn, **({"lambd": lambd} if lambd else {}))
    analytic = np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in grads])
    numeric = []
    for W, b in params + (bn.params if bn is not None else []):
        for P in (W, b):
            # through P's own indices, in the order of ravel(): reshape(-1) would be a copy (and
            # perturb nothing) for a Fortran-ordered or strided P such as W = Wt.T
            for i in np.ndindex(P.shape):
                old = P[i]
                P[i] = old + epsilon
                plus = cost()
                P[i] = old - epsilon
                minus = cost()
                P[i] = old
                numeric.append((plus - minus) / (2 * epsilon))
    numeric = np.array(numeric)
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric) / denom)
