"""One iteration at a time: forward, backward and update as three separate steps, each with its numbers.

The Step page's engine. A :class:`Stepper` holds an MLP's parameters and a set of training examples and
takes one full-batch gradient-descent iteration in three calls, :meth:`Stepper.forward`,
:meth:`Stepper.backward` and :meth:`Stepper.update`. Each returns a :class:`PhaseRecord`: for every layer
the course's equations (LaTeX, with this iteration's shapes) and the arrays they produced (shape, the
first few entries, norm), and the cost before (forward) or after (update) the step.

Its numbers are the engine's own: the math is :func:`catdnn.network.forward`, ``backward`` and
``update``, called as training calls them; this module only keeps their arrays between the calls and
describes them. Plain gradient descent at the config's learning rate, the course's: techniques beyond
the course (L2, dropout, mini-batches, other optimizers) are not applied here. Batch normalisation (the
second course's) is: a network with ``batch_norm`` shows each hidden layer's μ, σ², Z_norm, γ, β and Z̃
forward, dZ̃, dγ, dβ backward, and updates γ and β with W and b, on the batch's own statistics as
training does. Convolutional nets are refused (their layers are not the course's dense equations).

Shapes are the course's (see ``catdnn/__init__.py``): ``X`` is ``(n_x, m)``, ``W[l]`` is ``(n_l, n_{l-1})``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import TrainConfig
from .errors import ConfigError
from .network import BatchNorm, backward, compute_cost, forward, init_params, update

#: The three steps of one iteration, in order.
PHASES = ("forward", "backward", "update")
#: The Step page computes in the server's own process (one BLAS thread), not on the worker pool that trains, and
#: keeps the weights and, between backward and update, their gradients in the session: so its network may hold at
#: most MAX_WEIGHT_BYTES of weights (the run history's limit on a kept model, 32 times the course's deep net) ...
MAX_WEIGHT_BYTES = 64 * 1024**2
#: ... and one forward pass at most MAX_WORK multiply-adds (weights × images; the deep net on all 209 images
#: takes 5.1e7). Measured on this 2-core machine at the limit: see SECURITY.md, "Resources".
MAX_WORK = 2 * 10**9
#: How many entries of each array are shown: the top-left corner, at most this many rows and columns.
CORNER_ROWS, CORNER_COLS = 3, 4


@dataclass(frozen=True)
class Shown:
    """One array as the Step mode shows it.

    Attributes
    ----------
    symbol : str
        LaTeX without the layer, e.g. ``"Z"``, ``"dW"``, ``r"\\Delta W"``, ``"Y"``.
    layer : int or None
        The course's 1-based layer (None for the labels ``Y``).
    shape : tuple of int
    corner : ndarray of shape (≤ CORNER_ROWS, ≤ CORNER_COLS)
        A copy of its first entries (top-left corner).
    norm : float
        Its Frobenius norm ``‖·‖`` (the square root of the sum of the squared entries).
    """

    symbol: str
    layer: int | None
    shape: tuple
    corner: np.ndarray
    norm: float
    digits: int = 3  # significant digits its entries are written with (more after an update: see changed())

    @classmethod
    def of(cls, symbol: str, layer: int | None, array: np.ndarray, digits: int = 3) -> Shown:
        return cls(symbol, layer, tuple(array.shape), np.array(array[:CORNER_ROWS, :CORNER_COLS]),
                   float(np.linalg.norm(array)), int(digits))

    @classmethod
    def changed(cls, symbol: str, layer: int, array: np.ndarray, before: np.ndarray) -> Shown:
        """``array`` after an update from ``before``, its first entries written with the digits that show their
        change (:func:`digits_for_change`): γ = 1.000219 is not written 1."""
        corner = (slice(0, CORNER_ROWS), slice(0, CORNER_COLS))
        return cls.of(symbol, layer, array, digits_for_change(array[corner], before[corner]))

    @property
    def name(self) -> str:
        """LaTeX, e.g. ``"Z^{[1]}"``."""
        return self.symbol if self.layer is None else f"{self.symbol}^{{[{self.layer}]}}"

    def latex(self, digits: int | None = None) -> str:
        """Its norm (not for the labels ``Y``), then ``name = [first entries …]`` with ⋯ and ⋮ where the
        array goes on and its shape under its name (LaTeX); entries with ``digits`` significant digits (default:
        its own :attr:`digits`)."""
        digits = self.digits if digits is None else int(digits)
        rows, cols = self.shape
        more_cols = cols > self.corner.shape[1]
        lines = [" & ".join([_number(v, digits) for v in row] + ([r"\cdots"] if more_cols else []))
                 for row in self.corner]
        if rows > self.corner.shape[0]:
            lines.append(" & ".join([r"\vdots"] * self.corner.shape[1] + ([r"\ddots"] if more_cols else [])))
        matrix = r"\begin{bmatrix}" + r" \\ ".join(lines) + r"\end{bmatrix}"
        norm = "" if self.layer is None else rf"\lVert {self.name} \rVert = {_number(self.norm, digits + 1)},\qquad "
        return rf"{norm}\underset{{{_shape(self.shape)}}}{{{self.name}}} = {matrix}"


@dataclass(frozen=True)
class LayerStep:
    """What one phase did in one layer: the course's equations (LaTeX, with shapes) and their arrays."""

    layer: int  # 1-based, as in the course
    equations: tuple  # of str (LaTeX)
    arrays: tuple  # of Shown, in the order the equations name them


@dataclass(frozen=True)
class PhaseRecord:
    """One phase of one iteration.

    ``layers`` are in the order the phase visits them (forward 1..L, backward L..1, update 1..L).
    ``cost``: the cost at the parameters before this iteration's update (forward), or after it (update);
    None for backward.
    """

    phase: str
    iteration: int  # 0-based, the course's i
    layers: tuple  # of LayerStep
    cost: float | None = None


class Stepper:
    """One gradient-descent iteration in three steps on an MLP, each step described for display.

    Parameters
    ----------
    config : TrainConfig
        An MLP (layer sizes); its ``learning_rate`` is the step size, its ``init`` and ``seed`` draw the
        starting weights unless ``params`` is given.
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    params : list of (W, b), optional
        Starting weights (copied, never changed), e.g. a trained model's.
    bn : BatchNorm, optional
        With ``config.batch_norm``: the starting γ, β (copied, never changed), e.g. a trained model's;
        default γ = 1, β = 0.

    Raises
    ------
    ConfigError
        For a convolutional net, an impossible config, or weights (or γ, β) that do not match its layers.
    """

    def __init__(self, config: TrainConfig, X: np.ndarray, Y: np.ndarray, params=None, bn: BatchNorm | None = None):
        if config.is_cnn:
            raise ConfigError(
                f"the Step mode shows the course's dense equations, one layer at a time; {config.arch!r} is a "
                "convolutional net, whose layers are convolutions and pooling: step through an MLP (the two-layer "
                "or deep preset) instead")
        if config.batch_norm and X.shape[1] == 1:  # the config's own message speaks of a training set, not a choice
            raise ConfigError("batch norm needs at least 2 images in a batch (one image has no variance), and 1 "
                              "image is chosen here: take 2 or more")
        config.validate(n_x=X.shape[0], m=X.shape[1])
        weights = config.param_count()
        if weights * 8 > MAX_WEIGHT_BYTES:
            raise ConfigError(
                f"the Step mode takes networks of at most {MAX_WEIGHT_BYTES // 2**20} MiB of weights (it computes on "
                f"the server, one click at a time); layers {list(config.layers)} have {weights * 8 / 2**20:,.0f} MiB: "
                "step through a smaller network, or train this one on the Train page")
        if weights * X.shape[1] > MAX_WORK:
            most = max(MAX_WORK // weights, 1)
            raise ConfigError(
                f"{X.shape[1]:,} images through layers {list(config.layers)} ({weights:,} weights) is more work per "
                f"click than the Step mode does on the server ({MAX_WORK:.0e} multiply-adds): take at most {most:,} "
                "images, or a smaller network")
        if X.shape[1] < 1 or Y.shape != (1, X.shape[1]):
            raise ConfigError(f"the Step mode needs at least one example and one label per example, not X of shape "
                              f"{X.shape} and Y of shape {Y.shape}")
        layers = tuple(config.layers)
        if params is None:
            params = init_params(layers, config.init, config.seed)
        shapes = [((n, n_prev), (n, 1)) for n_prev, n in zip(layers[:-1], layers[1:])]
        if [(W.shape, b.shape) for W, b in params] != shapes:
            raise ConfigError(f"the weights do not match the layers {list(layers)}")
        if bn is not None and not config.batch_norm:
            raise ConfigError("γ and β were given for a network without batch norm")
        if config.batch_norm:
            bn = BatchNorm.init(layers) if bn is None else bn.copy()
            if [(g.shape, b.shape) for g, b in bn.params] != [((n, 1), (n, 1)) for n in layers[1:-1]]:
                raise ConfigError(f"γ and β do not match the hidden layers of {list(layers)}")
        self.bn = bn  # None without batch norm
        self.config = config
        self.X, self.Y = X, Y
        self.params = [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in params]
        self.iteration = 0  # iterations completed
        self.next_phase = PHASES[0]
        self._AL = self._cache = self._grads = None

    @property
    def m(self) -> int:
        return self.X.shape[1]

    @property
    def L(self) -> int:
        return len(self.params)

    def step(self) -> PhaseRecord:
        """Take the next phase (:attr:`next_phase`): forward, backward or update."""
        return getattr(self, self.next_phase)()

    def _expect(self, phase: str) -> None:
        if self.next_phase != phase:
            raise ConfigError(f"the next step of iteration {self.iteration + 1} is {self.next_phase}, not {phase}")

    def forward(self) -> PhaseRecord:
        """Forward propagation (:func:`catdnn.network.forward`, with batch norm on the batch's own μ and σ² as in
        training) and the cost at the current parameters."""
        self._expect("forward")
        self._AL, self._cache = forward(self.params, self.X, bn=self.bn)
        layers = []
        for l, (W, b) in enumerate(self.params, start=1):
            A_prev, Z = self._cache[l - 1]
            A = self._AL if l == self.L else self._cache[l][0]  # A[l]: the next layer's input, or the output
            g = r"\sigma" if l == self.L else r"\mathrm{ReLU}"
            linear = (rf"{_sized(f'Z^{{[{l}]}}', Z)} = {_sized(f'W^{{[{l}]}}', W)}\, "
                      rf"{_sized(f'A^{{[{l - 1}]}}', A_prev)} + {_sized(f'b^{{[{l}]}}', b)}")
            if self.bn is not None and l < self.L:
                layers.append(self._normalised(l, linear, A))
                continue
            layers.append(LayerStep(l, (linear, rf"A^{{[{l}]}} = {g}(Z^{{[{l}]}})"),
                                    (Shown.of("Z", l, Z), Shown.of("A", l, A))))
        self.next_phase = "backward"
        return PhaseRecord("forward", self.iteration, tuple(layers), compute_cost(self._AL, self.Y))

    def _normalised(self, l: int, linear: str, A: np.ndarray) -> LayerStep:
        """A hidden layer's forward step with batch norm: the course's equations, the engine's arrays (its cache
        holds Z̃[l] and the normalisation's Z_norm, 1/√(σ² + ε), μ, σ²)."""
        Z_tilde = self._cache[l - 1][1]
        Z_norm, inv_std, mu, var = self._cache.bn[l - 1]
        gamma, beta = self.bn.params[l - 1]
        Z = Z_norm / inv_std + mu  # Z[l] = μ + √(σ² + ε)·Z_norm: the cache keeps Z_norm in Z[l]'s place
        shown = (Shown.of("Z", l, Z), Shown.of(r"\mu", l, mu), Shown.of(r"{\sigma^2}", l, var),
                 Shown.of(r"Z_{\mathrm{norm}}", l, Z_norm), Shown.of(r"\gamma", l, gamma), Shown.of(r"\beta", l, beta),
                 Shown.of(r"\tilde{Z}", l, Z_tilde), Shown.of("A", l, A))
        z, mean, sq, norm, g, b, zt, _a = (a.name for a in shown)
        mean_of = rf"\tfrac{{1}}{{{self.m}}} \textstyle\sum_{{i=1}}^{{{self.m}}}"
        return LayerStep(l, (
            linear,
            rf"{_sized(mean, mu)} = {mean_of} Z^{{[{l}](i)}}",
            rf"{_sized(sq, var)} = {mean_of} (Z^{{[{l}](i)}} - {mean})^2",
            rf"{norm} = \dfrac{{{z} - {mean}}}{{\sqrt{{{sq} + {_number(self.bn.epsilon, 1)}}}}}",
            rf"{zt} = {_sized(g, gamma)} \odot {norm} + {_sized(b, beta)}",
            rf"A^{{[{l}]}} = \mathrm{{ReLU}}({zt})",
        ), shown)

    def backward(self) -> PhaseRecord:
        """Backward propagation (:func:`catdnn.network.backward`): ``dZ``, ``dW``, ``db`` and ``dA`` per layer;
        with batch norm also ``dZ̃``, ``dγ`` and ``dβ`` of each hidden layer."""
        self._expect("backward")
        deltas = []
        self._grads = backward(self.params, self._cache, self.Y, self._AL, deltas=deltas, bn=self.bn)
        layers = []
        for l in range(self.L, 0, -1):
            dA, dZ, *normed = deltas[l - 1]  # with batch norm, a hidden layer's dZ̃ too
            dW, db = self._grads[l - 1]
            A_prev = self._cache[l - 1][0]
            equations, arrays = [], []
            if dA is not None:  # a hidden layer: its dA came from the layer above
                equations.append(rf"{_sized(f'dA^{{[{l}]}}', dA)} = W^{{[{l + 1}]T}}\, dZ^{{[{l + 1}]}}")
                arrays.append(Shown.of("dA", l, dA))
            else:  # the output layer: dZ compares the output with the labels
                arrays.append(Shown.of("Y", None, self.Y))
            if normed:
                self._normalised_back(l, dZ, normed[0], equations, arrays)
            else:
                equations.append(rf"{_sized(f'dZ^{{[{l}]}}', dZ)} = A^{{[{l}]}} - Y" if l == self.L else
                                 rf"{_sized(f'dZ^{{[{l}]}}', dZ)} = dA^{{[{l}]}} \odot \mathrm{{ReLU}}'(Z^{{[{l}]}})")
                arrays.append(Shown.of("dZ", l, dZ))
            equations.append(rf"{_sized(f'dW^{{[{l}]}}', dW)} = \tfrac{{1}}{{{self.m}}}\, dZ^{{[{l}]}}\, "
                             rf"{_sized(f'A^{{[{l - 1}]T}}', A_prev.T)}")
            arrays.append(Shown.of("dW", l, dW))
            if normed:  # b[l] cancels in Z[l] − μ[l]: the engine gives it no gradient
                equations.append(rf"{_sized(f'db^{{[{l}]}}', db)} = 0 \quad (b^{{[{l}]}} \text{{ cancels in }} "
                                 rf"Z^{{[{l}]}} - \mu^{{[{l}]}})")
            else:
                equations.append(rf"{_sized(f'db^{{[{l}]}}', db)} = \tfrac{{1}}{{{self.m}}} "
                                 rf"\textstyle\sum_{{i=1}}^{{{self.m}}} dZ^{{[{l}](i)}}")
            arrays.append(Shown.of("db", l, db))
            layers.append(LayerStep(l, tuple(equations), tuple(arrays)))
        self.next_phase = "update"
        return PhaseRecord("backward", self.iteration, tuple(layers))

    def _normalised_back(self, l: int, dZ: np.ndarray, dZ_tilde: np.ndarray, equations: list, arrays: list) -> None:
        """A hidden layer's gradients through batch norm (the engine's dZ̃, dγ, dβ and dZ), in place."""
        dgamma, dbeta = self._grads[self.L + l - 1]
        shown = (Shown.of(r"d\tilde{Z}", l, dZ_tilde), Shown.of(r"d\gamma", l, dgamma),
                 Shown.of(r"d\beta", l, dbeta), Shown.of("dZ", l, dZ))
        dzt, dg, db, dz = (a.name for a in shown)
        norm, zt = rf"Z_{{\mathrm{{norm}}}}^{{[{l}]}}", rf"\tilde{{Z}}^{{[{l}]}}"
        mean_of = rf"\tfrac{{1}}{{{self.m}}} \textstyle\sum_{{i=1}}^{{{self.m}}}"
        dzt_i, norm_i = rf"d\tilde{{Z}}^{{[{l}](i)}}", rf"Z_{{\mathrm{{norm}}}}^{{[{l}](i)}}"  # example i's column
        equations += [
            rf"{_sized(dzt, dZ_tilde)} = dA^{{[{l}]}} \odot \mathrm{{ReLU}}'({zt})",
            rf"{_sized(dg, dgamma)} = {mean_of} {dzt_i} \odot {norm_i}",
            rf"{_sized(db, dbeta)} = {mean_of} {dzt_i}",
            rf"{_sized(dz, dZ)} = \dfrac{{\gamma^{{[{l}]}}}}{{\sqrt{{{{\sigma^2}}^{{[{l}]}} + "
            rf"{_number(self.bn.epsilon, 1)}}}}} \odot \left({dzt} - {db} - {norm} \odot {dg}\right)",
        ]
        arrays += shown

    def update(self) -> PhaseRecord:
        """The update (:func:`catdnn.network.update`) layer by layer, its size, and the cost afterwards; with batch
        norm γ and β move too, and the batch's μ and σ² go into the running averages (shown), as training does.
        The weights after the update are written with the digits that show their change (:meth:`Shown.changed`)."""
        self._expect("update")
        lr = self.config.learning_rate
        steps = []  # (equations, arrays) of each layer
        for l, ((W, b), grad) in enumerate(zip(self.params, self._grads), start=1):
            W_old, b_old = W.copy(), b.copy()  # one layer at a time: at most the largest layer is copied
            update([(W, b)], [grad], lr)
            equations = [rf"W^{{[{l}]}} := W^{{[{l}]}} - {lr:g}\, dW^{{[{l}]}}",
                         rf"b^{{[{l}]}} := b^{{[{l}]}} - {lr:g}\, db^{{[{l}]}}"]
            arrays = [Shown.of(r"\Delta W", l, W - W_old), Shown.of(r"\Delta b", l, b - b_old),
                      Shown.changed("W", l, W, W_old)]
            if self.bn is not None and l < self.L:
                gamma, beta = self.bn.params[l - 1]
                gamma_old, beta_old = gamma.copy(), beta.copy()
                update([(gamma, beta)], [self._grads[self.L + l - 1]], lr)
                equations += [rf"\gamma^{{[{l}]}} := \gamma^{{[{l}]}} - {lr:g}\, d\gamma^{{[{l}]}}",
                              rf"\beta^{{[{l}]}} := \beta^{{[{l}]}} - {lr:g}\, d\beta^{{[{l}]}}"]
                arrays += [Shown.of(r"\Delta\gamma", l, gamma - gamma_old),
                           Shown.of(r"\Delta\beta", l, beta - beta_old),
                           Shown.changed(r"\gamma", l, gamma, gamma_old), Shown.changed(r"\beta", l, beta, beta_old)]
            steps.append((equations, arrays))
        if self.bn is not None:
            before = [(mu.copy(), var.copy()) for mu, var in self.bn.running]
            self.bn.record(self._cache.bn)  # the running averages of μ and σ², for prediction
            k = self.bn.momentum
            for l, ((mu_run, var_run), (mu_old, var_old)) in enumerate(zip(self.bn.running, before), start=1):
                equations, arrays = steps[l - 1]
                mu, var = rf"\mu_{{\mathrm{{run}}}}^{{[{l}]}}", rf"{{\sigma^2_{{\mathrm{{run}}}}}}^{{[{l}]}}"
                equations += [rf"{mu} := {k:g}\, {mu} + {1 - k:g}\, \mu^{{[{l}]}}",
                              rf"{var} := {k:g}\, {var} + {1 - k:g}\, {{\sigma^2}}^{{[{l}]}}"]
                arrays += [Shown.changed(r"\mu_{\mathrm{run}}", l, mu_run, mu_old),
                           Shown.changed(r"{\sigma^2_{\mathrm{run}}}", l, var_run, var_old)]
        layers = [LayerStep(l, tuple(eq), tuple(arr)) for l, (eq, arr) in enumerate(steps, start=1)]
        self._AL = self._cache = self._grads = None
        AL, _cache = forward(self.params, self.X, bn=self.bn)
        record = PhaseRecord("update", self.iteration, tuple(layers), compute_cost(AL, self.Y))
        self.iteration += 1
        self.next_phase = "forward"
        return record


#: The most significant digits :func:`digits_for_change` asks for (float64 holds about 16).
MAX_DIGITS = 10


def digits_for_change(after: np.ndarray, before: np.ndarray, digits: int = 3) -> int:
    """The significant digits that write the entries of ``after`` so that their change from ``before`` shows
    (its first ``digits`` digits): ``1.000219`` after ``1`` needs 7 (1.000219), not 3 (1). At least ``digits``,
    at most :data:`MAX_DIGITS`."""
    need = digits
    for a, d in zip(np.ravel(after), np.ravel(np.asarray(after) - np.asarray(before))):
        if a != 0 and d != 0 and np.isfinite(a) and np.isfinite(d):
            need = max(need, int(np.floor(np.log10(abs(a)))) - int(np.floor(np.log10(abs(d)))) + digits)
    return min(need, MAX_DIGITS)


def first_examples(X: np.ndarray, Y: np.ndarray, m: int):
    """The first ``m`` examples (columns) of ``X`` ``(n_x, m_all)`` and ``Y`` ``(1, m_all)`` (all when ``m`` is
    at least ``m_all``); raises :class:`ConfigError` when ``m`` is below 1."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ConfigError(f"the number of images must be a whole number of at least 1, not {m!r}")
    return X[:, :m], Y[:, :m]


def _shape(shape) -> str:
    return r"(" + r",\,".join(str(n) for n in shape) + ")"


def _sized(name: str, array: np.ndarray) -> str:
    """``name`` with its shape written under it."""
    return rf"\underset{{{_shape(array.shape)}}}{{{name}}}"


def _number(v: float, digits: int) -> str:
    """A number for LaTeX with ``digits`` significant digits: fixed point when readable, else ``1.23e-5``."""
    v = float(v)
    if v == 0.0:
        return "0"
    if not np.isfinite(v):  # a diverging step (a learning rate far too large) shows what it did
        return r"\text{NaN}" if np.isnan(v) else ("" if v > 0 else "-") + r"\infty"
    if 1e-3 <= abs(v) < 1e4:  # fixed point (``g`` would write 1234.5 as 1.23e+03), trailing zeros dropped
        decimals = max(digits - 1 - int(np.floor(np.log10(abs(v)))), 0)
        text = f"{v:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, exponent = f"{v:.{max(digits, 1) - 1}e}".split("e")
    return rf"{mantissa}\mathrm{{e}}{{{int(exponent)}}}"
