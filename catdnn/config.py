"""What defines a training run: :class:`TrainConfig`, the course's presets and the limits.

Checked before any work starts, with a message that says what to change (see the README's Limits).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from .arch import MAX_STEP_BYTES, Arch, arch_from_layers, parse_arch
from .data import N_X
from .errors import ConfigError
from .network import INITS, param_count
from .optim import HYPERPARAMETERS, OPTIMIZERS, SCHEDULES, hyperparameter_label, optimizer_text

#: Hard limits, checked before any work starts (documented in the README).
MAX_ITERATIONS = 1_000_000
MAX_SEED = 2**32 - 1
MAX_LEARNING_RATE = 100.0
MAX_HIDDEN_LAYERS = 50
MAX_LAYER_SIZE = 100_000
#: Parameters of a model may take at most this many bytes (float64). Training takes about 3.5 times
#: the weights (gradients and temporaries; measured: 1.70 GB peak for 506 MiB of weights), so a run
#: at the limit stays under about 1.8 GiB.
MAX_PARAM_BYTES = 512 * 1024**2
#: Limits of the techniques beyond the course (see the README's Limits).
MAX_L2 = 1e4
MAX_BATCH_SIZE = 10_000_000
MAX_DECAY = 1e6
MAX_SHIFT = 16  # pixels, of the 64×64 images
#: A run's arithmetic, by name (float32 for convolutional nets only).
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. The defaults are the course's deep network."""

    layers: tuple = (N_X, 20, 7, 5, 1)  # [n_x, n_1, ..., n_L]; n_L must be 1 (one sigmoid output)
    learning_rate: float = 0.0075  # the course's rate, for both of its networks
    iterations: int = 2500  # full-batch gradient-descent steps
    init: str = "xavier"  # weight scale by name, see catdnn.network.INITS
    seed: int = 1  # seeds np.random.RandomState for the weights (1 reproduces the course), and the
    #                run's other draws (mini-batches, dropout masks, augmentation), see optim.seeded_generators
    # ---- techniques beyond the course (the second course's); each is off by default
    l2: float = 0.0  # L2 regularisation λ: the cost gains λ/(2m)·Σ‖W‖², each dW gains λ/m·W; 0 = off
    keep_prob: float | tuple = 1.0  # inverted dropout on the hidden layers: one keep probability for all,
    #                                 or one per hidden layer; 1 = off; never used at prediction
    batch_size: int = 0  # examples per iteration, reshuffled every epoch; 0 = all of them (full batch)
    optimizer: str = "gd"  # "gd", "momentum", "rmsprop" or "adam", see catdnn.optim.OPTIMIZERS
    # the optimisers' hyperparameters, declared (default, range, help) in catdnn.optim.HYPERPARAMETERS
    beta: float = HYPERPARAMETERS["beta"].default  # momentum's β: v = β·v + (1-β)·dW
    beta1: float = HYPERPARAMETERS["beta1"].default  # Adam's β1 (first moment)
    beta2: float = HYPERPARAMETERS["beta2"].default  # RMSprop's and Adam's β2 (second moment)
    epsilon: float = HYPERPARAMETERS["epsilon"].default  # RMSprop's and Adam's ε, added to √s
    schedule: str = "constant"  # learning-rate schedule, see catdnn.optim.SCHEDULES
    decay: float = 0.0  # the schedule's decay rate d (needs schedule "inverse-time" or "step")
    decay_every: int = 1  # epochs per step of the "step" schedule
    flip: bool = False  # training: mirror each image left-right with probability 1/2, drawn every iteration
    shift: int = 0  # training: shift each image by up to this many pixels each way (zeros come in); 0 = off
    tta: bool = False  # prediction: the mean of P(cat) for the image and its mirror image
    batch_norm: bool = False  # batch normalisation of every hidden layer's Z (a CNN's conv layers per channel) with
    #                           learned γ, β; the batch's μ, σ² in training, their running averages (momentum 0.9)
    #                           at prediction
    # ---- a convolutional net instead (catdnn.arch, catdnn.cnn)
    arch: str = ""  # architecture spec with conv steps, e.g. "in32,conv16,conv32,conv64,dense64"
    #                 (catdnn.arch.parse_arch); "" = an MLP of ``layers``. A CNN's ``layers`` is its dense head.
    dtype: str = "float64"  # a CNN's arithmetic: "float32" (about twice as fast) or "float64"; MLPs are
    #                         float64 only (course parity)

    def __post_init__(self):
        try:
            layers = tuple(self.layers)
        except TypeError:
            raise ConfigError(
                f"layers must be a list of layer sizes such as [12288, 20, 7, 5, 1], not {self.layers!r}"
            ) from None
        object.__setattr__(self, "layers", layers)
        if isinstance(self.keep_prob, list):
            object.__setattr__(self, "keep_prob", tuple(self.keep_prob))
        if self.arch and isinstance(self.arch, str):
            try:
                arch = parse_arch(self.arch)
            except ConfigError:
                return  # validate() names the problem
            if arch.is_cnn:  # the canonical spec, and the dense head as the layers
                object.__setattr__(self, "arch", arch.text)
                object.__setattr__(self, "layers", arch.dense_layers)

    @property
    def is_cnn(self) -> bool:
        """Whether this is a convolutional net (``arch`` has conv steps)."""
        return bool(self.arch)

    def parsed_arch(self) -> Arch:
        """The architecture: :func:`catdnn.arch.parse_arch` of ``arch``, or the MLP of ``layers``."""
        return parse_arch(self.arch) if self.arch else arch_from_layers(self.layers)

    @property
    def hidden(self) -> tuple:
        """The hidden layer sizes ``(n_1, ..., n_{L-1})``."""
        return self.layers[1:-1]

    def param_count(self) -> int:
        """Number of weights and biases."""
        return parse_arch(self.arch).param_count() if self.arch else param_count(self.layers)

    def keep_probs(self) -> tuple:
        """The dropout keep probability of each hidden layer, ``(p_1, ..., p_{L-1})``."""
        if isinstance(self.keep_prob, tuple):
            return tuple(float(p) for p in self.keep_prob)
        return (float(self.keep_prob),) * len(self.hidden)

    @property
    def dropout(self) -> bool:
        """Whether some hidden layer drops units."""
        return any(p < 1.0 for p in self.keep_probs())

    def techniques(self) -> list:
        """Short descriptions of the techniques this run uses beyond the course ([] for the course's)."""
        out = []
        if self.l2:
            out.append(f"L2 λ={self.l2:g}")
        if self.dropout:
            kp = self.keep_prob if isinstance(self.keep_prob, tuple) else (self.keep_prob,)
            out.append("dropout keep=" + ",".join(f"{p:g}" for p in kp))
        if self.batch_size:
            out.append(f"mini-batches of {self.batch_size}")
        if optimizer_text(self):
            out.append(optimizer_text(self))
        if self.schedule != "constant":
            every = f" every {self.decay_every} epochs" if self.schedule == "step" else ""
            out.append(f"lr decay {self.schedule} d={self.decay:g}{every}")
        if self.flip:
            out.append("flips")
        if self.shift:
            out.append(f"shifts ±{self.shift} px")
        if self.tta:
            out.append("mirror averaging at prediction")
        if self.batch_norm:
            out.append("batch norm")
        return out

    def validate(self, n_x: int | None = N_X, m: int | None = None) -> TrainConfig:
        """Raise :class:`ConfigError` with a clear message if this run is impossible; return self.

        ``n_x``: the inputs per example; ``m``: the training examples, when known (a convolutional
        net's full-batch step is then bounded, see :meth:`step_bytes`).
        """
        if self.arch:
            return self._validate_cnn(n_x, m)
        if self.dtype != "float64":
            raise ConfigError(f"dtype {self.dtype!r} is for convolutional nets only: an MLP trains in float64 "
                              "(the course's numbers need it)")
        layers = self.layers
        if len(layers) < 2:
            raise ConfigError(
                f"the layer list {list(layers)} is too short: it needs at least the input size and "
                "the output size, e.g. [12288, 1] (no hidden layer) or [12288, 20, 7, 5, 1]"
            )
        for i, n in enumerate(layers):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise ConfigError(f"layer size {n!r} (position {i}) is not a whole number")
            if n < 1:
                raise ConfigError(f"layer size {n} (position {i}) must be at least 1")
        if n_x is not None and layers[0] != n_x:
            raise ConfigError(
                f"the first layer size must be the number of inputs, {n_x} (64×64×3), not {layers[0]}"
            )
        if layers[-1] != 1:
            raise ConfigError(
                f"the last layer size must be 1 (one sigmoid output, P(cat)), not {layers[-1]}"
            )
        if len(layers) - 2 > MAX_HIDDEN_LAYERS:
            raise ConfigError(f"{len(layers) - 2} hidden layers is too many (at most {MAX_HIDDEN_LAYERS})")
        for n in layers[1:-1]:
            if n > MAX_LAYER_SIZE:
                raise ConfigError(f"hidden layer size {n} is too large (at most {MAX_LAYER_SIZE:,})")
        nbytes = self.param_count() * 8
        if nbytes > MAX_PARAM_BYTES:
            raise ConfigError(
                f"layers {list(layers)} need {nbytes / 2**20:,.0f} MiB for the weights alone (about "
                f"{3.5 * nbytes / 2**30:,.1f} GiB to train); the limit is {MAX_PARAM_BYTES / 2**20:,.0f} "
                "MiB: use smaller hidden layers"
            )
        self._validate_run()
        self._validate_techniques(MAX_SHIFT)
        if self.batch_norm and self._step_examples(m) == 1:
            raise ConfigError("batch norm needs at least 2 examples per batch (one example has no variance), and "
                              "the whole training set is 1 example: take 2 or more")
        return self

    def _validate_run(self) -> None:
        """The checks every network shares: learning rate, iterations, seed, init."""
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)):
            raise ConfigError(f"the learning rate {lr!r} is not a number")
        if not math.isfinite(lr) or lr <= 0 or lr > MAX_LEARNING_RATE:
            raise ConfigError(
                f"the learning rate must be a number above 0 and at most {MAX_LEARNING_RATE:g}, not {lr!r}"
            )
        it = self.iterations
        if isinstance(it, bool) or not isinstance(it, (int, np.integer)) or not 1 <= it <= MAX_ITERATIONS:
            raise ConfigError(f"iterations must be a whole number from 1 to {MAX_ITERATIONS:,}, not {it!r}")
        s = self.seed
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= MAX_SEED:
            raise ConfigError(f"the seed must be a whole number from 0 to {MAX_SEED}, not {s!r}")
        if not isinstance(self.init, str) or self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}: choose one of {', '.join(INITS)}")

    def step_bytes(self, m: int | None = None) -> int | None:
        """A convolutional net's estimated peak bytes per training step (:meth:`catdnn.arch.Arch.step_bytes`)
        on ``batch_size`` images, or all ``m`` with full batches; None when that is not known (full
        batches, ``m`` not given). 0 for an MLP."""
        if not self.arch:
            return 0
        k = self._step_examples(m)
        return None if k is None else parse_arch(self.arch).step_bytes(k, np.dtype(self.dtype).itemsize)

    def _step_examples(self, m: int | None) -> int | None:
        """Examples per training step: ``batch_size``, or all ``m`` (None when not known)."""
        return self.batch_size if self.batch_size and (m is None or self.batch_size < m) else m

    def _validate_cnn(self, n_x: int | None, m: int | None) -> TrainConfig:
        """A CNN's checks: the spec and its limits, the memory of a step, then the settings it shares
        with an MLP (the shift at most half the network's input side)."""
        if not isinstance(self.arch, str):
            raise ConfigError(f"the architecture must be a text such as 'in32,conv16,dense64', not {self.arch!r}")
        arch = parse_arch(self.arch)
        if not arch.is_cnn:
            raise ConfigError(f"{self.arch!r} has no conv step: give an MLP as layer sizes "
                              f"({list(arch.dense_layers)})")
        if n_x is not None and n_x != N_X:
            raise ConfigError(f"a convolutional net takes 64×64×3 images ({N_X} inputs), not {n_x} inputs")
        if self.keep_probs() != (1.0,) * len(self.keep_probs()):
            raise ConfigError("dropout (keep_prob below 1) applies to MLPs only; this convolutional net has none")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        nbytes = arch.param_count() * np.dtype(self.dtype).itemsize
        if nbytes > MAX_PARAM_BYTES:
            raise ConfigError(f"the architecture {self.arch!r} needs {nbytes / 2**20:,.0f} MiB for the weights alone; "
                              f"the limit is {MAX_PARAM_BYTES / 2**20:,.0f} MiB: use fewer filters or units")
        self._validate_run()
        self._validate_techniques(min(MAX_SHIFT, arch.input_px // 2))
        step = self.step_bytes(m)
        if step is not None and step > MAX_STEP_BYTES:
            k = self._step_examples(m)
            raise ConfigError(
                f"the architecture {self.arch!r} in {self.dtype} needs about {step / 2**30:,.1f} GiB for one training "
                f"step on {k} images (patches and maps of its conv layers); the limit is "
                f"{MAX_STEP_BYTES / 2**30:g} GiB: use smaller batches, a smaller input (inN), or fewer filters"
            )
        return self

    def _validate_techniques(self, max_shift: int) -> None:
        _number("the L2 regularisation λ (l2)", self.l2, low=0.0, high=MAX_L2)
        hidden = len(self.layers) - 2
        kp = self.keep_prob
        values = kp if isinstance(kp, tuple) else (kp,)
        for p in values:
            _number("a dropout keep probability (keep_prob)", p, low=0.0, high=1.0, open_low=True)
        if isinstance(kp, tuple) and len(kp) != hidden:
            raise ConfigError(
                f"keep_prob lists {len(kp)} keep probabilit{'ies' if len(kp) != 1 else 'y'} but the network has "
                f"{hidden} hidden layer{'s' if hidden != 1 else ''}: give one per hidden layer, or a single number "
                "for all"
            )
        if hidden == 0 and any(p < 1.0 for p in values):
            raise ConfigError("dropout needs a hidden layer: this network has none (keep_prob must be 1)")
        bs = self.batch_size
        if isinstance(bs, bool) or not isinstance(bs, (int, np.integer)) or not 0 <= bs <= MAX_BATCH_SIZE:
            raise ConfigError(
                f"the batch size must be a whole number from 1 to {MAX_BATCH_SIZE:,}, or 0 for the whole "
                f"training set, not {bs!r}"
            )
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        for h in HYPERPARAMETERS.values():
            _number(f"{hyperparameter_label(h.name)} ({h.name})", getattr(self, h.name), low=h.low, high=h.high,
                    open_low=h.open_low, open_high=h.open_high)
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            raise ConfigError(
                f"unknown learning-rate schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}"
            )
        _number("the learning-rate decay rate (decay)", self.decay, low=0.0, high=MAX_DECAY)
        de = self.decay_every
        if isinstance(de, bool) or not isinstance(de, (int, np.integer)) or not 1 <= de <= MAX_ITERATIONS:
            raise ConfigError(f"decay_every must be a whole number of epochs from 1 to {MAX_ITERATIONS:,}, not {de!r}")
        if self.decay and self.schedule == "constant":
            raise ConfigError(
                f"a decay rate ({self.decay:g}) needs a schedule that decays: choose schedule "
                "'inverse-time' (α0/(1+d·epoch)) or 'step' (α0/(1+d·⌊epoch/k⌋))"
            )
        if de != 1 and self.schedule != "step":
            raise ConfigError(f"decay_every ({de}) applies only to the 'step' schedule, not {self.schedule!r}")
        for name in ("flip", "tta", "batch_norm"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if self.batch_norm and hidden == 0 and not self.arch:
            raise ConfigError("batch norm normalises the hidden layers: this network has none (add a hidden layer "
                              "or turn batch_norm off)")
        if self.batch_norm and bs == 1:
            raise ConfigError("batch norm needs at least 2 examples per batch (one example has no variance): "
                              "use a batch size of 2 or more, or 0 for the whole training set")
        sh = self.shift
        if isinstance(sh, bool) or not isinstance(sh, (int, np.integer)) or not 0 <= sh <= max_shift:
            raise ConfigError(f"the shift must be a whole number of pixels from 0 to {max_shift} (half the "
                              f"network's input side at most), not {sh!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        if isinstance(self.keep_prob, tuple):
            d["keep_prob"] = list(self.keep_prob)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config of :meth:`to_dict`'s dict; missing fields (older model files) take their defaults,
        unknown ones are ignored."""
        known = {k: d[k] for k in (f.name for f in fields(cls)) if k in d}
        return cls(**known)

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """A named preset (see :data:`PRESETS`) with some fields replaced."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


#: The course's two networks, by the names the CLI and the dashboard use.
COURSE_PRESETS = ("two-layer", "deep")
#: The presets: the course's two networks, then a small convolutional net.
PRESETS: dict[str, TrainConfig] = {
    "two-layer": TrainConfig(layers=(N_X, 7, 1), init="small"),
    "deep": TrainConfig(layers=(N_X, 20, 7, 5, 1), init="xavier"),
    # 32 px input, 3×3 convs of 16, 32, 64 filters with pooling, dense 64; Adam α 0.002, 50 epochs of
    # 7 batches of 32 (209 images); flips and ±4 px shifts in training, mirror averaging at prediction
    "cnn": TrainConfig(arch="in32,conv16,conv32,conv64,dense64", learning_rate=0.002, iterations=350, init="he",
                       batch_size=32, optimizer="adam", flip=True, shift=4, tta=True, dtype="float32"),
}


def iterations_for(epochs: int, m: int, batch_size: int) -> int:
    """Iterations that make ``epochs`` passes over ``m`` examples in batches of ``batch_size`` (0 = all)."""
    per_epoch = 1 if batch_size <= 0 or batch_size >= m else -(-m // batch_size)
    return int(epochs) * per_epoch


def preset_name(config: TrainConfig) -> str:
    """A preset's name when every setting but the seed is the preset's, else "custom" (a deep net trained
    for 1000 iterations, or at another rate, is not the ``deep`` preset)."""
    for name, preset in PRESETS.items():
        if replace(config, seed=preset.seed) == preset:
            return name
    return "custom"


def parse_layers(text: str) -> tuple:
    """Parse a comma-separated list of layer sizes, e.g. ``"12288,20,7,5,1"`` -> ``(12288, 20, 7, 5, 1)``.

    Semicolons count as commas and a trailing comma is ignored. Raises :class:`ConfigError`
    naming the first entry that is not a positive whole number.
    """
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]  # "20, 7," is "20, 7"
    if parts == [""]:
        return ()
    sizes = []
    for p in parts:
        shown = p if len(p) <= 20 else p[:17] + "..."
        if p == "":
            raise ConfigError(f"empty entry in the layer list {_short(text)!r} (two commas in a row?)")
        if not p.isascii() or not p.isdigit():
            if p.startswith("-") and p[1:].isdigit():
                raise ConfigError(f"layer size {shown} must be at least 1")
            raise ConfigError(f"layer size {shown!r} in {_short(text)!r} is not a whole number")
        if len(p.lstrip("0")) > 18:  # far beyond any limit (and int() refuses over 4300 digits)
            raise ConfigError(f"layer size {shown} is too large (at most {MAX_LAYER_SIZE:,})")
        n = int(p)
        if n < 1:
            raise ConfigError(f"layer size {n} in {_short(text)!r} must be at least 1")
        sizes.append(n)
    return tuple(sizes)


def _number(what: str, value, *, low: float, high: float, open_low: bool = False, open_high: bool = False) -> None:
    """Refuse ``value`` unless it is a real number in the range (``[low, high]`` by default)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ConfigError(f"{what} must be a number, not {value!r}")
    v = float(value)
    too_low = v <= low if open_low else v < low
    too_high = v >= high if open_high else v > high
    if not math.isfinite(v) or too_low or too_high:
        if not open_low and not open_high:
            span = f"from {low:g} to {high:g}"
        else:
            span = (f"above {low:g}" if open_low else f"at least {low:g}") + " and " + (
                f"below {high:g}" if open_high else f"at most {high:g}")
        raise ConfigError(f"{what} must be a number {span}, not {value!r}")


def _short(text: str, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
