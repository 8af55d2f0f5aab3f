"""The convolutional net's layers: the input step, 3×3 convolution by im2col and 2×2 max pooling.

Layout
------
* The network's input is the course's: ``X`` of shape ``(n_x, m)``, one 64×64×3 image per column
  flattened in (row, column, channel) order (:func:`catdnn.data.flatten_images`).
* **Feature maps are ``(m, H, W, C)``**: examples first, then row, column and channel. The input
  step turns columns into such maps (:func:`to_maps`), averaging ``f×f`` blocks of pixels first
  when the architecture asks for a smaller input (:func:`downsample`; ``in32``: 64 px / 2).
* A convolution is one matrix product on the image's 3×3 patches (im2col): the patches of the
  padded maps, ``cols`` of shape ``(m·H·W, 9·C_in)`` with each row ordered (kernel row, kernel
  column, channel), times the kernels ``W`` of shape ``(C_out, 9·C_in)``:
  ``Z = cols · Wᵀ + bᵀ`` of shape ``(m·H·W, C_out)``, i.e. ``(m, H, W, C_out)``. Stride 1 and
  "same" zero padding keep ``H`` and ``W``; ``W[f].reshape(3, 3, C_in)`` is filter ``f`` as a tiny
  image.
* Pooling is 2×2, stride 2: each window's maximum; its gradient goes to the maximum.

The network that stacks these layers is :mod:`catdnn.cnn`; the spec that says how is :mod:`catdnn.arch`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .arch import KERNEL, POOL
from .data import IMAGE_SHAPE


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


# --------------------------------------------------------------------------- the layers
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


def col2im(dZ2: np.ndarray, W: np.ndarray, shape: tuple) -> np.ndarray:
    """The gradient into a convolution's input: ``dcols = dZ2 · W`` (the gradient of :func:`im2col`'s
    patches), each patch's part added back onto the pixels it came from (the adjoint of :func:`im2col`).

    ``dcols`` is made one kernel offset at a time, ``dZ2 · W_k`` (``W_k`` the offset's ``C_in``
    columns of ``W``), into one reused buffer, so that each addition runs over whole image rows
    instead of ``C_in`` values at a time; the sums are the same as adding the columns of one
    ``dZ2 · W`` product, offset after offset.

    Parameters
    ----------
    dZ2 : ndarray of shape (m·H·W, C_out)
    W : ndarray of shape (C_out, 9·C_in)
    shape : (m, H, W, C_in)

    Returns
    -------
    ndarray of shape (m, H, W, C_in)
    """
    m, H, Wd, C = shape
    dP = np.zeros((m, H + 2, Wd + 2, C), dtype=dZ2.dtype)  # the padded input's gradient
    Wk = W.reshape(W.shape[0], KERNEL * KERNEL, C)  # (C_out, 9, C_in): the kernel offsets
    part = np.empty((m * H * Wd, C), dtype=dZ2.dtype)
    for k in range(KERNEL * KERNEL):
        di, dj = divmod(k, KERNEL)
        np.matmul(dZ2, Wk[:, k], out=part)  # (m·H·W, C_out) @ (C_out, C_in) -> (m·H·W, C_in)
        dP[:, di:di + H, dj:dj + Wd] += part.reshape(m, H, Wd, C)
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
        dA_prev = col2im(dZ2, W, (mb, H, Wd, W.shape[1] // (KERNEL * KERNEL)))  # dZ2 · W, back onto the pixels
    return dW, db, dA_prev


def pool_forward(Z: np.ndarray) -> np.ndarray:
    """2×2 max pooling, stride 2: ndarray of shape (m, H, W, C) -> (m, H/2, W/2, C).

    The maximum of the row pairs (whole rows at a time), then of the column pairs of that: two
    element-wise maxima instead of a reduction over two strided axes (the same values)."""
    rows = np.maximum(Z[:, 0::POOL], Z[:, 1::POOL])  # (m, H/2, W, C)
    return np.maximum(rows[:, :, 0::POOL], rows[:, :, 1::POOL])


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
    share = np.add(hit[:, :, 0, :, 0], hit[:, :, 0, :, 1], dtype=Z.dtype)  # how many tie, (m, H/2, W/2, C)
    share += hit[:, :, 1, :, 0]
    share += hit[:, :, 1, :, 1]
    np.divide(dP, share, out=share)  # each maximum's part
    dZ = np.multiply(hit, share[:, :, None, :, None, :], dtype=Z.dtype)
    return dZ.reshape(m, H, W, C)
