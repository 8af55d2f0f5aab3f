"""What defines a training run: :class:`TrainConfig`, the course's presets and the limits.

Checked before any work starts, with a message that says what to change (see the README's Limits).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from .data import N_X
from .errors import ConfigError
from .network import INITS, param_count

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


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. The defaults are the course's deep network."""

    layers: tuple = (N_X, 20, 7, 5, 1)  # [n_x, n_1, ..., n_L]; n_L must be 1 (one sigmoid output)
    learning_rate: float = 0.0075  # the course's rate, for both of its networks
    iterations: int = 2500  # full-batch gradient-descent steps
    init: str = "xavier"  # weight scale by name, see catdnn.network.INITS
    seed: int = 1  # seeds np.random.RandomState for the weights; 1 reproduces the course

    def __post_init__(self):
        try:
            layers = tuple(self.layers)
        except TypeError:
            raise ConfigError(
                f"layers must be a list of layer sizes such as [12288, 20, 7, 5, 1], not {self.layers!r}"
            ) from None
        object.__setattr__(self, "layers", layers)

    @property
    def hidden(self) -> tuple:
        """The hidden layer sizes ``(n_1, ..., n_{L-1})``."""
        return self.layers[1:-1]

    def param_count(self) -> int:
        """Number of weights and biases."""
        return param_count(self.layers)

    def validate(self, n_x: int | None = N_X) -> TrainConfig:
        """Raise :class:`ConfigError` with a clear message if this run is impossible; return self."""
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
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {k: d[k] for k in ("layers", "learning_rate", "iterations", "init", "seed") if k in d}
        return cls(**known)

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """A named preset (see :data:`PRESETS`) with some fields replaced."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


#: The course's two networks, by the names the CLI and the dashboard use.
PRESETS: dict[str, TrainConfig] = {
    "two-layer": TrainConfig(layers=(N_X, 7, 1), init="small"),
    "deep": TrainConfig(layers=(N_X, 20, 7, 5, 1), init="xavier"),
}


def preset_name(config: TrainConfig) -> str:
    """ "two-layer" or "deep" when the layers and init are a preset's, else "custom"."""
    for name, preset in PRESETS.items():
        if preset.layers == config.layers and preset.init == config.init:
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
        n = int(p)
        if n < 1:
            raise ConfigError(f"layer size {n} in {_short(text)!r} must be at least 1")
        sizes.append(n)
    return tuple(sizes)


def _short(text: str, limit: int = 60) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
