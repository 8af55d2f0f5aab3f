"""The convolutional net as a whole: parameters, forward, backward, predictions, gradient check.

* ``conv`` in a spec (:mod:`catdnn.arch`) is 3×3 convolution + ReLU + 2×2 max pooling
  (:mod:`catdnn.conv_layers`). ReLU and the maximum commute, and a channel's bias moves every value
  of a window alike (``max(z + b) = max(z) + b``), so the pooling is done first, on the convolution's
  products without their biases, and the biases and the ReLU on a quarter of the values:
  ``A = ReLU(maxpool(cols·Wᵀ) + bᵀ)``. Its gradient ``db`` is the sum of the pooled gradient.
* The first layer (few input channels, the largest maps) is computed by 2×2 blocks of outputs on 4×4
  patches (:func:`catdnn.conv_layers.conv_forward_blocks`): the same values from one larger, faster
  product, laid out by pooling windows; the other layers by 3×3 patches.
* After the last pooling the maps are flattened back into columns, ``F`` of shape
  ``(h·w·C, m)``, and the dense head is :func:`catdnn.network.forward` / :func:`~catdnn.network.backward`
  on them: the one copy of the dense math, whose ``input_grad`` gives ``dF`` for the layers below.
* Parameters are a list indexed by layer of ``(W, b)`` tuples, the convolutions first: conv layer
  ``l`` has ``W`` of shape ``(C_l, 9·C_{l-1})`` and ``b`` of shape ``(C_l, 1)``; then the dense
  layers as in :mod:`catdnn.network`. So :mod:`catdnn.optim`'s optimisers apply unchanged.
* The math follows the parameters' dtype: the ``cnn`` preset trains in float32 (course parity does
  not apply to this network and it is about twice as fast); the gradient checks use float64.

* Batch norm (optional, a :class:`catdnn.network.BatchNorm` over the conv layers' channels, then the
  dense head's hidden units): a conv layer's ``Z`` is normalised per channel over every position of
  every image of the batch (``N = m·H·W`` values), scaled by its ``γ`` and shifted by its ``β``, before
  the pooling; the dense head's hidden layers as in :mod:`catdnn.network`.

Training is the one loop's (:class:`catdnn.train.Trainer`), one step at a time by
:class:`catdnn.solvers.CnnSolver`.
"""

from __future__ import annotations

import numpy as np

from .arch import KERNEL, MAX_STEP_BYTES, Arch
from .conv_layers import (
    Workspace,
    bias_grad,
    conv_backward,
    conv_backward_blocks,
    conv_forward,
    conv_forward_blocks,
    downsample,
    padded,
    pool_backward,
    pool_forward,
    to_maps,
)
from .errors import ConfigError
from .network import (
    INITS,
    BatchNorm,
    batch_norm_backward,
    batch_norm_forward,
    cost_from_logits,
    l2_cost,
    mirror_average,
    relu,
    relu_backward,
)
from .network import backward as dense_backward
from .network import forward as dense_forward

#: Predictions go through the network in batches of at most this many images (fewer when one
#: image's maps are large: a batch stays within :data:`catdnn.arch.MAX_STEP_BYTES`).
PREDICT_BATCH = 256


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
    """What :func:`forward_maps` keeps for :func:`backward`: one ``(cols, Z, P, A)`` per conv layer
    (its patches, its convolution's products, their pooled maxima, and the layer's output
    ``ReLU(P + bᵀ)``; the first layer's ``Z`` laid out by pooling windows, :func:`conv_forward_blocks`);
    ``dense``, the dense head's :class:`catdnn.network.Cache`; ``shape``, the shape of the last maps;
    ``input_shape``, the input maps'."""

    __slots__ = ("dense", "shape", "input_shape", "bn", "bn_running")


def bn_channels(Z: np.ndarray, gamma, beta, epsilon: float, mu=None, var=None):
    """Batch norm of maps ``Z`` (m, H, W, C) per channel: :func:`catdnn.network.batch_norm_forward` on the
    ``(C, m·H·W)`` view; returns ``(Z̃ of shape (m, H, W, C), norm)``."""
    shape = Z.shape
    Zt, norm = batch_norm_forward(Z.reshape(-1, shape[-1]).T, gamma, beta, epsilon, mu, var)  # (C, m·H·W)
    return np.ascontiguousarray(Zt.T).reshape(shape), norm


def forward_maps(params: list, arch: Arch, A0: np.ndarray, *, bn: BatchNorm | None = None, running: bool = False,
                 ws: Workspace | None = None):
    """Forward propagation from input maps: ``[CONV -> POOL -> RELU] * n_conv -> dense head -> SIGMOID``.

    Parameters
    ----------
    params : list of (W, b), as :func:`init_cnn` makes them
    A0 : ndarray of shape (m, H, W, C), the images after the input step (:func:`to_input`)
    bn : BatchNorm, optional
        Batch norm of every conv layer (per channel) and every hidden dense layer, in that order:
        the batch's statistics, or with ``running`` the running averages (prediction).
    ws : Workspace, optional
        Arrays reused from step to step (:class:`catdnn.conv_layers.Workspace`); the cache then
        lives in them until the next step.

    Returns
    -------
    AL : ndarray of shape (1, m)
    cache : CnnCache
    """
    n_conv = len(arch.convs)
    cache = CnnCache()
    cache.bn = [] if bn is not None else None
    cache.bn_running = bool(running)
    cache.input_shape = A0.shape
    A, pad = A0, None
    for l, (W, b) in enumerate(params[:n_conv]):
        name = f"conv{l}."
        m, H, Wd, _ = A.shape
        blocks = l == 0  # the first layer by 2×2 blocks of outputs, its pooling windows (see the module docstring)
        if blocks:
            Z, cols = conv_forward_blocks(A, W, ws, name)  # (m·H/2·W/2, 4, C_l), without the biases
        else:
            Z, cols = conv_forward(A, W, None, pad, ws, name)  # (m, H, W, C_l), without the biases
        if bn is not None:  # Z̃ = γ·(Z − μ)/√(σ² + ε) + β per channel, of Z + b as the course writes it
            Z += b.T  # (training keeps b at 0, which the batch's μ cancels; a model file may hold another)
            stats = bn.running[l] if running else (None, None)
            Z, norm = bn_channels(Z, *bn.params[l], bn.epsilon, *stats)
            cache.bn.append(norm)
        P = pool_forward(Z, ws, name, blocks).reshape(m, H // 2, Wd // 2, W.shape[0])  # (m, H/2, W/2, C_l)
        # A[l] = ReLU(maxpool(conv(A[l-1])) + b), written inside the next layer's padding
        if l + 1 < n_conv:
            pad = padded(P.shape, P.dtype, ws, f"conv{l + 1}.pad")
            A = pad[:, 1:-1, 1:-1]
        else:
            A = np.empty_like(P)
        if bn is None:
            np.add(P, b.T, out=A)
            np.maximum(A, 0.0, out=A)
        else:
            np.maximum(P, 0.0, out=A)
        cache.append((cols, Z, P, A))
    cache.shape = A.shape
    F = A.reshape(A.shape[0], -1).T  # (h·w·C, m): one example per column, (row, col, channel) order
    tail = None if bn is None else bn.tail(n_conv)
    AL, cache.dense = dense_forward(params[n_conv:], F, bn=tail, running=running)
    return AL, cache


def backward(params: list, arch: Arch, cache: CnnCache, Y: np.ndarray, AL=None, *, lambd: float = 0.0,
             input_grad: bool = False, bn: BatchNorm | None = None, ws: Workspace | None = None):
    """Gradients of the mean cross-entropy (plus ``λ/(2m)·Σ‖W‖²`` over every layer when ``lambd``).

    The dense head's are :func:`catdnn.network.backward`'s, which also gives the gradient into the
    flattened maps; the conv layers' follow from it.

    Parameters
    ----------
    Y : ndarray of shape (1, m), of the parameters' dtype for speed

    input_grad : bool
        Also return the gradient into the input maps (for saliency maps).
    bn : BatchNorm, optional
        The batch norm of the forward pass that made the cache.
    ws : Workspace, optional
        Arrays reused from step to step (the gradients returned are fresh arrays).

    Returns
    -------
    list of (dW, db), the structure of ``params`` (then with ``bn``, ``(dγ, dβ)`` per normalised layer)
        With ``input_grad``, ``(grads, dA0)``, ``dA0`` of shape ``(m, H, W, C)`` like the input maps.
    """
    n_conv = len(arch.convs)
    m = Y.shape[1]
    tail = None if bn is None else bn.tail(n_conv)
    grads, dF = dense_backward(params[n_conv:], cache.dense, Y, AL, lambd=lambd, input_grad=True, bn=tail)
    n_dense = len(params) - n_conv
    bn_grads = [] if bn is None else [None] * n_conv + grads[n_dense:]
    grads = grads[:n_dense]
    if not n_conv:
        grads = grads + bn_grads
        return (grads, dF.T.reshape(m, *arch.image_shape)) if input_grad else grads
    conv_grads = [None] * n_conv
    dA = dF.T.reshape(cache.shape)  # (m, h, w, C): a fresh array (dF.T is not C-contiguous)
    for l in range(n_conv - 1, -1, -1):
        cols, Z, P, A = cache[l]
        W = params[l][0]
        dP = relu_backward(dA, A)  # through the ReLU (in place on dA): the gradient of P + bᵀ
        db = bias_grad(dP, m) if bn is None else np.zeros_like(params[l][1])  # b cancels in Z − μ
        blocks = l == 0  # as forward_maps lays it out
        if blocks:  # the windows' rows, (m·H/2·W/2, C_l)
            dP, P = dP.reshape(-1, P.shape[-1]), P.reshape(-1, P.shape[-1])
        dZ = pool_backward(dP, Z, P, ws, blocks)
        if bn is not None:  # back through the per-channel normalisation, over the (C, m·H·W) view
            shape = dZ.shape
            dZc, dgamma, dbeta = batch_norm_backward(dZ.reshape(-1, shape[-1]).T, bn.params[l][0], cache.bn[l],
                                                     cache.bn_running, examples=m)
            dZ = np.ascontiguousarray(dZc.T).reshape(shape)
            bn_grads[l] = (dgamma, dbeta)
        # the input gradient in one of two buffers, by turns: the layer above's is read until then
        name, wanted = f"grad{l % 2}.", input_grad or l > 0
        if blocks:
            dW, dA = conv_backward_blocks(dZ, cols, W, m, cache.input_shape, wanted, ws, name)
        else:
            dW, _, dA = conv_backward(dZ, cols, W, m, input_grad=wanted, ws=ws, name=name, bias=False)
        if lambd:
            dW += (lambd / m) * W
        conv_grads[l] = (dW, db)
    grads = conv_grads + grads + bn_grads
    return (grads, dA) if input_grad else grads


def logit_input_gradient(params: list, arch: Arch, x: np.ndarray, bn: BatchNorm | None = None) -> tuple:
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
    AL, cache = forward(params, arch, x, bn=bn, running=True)
    _grads, dA0 = backward(params, arch, cache, AL - 1.0, AL, input_grad=True, bn=bn)  # (1, s, s, C)
    f = arch.factor
    dx = np.repeat(np.repeat(dA0[0].astype(np.float64), f, axis=0), f, axis=1) / (f * f)  # (H, W, C)
    return float(AL[0, 0]), dx.reshape(-1)


def to_input(arch: Arch, X: np.ndarray, dtype=None) -> np.ndarray:
    """The network's input maps from image columns: ``(n_x, m)`` -> ``(m, s, s, C)`` at the arch's side."""
    Xs = downsample(X, arch.factor, arch.source, dtype)
    return to_maps(Xs, arch.image_shape)


def forward(params: list, arch: Arch, X: np.ndarray, *, bn: BatchNorm | None = None, running: bool = False):
    """Forward propagation from image columns ``X`` of shape ``(n_x, m)``: ``(AL (1, m), cache)``
    (``bn``, ``running``: as :func:`forward_maps`)."""
    return forward_maps(params, arch, to_input(arch, X, params[0][0].dtype), bn=bn, running=running)


def compute_cost(params: list, arch: Arch, X: np.ndarray, Y: np.ndarray, lambd: float = 0.0,
                 bn: BatchNorm | None = None) -> float:
    """Mean cross-entropy of the network on ``X`` ``(n_x, m)`` and ``Y`` ``(1, m)`` (+ the L2 term);
    with ``bn``, in training mode (the batch's statistics)."""
    _, cache = forward(params, arch, X, bn=bn)
    return cost_from_logits(cache.dense[-1][1], Y) + l2_cost(params, lambd, Y.shape[1])


def predict_batch(arch: Arch, itemsize: int) -> int:
    """Images per prediction batch: :data:`PREDICT_BATCH`, fewer when a batch's maps would pass
    :data:`catdnn.arch.MAX_STEP_BYTES` (at least 1)."""
    per_image = arch.forward_bytes(itemsize)
    return max(1, min(PREDICT_BATCH, MAX_STEP_BYTES // per_image if per_image else PREDICT_BATCH))


def predict_proba(params: list, arch: Arch, X: np.ndarray, tta: bool = False, batch: int | None = None,
                  bn: BatchNorm | None = None) -> np.ndarray:
    """P(cat) for every column of ``X`` (shape ``(n_x, m)``), in batches (default
    :func:`predict_batch`); returns ndarray of shape (m,).

    With ``tta``, the mean of P(cat) for each image and its mirror image; with ``bn``, batch norm
    with its running averages.
    """
    Xs = downsample(X, arch.factor, arch.source, params[0][0].dtype)  # (n_input, m)
    return _predict(params, arch, Xs.shape[1], lambda s, e: to_maps(Xs[:, s:e], arch.image_shape), tta, batch, bn)


def predict_proba_maps(params: list, arch: Arch, maps: np.ndarray, tta: bool = False, batch: int | None = None,
                       bn: BatchNorm | None = None) -> np.ndarray:
    """:func:`predict_proba` from the input maps (:func:`to_input`) of shape (m, s, s, C): a training run
    makes them once for all its accuracy measurements."""
    return _predict(params, arch, maps.shape[0], lambda s, e: maps[s:e], tta, batch, bn)


def _predict(params: list, arch: Arch, m: int, maps_of, tta: bool, batch: int | None, bn) -> np.ndarray:
    """P(cat) of ``m`` images whose input maps ``maps_of(start, end)`` gives batch by batch."""
    dtype = params[0][0].dtype
    batch = predict_batch(arch, dtype.itemsize) if batch is None else int(batch)
    out = np.empty(m, dtype=np.float64)
    ws = Workspace()  # the batches' patches and maps, reused from one forward pass to the next
    for s in range(0, m, batch):
        A0 = maps_of(s, s + batch)  # (k, s, s, C)
        p = forward_maps(params, arch, A0, bn=bn, running=True, ws=ws)[0][0]
        if tta:  # the mirror images: the width axis reversed (the pixels of augment.flip)
            pm = forward_maps(params, arch, np.ascontiguousarray(A0[:, :, ::-1]), bn=bn, running=True, ws=ws)[0][0]
            p = mirror_average(p, pm)
        out[s:s + batch] = p
    return out


def feature_maps(params: list, arch: Arch, X: np.ndarray, layer: int = 1, bn: BatchNorm | None = None) -> np.ndarray:
    """The ReLU of conv layer ``layer``'s output (1-based), before pooling: ndarray of shape (m, H, W, C_l)
    (with ``bn``, normalised with its running averages, as at prediction)."""
    if not 1 <= layer <= len(arch.convs):
        raise ConfigError(f"layer must be from 1 to {len(arch.convs)}, not {layer}")
    A = to_input(arch, X, params[0][0].dtype)
    for l, (W, b) in enumerate(params[:layer]):
        Z = conv_forward(A, W, b)[0]
        if bn is not None:
            Z = bn_channels(Z, *bn.params[l], bn.epsilon, *bn.running[l])[0]
        A = relu(Z) if l == layer - 1 else relu(pool_forward(Z))
    return A


def filters(params: list, arch: Arch, layer: int = 1) -> np.ndarray:
    """Conv layer ``layer``'s kernels as tiny images: ndarray of shape (C_l, 3, 3, C_{l-1})."""
    if not 1 <= layer <= len(arch.convs):
        raise ConfigError(f"layer must be from 1 to {len(arch.convs)}, not {layer}")
    W = params[layer - 1][0]
    return W.reshape(W.shape[0], KERNEL, KERNEL, -1)


def gradient_check(params: list, arch: Arch, X: np.ndarray, Y: np.ndarray, epsilon: float = 1e-6,
                   lambd: float = 0.0, bn: BatchNorm | None = None) -> float:
    """Relative error between :func:`backward` and central differences of the cost, over all
    parameters (float64; with ``bn``, γ and β too, in training mode): ``‖g - g_approx‖ / (‖g‖ + ‖g_approx‖)``.
    Tiny nets only."""
    params = [(W.astype(np.float64, copy=True), b.astype(np.float64, copy=True)) for W, b in params]
    if bn is not None:
        bn = bn.copy()
        bn.params = [(g.astype(np.float64), be.astype(np.float64)) for g, be in bn.params]
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    AL, cache = forward(params, arch, X, bn=bn)
    grads = backward(params, arch, cache, Y, AL, lambd=lambd, bn=bn)
    analytic = np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in grads])
    numeric = []
    for W, b in params + ([] if bn is None else bn.params):
        for P in (W, b):
            for i in np.ndindex(P.shape):  # in place, in ravel()'s (C) order, whatever P's memory order
                old = P[i]
                P[i] = old + epsilon
                plus = compute_cost(params, arch, X, Y, lambd, bn)
                P[i] = old - epsilon
                minus = compute_cost(params, arch, X, Y, lambd, bn)
                P[i] = old
                numeric.append((plus - minus) / (2 * epsilon))
    numeric = np.array(numeric)
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if denom == 0.0 else float(np.linalg.norm(analytic - numeric) / denom)
