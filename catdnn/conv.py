"""A small convolutional network in NumPy: 3×3 convolutions, 2×2 max pooling and a dense head.

Layout
------
* The network's input is the course's: ``X`` of shape ``(n_x, m)``, one 64×64×3 image per column
  flattened in (row, column, channel) order (:func:`catdnn.data.flatten_images`).
* **Feature maps are ``(m, H, W, C)``**: examples first, then row, column and channel. The input
  step turns columns into such maps (``X.T.reshape(m, H, W, C)``), averaging ``f×f`` blocks of
  pixels first when the architecture asks for a smaller input (``in32``: 64 px / 2).
* A convolution is one matrix product on the image's 3×3 patches (im2col): the patches of the
  padded maps, ``cols`` of shape ``(m·H·W, 9·C_in)`` with each row ordered (kernel row, kernel
  column, channel), times the kernels ``W`` of shape ``(C_out, 9·C_in)``:
  ``Z = cols · Wᵀ + bᵀ`` of shape ``(m·H·W, C_out)``, i.e. ``(m, H, W, C_out)``. Stride 1 and
  "same" zero padding keep ``H`` and ``W``; ``W[f].reshape(3, 3, C_in)`` is filter ``f`` as a tiny
  image.
* ``conv`` in a spec is 3×3 convolution + ReLU + 2×2 max pooling (stride 2). ReLU and the
  maximum commute, so the pooling is done first and the ReLU on a quarter of the values.
* After the last pooling the maps are flattened back into columns, ``F`` of shape
  ``(h·w·C, m)``, and the dense head is :func:`catdnn.network.forward` / :func:`~catdnn.network.backward`
  on them: the one copy of the dense math, whose ``input_grad`` gives ``dF`` for the layers below.
* Parameters are a list indexed by layer of ``(W, b)`` tuples, the convolutions first: conv layer
  ``l`` has ``W`` of shape ``(C_l, 9·C_{l-1})`` and ``b`` of shape ``(C_l, 1)``; then the dense
  layers as in :mod:`catdnn.network`. So :mod:`catdnn.optim`'s optimisers apply unchanged.
* The math follows the parameters' dtype: training uses float32 (course parity does not apply to
  this network and it is about twice as fast); the gradient checks use float64.

Architecture spec (one text for MLPs and CNNs, :func:`parse_arch`)
-----------------------------------------------------------------
Comma-separated steps, e.g. ``"in32,conv16,conv32,conv64,dense64"``:

* ``inN`` (optional, first): the network sees the image averaged down to ``N×N`` pixels (``N``
  divides 64); without it, the full 64 px.
* ``convN``: 3×3 convolution with ``N`` filters, ReLU, 2×2 max pooling (halves the side).
* ``denseN``: a fully connected layer of ``N`` units and ReLU, after the convolutions.

The sigmoid output unit is implied. Without ``conv`` steps the spec is an MLP: ``"dense20,dense7,dense5"``
is the course's deep network ``[12288, 20, 7, 5, 1]`` (:meth:`Arch.mlp_layers`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import augment
from .data import IMAGE_SHAPE
from .diagnose import EXPLODE_FACTOR
from .errors import ConfigError
from .network import INITS, cost_from_logits, l2_cost, mirror_average, relu, relu_backward, score
from .network import backward as dense_backward
from .network import forward as dense_forward
from .optim import OPTIMIZERS, SCHEDULES, MiniBatches, make_optimizer, seeded_generators

#: Limits of a spec, checked by :func:`parse_arch`.
MAX_FILTERS = 512
MAX_UNITS = 100_000
MAX_STEPS = 20
KERNEL = 3  # 3×3 convolutions
POOL = 2  # 2×2 max pooling, stride 2


# --------------------------------------------------------------------------- the architecture spec
@dataclass(frozen=True)
class Arch:
    """A parsed architecture: input side, conv filters per layer, dense units per layer.

    ``source`` is the shape of the images it takes, ``(H, W, C)`` (the dataset's 64×64×3).
    """

    input_px: int = IMAGE_SHAPE[0]
    convs: tuple = ()
    dense: tuple = ()
    source: tuple = IMAGE_SHAPE

    @property
    def is_cnn(self) -> bool:
        return bool(self.convs)

    @property
    def factor(self) -> int:
        """Block size of the input step: the source side over the input side (1 = no step)."""
        return self.source[0] // self.input_px

    @property
    def image_shape(self) -> tuple:
        """``(H, W, C)`` of the network's input images, after the input step."""
        return (self.input_px, self.input_px, self.source[2])

    @property
    def n_input(self) -> int:
        """Inputs per image after the input step (12288 for 64 px, 3072 for 32 px)."""
        return self.input_px * self.input_px * self.source[2]

    @property
    def map_shapes(self) -> list:
        """``(H, W, C)`` of the maps out of each conv layer (after pooling)."""
        side, out = self.input_px, []
        for c in self.convs:
            side //= POOL
            out.append((side, side, c))
        return out

    @property
    def n_features(self) -> int:
        """Size of the flattened maps fed to the dense head (the input size for an MLP)."""
        if not self.convs:
            return self.n_input
        h, w, c = self.map_shapes[-1]
        return h * w * c

    @property
    def dense_layers(self) -> tuple:
        """Layer sizes of the dense head, ``(n_features, n_1, ..., 1)``, as :mod:`catdnn.network` takes them."""
        return (self.n_features, *self.dense, 1)

    def mlp_layers(self) -> tuple:
        """An MLP's ``TrainConfig.layers``; raises :class:`ConfigError` for a CNN."""
        if self.convs:
            raise ConfigError(f"{self.text!r} is a convolutional net, not a list of layer sizes")
        return self.dense_layers

    @property
    def text(self) -> str:
        """The canonical spec, e.g. ``"in32,conv16,conv32,conv64,dense64"``."""
        steps = [f"in{self.input_px}"] if self.input_px != self.source[0] else []
        steps += [f"conv{c}" for c in self.convs] + [f"dense{n}" for n in self.dense]
        return ",".join(steps)

    def param_count(self) -> int:
        """Number of weights and biases."""
        n, c_prev = 0, self.source[2]
        for c in self.convs:
            n += c * (KERNEL * KERNEL * c_prev + 1)
            c_prev = c
        dims = self.dense_layers
        return n + sum(b * (a + 1) for a, b in zip(dims[:-1], dims[1:]))


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def parse_arch(text: str, source: tuple = IMAGE_SHAPE) -> Arch:
    """Parse an architecture spec such as ``"in32,conv16,conv32,conv64,dense64"`` (see the module doc).

    Case and spaces do not matter; semicolons count as commas. Raises :class:`ConfigError` naming
    the step that is wrong: an unknown step, a size that is not a whole number in range, ``in``
    not first or not dividing the image's side, a conv after a dense layer, or more poolings than
    the side can be halved.
    """
    spec = str(text)
    parts = [p.strip().lower() for p in spec.replace(";", ",").split(",")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if parts == [""]:
        raise ConfigError("the architecture is empty: give steps such as 'in32,conv16,conv32,dense64' "
                          "or 'dense20,dense7,dense5'")
    if len(parts) > MAX_STEPS:
        raise ConfigError(f"the architecture has {len(parts)} steps; at most {MAX_STEPS}")
    side = int(source[0])
    input_px, convs, dense = side, [], []
    for k, p in enumerate(parts):
        if p == "":
            raise ConfigError(f"empty step in the architecture {_short(spec)!r} (two commas in a row?)")
        kind = next((name for name in ("conv", "dense", "in") if p.startswith(name)), None)
        if kind is None:
            raise ConfigError(f"unknown step {_short(p)!r} in {_short(spec)!r}: use inN (input side in px), "
                              "convN (3×3 conv + ReLU + 2×2 max pool, N filters) or denseN (N units)")
        num = p[len(kind):].strip()
        if not (num.isascii() and num.isdigit()):
            raise ConfigError(f"step {_short(p)!r} in {_short(spec)!r} needs a whole number after "
                              f"{kind!r}, e.g. {kind}{ {'conv': 16, 'dense': 64, 'in': 32}[kind] }")
        n = int(num)
        if kind == "in":
            if k != 0:
                raise ConfigError(f"{p!r} must be the first step of {_short(spec)!r} (it sizes the input)")
            if n < 1 or n > side or side % n:
                divisors = ", ".join(str(d) for d in range(side, 0, -1) if side % d == 0 and d >= 4)
                raise ConfigError(f"input side {n} px must divide the images' {side} px: one of {divisors}")
            input_px = n
        elif kind == "conv":
            if dense:
                raise ConfigError(f"{p!r} comes after a dense layer in {_short(spec)!r}: the convolutions "
                                  "come first, then the dense layers")
            if not 1 <= n <= MAX_FILTERS:
                raise ConfigError(f"{p!r}: the number of filters must be from 1 to {MAX_FILTERS}")
            convs.append(n)
        else:
            if not 1 <= n <= MAX_UNITS:
                raise ConfigError(f"{p!r}: the number of units must be from 1 to {MAX_UNITS:,}")
            dense.append(n)
    s = input_px
    for j in range(len(convs)):
        if s % POOL or s < POOL:
            raise ConfigError(f"{len(convs)} conv steps halve the side {len(convs)} times, but "
                              f"{input_px} px becomes {s} px after {j}: use fewer conv steps or a larger input")
        s //= POOL
    return Arch(input_px, tuple(convs), tuple(dense), tuple(int(v) for v in source))


def arch_from_layers(layers) -> Arch:
    """The spec of an MLP given as ``TrainConfig.layers`` ``(12288, n_1, ..., 1)`` (full-size input)."""
    layers = tuple(int(n) for n in layers)
    if len(layers) < 2 or layers[-1] != 1:
        raise ConfigError(f"layers {list(layers)} must end with the single output unit 1")
    side = math.isqrt(layers[0] // IMAGE_SHAPE[2])
    if side * side * IMAGE_SHAPE[2] != layers[0] or IMAGE_SHAPE[0] % side:
        raise ConfigError(f"{layers[0]} inputs are not square RGB images whose side divides {IMAGE_SHAPE[0]}")
    return Arch(side, (), layers[1:-1], IMAGE_SHAPE)


# --------------------------------------------------------------------------- the input step
def downsample(X: np.ndarray, factor: int, image_shape=IMAGE_SHAPE, dtype=None) -> np.ndarray:
    """Images averaged over ``factor×factor`` blocks of pixels, still as columns.

    Parameters
    ----------
    X : ndarray of shape (H·W·C, m)
        Images of shape ``image_shape`` as columns (the course's layout).
    factor : int
        Block side; 1 returns ``X`` itself (converted to ``dtype`` when given).

    Returns
    -------
    ndarray of shape ((H/f)·(W/f)·C, m)
    """
    H, W, C = image_shape
    m = X.shape[1]
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    if factor == 1:
        return np.asarray(X, dtype=dtype)
    h, w = H // factor, W // factor
    maps = np.asarray(X, dtype=dtype).reshape(h, factor, w, factor, C, m)  # (row, col, channel, example)
    return maps.mean(axis=(1, 3), dtype=dtype).reshape(h * w * C, m)


def to_maps(X: np.ndarray, image_shape) -> np.ndarray:
    """Columns ``(H·W·C, m)`` as feature maps ``(m, H, W, C)`` (a contiguous copy)."""
    H, W, C = image_shape
    return np.ascontiguousarray(X.T).reshape(X.shape[1], H, W, C)


# --------------------------------------------------------------------------- layers
def im2col(A: np.ndarray) -> np.ndarray:
    """The 3×3 patches of ``A`` zero-padded by one pixel, one row per output position.

    Parameters
    ----------
    A : ndarray of shape (m, H, W, C)

    Returns
    -------
    cols : ndarray of shape (m·H·W, 9·C)
        Row ``(i, y, x)`` holds the patch centred on pixel ``(y, x)`` of image ``i``, ordered
        (kernel row, kernel column, channel).
    """
    m, H, W, C = A.shape
    P = np.pad(A, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = sliding_window_view(P, (KERNEL, KERNEL), axis=(1, 2))  # (m, H, W, C, 3, 3), a view
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(m * H * W, KERNEL * KERNEL * C)  # the one copy


def col2im(dcols: np.ndarray, shape: tuple) -> np.ndarray:
    """The adjoint of :func:`im2col`: each patch's gradient added back onto the pixels it came from.

    Parameters
    ----------
    dcols : ndarray of shape (m·H·W, 9·C)
    shape : (m, H, W, C)

    Returns
    -------
    ndarray of shape (m, H, W, C)
    """
    m, H, W, C = shape
    d = dcols.reshape(m, H, W, KERNEL, KERNEL, C)
    dP = np.zeros((m, H + 2, W + 2, C), dtype=dcols.dtype)
    for di in range(KERNEL):
        for dj in range(KERNEL):
            dP[:, di:di + H, dj:dj + W, :] += d[:, :, :, di, dj, :]
    return dP[:, 1:-1, 1:-1, :]


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray):
    """3×3 convolution, stride 1, same padding: ``Z = im2col(A_prev) · Wᵀ + bᵀ``.

    Parameters
    ----------
    A_prev : ndarray of shape (m, H, W, C_in)
    W : ndarray of shape (C_out, 9·C_in)
    b : ndarray of shape (C_out, 1)

    Returns
    -------
    Z : ndarray of shape (m, H, W, C_out)
    cols : ndarray of shape (m·H·W, 9·C_in), kept for the backward pass
    """
    m, H, Wd, _ = A_prev.shape
    cols = im2col(A_prev)
    Z = cols @ W.T  # (m·H·W, 9·C_in) @ (9·C_in, C_out) -> (m·H·W, C_out)
    Z += b.T
    return Z.reshape(m, H, Wd, W.shape[0]), cols


def conv_backward(dZ: np.ndarray, cols: np.ndarray, W: np.ndarray, m: int, input_grad: bool = True):
    """Gradients of a 3×3 convolution.

    ``dZ`` is the gradient of the *summed* cost over the batch (as :func:`catdnn.network.backward`
    passes it down); the parameter gradients are divided by ``m`` like the dense layers'.

    Parameters
    ----------
    dZ : ndarray of shape (m, H, W, C_out)
    cols : ndarray of shape (m·H·W, 9·C_in), from :func:`conv_forward`
    W : ndarray of shape (C_out, 9·C_in)
    m : int
        The batch size the cost is averaged over.
    input_grad : bool
        Also compute ``dA_prev`` (not needed for the first layer).

    Returns
    -------
    dW : ndarray of shape (C_out, 9·C_in)
    db : ndarray of shape (C_out, 1)
    dA_prev : ndarray of shape (m, H, W, C_in), or None without ``input_grad``
    """
    mb, H, Wd, C_out = dZ.shape
    dZ2 = dZ.reshape(mb * H * Wd, C_out)
    dW = dZ2.T @ cols  # (C_out, m·H·W) @ (m·H·W, 9·C_in) -> (C_out, 9·C_in)
    dW /= m
    db = dZ2.sum(axis=0).reshape(C_out, 1)
    db /= m
    dA_prev = None
    if input_grad:
        dcols = dZ2 @ W  # (m·H·W, C_out) @ (C_out, 9·C_in) -> (m·H·W, 9·C_in)
        dA_prev = col2im(dcols, (mb, H, Wd, W.shape[1] // (KERNEL * KERNEL)))
    return dW, db, dA_prev


def pool_forward(Z: np.ndarray) -> np.ndarray:
    """2×2 max pooling, stride 2: ndarray of shape (m, H, W, C) -> (m, H/2, W/2, C)."""
    m, H, W, C = Z.shape
    return Z.reshape(m, H // POOL, POOL, W // POOL, POOL, C).max(axis=(2, 4))


def pool_backward(dP: np.ndarray, Z: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Gradient of 2×2 max pooling: each window's gradient goes to its maximum.

    When several values of a window tie for the maximum (zero padding makes exact ties), they
    share the gradient equally, which is a valid subgradient and keeps the total right.

    Parameters
    ----------
    dP : ndarray of shape (m, H/2, W/2, C)
    Z : ndarray of shape (m, H, W, C), the pooling's input
    P : ndarray of shape (m, H/2, W/2, C), its output

    Returns
    -------
    dZ : ndarray of shape (m, H, W, C)
    """
    m, H, W, C = Z.shape
    Zr = Z.reshape(m, H // POOL, POOL, W // POOL, POOL, C)
    hit = Zr == P[:, :, None, :, None, :]  # where each window's maximum is
    share = hit.sum(axis=(2, 4), dtype=Z.dtype)
    dZ = hit * (dP / share)[:, :, None, :, None, :]
    return dZ.reshape(m, H, W, C)


# --------------------------------------------------------------------------- the whole network
def param_shapes(arch: Arch) -> list:
    """The shapes of the parameters, ``[(W shape, b shape), ...]`` by layer: conv layer ``l``
    ``(C_l, 9·C_{l-1})`` and ``(C_l, 1)``, then the dense layers ``(n_l, n_{l-1})`` and ``(n_l, 1)``."""
    shapes, c_prev = [], arch.source[2]
    for c in arch.convs:
        shapes.append(((c, KERNEL * KERNEL * c_prev), (c, 1)))
        c_prev = c
    dims = arch.dense_layers
    return shapes + [((n, n_prev), (n, 1)) for n_prev, n in zip(dims[:-1], dims[1:])]


def init_cnn(arch: Arch, init: str = "he", seed: int = 1, dtype=np.float32) -> list:
    """Initial parameters, drawn layer by layer from ``np.random.RandomState(seed)`` with the
    scheme ``init`` of :data:`catdnn.network.INITS` (fan-in ``9·C_in`` for a convolution).

    Returns
    -------
    list of (W, b)
        Conv layers ``W`` ``(C_l, 9·C_{l-1})``, ``b`` ``(C_l, 1)``; then dense ``W`` ``(n_l, n_{l-1})``,
        ``b`` ``(n_l, 1)``; biases zero.
    """
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    draw, rng = INITS[init], np.random.RandomState(int(seed))
    params, c_prev = [], arch.source[2]
    for c in arch.convs:
        params.append((draw(rng, c, KERNEL * KERNEL * c_prev).astype(dtype), np.zeros((c, 1), dtype)))
        c_prev = c
    dims = arch.dense_layers
    for n_prev, n in zip(dims[:-1], dims[1:]):
        params.append((draw(rng, n, n_prev).astype(dtype), np.zeros((n, 1), dtype)))
    return params


class CnnCache(list):
    """What :func:`forward_maps` keeps for :func:`backward`: one ``(cols, Z, P)`` per conv layer
    (its patches, its convolution's output and the pooled maps before the ReLU); ``dense``, the
    dense head's :class:`catdnn.network.Cache`; ``shape``, the shape of the last maps."""

    __slots__ = ("dense", "shape")


def forward_maps(params: list, arch: Arch, A0: np.ndarray):
    """Forward propagation from input maps: ``[CONV -> POOL -> RELU] * n_conv -> dense head -> SIGMOID``.

    Parameters
    ----------
    params : list of (W, b), as :func:`init_cnn` makes them
    A0 : ndarray of shape (m, H, W, C), the images after the input step (:func:`to_input`)

    Returns
    -------
    AL : ndarray of shape (1, m)
    cache : CnnCache
    """
    n_conv = len(arch.convs)
    cache = CnnCache()
    A = A0
    for W, b in params[:n_conv]:
        Z, cols = conv_forward(A, W, b)  # (m, H, W, C_l)
        P = pool_forward(Z)  # (m, H/2, W/2, C_l)
        A = relu(P)  # A[l] = ReLU(maxpool(conv(A[l-1])))
        cache.append((cols, Z, P))
    cache.shape = A.shape
    F = A.reshape(A.shape[0], -1).T  # (h·w·C, m): one example per column, (row, col, channel) order
    AL, cache.dense = dense_forward(params[n_conv:], F)
    return AL, cache


def backward(params: list, arch: Arch, cache: CnnCache, Y: np.ndarray, AL=None, *, lambd: float = 0.0,
             input_grad: bool = False):
    """Gradients of the mean cross-entropy (plus ``λ/(2m)·Σ‖W‖²`` over every layer when ``lambd``).

    The dense head's are :func:`catdnn.network.backward`'s, which also gives the gradient into the
    flattened maps; the conv layers' follow from it.

    Parameters
    ----------
    Y : ndarray of shape (1, m), of the parameters' dtype for speed

    input_grad : bool
        Also return the gradient into the input maps (for saliency maps).

    Returns
    -------
    list of (dW, db), the structure of ``params``
        With ``input_grad``, ``(grads, dA0)``, ``dA0`` of shape ``(m, H, W, C)`` like the input maps.
    """
    n_conv = len(arch.convs)
    m = Y.shape[1]
    grads, dF = dense_backward(params[n_conv:], cache.dense, Y, AL, lambd=lambd, input_grad=True)
    if not n_conv:
        return (grads, dF.T.reshape(m, *arch.image_shape)) if input_grad else grads
    conv_grads = [None] * n_conv
    dA = dF.T.reshape(cache.shape)  # (m, h, w, C): a fresh array (dF.T is not C-contiguous)
    for l in range(n_conv - 1, -1, -1):
        cols, Z, P = cache[l]
        W = params[l][0]
        dP = relu_backward(dA, P)  # through the ReLU (in place on dA)
        dZ = pool_backward(dP, Z, P)
        dW, db, dA = conv_backward(dZ, cols, W, m, input_grad=input_grad or l > 0)
        if lambd:
            dW += (lambd / m) * W
        conv_grads[l] = (dW, db)
    return (conv_grads + grads, dA) if input_grad else conv_grads + grads


def logit_input_gradient(params: list, arch: Arch, x: np.ndarray) -> tuple:
    """P(cat) of one image and the gradient of its logit ``Z[L]`` with respect to the image's pixels.

    :func:`backward` with ``input_grad`` (``Y = A[L] − 1``, so the fused output delta is 1), then
    through the input step: each of the image's pixels gets ``1/f²`` of its ``f×f`` block's gradient.

    Parameters
    ----------
    x : ndarray of shape (n_x, 1), one image as a column

    Returns
    -------
    p : float
    dx : ndarray of shape (n_x,), float64, in the column's (row, column, channel) order
    """
    AL, cache = forward(params, arch, x)
    _grads, dA0 = backward(params, arch, cache, AL - 1.0, AL, input_grad=True)  # (1, s, s, C)
    f = arch.factor
    dx = np.repeat(np.repeat(dA0[0].astype(np.float64), f, axis=0), f, axis=1) / (f * f)  # (H, W, C)
    return float(AL[0, 0]), dx.reshape(-1)


def to_input(arch: Arch, X: np.ndarray, dtype=None) -> np.ndarray:
    """The network's input maps from image columns: ``(n_x, m)`` -> ``(m, s, s, C)`` at the arch's side."""
    Xs = downsample(X, arch.factor, arch.source, dtype)
    return to_maps(Xs, arch.image_shape)


def forward(params: list, arch: Arch, X: np.ndarray):
    """Forward propagation from image columns ``X`` of shape ``(n_x, m)``: ``(AL (1, m), cache)``."""
    return forward_maps(params, arch, to_input(arch, X, params[0][0].dtype))


def compute_cost(params: list, arch: Arch, X: np.ndarray, Y: np.ndarray, lambd: float = 0.0) -> float:
    """Mean cross-entropy of the network on ``X`` ``(n_x, m)`` and ``Y`` ``(1, m)`` (+ the L2 term)."""
    _, cache = forward(params, arch, X)
    return cost_from_logits(cache.dense[-1][1], Y) + l2_cost(params, lambd, Y.shape[1])


def predict_proba(params: list, arch: Arch, X: np.ndarray, tta: bool = False, batch: int = 256) -> np.ndarray:
    """P(cat) for every column of ``X`` (shape ``(n_x, m)``), in batches; returns ndarray of shape (m,).

    With ``tta``, the mean of P(cat) for each image and its mirror image.
    """
    dtype = params[0][0].dtype
    Xs = downsample(X, arch.factor, arch.source, dtype)  # (n_input, m)
    out = np.empty(X.shape[1], dtype=np.float64)
    for s in range(0, X.shape[1], batch):
        cols = Xs[:, s:s + batch]
        p = forward_maps(params, arch, to_maps(cols, arch.image_shape))[0][0]
        if tta:
            pm = forward_maps(params, arch, to_maps(augment.flip(cols, arch.image_shape), arch.image_shape))[0][0]
            p = mirror_average(p, pm)
        out[s:s + batch] = p
    return out


def feature_maps(params: list, arch: Arch, X: np.ndarray, layer: int = 1) -> np.ndarray:
    """The ReLU of conv layer ``layer``'s output (1-based), before pooling: ndarray of shape (m, H, W, C_l)."""
    if not 1 <= layer <= len(arch.convs):
        raise ConfigError(f"layer must be from 1 to {len(arch.convs)}, not {layer}")
    A = to_input(arch, X, params[0][0].dtype)
    for W, b in params[:layer - 1]:
        A = relu(pool_forward(conv_forward(A, W, b)[0]))
    W, b = params[layer - 1]
    return relu(conv_forward(A, W, b)[0])


def filters(params: list, arch: Arch, layer: int = 1) -> np.ndarray:
    """Conv layer ``layer``'s kernels as tiny images: ndarray of shape (C_l, 3, 3, C_{l-1})."""
    if not 1 <= layer <= len(arch.convs):
        raise ConfigError(f"layer must be from 1 to {len(arch.convs)}, not {layer}")
    W = params[layer - 1][0]
    return W.reshape(W.shape[0], KERNEL, KERNEL, -1)


def gradient_check(params: list, arch: Arch, X: np.ndarray, Y: np.ndarray, epsilon: float = 1e-6,
                   lambd: float = 0.0) -> float:
    """Relative error between :func:`backward` and central differences of the cost, over all
    parameters (float64): ``‖g - g_approx‖ / (‖g‖ + ‖g_approx‖)``. Tiny nets only."""
    params = [(W.astype(np.float64, copy=True), b.astype(np.float64, copy=True)) for W, b in params]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    AL, cache = forward(params, arch, X)
    grads = backward(params, arch, cache, Y, AL, lambd=lambd)
    analytic = np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in grads])
    numeric = []
    for W, b in params:
        for P in (W, b):
            flat = P.reshape(-1)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + epsilon
                plus = compute_cost(params, arch, X, Y, lambd)
                flat[i] = old - epsilon
                minus = compute_cost(params, arch, X, Y, lambd)
                flat[i] = old
                numeric.append((plus - minus) / (2 * epsilon))
    numeric = np.array(numeric)
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if denom == 0.0 else float(np.linalg.norm(analytic - numeric) / denom)


# --------------------------------------------------------------------------- training settings
@dataclass(frozen=True)
class ConvConfig:
    """A CNN's training run. The field names are :class:`catdnn.config.TrainConfig`'s, plus ``arch``
    and ``dtype``; the defaults are the ``cnn`` preset (see :data:`CNN_PRESETS`)."""

    arch: str = "in32,conv16,conv32,conv64,dense64"  # the architecture spec, see parse_arch
    learning_rate: float = 0.002  # Adam's α
    iterations: int = 350  # mini-batch steps: 50 epochs of 7 batches of 32 (209 images)
    init: str = "he"  # weight scale by name, see catdnn.network.INITS
    seed: int = 1  # the weights (RandomState) and the run's other draws (optim.seeded_generators)
    l2: float = 0.0  # L2 λ over every layer's weights
    batch_size: int = 32  # examples per iteration, reshuffled every epoch; 0 = all of them
    optimizer: str = "adam"  # see catdnn.optim.OPTIMIZERS
    beta: float = 0.9  # momentum's β
    beta1: float = 0.9  # Adam's β1
    beta2: float = 0.999  # Adam's β2
    epsilon: float = 1e-8  # Adam's ε
    schedule: str = "constant"  # see catdnn.optim.SCHEDULES
    decay: float = 0.0
    decay_every: int = 1
    flip: bool = True  # training: mirror each image with probability 1/2
    shift: int = 4  # training: shift each image by up to this many pixels (of the network's input) each way
    tta: bool = True  # prediction: the mean of P(cat) for the image and its mirror image
    dtype: str = "float32"  # "float32" (fast) or "float64"

    def parsed(self) -> Arch:
        return parse_arch(self.arch)

    def validate(self) -> ConvConfig:
        """Raise :class:`ConfigError` with a clear message if this run is impossible; return self."""
        arch = self.parsed()
        if not arch.is_cnn:
            raise ConfigError(f"{self.arch!r} has no conv step: train an MLP with catdnn.train")
        checks = [
            ("learning_rate", 0.0, 100.0, True), ("l2", 0.0, 1e4, False), ("decay", 0.0, 1e6, False),
            ("beta", 0.0, 1.0, True), ("beta1", 0.0, 1.0, True), ("beta2", 0.0, 1.0, True),
            ("epsilon", 0.0, 1.0, True),
        ]
        for name, low, high, open_low in checks:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(v)) or (v <= low if open_low else v < low) or v > high:
                raise ConfigError(f"{name} must be a number {'above' if open_low else 'from'} {low:g} "
                                  f"{'and at most' if open_low else 'to'} {high:g}, not {v!r}")
        for name, low, high in (("iterations", 1, 1_000_000), ("seed", 0, 2**32 - 1), ("batch_size", 0, 10_000_000),
                                ("decay_every", 1, 1_000_000), ("shift", 0, arch.input_px // 2)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= high:
                raise ConfigError(f"{name} must be a whole number from {low} to {high:,}, not {v!r}")
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("init", INITS),
                              ("dtype", ("float32", "float64"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ConvConfig:
        """A config from :meth:`to_dict`'s output; unknown keys are refused."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown CNN setting(s): {', '.join(unknown)}")
        return cls(**d).validate()


#: The CNN preset(s), by the names the CLI and the dashboard will offer next to "two-layer" and "deep".
CNN_PRESETS: dict[str, ConvConfig] = {"cnn": ConvConfig()}


def iterations_for(epochs: int, m: int, batch_size: int) -> int:
    """Iterations that make ``epochs`` passes over ``m`` examples in batches of ``batch_size`` (0 = all)."""
    per_epoch = 1 if batch_size <= 0 or batch_size >= m else -(-m // batch_size)
    return int(epochs) * per_epoch


# --------------------------------------------------------------------------- training
@dataclass
class ConvTrainer:
    """A CNN training run with the interface of :class:`catdnn.train.Trainer`: :meth:`run` yields a
    :class:`catdnn.train.Progress` after every mini-batch step and can be stopped between any two
    (stop consuming it); calling it again continues as an uninterrupted run would.

    Parameters
    ----------
    config : ConvConfig (or any object with its fields)
    X, Y : ndarrays of shape (12288, m) and (1, m), the training images as columns
    X_test, Y_test : optional, for the accuracies reported every ``accuracy_every`` iterations
    cost_every : int
        Report the mini-batch's cost every this many iterations (and at the first and the last).
    accuracy_every : int
        Also measure train/test accuracy every this many iterations; 0 = never during the run.
    """

    config: ConvConfig
    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    cost_every: int = 1
    accuracy_every: int = 0
    classes: tuple = ("non-cat", "cat")
    history: list = field(default_factory=list)  # [(iteration, cost)]
    accuracy_history: list = field(default_factory=list)  # [(iteration, train_acc, test_acc)]
    status: str = "ready"  # ready | running | stopped | finished | diverged
    message: str = ""
    iterations_done: int = 0
    elapsed: float = 0.0

    def __post_init__(self):
        X, Y = self.X, self.Y
        self.config.validate()
        self.arch = self.config.parsed()
        if X.ndim != 2 or Y.shape != (1, X.shape[1]) or X.shape[0] != self.arch.source[0] * self.arch.source[1] * 3:
            raise ConfigError(f"X must be (12288, m) images and Y (1, m); got {X.shape} and {Y.shape}")
        if (self.X_test is None) != (self.Y_test is None):
            raise ConfigError("give both X_test and Y_test, or neither")
        if int(self.cost_every) < 1:
            raise ConfigError("cost_every must be at least 1")
        cfg = self.config
        self.dtype = np.dtype(cfg.dtype)
        self._params = init_cnn(self.arch, cfg.init, cfg.seed, self.dtype)
        self._rngs = seeded_generators(cfg.seed)
        self._Xin = downsample(X, self.arch.factor, self.arch.source, self.dtype)  # (n_input, m), once
        self._Y = np.asarray(Y, dtype=self.dtype)
        self._batches = MiniBatches(X.shape[1], int(cfg.batch_size), self._rngs["batches"])
        self._optimizer = make_optimizer(cfg)
        self._state = self._optimizer.init(self._params)

    @property
    def epochs_done(self) -> float:
        return self.iterations_done / self._batches.per_epoch

    def _step(self, need_cost: bool):
        cfg, arch = self.config, self.arch
        index, epoch = self._batches.next()
        lr = SCHEDULES[cfg.schedule](float(cfg.learning_rate), epoch, float(cfg.decay), int(cfg.decay_every))
        Xb = self._Xin if index is None else self._Xin[:, index]  # (n_input, k)
        Yb = self._Y if index is None else self._Y[:, index]
        if cfg.flip or cfg.shift:
            d = augment.draw(self._rngs["augment"], Xb.shape[1], bool(cfg.flip), int(cfg.shift))
            Xb = augment.apply(Xb, d, arch.image_shape)
        AL, cache = forward_maps(self._params, arch, to_maps(Xb, arch.image_shape))
        ZL = cache.dense[-1][1]
        if not np.isfinite(ZL).all():
            return float("nan"), epoch, lr
        cost = cost_from_logits(ZL, Yb) + l2_cost(self._params, float(cfg.l2), Yb.shape[1]) if need_cost else None
        grads = backward(self._params, arch, cache, Yb, AL, lambd=float(cfg.l2))
        self._optimizer.update(self._params, grads, self._state, lr)
        return cost, epoch, lr

    def run(self) -> Iterator:
        """Train until done, yielding a :class:`catdnn.train.Progress` after every iteration."""
        from .train import Progress  # here, so that train may one day import this module

        cfg = self.config
        last = cfg.iterations - 1
        ce, ae = int(self.cost_every), int(self.accuracy_every)
        self.status = "running"
        first_cost = self.history[0][1] if self.history else None
        t0 = time.perf_counter() - self.elapsed
        try:
            for i in range(self.iterations_done, cfg.iterations):
                need_cost = i % ce == 0 or i == last
                with np.errstate(over="ignore", invalid="ignore"):
                    cost, epoch, lr = self._step(need_cost)
                if cost is not None:
                    first_cost = cost if first_cost is None else first_cost
                    if not math.isfinite(cost) or cost > EXPLODE_FACTOR * max(first_cost, 1.0):
                        self.status = "diverged"
                        self.message = (f"training diverged at iteration {i} (cost {cost:.4g}) with learning "
                                        f"rate {cfg.learning_rate:g}. Try a smaller learning rate "
                                        f"(e.g. {cfg.learning_rate / 10:g}).")
                        self.elapsed = time.perf_counter() - t0
                        return
                    self.history.append((i, cost))
                self.iterations_done = i + 1
                train_acc = test_acc = None
                if ae > 0 and (i % ae == 0 or i == last):
                    train_acc = score(self.predict_proba(self.X), self.Y)
                    if self.X_test is not None:
                        test_acc = score(self.predict_proba(self.X_test), self.Y_test)
                    self.accuracy_history.append((i, train_acc, test_acc))
                self.elapsed = time.perf_counter() - t0
                yield Progress(i, cfg.iterations, cost, train_acc, test_acc, self.elapsed, epoch, lr)
            self.status = "finished"
            self.message = f"finished {cfg.iterations} iterations in {self.elapsed:.2f} s"
        finally:
            if self.status == "running":
                self.status = "stopped"
                self.message = f"stopped after {self.iterations_done} of {cfg.iterations} iterations"

    def params(self, copy: bool = True) -> list:
        """The current parameters, list of ``(W, b)`` (a copy unless ``copy=False``)."""
        return [(W.copy(), b.copy()) for W, b in self._params] if copy else self._params

    def predict_proba(self, X: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """P(cat) of the current network for image columns ``X`` ``(12288, m)``; shape (m,)."""
        tta = bool(self.config.tta) if tta is None else tta
        return predict_proba(self._params, self.arch, X, tta=tta)


def fit_cnn(config: ConvConfig, X, Y, **options) -> ConvTrainer:
    """Train to the end and return the finished :class:`ConvTrainer`; raises :class:`ConfigError` on divergence."""
    trainer = ConvTrainer(config, X, Y, **options)
    for _ in trainer.run():
        pass
    if trainer.status == "diverged":
        raise ConfigError(trainer.message)
    return trainer


def preset(name: str = "cnn", **overrides) -> ConvConfig:
    """A CNN preset with some fields replaced (None values are ignored)."""
    if name not in CNN_PRESETS:
        raise ConfigError(f"unknown CNN preset {name!r}: choose one of {', '.join(CNN_PRESETS)}")
    return replace(CNN_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}).validate()
