"""The run history: what a run keeps, four processes writing at once, migrations, broken files."""

from __future__ import annotations

import json
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
        run_id = keep(h, trained, model=model, source="cli", dataset="my photos", sweep="s1")
        r = h.get(run_id)
        assert r.config == SMALL and r.seed == 2 and r.status == "finished" and r.source == "cli"
        assert r.history == [tuple(p) for p in trained.history] and len(r.history) == 9
        assert r.accuracy_history == [tuple(p) for p in trained.accuracy_history]
        assert (r.train_accuracy, r.test_accuracy) == (model.train_accuracy, model.test_accuracy)
        assert r.solver == trained.solver_name and r.iterations_done == 40 and r.has_model
        assert (r.dataset, r.sweep) == ("my photos", "s1")
        back = h.model(run_id)
        for (W, b), (W2, b2) in zip(model.params, back.params):
            np.testing.assert_array_equal(W, W2)
            np.testing.assert_array_equal(b, b2)
        assert back.config == SMALL
        # the listing leaves the curves out; the row is flat and holds every setting
        listed = h.runs()[0]
        assert listed.history == [] and listed.id == run_id
        row = listed.row()
        assert row["learning_rate"] == SMALL.learning_rate and row["architecture"] == "[12288,3,1]"
        assert row["layers"] == "12288,3,1"


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


# --------------------------------------------------------------------------- what a run is called
def test_a_cnn_run_is_labelled_by_its_architecture_not_its_dense_head(tmp_path):
    from catdnn.labels import arch_text, run_label

    with History(tmp_path / "runs.sqlite3") as h:
        cnn_id = h.add(PRESETS["cnn"], status="finished", source="cli")
        mlp_id = h.add(PRESETS["deep"], status="finished", source="cli")
        cnn, mlp = h.get(cnn_id), h.get(mlp_id)
    assert arch_text(cnn.config) == PRESETS["cnn"].arch and "conv" in arch_text(cnn.config)
    assert run_label(cnn).startswith(f"#{cnn_id} {PRESETS['cnn'].arch}") and "[64]" not in run_label(cnn)
    assert run_label(mlp).startswith(f"#{mlp_id} [12288,20,7,5,1]")
    assert cnn.row()["architecture"] == PRESETS["cnn"].arch and mlp.row()["architecture"] == "[12288,20,7,5,1]"


@pytest.mark.parametrize("lesson, differs", [
    ("init", ["small init", "xavier init", "he init"]),
    ("optimizers", ["gradient descent · lr 0.0075", "momentum β=0.9 · lr 0.0075", "RMSprop", "Adam"]),
    ("regularization", ["no regularisation", "L2 λ=0.7", "dropout keep=0.8"]),
])
def test_runs_compared_are_told_apart_by_what_differs(tmp_path, lesson, differs):
    from catdnn.labels import compare
    from catdnn.lessons import LESSONS

    with History(tmp_path / "runs.sqlite3") as h:
        for c in LESSONS[lesson].configs():
            h.add(c, status="finished", source="lesson")
        runs = h.runs()[::-1]  # in the lesson's order
    common, labels = compare(runs)
    assert len(set(labels)) == len(differs)  # never two identical labels
    arch = "[12288,20,7,5,1]" if lesson != "optimizers" else "[12288,7,1]"
    for run, label, differ in zip(runs, labels, differs):
        assert label.startswith(f"#{run.id} {arch}") and differ in label
    assert arch in common and "seed 1" in common and "seed" not in " ".join(labels)


def test_runs_on_two_datasets_name_them(tmp_path):
    from catdnn.labels import compare

    with History(tmp_path / "runs.sqlite3") as h:
        h.add(SMALL, status="finished", source="cli", dataset="garden photos")
        h.add(SMALL, status="finished", source="cli", dataset="kitchen photos")
        labels = compare(h.runs())[1]
    assert labels[0].endswith("kitchen photos") and labels[1].endswith("garden photos")


def test_the_courses_dataset_keeps_its_name_with_its_slash(tmp_path, data_dir):
    """"cat / non-cat (the course's)" holds a slash: it was taken for a folder and shown as " non-cat (the
    course's)" in the Runs page's titles. A folder is still named, never shown as a path."""
    from catdnn.data import COURSE_NAME
    from catdnn.labels import compare, dataset_name

    assert dataset_name(COURSE_NAME) == COURSE_NAME and dataset_name("cats/dogs") == "cats/dogs"
    assert dataset_name(str(data_dir)) == COURSE_NAME
    with History(tmp_path / "runs.sqlite3") as h:
        h.add(SMALL, status="finished", source="cli", dataset=str(data_dir))
        h.add(replace(SMALL, seed=3), status="finished", source="cli", dataset=COURSE_NAME)
        common, _ = compare(h.runs())
        assert [r.dataset for r in h.runs()] == [COURSE_NAME, COURSE_NAME]
    assert COURSE_NAME in common


# --------------------------------------------------------------------------- how much it keeps (issue 19 A6)
def test_a_model_over_the_per_run_limit_is_not_kept_but_its_run_is(tmp_path):
    from tests.history_support import tiny_model

    big = replace(SMALL, layers=(12288, 700, 1))  # 8.6 million weights: 69 MB, over the 64 MiB a run may keep
    with History(tmp_path / "runs.sqlite3") as h:
        run_id = h.add(big, status="finished", history=[(0, 0.7), (1, 0.6)], iterations_done=2,
                       model=tiny_model(big), source="cli")
        r = h.get(run_id)
        assert not r.has_model and r.history == [(0, 0.7), (1, 0.6)] and r.test_accuracy == 0.5
        assert f"at most {hist.MAX_MODEL_BYTES // 2**20} MiB" in r.message
        with pytest.raises(HistoryError, match="is not kept"):
            h.model(run_id)
        assert on_disk(tmp_path / "runs.sqlite3") < 2**20


def test_beyond_a_users_limit_the_oldest_models_go_first_and_their_runs_stay(tmp_path):
    from tests.history_support import TINY, tiny_model

    one = len(__import__("catdnn.model_io", fromlist=["x"]).model_to_bytes(tiny_model()))
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer="ann", max_owner_bytes=int(3.5 * one)) as ann, \
            History(path, viewer="bob", max_owner_bytes=int(3.5 * one)) as bob:
        mine = [ann.add(replace(TINY, seed=s), status="finished", history=[(0, 0.7)], iterations_done=1,
                        model=tiny_model()) for s in range(5)]
        theirs = bob.add(TINY, status="finished", iterations_done=1, model=tiny_model())
        kept = {r.id: r.has_model for r in ann.runs()}
        assert kept == {mine[0]: False, mine[1]: False, mine[2]: True, mine[3]: True, mine[4]: True, theirs: True}
        old = ann.get(mine[0])
        assert old.history == [(0, 0.7)] and old.test_accuracy == 0.5  # curves and metrics stay
        with pytest.raises(HistoryError, match="dropped to keep this user's models under"):
            ann.model(mine[0])
        assert ann.model(mine[4]).layers == TINY.layers


def test_beyond_the_overall_limit_the_oldest_models_go_first_whoever_kept_them(tmp_path):
    from tests.history_support import tiny_model

    one = len(__import__("catdnn.model_io", fromlist=["x"]).model_to_bytes(tiny_model()))
    with History(tmp_path / "runs.sqlite3", max_total_bytes=int(2.5 * one)) as h:
        a = h.add(SMALL, status="finished", iterations_done=1, model=tiny_model(), source="cli")
        b = h.add(SMALL, status="finished", iterations_done=1, model=tiny_model(), source="sweep")
        c = h.add(SMALL, status="finished", iterations_done=1, model=tiny_model(), source="app")
        assert {r.id: r.has_model for r in h.runs()} == {a: False, b: True, c: True}
        assert h.size()["model_bytes"] == 2 * one


def test_deleting_runs_gives_their_space_back(tmp_path):
    from tests.history_support import tiny_model

    path = tmp_path / "runs.sqlite3"
    with History(path) as h:
        ids = [h.add(SMALL, status="finished", iterations_done=1, model=tiny_model(fill=s), source="cli")
               for s in range(40)]
        full = on_disk(path)
        assert full > 40 * 190_000
        h.delete(ids)
        assert len(h) == 0 and on_disk(path) < full / 20
    assert path.stat().st_size < full / 20  # the file itself shrank, not only its write-ahead log


def on_disk(path: Path) -> int:
    """The history's bytes on disk: the file and its write-ahead log."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def test_an_older_history_is_migrated_its_datasets_named_and_its_space_made_returnable(tmp_path, data_dir):
    from catdnn.data import COURSE_NAME

    path = tmp_path / "runs.sqlite3"
    with sqlite3.connect(path) as db:  # a history written by the previous catdnn (schema 1)
        db.executescript(hist.MIGRATIONS[0])
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        db.execute("INSERT INTO runs (created, source, status, config, seed, dataset) VALUES "
                   "('2026-01-01', 'cli', 'finished', ?, 1, ?)", (json.dumps(SMALL.to_dict()), str(data_dir)))
    with History(path, viewer="ann") as h:
        (r,) = h.runs()
        assert r.dataset == COURSE_NAME and str(data_dir) not in h.csv_text()
        assert h.schema_version == hist.SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental: deletes can return space
    assert (tmp_path / "runs.sqlite3.v1.bak").is_file()


# --------------------------------------------------------------------------- who sees a run (issue 19 A12)
@pytest.fixture
def upload(tmp_path, monkeypatch):
    """A dataset imported from an upload (zip bytes, as the app's import does), in a fresh CATDNN_HOME."""
    from catdnn import photos
    from tests.photo_support import photo_tree, zip_bytes

    monkeypatch.setenv("CATDNN_HOME", str(tmp_path / "home"))
    return photos.import_photos(zip_bytes(photo_tree()), name="ann's garden")


def test_a_run_on_a_visitors_upload_stays_that_visitors(tmp_path, upload):
    from catdnn.data import load_dataset
    from tests.history_support import tiny_model

    ds = load_dataset(upload.folder, download=False)
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer="ann") as ann, History(path, viewer="bob") as bob, History(path) as owner:
        private = ann.add(SMALL, status="finished", iterations_done=1, model=tiny_model(), source="app",
                          dataset=str(ds.source))
        public = ann.add(SMALL, status="finished", iterations_done=1, model=tiny_model(), source="app")
        # ann sees both; her CSV names the dataset by its name, never by its folder on the server
        assert [r.id for r in ann.runs()] == [public, private]
        assert ann.get(private).dataset == "ann's garden" and ann.model(private).layers == (12288, 2, 1)
        text = ann.csv_text()
        assert "ann's garden" in text and str(upload.folder) not in text and str(tmp_path) not in text
        # bob: not listed, not opened, not exported, not deleted
        assert [r.id for r in bob.runs()] == [public] and len(bob) == 1
        assert bob.runs(ids=[private]) == []
        with pytest.raises(HistoryError, match=f"no run {private}"):
            bob.get(private)
        with pytest.raises(HistoryError, match=f"no run {private}"):
            bob.model(private)
        assert "ann's garden" not in bob.csv_text()
        assert bob.delete([private]) == 0 and len(ann) == 2
        # the machine's owner (the CLI) sees every run
        assert {r.id for r in owner.runs()} == {public, private}


def test_a_sweep_on_an_upload_is_kept_private_too(tmp_path, upload):
    from catdnn.sweep import SweepResult, _keep

    with History(tmp_path / "runs.sqlite3", viewer="ann") as ann, \
            History(tmp_path / "runs.sqlite3", viewer="bob") as bob:
        res = SweepResult(0, SMALL, "finished", dataset=str(upload.folder))
        run_id = _keep(ann, res, "sweep", "sweep: seeds 1")
        assert [r.id for r in ann.runs()] == [run_id] and bob.runs() == []


def test_a_run_on_an_upload_removed_before_it_is_kept_stays_its_visitors(tmp_path, upload):
    """The attack's sequence: ann imports photos and trains on them; other visitors' imports push hers out
    (evict_uploads) before her run is kept. The run stays hers, under its display name, and no count of
    bob's includes it (attacker review, item 3)."""
    from catdnn import fit
    from catdnn.data import load_dataset
    from catdnn.photos import evict_uploads

    ds = load_dataset(upload.folder, download=False)
    model = fit(replace(SMALL, iterations=3), dataset=ds)
    assert evict_uploads(limit=0) == [upload.folder] and not upload.folder.exists()
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer="ann") as ann, History(path, viewer="bob") as bob, History(path) as owner:
        by_dataset = ann.add(SMALL, status="finished", iterations_done=3, model=model, source="app", dataset=ds)
        by_folder = ann.add(SMALL, status="finished", iterations_done=3, model=model, source="app",
                            dataset=str(ds.source))  # only the folder, gone: it can no longer tell, so private
        assert [r.id for r in ann.runs()] == [by_folder, by_dataset]
        assert ann.get(by_dataset).dataset == "ann's garden" and ann.model(by_dataset).dataset == "ann's garden"
        assert bob.runs() == [] and len(bob) == 0 and bob.csv_text() == ""
        for run_id in (by_dataset, by_folder):
            with pytest.raises(HistoryError, match=f"no run {run_id}"):
                bob.model(run_id)
        assert bob.size()["runs"] == bob.size()["models"] == bob.size()["model_bytes"] == 0
        assert ann.size()["runs"] == owner.size()["runs"] == 2 and ann.size()["models"] == 2


def test_a_sweep_on_an_upload_removed_while_it_runs_stays_its_visitors(tmp_path, upload):
    """A sweep decides how its runs are kept when it starts: an upload removed before a run ends leaves the
    run private, named by the dataset's display name."""
    import concurrent.futures as cf

    from catdnn.photos import evict_uploads
    from catdnn.sweep import sweep

    class EvictingExecutor(cf.Executor):  # runs each job at once, then other visitors' imports push the upload out
        def submit(self, fn, /, *args, **kwargs):
            done = cf.Future()
            done.set_result(fn(*args, **kwargs))
            evict_uploads(limit=0)
            return done

    path = tmp_path / "runs.sqlite3"
    with History(path, viewer="ann") as ann, History(path, viewer="bob") as bob:
        (res,) = sweep([replace(SMALL, iterations=3)], EvictingExecutor(), data_dir=upload.folder, history=ann,
                       label="sweep: seeds 2")
        assert res.status == "finished" and not upload.folder.exists()
        assert [(r.id, r.dataset) for r in ann.runs()] == [(res.run_id, "ann's garden")]
        assert bob.runs() == [] and bob.size()["runs"] == 0


# --------------------------------------------------------------------------- damage (issue 19 A13)
def test_a_history_damaged_past_its_first_page_gives_clear_errors(tmp_path):
    from tests.history_support import TINY, damaged_history, tiny_model

    h = History(damaged_history(tmp_path / "runs.sqlite3"))  # it opens: page 1 is intact
    for call in (h.runs, lambda: len(h), h.csv_text, lambda: h.get(1), lambda: h.model(1), lambda: h.delete([1]),
                 lambda: h.add(TINY, status="finished", model=tiny_model())):
        with pytest.raises(HistoryError, match="malformed"):
            call()
    h.close()


def test_a_damaged_row_gives_a_clear_error(tmp_path):
    path = tmp_path / "runs.sqlite3"
    with History(path) as h:
        run_id = h.add(SMALL, status="finished", source="cli")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET config = '{\"layers\": [12288, 3' WHERE id = ?", (run_id,))
    with History(path) as h, pytest.raises(HistoryError, match=f"run {run_id} of the run history .* is damaged"):
        h.runs()


def test_an_older_historys_runs_on_uploads_become_private(tmp_path, upload):
    from catdnn.photos import datasets_dir

    path = tmp_path / "runs.sqlite3"
    gone = datasets_dir() / "deleted-upload-0123"
    with sqlite3.connect(path) as db:  # schema 1 named datasets by their folders and kept every run public
        db.executescript(hist.MIGRATIONS[0])
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        for folder in (upload.folder, gone):
            db.execute("INSERT INTO runs (created, source, status, config, seed, dataset) VALUES "
                       "('2026-01-01', 'app', 'finished', ?, 1, ?)", (json.dumps(SMALL.to_dict()), str(folder)))
    with History(path, viewer="bob") as bob, History(path) as owner:
        assert bob.runs() == [] and "ann's garden" not in bob.csv_text()  # its visitor is not known: nobody's
        assert sorted(r.dataset for r in owner.runs()) == ["ann's garden", gone.name]


def test_a_model_names_the_dataset_it_was_trained_on_wherever_it_was_trained(tmp_path, upload):
    """fit(), the worker pool's and sweeps' train_one, the CLI's Trainer, and a model reopened from the
    history all name the imported dataset, not the course's (issue 15 §3: every model knows its dataset)."""
    from catdnn import fit
    from catdnn.data import COURSE_NAME, load_dataset
    from catdnn.workers import train_one

    ds = load_dataset(upload.folder, download=False)
    small = replace(SMALL, iterations=3)
    assert ds.name == "ann's garden" != COURSE_NAME
    assert fit(small, dataset=ds).dataset == ds.name
    out = train_one(small, ds)
    assert out.model.dataset == ds.name
    with History(tmp_path / "runs.sqlite3") as h:
        run_id = h.add(small, status="finished", iterations_done=3, model=out.model, source="cli",
                       dataset=str(ds.source))
        out.model.dataset = COURSE_NAME  # even a model file that does not say it: the run's record does
        assert h.model(run_id).dataset == ds.name
