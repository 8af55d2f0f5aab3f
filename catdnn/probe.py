"""Looking inside a trained network: first-layer weights as images, one image's activations layer by
layer, dead ReLU units, a small honest setup for the gradient check, the saliency of an image (what
the network looks at) and per-layer gradient and activation statistics recorded during training.

Pure NumPy, the course's shapes (see ``catdnn/__init__.py``): ``X`` is ``(n_x, m)`` with one image
per column, ``W[l]`` is ``(n_l, n_{l-1})``, ``b[l]`` is ``(n_l, 1)``, ``params[l - 1] == (W[l], b[l])``.
Layer numbers in this module are the course's, 1-based: layer ``L`` is the sigmoid output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cnn
from .augment import flip
from .data import IMAGE_SHAPE
from .network import backward, forward, init_params

#: How the course reads the gradient check's relative difference, as (upper bound, verdict, explanation).
GRADIENT_CHECK_LEVELS = (
    (1e-7, "great", "backpropagation agrees with the numerical derivative to rounding error"),
    (1e-5, "probably fine", "close, but worth double-checking the backward pass"),
    (1e-3, "suspicious", "some gradient is likely wrong"),
    (float("inf"), "wrong", "backpropagation almost certainly has a bug"),
)


# --------------------------------------------------------------------------- the first layer as images
def unit_norms(W: np.ndarray) -> np.ndarray:
    """The Euclidean norm of each unit's incoming weights.

    Parameters
    ----------
    W : ndarray of shape (n_l, n_{l-1})

    Returns
    -------
    ndarray of shape (n_l,)
    """
    return np.linalg.norm(np.asarray(W, dtype=np.float64), axis=1)


def choose_units(W: np.ndarray, n: int, by: str = "norm") -> np.ndarray:
    """Which ``n`` units (rows of ``W``) to show.

    Parameters
    ----------
    W : ndarray of shape (n_l, n_{l-1})
    n : int
        How many (at most ``n_l``; at least 1).
    by : {"norm", "first"}
        ``"norm"``: the ``n`` units with the largest weight norm, largest first (ties by index);
        ``"first"``: units 0 … n-1.

    Returns
    -------
    ndarray of shape (min(n, n_l),), int64
        Row indices into ``W`` (0-based; unit ``k`` of the course's 1-based layer is row ``k``).
    """
    n_l = W.shape[0]
    n = max(1, min(int(n), n_l))
    if by == "first":
        return np.arange(n, dtype=np.int64)
    if by != "norm":
        raise ValueError(f"by must be 'norm' or 'first', not {by!r}")
    norms = unit_norms(W)
    order = np.lexsort((np.arange(n_l), -norms))  # largest norm first, ties by index
    return order[:n].astype(np.int64)


def symmetric_normalise(w: np.ndarray) -> np.ndarray:
    """Map weights to [0, 1] with 0 at the middle: ``0.5 + 0.5 · w / max|w|``.

    Parameters
    ----------
    w : ndarray of any shape
        One unit's weights. All zero maps to 0.5 everywhere.

    Returns
    -------
    ndarray of the same shape, float64 in [0, 1]
        The largest ``|w|`` lands on 0 or 1; the sign is kept (positive above 0.5).
    """
    w = np.asarray(w, dtype=np.float64)
    scale = float(np.max(np.abs(w))) if w.size else 0.0
    if scale == 0.0 or not np.isfinite(scale):
        return np.full(w.shape, 0.5)
    return 0.5 + 0.5 * (w / scale)


def weight_images(W1: np.ndarray, units=None, image_shape: tuple = IMAGE_SHAPE) -> np.ndarray:
    """Each first-layer unit's weights as the image they multiply, for display.

    Row ``k`` of ``W[1]`` holds one weight per input pixel and channel, in the order the images were
    flattened (row, column, channel), so it reshapes back to a 64×64×3 image. Each unit is
    normalised on its own with :func:`symmetric_normalise` (weight 0 is mid-grey, 128).

    Parameters
    ----------
    W1 : ndarray of shape (n_1, 12288)
    units : sequence of int, optional
        Which rows (0-based); all of them by default.
    image_shape : tuple
        ``(64, 64, 3)``; its product must be ``n_0``.

    Returns
    -------
    ndarray of shape (len(units), 64, 64, 3), uint8
    """
    W1 = np.asarray(W1, dtype=np.float64)
    if W1.ndim != 2 or W1.shape[1] != int(np.prod(image_shape)):
        raise ValueError(f"W[1] of shape {W1.shape} does not reshape to images of shape {image_shape}")
    rows = np.arange(W1.shape[0]) if units is None else np.asarray(units, dtype=np.int64)
    out = np.empty((len(rows), *image_shape), dtype=np.uint8)
    for k, r in enumerate(rows):
        out[k] = np.rint(255.0 * symmetric_normalise(W1[r])).reshape(image_shape).astype(np.uint8)
    return out


def initial_first_layer(layers, init: str, seed: int) -> np.ndarray:
    """``W[1]`` as it was before training: the same draw as :func:`catdnn.network.init_params`.

    ``W[1]`` is drawn first, so it depends only on ``n_0``, ``n_1``, the init scheme and the seed.
    Training moves each of its 12288 weights per unit only a little, so a trained ``W[1]`` still
    looks mostly like this noise; ``W[1]`` minus it is what training added.

    Parameters
    ----------
    layers : sequence of int
        ``[n_0, n_1, …]``; only the first two are used.
    init : str
        A name in :data:`catdnn.network.INITS`.
    seed : int

    Returns
    -------
    ndarray of shape (n_1, n_0), float64
    """
    return init_params([int(layers[0]), int(layers[1])], init, seed)[0][0]


# --------------------------------------------------------------------------- one image through the network
def layer_activations(params, x: np.ndarray, bn=None) -> list[np.ndarray]:
    """The activations ``A[1] … A[L]`` of every layer for one image.

    Parameters
    ----------
    params : list of (W, b)
    x : ndarray of shape (n_x, 1) or (n_x,)
        One image as a column of ``X`` (``A[0]``).
    bn : catdnn.network.BatchNorm, optional
        The model's batch norm (prediction: the running averages).

    Returns
    -------
    list of ndarray
        ``[A[1], …, A[L]]``, ``A[l]`` of shape ``(n_l, 1)``: ReLU outputs for the hidden layers,
        and ``A[L]`` of shape ``(1, 1)`` is P(cat).
    """
    AL, cache = forward(params, np.asarray(x, dtype=np.float64).reshape(-1, 1), bn=bn, running=True)  # A[0]: (n_x, 1)
    return [A_prev for A_prev, _Z in cache[1:]] + [AL]  # each layer's input is the activation below


def shape_line(layers, l: int) -> str:
    """The course's shape bookkeeping for layer ``l`` on one image, as text.

    E.g. ``"Z[1] = W[1]·A[0] + b[1]: (20, 12288)·(12288, 1) + (20, 1) → A[1] is (20, 1)"``.

    Parameters
    ----------
    layers : sequence of int
        ``[n_0, n_1, …, n_L]``.
    l : int
        The layer, 1 … L.
    """
    n, n_prev = int(layers[l]), int(layers[l - 1])
    return (
        f"Z[{l}] = W[{l}]·A[{l - 1}] + b[{l}]: ({n}, {n_prev})·({n_prev}, 1) + ({n}, 1) → A[{l}] is ({n}, 1)"
    )


# --------------------------------------------------------------------------- dead units
def dead_units(params, X: np.ndarray, bn=None) -> list[np.ndarray]:
    """Which hidden units output 0 for every example of ``X``: dead ReLUs.

    A unit with ``Z ≤ 0`` on every example outputs 0 on all of them and gets a zero gradient
    (ReLU′(Z) = 0 there), so gradient descent on ``X`` can never bring it back.

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_x, m)
    bn : catdnn.network.BatchNorm, optional
        The model's batch norm (the running averages, as at prediction).

    Returns
    -------
    list of ndarray
        One per hidden layer ``l = 1 … L-1``: a boolean mask of shape ``(n_l,)``, True for a dead unit.
    """
    _AL, cache = forward(params, np.asarray(X, dtype=np.float64), bn=bn, running=True)
    return dead_masks(cache)


def dead_masks(cache) -> list[np.ndarray]:
    """:func:`dead_units` from a forward pass's cache (a list of ``(A[l-1], Z[l])``), without redoing it."""
    # A[l] = relu(Z[l]) is 0 exactly where Z[l] <= 0
    return [np.all(Z <= 0.0, axis=1) for _A_prev, Z in cache[:-1]]


# --------------------------------------------------------------------------- a small gradient check
def small_network(params, X: np.ndarray, Y: np.ndarray, n_features: int = 32, max_units: int = 8, m: int = 8):
    """A small copy of a network that the gradient check can afford.

    The check costs two forward passes per parameter, which is hopeless for the 12288-input first
    layer. The copy keeps the network's depth and its own trained weights, restricted to
    ``n_features`` evenly spaced inputs (pixels-and-channels) of ``X``, the first ``max_units``
    units of each hidden layer, and the first ``m`` examples: ``W[l]`` becomes
    ``W[l][kept_l, :][:, kept_{l-1}]`` and ``b[l]`` becomes ``b[l][kept_l]``.

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_x, m_all)
    Y : ndarray of shape (1, m_all)
    n_features, max_units, m : int
        The sizes of the copy (each capped by the real one).

    Returns
    -------
    small_params : list of (W, b)
        Fresh float64 arrays; ``W[l]`` of shape ``(k_l, k_{l-1})`` with ``k_0 = n_features``.
    X_small : ndarray of shape (n_features, m)
    Y_small : ndarray of shape (1, m)
    layers : list of int
        ``[k_0, k_1, …, 1]``, the copy's layer sizes.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(1, -1)
    n_x = params[0][0].shape[1]
    if X.shape[0] != n_x:
        raise ValueError(f"X has {X.shape[0]} rows but the network takes {n_x} inputs")
    k0 = max(1, min(int(n_features), n_x))
    m = max(1, min(int(m), X.shape[1]))
    kept = [np.unique(np.linspace(0, n_x - 1, k0).round().astype(np.int64))]
    L = len(params)
    small = []
    for l, (W, b) in enumerate(params, start=1):
        rows = np.arange(W.shape[0]) if l == L else np.arange(min(int(max_units), W.shape[0]))
        scale = np.sqrt(W.shape[1] / len(kept[-1]))  # keeps the typical size of Z[l] with fewer inputs
        small.append((W[np.ix_(rows, kept[-1])] * scale, b[rows].astype(np.float64)))
        kept.append(rows)
    layers = [len(k) for k in kept]
    return small, X[kept[0], :m], Y[:, :m], layers


def gradient_check_verdict(difference: float) -> tuple[str, str]:
    """The course's reading of a gradient check's relative difference: ``(verdict, explanation)``.

    Below 1e-7 is great; below 1e-5 probably fine; below 1e-3 suspicious; above, a bug.
    """
    d = float(difference)
    if not np.isfinite(d):
        return GRADIENT_CHECK_LEVELS[-1][1:]
    for bound, verdict, text in GRADIENT_CHECK_LEVELS:
        if d < bound:
            return verdict, text
    return GRADIENT_CHECK_LEVELS[-1][1:]


def kink_count(params, X: np.ndarray, margin: float = 1e-5) -> int:
    """How many hidden pre-activations ``Z[l]`` lie within ``margin`` of 0 (the ReLU kink).

    Central differences straddle the kink there, so the numerical derivative (not backpropagation)
    can be off: a gradient check with many of them is not conclusive.

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_x, m)
    """
    _AL, cache = forward(params, np.asarray(X, dtype=np.float64))
    return int(sum(np.count_nonzero(np.abs(Z) < margin) for _A_prev, Z in cache[:-1]))


# --------------------------------------------------------------------------- what the network looks at
def saliency(params, x: np.ndarray, tta: bool = False, arch=None, bn=None) -> np.ndarray:
    """The gradient of P(cat) with respect to the input pixels: ``∂A[L]/∂x`` for one image.

    Backpropagation of the one copy of the math (:func:`catdnn.network.backward` with
    ``input_grad``): with ``Y = A[L] − 1`` the fused output delta ``dZ[L] = A[L] − Y`` is 1, so
    ``dA[0]`` is ``∂Z[L]/∂x``; the chain rule through the sigmoid, ``σ′(z) = a·(1 − a)``, turns it into
    ``∂P(cat)/∂x``.

    Parameters
    ----------
    params : list of (W, b)
    x : ndarray of shape (n_x, 1) or (n_x,)
        One image as a column of ``X`` (scaled to [0, 1]).
    tta : bool
        The model's prediction is the mean of P(cat) for the image and its mirror image (a model
        trained with ``tta``): the gradient of that mean.
    arch : catdnn.arch.Arch, optional
        A convolutional net's architecture (:attr:`catdnn.model.Model.arch`): its backward pass to
        the input (:func:`catdnn.cnn.logit_input_gradient`) instead of the MLP's.
    bn : catdnn.network.BatchNorm, optional
        An MLP's batch norm (:attr:`catdnn.model.Model.bn`): the prediction's, with the running averages.

    Returns
    -------
    ndarray of shape (n_x,), float64
        How much P(cat) grows per unit of each input value (pixel and colour).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)  # A[0]: (n_x, 1)
    if not tta:
        return _proba_gradient(params, x, arch, bn)
    mirror = flip(x)
    # P = (p(x) + p(F·x)) / 2, so ∂P/∂x = (∂p/∂x + Fᵀ·∂p/∂(F·x)) / 2, and F is its own transpose
    return (_proba_gradient(params, x, arch, bn)
            + flip(_proba_gradient(params, mirror, arch, bn).reshape(-1, 1))[:, 0]) / 2.0


def _proba_gradient(params, x: np.ndarray, arch=None, bn=None) -> np.ndarray:
    """``∂σ(Z[L])/∂x`` for one column ``x`` of shape (n_x, 1); returns shape (n_x,)."""
    if arch is not None and arch.is_cnn:
        a, dz = cnn.logit_input_gradient(params, arch, x, bn=bn)
        return dz * (a * (1.0 - a))
    AL, cache = forward(params, x, bn=bn, running=True)
    # dZ[L] = A[L] − (A[L] − 1) = 1
    _grads, dA0 = backward(params, cache, AL - 1.0, AL, input_grad=True, bn=bn)
    a = float(AL[0, 0])
    return dA0[:, 0] * (a * (1.0 - a))  # dA0 is ∂Z[L]/∂x: (n_x, 1); σ′(Z[L]) = a(1 − a)


def saliency_map(gradient: np.ndarray, image_shape: tuple = IMAGE_SHAPE) -> np.ndarray:
    """A saliency gradient as a heat map over the image: the largest ``|∂P/∂x|`` over the three colours
    of each pixel, scaled so that the strongest pixel is 1.

    Parameters
    ----------
    gradient : ndarray of shape (n_x,)
        From :func:`saliency` (row, column, channel order, as the images were flattened).

    Returns
    -------
    ndarray of shape (64, 64), float64 in [0, 1]
        All zeros when the gradient is zero (a saturated or dead network).
    """
    g = np.abs(np.asarray(gradient, dtype=np.float64)).reshape(image_shape).max(axis=2)
    top = float(g.max()) if g.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        return np.zeros(g.shape)
    return g / top


def saliency_overlay(image: np.ndarray, heat: np.ndarray, strength: float = 0.75) -> np.ndarray:
    """The image the network sees, darkened, with the heat map on top in red-yellow.

    Parameters
    ----------
    image : ndarray of shape (64, 64, 3), uint8
    heat : ndarray of shape (64, 64), values in [0, 1] (:func:`saliency_map`)
    strength : float
        How much the heat map covers the image where it is 1.

    Returns
    -------
    ndarray of shape (64, 64, 3), uint8
    """
    img = np.asarray(image, dtype=np.float64) / 255.0  # (64, 64, 3)
    h = np.clip(np.asarray(heat, dtype=np.float64), 0.0, 1.0)[..., None]  # (64, 64, 1)
    colour = np.concatenate([np.ones_like(h), np.clip(2.0 * h - 0.6, 0.0, 1.0), np.zeros_like(h)], axis=2)
    base = 0.45 * img.mean(axis=2, keepdims=True) + 0.25 * img  # a dim version of the photo
    out = (1.0 - strength * h) * base + strength * h * colour
    return np.rint(255.0 * np.clip(out, 0.0, 1.0)).astype(np.uint8)


# --------------------------------------------------------------------------- statistics during training
@dataclass(frozen=True)
class LayerStats:
    """One snapshot of a run, taken by the training loop (``Trainer(stats_every=k)``).

    ``grad_norms[l - 1]`` is ``‖dW[l]‖`` (Frobenius) of the cross-entropy on the whole training set
    at the parameters before iteration ``iteration``'s update, without dropout or augmentation;
    ``mean_activations[l - 1]`` the mean of ``A[l]`` over its units and the examples (for the output
    layer, the mean P(cat)), and ``zero_fractions[l - 1]`` the fraction of ``A[l]``'s values that are 0
    (ReLU off), for the hidden layers l = 1 … L-1 only.
    """

    iteration: int
    grad_norms: tuple
    mean_activations: tuple
    zero_fractions: tuple


def layer_stats(params, X: np.ndarray, Y: np.ndarray, iteration: int = 0, bn=None) -> LayerStats:
    """Per-layer gradient norms and activation statistics on ``X``: one :class:`LayerStats`.

    One forward and one backward pass of :mod:`catdnn.network` (the one copy of the math).

    Parameters
    ----------
    params : list of (W, b)
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    iteration : int
        Stored in the result (the training loop's 0-based index).
    bn : catdnn.network.BatchNorm, optional
        The network's batch norm, in training mode (``X``'s own μ and σ²).
    """
    AL, cache = forward(params, X, bn=bn)
    grads = backward(params, cache, Y, AL, bn=bn)[:len(params)]
    acts = [A_prev for A_prev, _Z in cache[1:]] + [AL]  # A[1] … A[L]
    return summarise_layers(iteration, [np.linalg.norm(dW) for dW, _db in grads], acts)


def summarise_layers(iteration: int, grad_norms, acts) -> LayerStats:
    """A :class:`LayerStats` from each layer's ``‖dW[l]‖`` and its activations ``A[1] … A[L]``
    (ndarrays of shape (n_l, m)); a solver that computes them its own way uses this too."""
    return LayerStats(
        iteration=int(iteration),
        grad_norms=tuple(float(g) for g in grad_norms),
        mean_activations=tuple(float(A.mean()) for A in acts),
        zero_fractions=tuple(float(np.mean(A == 0.0)) for A in acts[:-1]),
    )


# --------------------------------------------------------------------------- a convolutional net's insides
def filter_images(params, arch, layer: int = 1) -> np.ndarray:
    """Conv layer ``layer``'s 3×3 kernels as tiny images (:func:`catdnn.cnn.filters`), each normalised on
    its own with :func:`symmetric_normalise` (weight 0 is mid-grey). Layer 1's have the image's 3 colours;
    deeper layers' are shown as the mean over their input channels (grey).

    Returns
    -------
    ndarray of shape (C_l, 3, 3, 3) (layer 1) or (C_l, 3, 3) (deeper), uint8
    """
    k = np.asarray(cnn.filters(params, arch, layer), dtype=np.float64)  # (C_l, 3, 3, C_{l-1})
    if k.shape[-1] != 3:
        k = k.mean(axis=-1)
    return np.stack([np.rint(255.0 * symmetric_normalise(f)).astype(np.uint8) for f in k])


def feature_map_images(params, arch, x: np.ndarray, layer: int = 1, bn=None) -> np.ndarray:
    """One image's feature maps out of conv layer ``layer`` (:func:`catdnn.cnn.feature_maps`, after the ReLU,
    before pooling) as grey images, each scaled on its own (0 black, its maximum white).

    Parameters
    ----------
    x : ndarray of shape (n_x, 1), one image as a column
    bn : catdnn.network.BatchNorm, optional
        The model's batch norm (the running averages).

    Returns
    -------
    ndarray of shape (C_l, H_l, W_l), uint8
    """
    maps = np.asarray(cnn.feature_maps(params, arch, x, layer, bn=bn)[0], dtype=np.float64)  # (H, W, C)
    top = maps.max(axis=(0, 1))  # (C,)
    scaled = np.divide(maps, top, out=np.zeros_like(maps), where=top > 0)
    return np.rint(255.0 * scaled).astype(np.uint8).transpose(2, 0, 1)
