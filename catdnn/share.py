"""A run's settings as the parameters of a link (``?hidden=20,7,5&lr=0.0075&...``), and back.

The dashboard's Train page keeps its settings in the page's URL, so that a link reproduces a run:
:func:`config_to_query` writes a :class:`~catdnn.config.TrainConfig` as short text parameters (the
course's five settings always, a technique only when it is on), and :func:`config_from_query` reads
them back, one parameter at a time, each checked by :meth:`TrainConfig.validate`: a value that is
not a number, out of range, or impossible with the parameters before it is refused with a message
naming the parameter, and the setting keeps its default. Reading a link never trains anything.

The names are the CLI's flags (``--lr``, ``--keep-prob``, ...), except ``hidden``: the hidden layer
sizes only, as the form shows them (the input, 12288, and the output, 1, are implied).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from .config import TrainConfig, parse_layers
from .data import N_X
from .errors import ConfigError
from .optim import HYPERPARAMETERS

#: URL parameter -> TrainConfig field, in the order they are read (a field's checks may need the
#: ones before it: keep-prob the hidden layers, decay the schedule).
PARAMS: dict[str, str] = {
    "hidden": "layers",
    "arch": "arch",  # a convolutional net (its dense head is then "hidden")
    "lr": "learning_rate",
    "iterations": "iterations",
    "init": "init",
    "seed": "seed",
    "l2": "l2",
    "keep-prob": "keep_prob",
    "batch-size": "batch_size",
    "optimizer": "optimizer",
    **{name: name for name in HYPERPARAMETERS},  # the optimisers' (beta, beta1, beta2, epsilon)
    "schedule": "schedule",
    "decay": "decay",
    "decay-every": "decay_every",
    "flip": "flip",
    "shift": "shift",
    "tta": "tta",
    "batch-norm": "batch_norm",
    "dtype": "dtype",  # after arch: float32 is a CNN's only
}
#: Always in a link: the course's settings (the rest only when they differ from the default).
CORE = ("hidden", "lr", "iterations", "init", "seed")
#: A value longer than this is cut short when a message quotes it.
QUOTE_LIMIT = 40

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def setting_text(value) -> str:
    """A setting's value as the text a link (or a text field) holds: floats in their shortest exact
    form (``0.0075``, ``1e-08``, ``1``), booleans as 1 or 0, several keep probabilities as ``0.9,0.8``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, tuple):
        return ",".join(setting_text(v) for v in value)
    return str(value)


def config_to_query(config: TrainConfig) -> dict[str, str]:
    """The link parameters that reproduce ``config``: the five core settings, and each technique that is on.

    >>> config_to_query(TrainConfig(layers=(12288, 7, 1), init="small"))["hidden"]
    '7'
    """
    default = TrainConfig()
    out = {}
    for name, fname in PARAMS.items():
        value = getattr(config, fname)
        if name == "hidden":
            out[name] = ",".join(str(n) for n in config.hidden)
        elif name in CORE or value != getattr(default, fname):
            out[name] = setting_text(value)
    return out


def _quote(text: str) -> str:
    return repr(text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "...")


def parse_keep_prob(text: str):
    """``"0.8"`` -> 0.8 (every hidden layer), ``"0.9, 0.8"`` -> (0.9, 0.8) (one per hidden layer).

    Raises :class:`ConfigError` when an entry is not a number; the range is :meth:`TrainConfig.validate`'s.
    """
    try:
        values = tuple(float(p) for p in str(text).replace(";", ",").split(","))
    except ValueError:
        raise ConfigError(f"the keep probability {_quote(str(text))} is not a number (e.g. 0.8) or a list of "
                          "them, one per hidden layer (e.g. 0.9, 0.8)") from None
    return values[0] if len(values) == 1 else values


def _parse(name: str, fname: str, text: str):
    """The field's value from its link text; :class:`ConfigError` if it is not of the field's kind."""
    kind = type(getattr(TrainConfig(), fname))
    if name == "hidden":
        return (N_X, *parse_layers(text), 1)
    if name == "keep-prob":
        return parse_keep_prob(text)
    if kind is bool:
        low = text.strip().lower()
        if low not in _TRUE + _FALSE:
            raise ConfigError("must be 1 or 0 (true or false)")
        return low in _TRUE
    if kind is int:
        t = text.strip()
        if not (t.isascii() and (t.isdigit() or (t[:1] == "-" and t[1:].isdigit()))):
            raise ConfigError("not a whole number")
        if len(t.lstrip("-").lstrip("0")) > 18:  # far beyond every limit; int() refuses over 4300 digits
            raise ConfigError("far too large a number")
        return int(t)
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError("not a number") from None
        if not math.isfinite(value):
            raise ConfigError("not a finite number")
        return value
    return text.strip()


def config_from_query(query: Mapping, base: TrainConfig | None = None) -> tuple[TrainConfig, list[str]]:
    """The settings a link holds, and a message for every parameter that could not be used.

    Parameters
    ----------
    query : mapping of str to str (or to a list of str: the last one counts)
        The link's parameters, e.g. ``st.query_params.to_dict()``.
    base : TrainConfig, optional
        The settings a parameter missing from the link, or refused, keeps (default: the deep preset's).

    Returns
    -------
    config : TrainConfig
        ``base`` with every usable parameter applied; always valid.
    warnings : list of str
        One per refused or unknown parameter, naming it, saying why and what was kept.
    """
    config = (base or TrainConfig()).validate()
    warnings = []
    for name in query:
        if name not in PARAMS:
            warnings.append(f"the link's parameter {_quote(str(name))} is not a setting of this page: ignored "
                            f"(the settings are {', '.join(PARAMS)})")
    for name, fname in PARAMS.items():
        if name not in query:
            continue
        raw = query[name]
        text = str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw)
        try:
            candidate = replace(config, **{fname: _parse(name, fname, text)}).validate()
        except ConfigError as exc:
            kept = config_to_query(config).get(name, setting_text(getattr(config, fname)))
            warnings.append(f"the link's {name}={_quote(text)} cannot be used: {exc}. Kept {name}={kept}.")
            continue
        config = candidate
    return config, warnings
