"""The architecture spec: one text for MLPs and CNNs (:func:`parse_arch`), parsed into an :class:`Arch`.

Comma-separated steps, e.g. ``"in32,conv16,conv32,conv64,dense64"``:

* ``inN`` (optional, first): the network sees the image averaged down to ``N×N`` pixels (``N``
  divides 64); without it, the full 64 px.
* ``convN``: 3×3 convolution with ``N`` filters, ReLU, 2×2 max pooling (halves the side); the
  layers themselves are :mod:`catdnn.conv_layers`, the network that stacks them :mod:`catdnn.cnn`.
* ``denseN``: a fully connected layer of ``N`` units and ReLU, after the convolutions.

The sigmoid output unit is implied. Without ``conv`` steps the spec is an MLP: ``"dense20,dense7,dense5"``
is the course's deep network ``[12288, 20, 7, 5, 1]`` (:meth:`Arch.mlp_layers`).

An :class:`Arch` also knows what its shapes cost: parameters (:meth:`Arch.param_count`) and the
memory of a training step on a batch of images (:meth:`Arch.step_bytes`), bounded by
:data:`MAX_STEP_BYTES` (SECURITY.md, "Resources").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .data import IMAGE_SHAPE
from .errors import ConfigError

#: Limits of a spec, checked by :func:`parse_arch`.
MAX_FILTERS = 512
MAX_UNITS = 100_000
MAX_STEPS = 20
KERNEL = 3  # 3×3 convolutions
POOL = 2  # 2×2 max pooling, stride 2
#: A convolutional net's training step (or prediction batch) may allocate at most about this many
#: bytes for its conv layers' patches and maps (:meth:`Arch.step_bytes`): the order of the largest
#: MLP's training (about 1.8 GiB, see catdnn.config.MAX_PARAM_BYTES). SECURITY.md, "Resources".
MAX_STEP_BYTES = 2 * 1024**3
#: A conv layer whose input has at most this many channels (the RGB images) takes its patches from
#: channel planes, whole image rows at a time (:func:`catdnn.conv_layers.im2col`).
PLANAR_CHANNELS = 4


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

    def multiply_adds(self) -> int:
        """Multiply-adds of one image's forward pass: each conv layer's ``9·C_in·C`` per output position (before
        its pooling), each dense layer's weights (:func:`catdnn.workers.run_work` estimates a run's work from it)."""
        n, side, c_prev = 0, self.input_px, self.source[2]
        for c in self.convs:
            n += side * side * KERNEL * KERNEL * c_prev * c
            side, c_prev = side // POOL, c
        dims = self.dense_layers
        return n + sum(a * b for a, b in zip(dims[:-1], dims[1:]))

    def forward_bytes(self, itemsize: int) -> int:
        """Bytes per image that a forward pass keeps for the backward pass in its conv layers: each
        layer's patches (``9·C_in`` values per output position), its output ``Z`` and the pooled
        maps before and after the ReLU (:func:`catdnn.cnn.forward_maps`); 0 for an MLP."""
        n, side, c_prev = 0, self.input_px, self.source[2]
        for c in self.convs:
            hw = side * side
            n += hw * (KERNEL * KERNEL * c_prev + c) + 2 * (hw // (POOL * POOL)) * c
            side, c_prev = side // POOL, c
        return n * int(itemsize)

    def step_bytes(self, batch: int, itemsize: int) -> int:
        """Estimated peak bytes of one training step on ``batch`` images: what the solver's
        :class:`catdnn.conv_layers.Workspace` holds from the first step on. The forward pass keeps,
        per conv layer, its patches (with few input channels, their channel planes too), ``Z``, the
        pooled maps and the next layer's padded input; the backward pass's temporaries are shared
        by the layers (the largest layer's ``dZ``, pooled part, one kernel offset's part of the
        input gradient, the pooling's masks in bytes) and its padded input gradients take two
        buffers by turns; then three arrays the size of the parameters (the gradients, the solver's
        flat copy of them and the optimiser's temporary). The first layer's patches are its 4×4
        blocks' (:func:`catdnn.conv_layers.im2col_blocks`). Within 25 % of the peak that tracemalloc
        measures (tests/test_conv.py; 5.4 GiB estimated for ``in64,conv256,conv256,dense1`` on 209
        images in float32 before the first layer's blocks; 5.1 GiB before the workspace, 5.9 before
        issue 18, when issue 19 measured 5.7 GiB). 0 for an MLP
        (see catdnn.config.MAX_PARAM_BYTES)."""
        values = rows = back = masks = 0
        grads = [0, 0]
        side, c_prev = self.input_px, self.source[2]
        for l, c in enumerate(self.convs):
            hw, pad, pooled = side * side, (side + 2) * (side + 2), (side // POOL) * (side // POOL)
            patches = hw * 4 * c_prev if l == 0 else hw * KERNEL * KERNEL * c_prev  # 4×4 blocks, or 3×3 patches
            values += patches + hw * c + pooled * c  # patches, Z, pooled maps
            values += (side // POOL + 2) ** 2 * c if l + 1 < len(self.convs) else pooled * c  # the next input
            if l == 0 or c_prev <= PLANAR_CHANNELS:
                values += pad * c_prev  # the padded input, or the channel planes
            rows = max(rows, hw // POOL * c)
            back = max(back, hw * c + pooled * c + hw * c_prev)  # dZ, the pooled part, one offset's part
            masks = max(masks, hw * c + pooled * c)  # bytes: where the maxima are, how many tie
            if l:
                grads[l % 2] = max(grads[l % 2], pad * c_prev)
            side, c_prev = side // POOL, c
        if not self.convs:
            return 0
        # and three arrays of every parameter: the gradients, their flat copy and the update's temporary
        return int(batch) * ((values + rows + back + sum(grads)) * int(itemsize) + masks) + \
            3 * self.param_count() * int(itemsize)


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
        if len(num.lstrip("0")) > 9:  # beyond every limit below (and int() refuses over 4300 digits)
            most = {"conv": MAX_FILTERS, "dense": MAX_UNITS, "in": side}[kind]
            raise ConfigError(f"step {_short(p)!r}: {len(num.lstrip('0')):,} digits is too large a number "
                              f"(at most {most:,})")
        n = int(num.lstrip("0") or "0")  # leading zeros count towards int()'s digit limit too
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
