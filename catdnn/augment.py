"""Data augmentation on flattened images: horizontal flips and small shifts, drawn from a generator.

Inputs are columns, as everywhere in catdnn: ``X`` of shape ``(n_x, m)`` where each column is an
image of shape ``image_shape = (H, W, C)`` flattened in C order (``data.flatten_images``), so
``X.reshape(H, W, C, m)`` is a view of the images with the examples last. Nothing here knows about
layers: any network that takes such columns (the MLP, a convolutional net on a smaller
``image_shape``) can use it.

* :func:`flip` mirrors images left to right; :func:`flip_rows` does the same to row vectors over
  the pixels (a weight matrix's rows), which the Gram solver needs: ``W·flip(X) = flip_rows(W)·X``.
* :func:`shift` moves each image by its own whole number of pixels, filling the uncovered border
  with zeros (black), as a padded random crop does.
* :func:`draw` picks, for a batch, which images to mirror (a fair coin each) and by how much to
  shift them (uniform in ``[-s, s]`` in each direction); :func:`apply` applies such a draw.

Every random choice comes from the ``np.random.Generator`` it is given; nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import IMAGE_SHAPE


def flip(X: np.ndarray, image_shape=IMAGE_SHAPE) -> np.ndarray:
    """Every image mirrored left to right.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
        Columns holding images of shape ``image_shape`` (H, W, C), flattened in C order.

    Returns
    -------
    ndarray of shape (n_x, m), a new array.
    """
    H, W, C = image_shape
    m = X.shape[1]
    return X.reshape(H, W, C, m)[:, ::-1].reshape(H * W * C, m)  # reverse the width axis


def flip_rows(V: np.ndarray, image_shape=IMAGE_SHAPE) -> np.ndarray:
    """Rows over the pixels mirrored, so that ``V·flip(X) == flip_rows(V)·X``.

    Parameters
    ----------
    V : ndarray of shape (k, n_x)

    Returns
    -------
    ndarray of shape (k, n_x), a new array.
    """
    return flip(V.T, image_shape).T


def shift(X: np.ndarray, dy, dx, image_shape=IMAGE_SHAPE) -> np.ndarray:
    """Each image moved by its own ``(dy[j], dx[j])`` pixels (down and right), zeros coming in.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    dy, dx : int ndarrays of shape (m,)
        Shifts in pixels, each of magnitude below the image's height and width.

    Returns
    -------
    ndarray of shape (n_x, m), a new array.
    """
    H, W, C = image_shape
    m = X.shape[1]
    dy, dx = np.asarray(dy, dtype=np.int64), np.asarray(dx, dtype=np.int64)
    src = X.reshape(H, W, C, m)
    out = np.zeros_like(src)
    # one vectorised copy per distinct shift (at most (2s+1)² of them), not one per image
    pairs, inverse = np.unique(np.stack([dy, dx]), axis=1, return_inverse=True)
    for k, (a, b) in enumerate(pairs.T):
        cols = np.flatnonzero(inverse.reshape(-1) == k)
        to, of = _shifted(int(a), int(b), H, W)
        out[to + (slice(None), cols)] = src[of][..., cols]
    return out.reshape(H * W * C, m)


def _shifted(a: int, b: int, H: int, W: int) -> tuple:
    """``(to, of)``: the (row, column) slices of an image moved ``a`` pixels down and ``b`` right,
    and of the part of the original that lands there (the rest of the image is zeros)."""
    return ((slice(max(a, 0), H + min(a, 0)), slice(max(b, 0), W + min(b, 0))),
            (slice(max(-a, 0), H - max(a, 0)), slice(max(-b, 0), W - max(b, 0))))


@dataclass(frozen=True)
class Draw:
    """The augmentation of one batch of ``k`` images: which to mirror and how far to shift each.

    ``mirror`` is a bool ndarray of shape (k,) or None (no flips); ``dy``, ``dx`` are int ndarrays of
    shape (k,) or None (no shifts).
    """

    mirror: np.ndarray | None = None
    dy: np.ndarray | None = None
    dx: np.ndarray | None = None


def draw(rng: np.random.Generator, k: int, flips: bool = False, max_shift: int = 0) -> Draw:
    """Draw the augmentation of a batch of ``k`` images: a fair coin per image for the mirror, then
    (``max_shift`` > 0) a shift uniform in ``[-max_shift, max_shift]`` down and right per image."""
    mirror = rng.random(k) < 0.5 if flips else None
    dy = dx = None
    if max_shift > 0:
        dy = rng.integers(-max_shift, max_shift + 1, size=k)
        dx = rng.integers(-max_shift, max_shift + 1, size=k)
    return Draw(mirror, dy, dx)


def apply(X: np.ndarray, d: Draw, image_shape=IMAGE_SHAPE) -> np.ndarray:
    """The batch ``X`` (shape ``(n_x, k)``) augmented as drawn: mirrored where ``d.mirror``, then
    shifted. Returns ``X`` itself when the draw changes nothing, else a new array."""
    if d.mirror is not None and d.mirror.any():
        cols = np.flatnonzero(d.mirror)
        X = np.array(X, order="K")  # a copy: the caller's array (the dataset's) is never written
        X[:, cols] = flip(X[:, cols], image_shape)  # column j mirrored where mirror[j]
    if d.dy is not None:
        X = shift(X, d.dy, d.dx, image_shape)
    return X


def apply_maps(A: np.ndarray, d: Draw, index: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`apply` on images as maps (a convolutional net's layout): the images ``A[index]`` (all of
    ``A`` without ``index``), mirrored where ``d.mirror``, then shifted; the same values as
    :func:`apply` on the same images as columns.

    One copy per image, straight from ``A`` (mirrored by reading its columns backwards), into
    ``out`` or a new array; ``A`` is never written.

    Parameters
    ----------
    A : ndarray of shape (m, H, W, C)
    d : Draw
        For the ``k`` images taken.
    index : int ndarray of shape (k,), optional
    out : ndarray of shape (k, H, W, C), optional
        Where to write them (a buffer reused from batch to batch).

    Returns
    -------
    ndarray of shape (k, H, W, C): ``out``, or a new array.
    """
    index = np.arange(A.shape[0]) if index is None else np.asarray(index)
    k, (H, W) = index.shape[0], A.shape[1:3]
    out = np.empty((k,) + A.shape[1:], A.dtype) if out is None else out
    if d.dy is None:
        if d.mirror is None or not d.mirror.any():
            return np.take(A, index, axis=0, out=out)
        to = of = (slice(None), slice(None))
    else:
        out.fill(0)  # the uncovered borders
    for j, i in enumerate(index):
        if d.dy is not None:
            to, of = _shifted(int(d.dy[j]), int(d.dx[j]), H, W)
        if d.mirror is not None and d.mirror[j]:  # mirrored, then shifted: columns W-1-x of the original
            cols = of[1].indices(W)
            out[(j,) + to] = A[i, of[0], W - cols[1]:W - cols[0]][:, ::-1]
        else:
            out[(j,) + to] = A[(i,) + of]
    return out
