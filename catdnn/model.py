"""The Model: a trained network and what is known about how it was trained.

Files are :mod:`catdnn.model_io`'s business; training is :mod:`catdnn.train`'s. This module imports
neither, so both can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from . import cnn
from .arch import Arch
from .config import TrainConfig
from .data import COURSE_NAME
from .errors import ConfigError
from .evaluate import mean_proba
from .network import BatchNorm, predict_proba


@dataclass
class Model:
    """A trained network and what is known about how it was trained.

    Attributes
    ----------
    params : list of (W, b)
        ``W`` of shape ``(n_l, n_{l-1})``, ``b`` of shape ``(n_l, 1)``; for a convolutional net
        (``config.arch``), the conv layers first (``W`` ``(C_l, 9·C_{l-1})``, ``b`` ``(C_l, 1)``,
        see :mod:`catdnn.cnn`), in the config's dtype.
    config : TrainConfig
    bn : catdnn.network.BatchNorm or None
        With ``config.batch_norm``: γ, β and the running averages of μ and σ² of each hidden layer
        (prediction uses the running averages); None without.
    """

    params: list
    config: TrainConfig
    classes: tuple = ("non-cat", "cat")
    history: list = field(default_factory=list)  # [(iteration, cost)]
    accuracy_history: list = field(default_factory=list)  # [(iteration, train_acc, test_acc)]
    iterations_done: int = 0
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    status: str = "finished"  # finished | stopped
    train_seconds: float = 0.0
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    stats: list = field(default_factory=list)  # [catdnn.probe.LayerStats] recorded during training; not saved to files
    dataset: str = COURSE_NAME  # the name of the dataset it was trained and tested on (catdnn.data.Dataset.name)
    bn: BatchNorm | None = None  # batch norm's γ, β and running μ, σ² (config.batch_norm), else None

    @property
    def layers(self) -> tuple:
        """The MLP's layer sizes ``(12288, n_1, ..., 1)``; a convolutional net's dense head ``(n_features, ..., 1)``."""
        return tuple(self.config.layers)

    @property
    def is_cnn(self) -> bool:
        """Whether this is a convolutional net (:mod:`catdnn.cnn`)."""
        return self.config.is_cnn

    @property
    def arch(self) -> Arch:
        """The architecture (:class:`catdnn.arch.Arch`), for an MLP too (no conv steps)."""
        return self.config.parsed_arch()

    @property
    def network(self) -> str:
        """The network in a few characters: the conv spec, or the layer list."""
        return self.config.arch if self.is_cnn else str(list(self.layers))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(cat) for every column of ``X`` (ndarray of shape (12288, m)); returns shape (m,).

        With the config's ``tta``, the mean of P(cat) for each image and its mirror image.
        """
        tta = bool(getattr(self.config, "tta", False))
        if self.is_cnn:
            return cnn.predict_proba(self.params, self.arch, X, tta=tta, bn=self.bn)
        return predict_proba(self.params, X, tta=tta, bn=self.bn)

    def summary(self) -> str:
        acc = ""
        if self.test_accuracy is not None:
            acc = f", train {self.train_accuracy:.3f} / test {self.test_accuracy:.3f}"
        extra = "".join(f", {t}" for t in self.config.techniques())
        return (
            f"{self.network} {self.config.init} lr={self.config.learning_rate:g}{extra}, "
            f"{self.iterations_done}/{self.config.iterations} iterations ({self.status}){acc}"
        )

    # -- notebook niceties (issue 15 §5): a short summary when displayed, the cost curve in one call
    def __repr__(self) -> str:
        return f"<catdnn Model: {self.summary()}>"

    def _repr_html_(self) -> str:
        from .notebook import model_html

        return model_html(self)

    def cost_figure(self, **options):
        """The cost curve as a ``plotly.graph_objects.Figure``, drawn by the app's builder
        (:func:`catdnn.figures.cost_figure`; ``options``: its ``title``, ``height``)."""
        from .figures import cost_axis, cost_figure, plotly_figure

        options.setdefault("ytitle", cost_axis([self.config]))
        return plotly_figure(cost_figure(self.history, self.config.iterations, **options))
    # --

    @property
    def nbytes(self) -> int:
        """The bytes held by the weights and biases."""
        bn = [] if self.bn is None else self.bn.params + self.bn.running
        return int(sum(W.nbytes + b.nbytes for W, b in self.params + bn))

    @property
    def param_count(self) -> int:
        """Number of weights and biases."""
        return self.config.param_count()


@dataclass
class Ensemble:
    """Several trained models as one: P(cat) is the mean of the members' P(cat) for each image
    (:func:`catdnn.evaluate.mean_proba`), e.g. one setting trained from five seeds.

    Attributes
    ----------
    models : list of Model
        At least one, all taking the same input (the same number of features per image).
    """

    models: list

    def __post_init__(self):
        self.models = list(self.models)
        if not self.models:
            raise ConfigError("an ensemble needs at least one model")
        inputs = sorted({m.arch.source for m in self.models})
        if len(inputs) > 1:
            shapes = ", ".join("×".join(map(str, s)) for s in inputs)
            raise ConfigError(f"the ensemble's models take images of different shapes ({shapes}): they cannot "
                              "predict the same images")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The members' mean P(cat) for every column of ``X`` (ndarray of shape (12288, m)); shape (m,)."""
        return mean_proba([m.predict_proba(X) for m in self.models])


#: A collection of models kept together (a dashboard session's) holds at most this many models ...
MAX_KEPT_MODELS = 8
#: ... and at most this many bytes of weights (one model may hold up to 512 MiB, see
#: catdnn.config.MAX_PARAM_BYTES, so 8 of them would be 4 GiB). SECURITY.md, "Resources".
MAX_KEPT_BYTES = 1024**3


def drop_oldest(models: dict, keep, max_models: int = MAX_KEPT_MODELS, max_bytes: int = MAX_KEPT_BYTES) -> list:
    """Drop the oldest models of ``models`` (a dict, oldest first) until it holds at most ``max_models``
    models and ``max_bytes`` bytes of weights; never the one named ``keep``. Returns the names dropped.
    """
    dropped = []
    total = sum(m.nbytes for m in models.values())
    while len(models) > max_models or total > max_bytes:
        oldest = next((n for n in models if n != keep), None)
        if oldest is None:  # only the kept model is left
            break
        total -= models.pop(oldest).nbytes
        dropped.append(oldest)
    return dropped
