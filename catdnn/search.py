"""Random search, the second course's way: settings drawn at random in ranges, on a log scale where
the course uses one, each scored by k-fold cross-validation on the training images only, then a
zoom that narrows the ranges around the best (coarse to fine).

* :class:`Range` and :class:`Choice`: one setting's range and how it is drawn (:data:`SCALES`): the
  learning rate and ε log-uniformly, β as ``1 - 10^u`` with ``u`` uniform (1−β log-uniformly: β from
  0.9 to 0.999 spends as many draws between 0.9 and 0.99 as between 0.99 and 0.999), layer widths,
  depths, L2 and keep probabilities uniformly, optimisers and inits uniformly among those given.
  :data:`PARAMETERS` says which scale each setting takes; :func:`parse_range` reads ``"1e-4:1e-1"``.
* :func:`sample`: ``n`` settings from a seeded generator (the same seed, the same settings);
  :func:`configure` makes each a :class:`~catdnn.config.TrainConfig`.
* :func:`score`: every setting on every fold, through :func:`catdnn.sweep.sweep` (a worker pool or a
  Dask cluster): fold ``j`` goes to the runner as its ``fold`` option, so each run trains on
  :func:`catdnn.validation.fold_dataset` (the fold's training part, its validation part as the "test"
  split) and the test images are never read. P(cat) on each validation part is scored here
  (:data:`catdnn.validation.SELECTION_METRICS`) into one :class:`~catdnn.validation.CVResult` per setting.
* :func:`zoom`: each range narrowed to the span of the best settings' values (in the range's own
  scale), widened by :data:`ZOOM_MARGIN` of the old width each side and kept inside the old range.
* :func:`random_search`: draw, score, zoom, draw again, score: every round and its ranges.

This module imports :mod:`catdnn.sweep` and :mod:`catdnn.validation`; neither imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .config import TrainConfig
from .errors import ConfigError
from .optim import HYPERPARAMETERS
from .sweep import MAX_RUNS, sweep
from .validation import SELECTION_METRICS, CVResult, fold_dataset, score_of

#: How a range is drawn: "log" (log-uniformly), "1-log" (1 − value log-uniformly: a β), "uniform",
#: "int" (a whole number, uniformly).
SCALES = ("log", "1-log", "uniform", "int")
#: The settings random search varies, by their command-line name: (what it sets, scale). "width" is
#: every hidden layer's width (each drawn on its own), "depth" the number of hidden layers; the rest
#: are :class:`~catdnn.config.TrainConfig` fields, the optimisers' as :data:`catdnn.optim.HYPERPARAMETERS`
#: declares them.
PARAMETERS: dict[str, tuple[str, str]] = {
    "lr": ("learning_rate", "log"),
    "depth": ("depth", "int"),
    "width": ("width", "int"),
    "l2": ("l2", "uniform"),
    "keep-prob": ("keep_prob", "uniform"),
    **{h.name: (h.name, h.scale) for h in HYPERPARAMETERS.values()},
}
#: The categorical settings, drawn uniformly among the values given.
CHOICES = {"optimizer": "optimizer", "init": "init"}
#: A zoomed range reaches this share of the old range's width (in its scale) beyond the best values.
ZOOM_MARGIN = 0.1
#: Most settings one round may draw (each trains once per fold).
MAX_SETTINGS = 200


@dataclass(frozen=True)
class Range:
    """One setting's range ``[low, high]`` and how it is drawn (:data:`SCALES`)."""

    name: str  # the command-line name, a key of PARAMETERS
    low: float
    high: float
    scale: str

    def _u(self, value: float) -> float:
        """``value`` in the scale the draws are uniform in."""
        if self.scale == "log":
            return math.log10(value)
        if self.scale == "1-log":
            return math.log10(1.0 - value)
        return float(value)

    def _value(self, u: float) -> float:
        if self.scale == "log":
            return 10.0**u
        if self.scale == "1-log":
            return 1.0 - 10.0**u
        return float(u)

    def draw(self, rng: np.random.Generator):
        """One value, uniform in this range's scale (a whole number for "int")."""
        if self.scale == "int":
            return int(rng.integers(int(self.low), int(self.high) + 1))
        a, b = sorted((self._u(self.low), self._u(self.high)))
        return min(max(self._value(rng.uniform(a, b)), self.low), self.high)  # rounding stays inside

    def narrowed(self, values) -> Range:
        """The range around ``values`` (:func:`zoom`), inside this one."""
        us = [self._u(v) for v in values]
        a, b = sorted((self._u(self.low), self._u(self.high)))
        pad = ZOOM_MARGIN * (b - a)
        lo_u, hi_u = max(min(us) - pad, a), min(max(us) + pad, b)
        lo, hi = sorted((self._value(lo_u), self._value(hi_u)))
        if self.scale == "int":
            lo, hi = math.floor(lo), math.ceil(hi)
        return Range(self.name, max(lo, self.low), min(hi, self.high), self.scale)

    def text(self, label: str | None = None) -> str:
        """``"lr 0.00214227:0.0131798"`` as the CLI prints it; with a ``label`` (the form's), ``"Learning rate
        0.00214 to 0.0132"``: 3 significant digits."""
        if label is None:
            return f"{self.name} {self.low:g}:{self.high:g}"
        return f"{label} {self.low:.3g} to {self.high:.3g}"


@dataclass(frozen=True)
class Choice:
    """A categorical setting (an optimiser, an init) drawn uniformly among ``values``."""

    name: str
    values: tuple

    def draw(self, rng: np.random.Generator):
        return self.values[int(rng.integers(len(self.values)))]

    def narrowed(self, values) -> Choice:
        return Choice(self.name, tuple(v for v in self.values if v in set(values)))

    def text(self, label: str | None = None) -> str:
        return f"{label or self.name} {', '.join(self.values) if label else ','.join(self.values)}"


def parse_range(name: str, text: str, label: str | None = None) -> Range:
    """``parse_range("lr", "1e-4:1e-1")``: the range of setting ``name`` (a key of :data:`PARAMETERS`).

    Raises :class:`ConfigError` for text that is not ``LOW:HIGH`` with LOW < HIGH, or a range its scale
    cannot draw from (a log range must be above 0, a β's below 1, a width a whole number from 1). The
    message names the setting by its flag (``--lr``), or by ``label`` (a form's, e.g. "Learning rate").
    """
    if name not in PARAMETERS:
        raise ConfigError(f"random search cannot vary {name!r}: it varies {', '.join(PARAMETERS)}")
    scale = PARAMETERS[name][1]
    who = label or f"--{name}"  # what the message calls it
    low_text, colon, high_text = str(text).partition(":")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = float("nan")
    if not colon or not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ConfigError(f"{who} {text!r} is not a range LOW:HIGH with LOW below HIGH, e.g. "
                          f"{who} {'1e-4:1e-1' if scale == 'log' else '0.9:0.999' if scale == '1-log' else '4:64'}")
    if scale == "log" and low <= 0:
        raise ConfigError(f"{who} {text}: drawn on a log scale, so it must stay above 0")
    if scale == "1-log" and (low < 0 or high >= 1):
        value = label or name
        raise ConfigError(f"{who} {text}: 1 − {value} is drawn on a log scale, so {value} must be from 0 to below 1")
    if scale == "int" and (low < 1 or low != int(low) or high != int(high)):
        raise ConfigError(f"{who} {text}: whole numbers from 1")
    return Range(name, low, high, scale)


def parse_ranges(texts: dict, choices: dict | None = None, labels: dict | None = None) -> list:
    """The ranges of a search from their texts: ``{"lr": "1e-4:1e-1", "width": "4:64", "beta": ""}``
    (an empty or missing text: not varied) and ``{"optimizer": ("gd", "momentum")}`` (drawn among those;
    empty: not varied). Raises :class:`ConfigError` (:func:`parse_range`'s, or none varied at all), naming each
    setting by ``labels[name]`` when given (a form's labels), else by its flag."""
    labels = labels or {}
    ranges = [parse_range(name, str(text).strip(), labels.get(name)) for name, text in texts.items()
              if text is not None and str(text).strip()]
    ranges += [Choice(name, tuple(values)) for name, values in (choices or {}).items() if values]
    if not ranges:
        raise ConfigError("a random search needs at least one range, e.g. "
                          + ("a learning rate of 1e-4:1e-1" if labels else "--lr 1e-4:1e-1 --width 4:64"))
    return ranges


# --------------------------------------------------------------------------- drawing settings
def sample(ranges, n: int, seed: int, depth: int = 1) -> list[dict]:
    """``n`` settings ``{name: value}`` drawn from ``ranges`` (:class:`Range` or :class:`Choice`) by a
    generator seeded with ``seed``: the same ranges and seed give the same settings. "width" is a tuple
    with one width per hidden layer: "depth" of them when "depth" is a range, else ``depth``."""
    ranges = list(ranges)
    order = {name: i for i, name in enumerate([*PARAMETERS, *CHOICES])}
    ranges.sort(key=lambda r: order[r.name])  # a fixed draw order, whatever order the ranges came in
    rng = np.random.default_rng(int(seed))
    out = []
    for _ in range(int(n)):
        setting: dict = {}
        for r in ranges:
            if r.name == "width":  # one per hidden layer ("depth" is drawn first)
                setting["width"] = tuple(r.draw(rng) for _ in range(int(setting.get("depth", depth))))
            else:
                setting[r.name] = r.draw(rng)
        out.append(setting)
    return out


def configure(base: TrainConfig, setting: dict) -> TrainConfig:
    """``base`` with ``setting``'s values (validated): "width" gives the hidden layers' widths; "depth"
    alone repeats the base's last hidden width (7 without one) that many times."""
    fields = {PARAMETERS[k][0] if k in PARAMETERS else CHOICES[k]: v for k, v in setting.items()
              if k not in ("width", "depth")}
    if "width" in setting or "depth" in setting:
        if base.is_cnn:
            raise ConfigError("--width and --depth vary an MLP's hidden layers; a convolutional net's are its "
                              "architecture (use the grid sweep's --arch)")
        hidden = setting.get("width") or (base.hidden[-1:] or (7,)) * int(setting["depth"])
        fields["layers"] = (base.layers[0], *hidden, 1)
    return replace(base, **fields).validate()


# --------------------------------------------------------------------------- scoring
@dataclass
class Scored:
    """One setting, its config and its cross-validation."""

    setting: dict
    config: TrainConfig
    cv: CVResult

    @property
    def checkpoint(self):
        return self.cv.best_checkpoint

    @property
    def score(self) -> float:
        """The mean validation score over the folds that completed (NaN if none did)."""
        return self.cv.mean(self.checkpoint)

    def describe(self) -> str:
        return self.cv.describe(self.checkpoint)


def score(configs, dataset, *, k: int = 5, seed: int = 0, metric: str = "auc", executor=None,
          workers: int | None = None, stop=None, on_run: Callable | None = None, **trainer_options) -> list[CVResult]:
    """Each config's k-fold CV on the training images of ``dataset``, trained through :func:`catdnn.sweep.sweep`.

    Parameters
    ----------
    configs : list of TrainConfig
    dataset : catdnn.data.Dataset
        Its training images are split into folds (:func:`catdnn.validation.stratified_kfold`, ``k``,
        ``seed``); the runs load it from ``dataset.source`` and train on one fold each. Its test split is
        never read.
    metric : "auc" or "balanced_accuracy"
    executor, workers, stop
        As :func:`catdnn.sweep.sweep` takes them; without an executor, one pool of ``workers`` processes
        serves every fold.
    on_run : callable(fold, SweepResult, score), optional
        Called as each run ends (``score`` None when it has none).
    trainer_options
        Passed to the Trainer (``cost_every``, ...).

    Returns
    -------
    list of CVResult, in the configs' order: one checkpoint, the config's iterations.
    """
    from .workers import TrainingPool

    if metric not in SELECTION_METRICS:
        raise ConfigError(f"score settings by {' or '.join(SELECTION_METRICS)}, not {metric!r}")
    configs = list(configs)
    if len(configs) * int(k) > MAX_RUNS:
        raise ConfigError(f"{len(configs)} settings × {k} folds is {len(configs) * int(k)} runs; at most {MAX_RUNS}")
    val = [fold_dataset(dataset, k, seed, j).test for j in range(int(k))]  # checks k against the classes too
    scores = [[float("nan")] * int(k) for _ in configs]
    t0 = time.perf_counter()
    own = executor is None
    runner = TrainingPool(workers) if own else executor
    try:
        for j in range(int(k)):
            if stop is not None and stop.is_set():
                break
            fold = {"k": int(k), "seed": int(seed), "index": j}
            for res in sweep(configs, runner, data_dir=dataset.source, stop=stop, fold=fold, **trainer_options):
                s = None
                if res.status == "finished" and res.model is not None:
                    s = score_of(metric, res.model.predict_proba(val[j].X), val[j].Y)
                if s is not None:
                    scores[res.index][j] = s
                if on_run is not None:
                    on_run(j, res, s)
    finally:
        if own:
            runner.close()
    seconds = time.perf_counter() - t0
    return [CVResult(f"setting {i + 1}", metric, {c.iterations: scores[i]}, seconds, int(k))
            for i, c in enumerate(configs)]


def ranked(scored: list) -> list:
    """``scored`` (:class:`Scored`), best first by :meth:`CVResult.rank` (fewer failed folds first)."""
    return sorted(scored, key=lambda s: s.cv.rank(s.checkpoint), reverse=True)


def zoom(ranges, best: list) -> list:
    """The ranges narrowed around the settings in ``best`` (dicts, as :func:`sample` draws them):
    each :class:`Range` to the span of their values in its scale, :data:`ZOOM_MARGIN` of its width
    beyond each side and never outside it; each :class:`Choice` to the values they took."""
    if not best:
        raise ConfigError("nothing to zoom around: no setting has a validation score")
    out = []
    for r in ranges:
        values = [v for s in best for v in (s[r.name] if isinstance(s[r.name], tuple) else (s[r.name],))]
        out.append(r.narrowed(values))
    return out


@dataclass
class Round:
    """One round of a search: its ranges, and its settings scored, best first."""

    ranges: list
    scored: list = field(default_factory=list)


def random_search(base: TrainConfig, ranges, n: int, dataset, *, seed: int = 0, k: int = 5, metric: str = "auc",
                  zoom_k: int = 0, executor=None, workers: int | None = None, stop=None,
                  on_run: Callable | None = None, on_round: Callable | None = None, **trainer_options) -> list[Round]:
    """Draw ``n`` settings of ``ranges`` over ``base``, score each by ``k``-fold CV on ``dataset``'s
    training images; with ``zoom_k``, narrow the ranges around the ``zoom_k`` best and do it again
    (the second round draws from ``seed + 1``). Returns the rounds; ``on_round(number, round)`` is
    called as each is drawn (before scoring) and ``on_run`` as in :func:`score`."""
    ranges = list(ranges)
    if not 1 <= int(n) <= MAX_SETTINGS:
        raise ConfigError(f"a random search draws from 1 to {MAX_SETTINGS} settings a round, not {n}")
    if zoom_k and not 1 <= int(zoom_k) <= int(n):
        raise ConfigError(f"--zoom {zoom_k}: zoom around 1 to {n} of the best settings")
    rounds = []
    for number in range(2 if zoom_k else 1):
        if number:
            complete = [s for s in rounds[-1].scored if s.cv.completed(s.checkpoint)]
            if not complete:  # no setting has a score: nothing to zoom around
                break
            ranges = zoom(ranges, [s.setting for s in complete[: int(zoom_k)]])
        settings = sample(ranges, n, seed + number, depth=max(len(base.hidden), 1))
        configs = [configure(base, s) for s in settings]
        rnd = Round(ranges)
        rounds.append(rnd)
        if on_round is not None:
            on_round(number, rnd)
        cvs = score(configs, dataset, k=k, seed=seed, metric=metric, executor=executor, workers=workers, stop=stop,
                    on_run=on_run, **trainer_options)
        rnd.scored = ranked([Scored(s, c, cv) for s, c, cv in zip(settings, configs, cvs)])
        if stop is not None and stop.is_set():
            break
    return rounds


def setting_text(setting: dict, labels: dict | None = None) -> str:
    """``"lr=0.00316 width=23,7 beta=0.93"``: a setting as the search prints it; with ``labels`` (a form's, by
    name) ``"Learning rate 0.00316 · Hidden layer widths 23, 7 · Momentum's β 0.93"``."""
    parts = []
    for name, value in setting.items():
        if isinstance(value, tuple):
            text = (", " if labels else ",").join(str(v) for v in value)
        elif isinstance(value, float):
            text = f"{value:.3g}"
        else:
            text = str(value)
        parts.append(f"{labels.get(name, name)} {text}" if labels else f"{name}={text}")
    return (" · " if labels else " ").join(parts)
