"""What a run is, in words: its architecture, and in a comparison of runs what differs between them.

One home for the labels the Runs page's table and compare lists, the seed spread, the lessons'
overlays and ``python -m catdnn runs list`` show, so that a convolutional net never reads like the
MLP of its dense head and runs that differ only by their init never read the same.

* :func:`dataset_name`: a dataset's display name, never its folder on the server.
* :func:`arch_text`: the architecture, ``"in64,conv16,conv32,conv64,dense64"`` for a CNN (its
  canonical spec) or the layer list ``"[12288,20,7,5,1]"`` for an MLP.
* :func:`setting_parts`: a run's settings as short phrases, by field (architecture, dataset, init,
  optimizer, techniques, learning rate, iterations, seed).
* :func:`compare`: for several runs, the phrases they share and, for each run, those that differ.
* :func:`run_label`: one run's line, with the differing phrases when it is shown among others.

A "run" here is anything with a ``config`` (a :class:`~catdnn.config.TrainConfig`) and optionally
``dataset`` (its display name) and ``id`` (its number in the history): a history record, a sweep's
result, a lesson's run; a bare config works too.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import TrainConfig
from .errors import CatdnnError
from .optim import OPTIMIZER_LABELS

#: The phrases of a run, in the order a label shows them.
FIELDS = ("architecture", "dataset", "init", "optimizer", "techniques", "learning_rate", "iterations", "seed")
#: Shown in a single run's label (the rest only when runs differ by it).
SINGLE = ("architecture", "init", "optimizer", "techniques", "learning_rate", "seed")


def dataset_name(dataset) -> str:
    """A dataset's display name, never its folder: a :class:`~catdnn.data.Dataset`'s ``name``; for a folder,
    its manifest's name (imported photos), the course's name (the .h5 pair) or the folder's own name."""
    from .data import COURSE_NAME, FILES, is_imported, read_manifest

    if dataset is None or dataset == "":
        return ""
    if hasattr(dataset, "source") and hasattr(dataset, "name"):
        return str(dataset.name)
    text = str(dataset)
    if text == COURSE_NAME or ("/" not in text and os.sep not in text) or not (
            Path(text).is_absolute() or Path(text).is_dir()):
        return text  # already a name (a display name may hold a slash: "cat / non-cat (the course's)")
    folder = Path(text)
    try:
        if is_imported(folder):
            return str(read_manifest(folder).get("name") or folder.name)
    except CatdnnError:
        return folder.name
    return COURSE_NAME if all((folder / f).is_file() for f in FILES.values()) else folder.name


def _config(run) -> TrainConfig:
    return run if isinstance(run, TrainConfig) else run.config


def arch_text(config: TrainConfig) -> str:
    """The architecture: a CNN's spec (``"in64,conv16,conv32,dense64"``), an MLP's layer list (``"[12288,7,1]"``)."""
    config = _config(config)
    if config.is_cnn:
        try:
            return config.parsed_arch().text
        except CatdnnError:  # an invalid spec (never trained): show it as given
            return str(config.arch)
    return "[" + ",".join(str(n) for n in config.layers) + "]"


def setting_parts(run) -> dict:
    """The run's settings as short phrases, by :data:`FIELDS` name (``dataset`` only when the run names one)."""
    c = _config(run)
    techniques = c.techniques()
    optimizer = next((t for t in techniques if t.startswith(OPTIMIZER_LABELS)), "gradient descent")
    others = [t for t in techniques if not t.startswith(OPTIMIZER_LABELS)]
    parts = {
        "architecture": arch_text(c),
        "dataset": dataset_name(getattr(run, "dataset", "")),
        "init": f"{c.init} init",
        "optimizer": optimizer,
        "techniques": ", ".join(others) or "no regularisation or augmentation",
        "learning_rate": f"lr {c.learning_rate:g}",
        "iterations": f"{c.iterations:,} iterations",
        "seed": f"seed {c.seed}",
    }
    if c.is_cnn and c.dtype != "float64":
        parts["architecture"] += f" ({c.dtype})"
    return parts


def _shown(parts: dict, names) -> str:
    return " · ".join(parts[k] for k in names if parts.get(k))


def _number(run, numbered: bool) -> str:
    n = getattr(run, "id", None)
    return f"#{n} " if numbered and isinstance(n, int) else ""


def compare(runs, numbered: bool = True, architecture: bool = True) -> tuple[str, list[str]]:
    """``(common, labels)``: the phrases every run shares (e.g. for a chart's title), and one label per run
    naming its architecture and what sets it apart from the others (init, optimizer, techniques, dataset,
    learning rate, iterations, seed), after its number in the history (``numbered``). Without ``architecture``,
    a label names the architecture only when the runs differ by it. A single run's label is :func:`run_label`'s."""
    runs = list(runs)
    parts = [setting_parts(r) for r in runs]
    if len(runs) < 2:
        return "", [run_label(r, numbered=numbered) for r in runs]
    differ = [k for k in FIELDS if len({p[k] for p in parts}) > 1]
    shared = dict(parts[0])
    if not _has_techniques(runs[0]):
        shared["techniques"] = ""
    common = _shown(shared, [k for k in FIELDS if k not in differ])
    names = (["architecture"] if architecture else []) + [k for k in differ if k != "architecture" or not architecture]
    return common, [_number(r, numbered) + _shown(p, names) for r, p in zip(runs, parts)]


def _has_techniques(run) -> bool:
    return any(not t.startswith(OPTIMIZER_LABELS) for t in _config(run).techniques())


def run_label(run, among=None, numbered: bool = True) -> str:
    """One run's label: ``"#12 in64,conv16,conv32,dense64 · xavier init · gradient descent · lr 0.002 · seed 1"``.

    With ``among`` (the runs it is shown with, itself included), the label names the architecture and
    only what differs between them (see :func:`compare`)."""
    if among is not None:
        among = list(among)
        if len(among) > 1:
            for r, label in zip(among, compare(among, numbered)[1]):
                if r is run:
                    return label
    parts = setting_parts(run)
    if not _has_techniques(run):
        parts["techniques"] = ""
    return _number(run, numbered) + _shown(parts, SINGLE)


def config_label(config: TrainConfig, seed: bool = False, architecture: bool = True) -> str:
    """A config's settings without its seed (what a seed spread spreads): architecture, init, optimizer,
    techniques, learning rate and iterations; with ``seed``, the seed too; without ``architecture``, not it
    (shown beside it, as the class board does)."""
    parts = setting_parts(config)
    if not _has_techniques(config):
        parts["techniques"] = ""
    left_out = {"dataset"} | ({"seed"} if not seed else set()) | ({"architecture"} if not architecture else set())
    return _shown(parts, [k for k in FIELDS if k not in left_out])
