"""The run history: what a run keeps, four processes writing at once, migrations, broken files."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from catdnn import PRESETS, Trainer
from catdnn import history as hist
from catdnn.history import History, HistoryError

ROOT = Path(__file__).resolve().parent.parent
SMALL = replace(PRESETS["two-layer"], layers=(12288, 3, 1), iterations=40, seed=2)


@pytest.fixture(scope="module")
def trained(dataset):
    t = Trainer(SMALL, dataset.train.X, dataset.train.Y, dataset.test.X, dataset.test.Y, cost_every=5,
                accuracy_every=10)
    for _ in t.run():
        pass
    return t


def keep(h: History, t: Trainer, **kw) -> int:
    return h.add(t.config, status=t.status, message=t.message, history=t.history,
                 accuracy_history=t.accuracy_history, iterations_done=t.iterations_done, elapsed=t.elapsed,
                 solver=t.solver_name, **kw)


def test_a_run_keeps_its_settings_curves_results_and_model(tmp_path, trained):
    with History(tmp_path / "runs.sqlite3") as h:
        model = trained.model()
        run_id = keep(h, trained, model=model, source="cli", dataset="/data", sweep="s1")
        r = h.get(run_id)
        assert r.config == SMALL and r.seed == 2 and r.status == "finished" and r.source == "cli"
        assert r.history == [tuple(p) for p in trained.history] and len(r.history) == 9
        assert r.accuracy_history == [tuple(p) for p in trained.accuracy_history]
        assert (r.train_accuracy, r.test_accuracy) == (model.train_accuracy, model.test_accuracy)
        assert r.solver == trained.solver_name and r.iterations_done == 40 and r.has_model
        assert (r.dataset, r.sweep) == ("/data", "s1")
        back = h.model(run_id)
        for (W, b), (W2, b2) in zip(model.params, back.params):
            np.testing.assert_array_equal(W, W2)
            np.testing.assert_array_equal(b, b2)
        assert back.config == SMALL
        # the listing leaves the curves out; the row is flat and holds every setting
        listed = h.runs()[0]
        assert listed.history == [] and listed.id == run_id
        row = listed.row()
        assert row["learning_rate"] == SMALL.learning_rate and row["hidden"] == "3" and row["layers"] == "12288,3,1"


def test_a_diverged_run_keeps_its_curve_without_a_model(tmp_path):
    with History(tmp_path / "runs.sqlite3") as h:
        run_id = h.add(SMALL, status="diverged", message="the cost became NaN", history=[(0, 0.69), (1, math.nan)],
                       iterations_done=2)
        r = h.get(run_id)
        assert r.status == "diverged" and not r.has_model and r.history == [(0, 0.69), (1, None)]
        assert r.train_accuracy is None
        with pytest.raises(HistoryError, match="kept no model .it diverged"):
            h.model(run_id)


def test_listing_deleting_and_csv(tmp_path, trained):
    with History(tmp_path / "runs.sqlite3") as h:
        ids = [keep(h, trained) for _ in range(3)]
        assert [r.id for r in h.runs()] == ids[::-1] and len(h) == 3
        assert h.delete([ids[0], 999]) == 1
        assert [r.id for r in h.runs()] == ids[:0:-1]
        lines = h.csv_text().splitlines()
        assert lines[0].startswith("id,created,source,status,train_accuracy,test_accuracy")
        assert len(lines) == 3 and lines[1].startswith(f"{ids[2]},")
        with pytest.raises(HistoryError, match="no run 999"):
            h.get(999)


def test_the_database_is_in_catdnn_home_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path / "home"))
    with History() as h:
        assert h.path == tmp_path / "home" / "runs.sqlite3" and h.path.is_file()
        assert h.schema_version == hist.SCHEMA_VERSION
    with sqlite3.connect(tmp_path / "home" / "runs.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


WRITER = """
import sys, time
from pathlib import Path
from dataclasses import replace
import numpy as np
from catdnn import PRESETS, Model
from catdnn.history import History
path, go, name, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
config = replace(PRESETS["two-layer"], layers=(12288, 2, 1))
rng = np.random.default_rng(0)
model = Model([(rng.standard_normal((2, 12288)), np.zeros((2, 1))), (rng.standard_normal((1, 2)), np.zeros((1, 1)))],
              config, train_accuracy=0.5, test_accuracy=0.5)
while not go.exists():
    time.sleep(0.005)
h = History(path)  # the four open a fresh file at once: one creates the schema, the others wait
for i in range(n):
    h.add(replace(config, seed=i), status="finished", message=name, history=[(j, 0.5) for j in range(500)],
          source="cli", model=model)
print("ok")
"""


def test_four_processes_writing_at_once_lose_no_run(tmp_path):
    path, go, n = tmp_path / "runs.sqlite3", tmp_path / "go", 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(go), f"writer{k}", str(n)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    time.sleep(1.0)  # let the four start and wait at the line
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1][-2000:] for o in outs]
    with History(path) as h:
        runs = h.runs()
        assert len(runs) == 4 * n
        for k in range(4):
            assert sorted(r.seed for r in runs if r.message == f"writer{k}") == list(range(n))
        assert len({r.id for r in runs}) == 4 * n
        assert h.model(runs[0].id).layers == (12288, 2, 1)


def test_a_corrupt_file_gets_a_clear_message(tmp_path):
    path = tmp_path / "runs.sqlite3"
    path.write_bytes(b"this is not a database at all " * 200)
    with pytest.raises(HistoryError, match="not a readable database.*Move the file aside"):
        History(path)
    assert path.read_bytes().startswith(b"this is not")  # left as it was


def test_another_sqlite_database_is_not_taken_for_a_history(tmp_path):
    path = tmp_path / "runs.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (x)")
    with pytest.raises(HistoryError, match="not a catdnn run history"):
        History(path)


def test_a_history_from_a_newer_catdnn_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "runs.sqlite3"
    History(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = ?", (hist.SCHEMA_VERSION + 5,))
    with pytest.raises(HistoryError, match=f"newer catdnn .schema version {hist.SCHEMA_VERSION + 5}"):
        History(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchone()[0] == hist.SCHEMA_VERSION + 5


def test_a_migration_first_copies_the_file_aside(tmp_path, trained, monkeypatch):
    path = tmp_path / "runs.sqlite3"
    with History(path) as h:
        run_id = keep(h, trained)
    v = hist.SCHEMA_VERSION
    monkeypatch.setattr(hist, "SCHEMA_VERSION", v + 1)
    monkeypatch.setitem(hist.MIGRATIONS, v, "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    with History(path) as h:
        assert h.schema_version == v + 1 and h.get(run_id).config == SMALL
    backup = tmp_path / f"runs.sqlite3.v{v}.bak"
    assert backup.is_file()
    with sqlite3.connect(backup) as db:  # the copy is the old schema with every run
        assert db.execute("SELECT version FROM schema_version").fetchone()[0] == v
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert "note" not in [c[1] for c in db.execute("PRAGMA table_info(runs)")]
    with sqlite3.connect(path) as db:
        assert "note" in [c[1] for c in db.execute("PRAGMA table_info(runs)")]
