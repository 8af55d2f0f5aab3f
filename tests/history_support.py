"""Shared by the run-history tests: a real history file, filled with runs and then damaged past its first page."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np

from catdnn import PRESETS, Model
from catdnn.history import History

TINY = replace(PRESETS["two-layer"], layers=(12288, 2, 1))


def tiny_model(config=TINY, fill: float = 0.0) -> Model:
    """A model of ``config``'s layers (an MLP) with every weight ``fill``: 197 KB as ``.npz`` for the TINY net."""
    params = [(np.full((b, a), fill), np.zeros((b, 1))) for a, b in zip(config.layers[:-1], config.layers[1:])]
    return Model(params, config, train_accuracy=0.5, test_accuracy=0.5)


def constant_model(config=TINY, cat: bool = False) -> Model:
    """A model of ``config``'s layers (an MLP) that answers "cat" (or "non-cat") for every image, whatever it is
    shown: its accuracy on any labels is :func:`catdnn.evaluate.constant_accuracy`'s."""
    model = tiny_model(config)
    W, b = model.params[-1]
    model.params[-1] = (W, np.full_like(b, 10.0 if cat else -10.0))
    return model


def damaged_history(path: Path, runs: int = 5) -> Path:
    """A history of ``runs`` runs (with models and curves) whose pages past the first are overwritten with
    random bytes, all but the page map and the small schema_version table: the file opens as a catdnn history
    and every query on the runs fails, as a disk error or a bad copy leaves it."""
    with History(path) as h:
        for s in range(runs):
            h.add(replace(TINY, seed=s), status="finished", history=[(i, 0.5) for i in range(300)],
                  model=tiny_model(), source="cli")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = db.execute("PRAGMA page_size").fetchone()[0]
        keep = {1, 2, db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'schema_version'").fetchone()[0]}
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes()
    for k in range(1, len(data) // page):
        if k + 1 not in keep:
            data[k * page:(k + 1) * page] = noise[k * page:(k + 1) * page]
    path.write_bytes(bytes(data))
    return path


def class_of_two(folder: Path):
    """A class "Period 3" in a real class store in ``folder`` (rate limits too high to matter), with two students,
    Ana and Bob, and its teacher: ``(store, class code, ana, bob, teacher)``; the caller closes the store."""
    from catdnn.classroom import ClassStore, RateLimiter

    store = ClassStore(Path(folder) / "classroom.sqlite3", failures=RateLimiter(100, 1000),
                       joins=RateLimiter(100, 1000))
    info, token = store.start_class("Period 3")
    ana, bob = store.join(info.code, "Ana"), store.join(info.code, "Bob")
    return store, info.code, ana, bob, store.teacher(info.code, token)
