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
* The first layer computes its outputs by 2×2 blocks (:func:`conv_forward_blocks`): the 4×4 patch
  under a block (``16·C_in`` values) times the kernels placed at the block's four offsets
  (:func:`block_weights`, ``(16·C_in, 4·C_out)``) gives the block's four outputs, the same values as
  the 3×3 product; with 3 input channels that product is larger and faster, its patches fewer, and
  its output rows are the pooling's windows.
* Pooling is 2×2, stride 2: each window's maximum; its gradient goes to the maximum.

The network that stacks these layers is :mod:`catdnn.cnn`; the spec that says how is :mod:`catdnn.arch`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .arch import KERNEL, PLANAR_CHANNELS, POOL
from .data import IMAGE_SHAPE

#: The four positions of a 2×2 pooling window, (row, column).
WINDOW = ((0, 0), (0, 1), (1, 0), (1, 1))


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


# --------------------------------------------------------------------------- reused arrays
class Workspace:
    """The arrays of a training step, reused from one step to the next instead of allocated afresh.

    * :meth:`scratch` gives memory kept under a name, grown when a larger array is asked for; its
      values are whatever was last written. The forward pass keeps its patches and maps for the
      backward pass under one name per layer; the backward pass's temporaries share one name
      across the layers (each is dead before the next layer needs it).
    * :meth:`kept` gives an array made with zeros once and only ever written inside (a padded
      buffer, whose border stays zero). ``axis`` is the batch's axis: a smaller batch (an epoch's
      last) gets the first images of the array kept for the larger one, with the same layout.

    Whoever holds a workspace must not keep what it gives past the next step
    (:class:`catdnn.solvers.CnnSolver` keeps none). Without one (``ws=None`` everywhere) every array
    is fresh.
    """

    def __init__(self):
        self._flat: dict = {}
        self._kept: dict = {}

    def scratch(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` in the memory kept under ``name``."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        flat = self._flat.get(name)
        if flat is None or flat.nbytes < nbytes:
            flat = self._flat[name] = np.empty(nbytes, np.uint8)
        return flat[:nbytes].view(dtype).reshape(shape)

    def kept(self, name: str, shape: tuple, dtype, axis: int = 0) -> np.ndarray:
        """The array kept under ``name`` (zeros when made), or its first ``shape[axis]`` along ``axis``."""
        a = self._kept.get(name)
        dtype = np.dtype(dtype)
        fits = (a is not None and a.dtype == dtype and a.ndim == len(shape) and a.shape[axis] >= shape[axis]
                and all(n == k for i, (n, k) in enumerate(zip(a.shape, shape)) if i != axis))
        if not fits:
            a = self._kept[name] = np.zeros(shape, dtype)
        return a[(slice(None),) * axis + (slice(0, shape[axis]),)]

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(a.nbytes for a in self._flat.values()) + sum(a.nbytes for a in self._kept.values())


def _array(ws: Workspace | None, name: str, shape: tuple, dtype, zero: bool = False) -> np.ndarray:
    """A scratch array of ``ws`` (zeroed when ``zero``), or a fresh one (zeros when ``zero``)."""
    if ws is None:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    a = ws.scratch(name, shape, dtype)
    if zero:
        a.fill(0)
    return a


def padded(shape: tuple, dtype, ws: Workspace | None = None, name: str = "pad") -> np.ndarray:
    """An array of shape ``(m, H+2, W+2, C)`` for maps of ``shape`` ``(m, H, W, C)`` with a zero border
    of one pixel; write the maps into ``[:, 1:-1, 1:-1]`` (reused from ``ws``: its border stays zero)."""
    m, H, W, C = shape
    shape = (m, H + 2, W + 2, C)
    return np.zeros(shape, dtype) if ws is None else ws.kept(name, shape, dtype)


# --------------------------------------------------------------------------- the layers
def im2col(A: np.ndarray, pad: np.ndarray | None = None, ws: Workspace | None = None, name: str = "") -> np.ndarray:
    """The 3×3 patches of ``A`` zero-padded by one pixel, one row per output position.

    Parameters
    ----------
    A : ndarray of shape (m, H, W, C)
    pad : ndarray of shape (m, H+2, W+2, C), optional
        ``A`` already zero-padded (:func:`padded`), when the caller wrote it there.
    ws, name : where to keep the patches (and the padded maps) between steps

    Returns
    -------
    cols : ndarray of shape (m·H·W, 9·C)
        Row ``(i, y, x)`` holds the patch centred on pixel ``(y, x)`` of image ``i``, ordered
        (kernel row, kernel column, channel). With few channels (at most :data:`PLANAR_CHANNELS`)
        it is stored column by column (Fortran order), each column copied from a shifted channel
        plane a whole image row at a time; else row by row, copied from the padded maps ``3·C``
        values at a time, one kernel row after another.
    """
    m, H, W, C = A.shape
    n = m * H * W
    if C <= PLANAR_CHANNELS:
        shape = (C, m, H + 2, W + 2)
        planes = np.zeros(shape, A.dtype) if ws is None else ws.kept(name + "planes", shape, A.dtype, axis=1)
        planes[:, :, 1:-1, 1:-1] = A.transpose(3, 0, 1, 2) if pad is None else pad[:, 1:-1, 1:-1].transpose(3, 0, 1, 2)
        colsT = _array(ws, name + "colsT", (KERNEL * KERNEL * C, n), A.dtype)
        parts = colsT.reshape(KERNEL * KERNEL, C, m, H, W)
        for k in range(KERNEL * KERNEL):
            di, dj = divmod(k, KERNEL)
            parts[k] = planes[:, :, di:di + H, dj:dj + W]  # columns (k, c): channel c shifted by (di, dj)
        return colsT.T  # (m·H·W, 9·C), column by column
    if pad is None:
        pad = padded(A.shape, A.dtype, ws, name + "pad")
        pad[:, 1:-1, 1:-1] = A
    s = pad.strides
    # (i, y, x, kernel row, (kernel column, channel)): the 3·C values of a kernel row are contiguous in pad
    rows = as_strided(pad, shape=(m, H, W, KERNEL, KERNEL * C), strides=(s[0], s[1], s[2], s[1], s[3]),
                      writeable=False)
    cols = _array(ws, name + "cols", (m, H, W, KERNEL, KERNEL * C), A.dtype)
    np.copyto(cols, rows)
    return cols.reshape(n, KERNEL * KERNEL * C)


def im2col_blocks(A: np.ndarray, ws: Workspace | None = None, name: str = "") -> np.ndarray:
    """The 4×4 patches at stride 2 of ``A`` zero-padded by one pixel: one row per 2×2 block of output
    positions, holding the pixels of that block's four 3×3 patches.

    Parameters
    ----------
    A : ndarray of shape (m, H, W, C), ``H`` and ``W`` even
    ws, name : where to keep the padded maps and the patches between steps

    Returns
    -------
    cols : ndarray of shape (m·(H/2)·(W/2), 16·C)
        Row ``(i, Y, X)`` holds the padded image's rows ``2Y … 2Y+3`` and columns ``2X … 2X+3``,
        ordered (row, column, channel): a strided view of the padded maps whose innermost run is a
        patch row's ``4·C`` contiguous values, copied once.
    """
    m, H, W, C = A.shape
    pad = padded(A.shape, A.dtype, ws, name + "pad")
    pad[:, 1:-1, 1:-1] = A
    s = pad.strides
    rows = as_strided(pad, shape=(m, H // 2, W // 2, 4, 4 * C), strides=(s[0], 2 * s[1], 2 * s[2], s[1], s[3]),
                      writeable=False)
    cols = _array(ws, name + "cols", rows.shape, A.dtype)
    np.copyto(cols, rows)
    return cols.reshape(-1, 16 * C)


def block_weights(W: np.ndarray) -> np.ndarray:
    """The kernels ``W`` (C_out, 9·C_in) as the weights of a 2×2 block of outputs on its 4×4 patch
    (:func:`im2col_blocks`): ndarray of shape (16·C_in, 4·C_out), column ``(dy, dx, f)`` holding
    filter ``f`` at offset ``(dy, dx)`` of the patch and zeros elsewhere. ``cols · Wb`` gives each
    output as the sum of the same 27·… products, in the same order, as ``im2col(A) · Wᵀ`` (the zeros
    add nothing), so the same values; the product is larger and faster than the 3×3 one for few
    input channels."""
    C_out, C_in = W.shape[0], W.shape[1] // (KERNEL * KERNEL)
    Wb = np.zeros((4, 4, C_in, POOL, POOL, C_out), W.dtype)
    K = W.reshape(C_out, KERNEL, KERNEL, C_in).transpose(1, 2, 3, 0)  # (3, 3, C_in, C_out)
    for dy, dx in WINDOW:
        Wb[dy:dy + KERNEL, dx:dx + KERNEL, :, dy, dx, :] = K
    return Wb.reshape(16 * C_in, POOL * POOL * C_out)


def block_weights_grad(dWb: np.ndarray, C_in: int) -> np.ndarray:
    """The gradient of the kernels from that of their block weights (:func:`block_weights`): each
    kernel value appears at four places of ``Wb`` and gets the sum of their gradients.
    ``dWb`` of shape (16·C_in, 4·C_out) -> ndarray of shape (C_out, 9·C_in)."""
    C_out = dWb.shape[1] // (POOL * POOL)
    G = dWb.reshape(4, 4, C_in, POOL, POOL, C_out)
    (a, b), *rest = WINDOW
    dK = G[a:a + KERNEL, b:b + KERNEL, :, a, b, :].copy()  # (3, 3, C_in, C_out)
    for dy, dx in rest:
        dK += G[dy:dy + KERNEL, dx:dx + KERNEL, :, dy, dx, :]
    return np.ascontiguousarray(dK.transpose(3, 0, 1, 2)).reshape(C_out, KERNEL * KERNEL * C_in)


def blocks_to_maps(Zb: np.ndarray, shape: tuple) -> np.ndarray:
    """Values of 2×2 blocks ``Zb`` of shape (m·(H/2)·(W/2), 4, C), ordered (block, (dy, dx), channel),
    as maps of shape ``(m, H, W, C)`` (a copy)."""
    m, H, W, C = shape
    return np.ascontiguousarray(Zb.reshape(m, H // 2, W // 2, POOL, POOL, C).transpose(0, 1, 3, 2, 4, 5)).reshape(shape)


def col2im(dZ2: np.ndarray, W: np.ndarray, shape: tuple, ws: Workspace | None = None, name: str = "") -> np.ndarray:
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
    ws, name : where to keep the padded gradient (under ``name``) and the buffer between steps

    Returns
    -------
    ndarray of shape (m, H, W, C_in), a view into the padded gradient
    """
    m, H, Wd, C = shape
    dP = _array(ws, name + "dpad", (m, H + 2, Wd + 2, C), dZ2.dtype, zero=True)  # the padded input's gradient
    Wk = W.reshape(W.shape[0], KERNEL * KERNEL, C)  # (C_out, 9, C_in): the kernel offsets
    part = _array(ws, "col2im.part", (m * H * Wd, C), dZ2.dtype)
    for k in range(KERNEL * KERNEL):
        di, dj = divmod(k, KERNEL)
        np.matmul(dZ2, Wk[:, k], out=part)  # (m·H·W, C_out) @ (C_out, C_in) -> (m·H·W, C_in)
        dP[:, di:di + H, dj:dj + Wd] += part.reshape(m, H, Wd, C)
    return dP[:, 1:-1, 1:-1, :]


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray | None = None, pad: np.ndarray | None = None,
                 ws: Workspace | None = None, name: str = ""):
    """3×3 convolution, stride 1, same padding: ``Z = im2col(A_prev) · Wᵀ + bᵀ``.

    Parameters
    ----------
    A_prev : ndarray of shape (m, H, W, C_in)
    W : ndarray of shape (C_out, 9·C_in)
    b : ndarray of shape (C_out, 1), optional
        The biases; None leaves them out (:mod:`catdnn.cnn` adds them after the pooling, on a
        quarter of the values: a channel's bias moves every value of a window alike).
    pad, ws, name : as :func:`im2col` (``ws`` also keeps ``Z``)

    Returns
    -------
    Z : ndarray of shape (m, H, W, C_out)
    cols : ndarray of shape (m·H·W, 9·C_in), kept for the backward pass
    """
    m, H, Wd, _ = A_prev.shape
    cols = im2col(A_prev, pad, ws, name)
    Z = _array(ws, name + "Z", (m * H * Wd, W.shape[0]), cols.dtype)
    np.matmul(cols, W.T, out=Z)  # (m·H·W, 9·C_in) @ (9·C_in, C_out) -> (m·H·W, C_out)
    if b is not None:
        Z += b.T
    return Z.reshape(m, H, Wd, W.shape[0]), cols


def bias_grad(dZ: np.ndarray, m: int) -> np.ndarray:
    """``db = Σ dZ / m`` over every position of every image, one value per channel: ndarray of shape (C, 1)
    from ``dZ`` of shape (..., C), summed as one product with a vector of ones: NumPy's sum down the rows
    of a ``(m·H·W, C)`` array, whose rows are only ``C`` values long, took 12 times as long for the cnn
    preset's first layer (32768×16), about 5 and 2 times for its second and third."""
    C = dZ.shape[-1]
    rows = dZ.reshape(-1, C)
    db = (np.ones(rows.shape[0], rows.dtype) @ rows).reshape(C, 1)  # (n,) @ (n, C) -> (C,)
    db /= m
    return db


def conv_backward(dZ: np.ndarray, cols: np.ndarray, W: np.ndarray, m: int, input_grad: bool = True,
                  ws: Workspace | None = None, name: str = "", bias: bool = True):
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
    ws, name : as :func:`col2im`
    bias : bool
        Also compute ``db`` (:func:`bias_grad`); :mod:`catdnn.cnn` adds the biases after the
        pooling and takes their gradient there.

    Returns
    -------
    dW : ndarray of shape (C_out, 9·C_in)
    db : ndarray of shape (C_out, 1), or None without ``bias``
    dA_prev : ndarray of shape (m, H, W, C_in), or None without ``input_grad``
    """
    mb, H, Wd, C_out = dZ.shape
    dZ2 = dZ.reshape(mb * H * Wd, C_out)
    # dW = dZ2ᵀ · cols, computed as (colsᵀ · dZ2)ᵀ: the same sums (BLAS packs either operand order the
    # same way), faster when colsᵀ is contiguous (the planar patches of the first layer)
    dW = np.ascontiguousarray((cols.T @ dZ2).T)  # (9·C_in, m·H·W) @ (m·H·W, C_out) -> transposed (C_out, 9·C_in)
    dW /= m
    db = bias_grad(dZ2, m) if bias else None
    dA_prev = None
    if input_grad:
        dA_prev = col2im(dZ2, W, (mb, H, Wd, W.shape[1] // (KERNEL * KERNEL)), ws, name)  # dZ2 · W, onto the pixels
    return dW, db, dA_prev




def conv_forward_blocks(A_prev: np.ndarray, W: np.ndarray, ws: Workspace | None = None, name: str = ""):
    """:func:`conv_forward` without biases, computed by 2×2 blocks of outputs (:func:`im2col_blocks`,
    :func:`block_weights`): the same values, laid out as the pooling's windows.

    Returns
    -------
    Zb : ndarray of shape (m·(H/2)·(W/2), 4, C_out)
        Row ``(i, Y, X)`` holds the block's four positions ``(dy, dx)`` (a pooling window), each with
        its ``C_out`` values: output ``(i, 2Y+dy, 2X+dx)`` (:func:`blocks_to_maps` gives the maps).
    cols : ndarray of shape (m·(H/2)·(W/2), 16·C_in), kept for the backward pass
    """
    cols = im2col_blocks(A_prev, ws, name)
    Zb = _array(ws, name + "Z", (cols.shape[0], POOL * POOL * W.shape[0]), cols.dtype)
    np.matmul(cols, block_weights(W), out=Zb)  # (n, 16·C_in) @ (16·C_in, 4·C_out) -> (n, 4·C_out)
    return Zb.reshape(cols.shape[0], POOL * POOL, W.shape[0]), cols


def conv_backward_blocks(dZb: np.ndarray, cols: np.ndarray, W: np.ndarray, m: int, shape: tuple,
                         input_grad: bool = False, ws: Workspace | None = None, name: str = ""):
    """Gradients of :func:`conv_forward_blocks`: ``dW`` (C_out, 9·C_in), divided by ``m`` like the dense
    layers', from ``dWb = colsᵀ · dZb`` (:func:`block_weights_grad`); with ``input_grad`` also
    ``dA_prev`` of ``shape`` (m, H, W, C_in) by :func:`col2im` on the maps; else None."""
    n, _, C_out = dZb.shape
    dZ2 = dZb.reshape(n, POOL * POOL * C_out)
    dWb = cols.T @ dZ2  # (16·C_in, n) @ (n, 4·C_out) -> (16·C_in, 4·C_out)
    dW = block_weights_grad(dWb, shape[3])
    dW /= m
    dA_prev = None
    if input_grad:
        m_, H, Wd, _ = shape
        dZ = blocks_to_maps(dZb, (m_, H, Wd, C_out)).reshape(-1, C_out)
        dA_prev = col2im(dZ, W, shape, ws, name)
    return dW, dA_prev


def windows(Z: np.ndarray, blocks: bool = False) -> list:
    """The four values of every 2×2 pooling window, as four arrays (views) of the pooled shape:
    of maps ``Z`` (m, H, W, C) its four strided quarters, one per position of :data:`WINDOW`; with
    ``blocks``, of ``Z`` (n, 4, C) laid out by windows (:func:`conv_forward_blocks`), ``Z[:, k]``."""
    if blocks:
        return [Z[:, k] for k in range(len(WINDOW))]
    return [Z[:, a::POOL, c::POOL] for a, c in WINDOW]


def pool_forward(Z: np.ndarray, ws: Workspace | None = None, name: str = "", blocks: bool = False) -> np.ndarray:
    """2×2 max pooling, stride 2: ndarray of shape (m, H, W, C) -> (m, H/2, W/2, C); with ``blocks``,
    of ``Z`` (n, 4, C) laid out by windows -> (n, C).

    On maps, the maximum of the row pairs (whole rows at a time), then of the column pairs of that: two
    element-wise maxima instead of a reduction over two strided axes (the same values)."""
    if blocks:
        q = windows(Z, blocks)
        P = _array(ws, name + "P", q[0].shape, Z.dtype)
        rows = _array(ws, "pool.rows", q[0].shape, Z.dtype)
        np.maximum(q[0], q[1], out=P)
        np.maximum(q[2], q[3], out=rows)
        return np.maximum(P, rows, out=P)
    m, H, W, C = Z.shape
    rows = _array(ws, "pool.rows", (m, H // POOL, W, C), Z.dtype)
    np.maximum(Z[:, 0::POOL], Z[:, 1::POOL], out=rows)  # (m, H/2, W, C)
    P = _array(ws, name + "P", (m, H // POOL, W // POOL, C), Z.dtype)
    return np.maximum(rows[:, :, 0::POOL], rows[:, :, 1::POOL], out=P)


def pool_backward(dP: np.ndarray, Z: np.ndarray, P: np.ndarray, ws: Workspace | None = None,
                  blocks: bool = False) -> np.ndarray:
    """Gradient of 2×2 max pooling: each window's gradient goes to its maximum.

    When several values of a window tie for the maximum (zero padding makes exact ties), they
    share the gradient equally, which is a valid subgradient and keeps the total right.

    One window position at a time (:func:`windows`): where it holds the maximum, the count of tied
    maxima, each maximum's part ``dP / count``, and that part (or 0) written into the position's
    values of ``dZ``; every value of ``dZ`` is written once.

    Parameters
    ----------
    dP : ndarray of shape (m, H/2, W/2, C), or (n, C) with ``blocks``
    Z : ndarray of shape (m, H, W, C), the pooling's input, or (n, 4, C) with ``blocks``
    P : ndarray of the shape of ``dP``, its output
    ws : where to keep the masks and ``dZ`` between steps

    Returns
    -------
    dZ : ndarray of the shape of ``Z``
    """
    hit = _array(ws, "pool.hit", (len(WINDOW),) + P.shape, np.bool_)
    for k, q in enumerate(windows(Z, blocks)):
        np.equal(q, P, out=hit[k])  # where position k holds its window's maximum
    counts = hit.view(np.uint8)
    share = _array(ws, "pool.share", P.shape, np.uint8)
    np.add(counts[0], counts[1], out=share)  # how many tie
    share += counts[2]
    share += counts[3]
    part = _array(ws, "pool.part", P.shape, Z.dtype)
    np.divide(dP, share, out=part)  # each maximum's part
    dZ = _array(ws, "pool.dZ", Z.shape, Z.dtype)
    for k, q in enumerate(windows(dZ, blocks)):
        np.multiply(hit[k], part, out=q)
    return dZ
