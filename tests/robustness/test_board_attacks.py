"""Attacks on the class board (attack review 2 of issue 16), each a test that failed while the attack worked:

* a board submission gave a student a second training at once (the fold runs were queued as theirs but without
  the class's limits, so they ran beside the student's Train-page run);
* a run on a student's own uploaded photos, named like the class's dataset, ranked on the class's board;
* a run trained on those photos, submitted with the class's dataset chosen, brought the test accuracy of its
  record (measured on the student's photos) to the class's board;
* the board showed each entry's seed before the reveal, so a classmate could train the run again and read its
  test accuracy early.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from catdnn import PRESETS, TrainConfig, photos
from catdnn.board import Board, BoardError
from catdnn.classroom import MACHINE, ClassStore, Limits, RateLimiter
from catdnn.data import load_dataset
from catdnn.history import History
from catdnn.network import score
from catdnn.train import fit
from catdnn.workers import TrainingPool
from tests.history_support import constant_model
from tests.photo_support import photo_tree, write_tree, zip_bytes

# A Train-page run long enough to be mid-way whenever the test looks (minutes if left alone).
LONG = TrainConfig(layers=(12288, 64, 32, 1), iterations=1_000_000, learning_rate=0.001)


def _until(what, timeout=120.0, every=0.1):
    end = time.monotonic() + timeout
    while not what() and time.monotonic() < end:
        time.sleep(every)
    return what()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path / "home"))


@pytest.fixture
def klass(tmp_path):
    """A class (one run at a time per student) with Ana and Bob, its board, and Ana's and Bob's histories."""
    store = ClassStore(tmp_path / "classroom.sqlite3", failures=RateLimiter(100, 1000), joins=RateLimiter(100, 1000))
    info, _token = store.start_class("Period 3")
    unbounded = Limits(max_iterations=None, runs_at_once=1, cnn_allowed=True, max_work=None, max_seconds=None)
    store.update_class(info.code, limits=unbounded)
    ana, bob = store.join(info.code, "Ana"), store.join(info.code, "Bob")
    board = Board(store)
    k = type("Class", (), {})()
    k.store, k.code, k.ana, k.bob, k.board = store, info.code, ana, bob, board
    k.history = {who: History(tmp_path / "runs.sqlite3", viewer=who) for who in (ana, bob)}
    yield k
    board.close()
    for h in k.history.values():
        h.close()
    store.close()


def test_a_board_submission_waits_behind_the_students_training(klass, data_dir, dataset):
    """runs_at_once 1: Ana trains on the Train page, then submits a run to the board in another tab. The scoring's
    fold runs are hers under the class's limits: queued behind her training (never two of hers running at once,
    while the other worker is free), not refused; once her training ends they run and the entry goes on."""
    ana, history = klass.ana, klass.history[klass.ana]
    limits = klass.store.get_class(klass.code).limits
    config = replace(PRESETS["two-layer"], iterations=5)
    run = history.add(config, status="finished", test_accuracy=0.7, train_accuracy=0.9, iterations_done=5,
                      source="app", dataset=dataset, model=constant_model(config))
    pool = TrainingPool(processes=2)
    stop = threading.Event()
    out: dict = {}

    def submit():
        try:
            out["entry"] = klass.board.submit(ana, run, history, dataset, executor=pool, stop=stop)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            out["error"] = exc

    try:
        train = pool.submit(LONG, data_dir, owner=ana.owner, limits=limits)  # the Train page's run
        assert _until(lambda: train.started)
        t = threading.Thread(target=submit, daemon=True)
        t.start()
        most = [0]

        def mine(state):
            return sum(1 for j in pool.jobs() if j.owner == ana.owner and j.state == state)

        def watch() -> bool:
            most[0] = max(most[0], mine("running"))
            return "error" in out or most[0] > 1 or mine("queued") >= 1

        assert _until(watch, timeout=60, every=0.05), "the scoring's first fold run was neither queued nor started"
        time.sleep(2)  # the other worker is free all along: a fold run that could start would have
        watch()
        assert most[0] <= 1, f"student Ana had {most[0]} trainings running at once under runs_at_once=1"
        assert "error" not in out, f"the submission was refused while Ana trained: {out.get('error')}"
        assert mine("queued") == 1 and t.is_alive()  # held behind her training, not refused
        train.cancel()  # her training ends: the fold runs go on, one at a time
        t.join(timeout=300)
        assert not t.is_alive() and "entry" in out, out.get("error")
        assert len(out["entry"].scores) == 5 and all(np.isfinite(out["entry"].scores))
    finally:
        stop.set()
        pool.close()


def _solid(value: int, seed: int) -> bytes:
    """A real PNG of one flat grey (plus faint noise, so no two are the same file)."""
    rng = np.random.default_rng(seed)
    img = np.clip(value + rng.normal(0, 2, (64, 64, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def test_a_students_own_photos_named_like_the_class_dataset_do_not_rank_on_its_board(klass, tmp_path):
    """The teacher imports the class's photos on the machine as "pets"; Ana uploads a zip also named "pets" (white
    "cats", black others: a 100% test accuracy). Her run on it is refused with one sentence, before any training;
    the class's "pets" board and her upload are told apart by identity, not by name."""
    ana, bob, board, history = klass.ana, klass.bob, klass.board, klass.history[klass.ana]
    home = tmp_path / "home"
    folder = write_tree(tmp_path / "pets", photo_tree(n_cat=15, n_other=15))
    shared = load_dataset(photos.import_photos(folder, name="pets", home=home, viewer=MACHINE).folder, download=False)
    fake = {**{f"cat/{i}.png": _solid(250, i) for i in range(15)},
            **{f"non-cat/{i}.png": _solid(5, 100 + i) for i in range(15)}}
    mine = photos.import_photos(zip_bytes(fake), name="pets", home=home, viewer=ana)
    assert mine.uploaded and mine.name == "pets" == shared.name  # the premise: the same display name
    ds = load_dataset(mine.folder, download=False)
    config = TrainConfig(layers=(12288, 1), iterations=200, learning_rate=0.005)
    run = history.add(config, status="finished", test_accuracy=1.0, train_accuracy=1.0, iterations_done=200,
                      source="app", dataset=ds)
    with cf.ThreadPoolExecutor(2) as ex:
        with pytest.raises(BoardError, match=r"^'pets' holds photos uploaded in the app, which only their owner "
                                             r"can train on: the board takes runs on a dataset the whole class "
                                             r"shares"):
            board.submit(ana, run, history, ds, executor=ex)
    for on in (ds, shared, "pets"):
        assert board.standings(bob, dataset=on).rows == ()


def test_a_run_on_a_students_own_photos_brings_no_test_accuracy_to_the_class_board(klass, tmp_path):
    """The run's record names its dataset by display name only: Ana trains on her upload "pets" (white "cats",
    black others: 100% on its test images), then submits the run with the class's "pets" chosen. The board
    scores her settings on the class's images, and its test accuracy is her model's on the class's test images,
    measured by the board, not the 100% her record holds. A run that kept no model is refused."""
    ana, board, history = klass.ana, klass.board, klass.history[klass.ana]
    home = tmp_path / "home"
    folder = write_tree(tmp_path / "pets", photo_tree(n_cat=15, n_other=15))
    shared = load_dataset(photos.import_photos(folder, name="pets", home=home, viewer=MACHINE).folder, download=False)
    fake = {**{f"cat/{i}.png": _solid(250, i) for i in range(15)},
            **{f"non-cat/{i}.png": _solid(5, 100 + i) for i in range(15)}}
    mine = load_dataset(photos.import_photos(zip_bytes(fake), name="pets", home=home, viewer=ana).folder,
                        download=False)
    config = TrainConfig(layers=(12288, 1), iterations=200, learning_rate=0.005)
    model = fit(config, mine)
    assert model.test_accuracy == 1.0  # the premise: a perfect score on her own photos
    run = history.add(config, status="finished", iterations_done=200, source="app", dataset=mine, model=model)
    bare = history.add(config, status="finished", test_accuracy=1.0, iterations_done=200, source="app", dataset=mine)
    with cf.ThreadPoolExecutor(2) as ex:
        entry = board.submit(ana, run, history, shared, executor=ex)
        assert entry.test_accuracy == score(model.predict_proba(shared.test.X), shared.test.Y) != 1.0
        with pytest.raises(BoardError, match=f"^run {bare} kept no model, and the board measures the run's own "
                                             "model on the test images of 'pets'"):
            board.submit(ana, bare, history, shared, executor=ex)


def test_seeds_are_hidden_until_the_reveal(klass, dataset):
    """Training is repeatable: with an entry's settings and seed a classmate trains it again and reads its test
    accuracy before the reveal. The board shows no seed (in the settings or a row) until the teacher reveals."""
    ana, bob = klass.ana, klass.bob
    config = replace(PRESETS["two-layer"], iterations=3, seed=1234)
    run = klass.history[ana].add(config, status="finished", test_accuracy=0.7, train_accuracy=0.9,
                                 iterations_done=3, source="app", dataset=dataset, model=constant_model(config))
    with cf.ThreadPoolExecutor(2) as ex:
        klass.board.submit(ana, run, klass.history[ana], dataset, executor=ex)
    (row,) = klass.board.standings(bob, dataset=dataset).rows
    assert row.seed is None and "1234" not in row.entry.settings and "seed" not in row.entry.settings
    klass.store.update_class(klass.code, revealed=True)
    (row,) = klass.board.standings(bob, dataset=dataset).rows
    assert row.seed == 1234
