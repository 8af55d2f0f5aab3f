"""Attacks on the class and public modes that an attack review proved (issue 16), each now refused:

- a teacher's link was a key to every class's work on the machine: the Period 3 teacher listed, reloaded and
  deleted a Period 2 student's runs and was offered their uploaded photos;
- the history's overall model cap dropped the oldest models of anyone, so a few identities (free in public
  mode) pushed everyone's saved models out;
- a queued run whose upload went away failed with a message naming the dataset's folder on the server;
- a damaged run history's message named its file on the server to a student.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import pytest

from catdnn import PRESETS, classroom, photos
from catdnn import history as hist
from catdnn.classroom import ClassStore, RateLimiter
from catdnn.errors import DataError
from catdnn.history import History, HistoryError
from catdnn.model_io import model_to_bytes
from tests.history_support import damaged_history
from tests.history_support import tiny_model as small_model
from tests.photo_support import photo_tree, zip_bytes

SMALL = replace(PRESETS["two-layer"], layers=(12288, 2, 1), iterations=10)


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CATDNN_HOME", str(home))
    monkeypatch.setenv(classroom.MODE_ENV, "class")
    monkeypatch.delenv("CATDNN_UPLOAD_TTL", raising=False)
    return home


@pytest.fixture
def two_classes(tmp_path):
    """Two classes served from one machine (one class store, one run history): Period 2 and Period 3."""
    store = ClassStore(tmp_path / "classroom.sqlite3", failures=RateLimiter(100, 1000), joins=RateLimiter(100, 1000))
    p2, token2 = store.start_class("Period 2")
    p3, token3 = store.start_class("Period 3")
    people = {"zoe": store.join(p2.code, "Zoe"), "teacher2": store.teacher(p2.code, token2),
              "teacher3": store.teacher(p3.code, token3), "ana": store.join(p3.code, "Ana"), "store": store}
    yield people
    store.close()


def _add(h: History, **kw) -> int:
    return h.add(SMALL, status="finished", iterations_done=10, model=small_model(SMALL), source="app", **kw)


# --------------------------------------------------------------------------- a teacher's scope: their class
def test_a_teacher_sees_and_deletes_only_their_own_class_runs(tmp_path, two_classes):
    """SECURITY.md: 'The teacher sees and may delete everyone's work in their class', not another class's."""
    zoe, ana, teacher2, teacher3 = (two_classes[k] for k in ("zoe", "ana", "teacher2", "teacher3"))
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer=zoe) as h_zoe, History(path, viewer=ana) as h_ana, \
            History(path, viewer=teacher3) as h_t3, History(path, viewer=teacher2) as h_t2, History(path) as cli:
        other_class, own_class, own = _add(h_zoe), _add(h_ana), _add(h_t3)
        assert {r.id for r in h_t3.runs()} == {own_class, own} and len(h_t3) == 2
        # a public visitor's run is nobody's class's: no teacher sees it; the machine's own runs every teacher does
        with History(path, viewer=classroom.Identity("visitor", owner=classroom.owner_of("v"))) as h_visitor:
            visitor = _add(h_visitor)
        machine = cli.add(SMALL, status="finished", iterations_done=10, source="cli")
        assert {r.id for r in h_t3.runs()} == {own_class, own, machine}
        assert h_t3.delete([visitor, machine]) == 1 and visitor in {r.id for r in cli.runs()}
        for call in (h_t3.get, h_t3.model):
            with pytest.raises(HistoryError, match=f"there is no run {other_class} "):
                call(other_class)
        assert h_t3.delete([other_class]) == 0 and other_class in {r.id for r in cli.runs()}
        assert "Zoe" not in h_t3.csv_text(names={zoe.owner: "Zoe"})
        # Period 2's teacher sees Zoe's run (and not Period 3's); the CLI sees every run
        assert {r.id for r in h_t2.runs()} == {other_class}
        assert {r.id for r in cli.runs()} == {other_class, own_class, own, visitor}
        assert h_t3.delete([own_class, other_class]) == 1 and h_t2.delete([other_class]) == 1


def test_a_teacher_sees_and_deletes_only_their_own_class_uploads(home, two_classes):
    """A Period 2 student's uploaded photos were offered to (and deletable by) the Period 3 teacher."""
    zoe, ana, teacher2, teacher3 = (two_classes[k] for k in ("zoe", "ana", "teacher2", "teacher3"))
    zipped = zip_bytes(photo_tree(3, 3))
    hers = photos.import_photos(zipped, name="zoe's family", viewer=zoe)
    assert photos.list_datasets(viewer=teacher3) == []
    for name in ("zoe's family", hers.folder.name):
        with pytest.raises(DataError, match="no imported dataset called"):
            photos.delete_dataset(name, viewer=teacher3)
    assert [d.folder for d in photos.list_datasets(viewer=teacher2)] == [hers.folder]
    # Ana (Period 3) imports the same photos: one folder, two claims; each teacher manages their class's claim
    photos.import_photos(zipped, name="ana's", viewer=ana)
    assert [d.folder for d in photos.list_datasets(viewer=teacher3)] == [hers.folder]
    photos.delete_dataset("zoe's family", viewer=teacher3)
    assert photos.list_datasets(viewer=ana) == photos.list_datasets(viewer=teacher3) == []
    assert [d.owners for d in photos.list_datasets(viewer=zoe)] == [(zoe.owner,)]
    photos.delete_dataset("zoe's family", viewer=teacher2)
    assert not hers.folder.exists()


# --------------------------------------------------------------------------- the overall model cap
def test_other_students_models_cannot_push_out_a_students_model(tmp_path, two_classes):
    """The overall cap dropped the OLDEST models of anyone: a student joining under a few names (a public
    visitor gets a fresh identity with every page load without ?key=) pushed everyone else's models out. Here at
    1/1024 scale (1 MiB per person, 4 MiB in all, the shipped 1 GiB / 4 GiB ratio) with 197 KB models."""
    ana, store = two_classes["ana"], two_classes["store"]
    path = tmp_path / "runs.sqlite3"
    limits = dict(max_owner_bytes=2**20, max_total_bytes=4 * 2**20)
    bots = [store.join(ana.class_code, f"bot {i}") for i in range(5)]
    with History(path, viewer=ana, **limits) as h_ana:
        hers = _add(h_ana)
    for bot in bots:
        with History(path, viewer=bot, **limits) as h_bot:
            for _ in range(5):
                _add(h_bot)
    with History(path, viewer=ana, **limits) as h_ana, History(path, **limits) as cli:
        assert h_ana.get(hers).has_model, f"Ana's model was dropped by other students' runs: {h_ana.get(hers).message}"
        assert cli.size()["model_bytes"] <= limits["max_total_bytes"]
        # the bots lost their own older models, then their new ones: each run kept, with a note saying why
        notes = [r.message for r in cli.runs() if not r.has_model]
        assert any("its model is not kept" in m for m in notes) and all(
            "its model is not kept" in m or "dropped to keep all models" in m for m in notes)


def test_at_the_overall_cap_the_writers_own_oldest_model_goes_first(tmp_path, two_classes):
    ana, zoe = two_classes["ana"], two_classes["zoe"]
    one = len(model_to_bytes(small_model(SMALL)))
    path = tmp_path / "runs.sqlite3"
    limits = dict(max_total_bytes=int(3.5 * one))
    with History(path, viewer=ana, **limits) as h_ana, History(path, viewer=zoe, **limits) as h_zoe:
        zoes = [_add(h_zoe), _add(h_zoe)]
        first, second = _add(h_ana), _add(h_ana)  # the fourth model: Ana's own first one goes
        kept = {r.id: r.has_model for r in h_zoe.runs() + h_ana.runs()}
        assert kept == {zoes[0]: True, zoes[1]: True, first: False, second: True}
        assert "dropped to keep all models under" in h_ana.get(first).message
    # Period 2's teacher has no older model of their own to give: their new model is not kept, nobody loses one
    with History(path, viewer=two_classes["teacher2"], **limits) as h_t2, History(path) as cli:
        theirs = _add(h_t2)
        assert not h_t2.get(theirs).has_model and "its model is not kept" in h_t2.get(theirs).message
        assert {r.id for r in cli.runs() if r.has_model} == {*zoes, second}


# --------------------------------------------------------------------------- no server paths for a student
def test_a_run_whose_upload_went_away_does_not_show_the_server_folder(home, two_classes):
    """A student presses Train on their upload while the class's trainings queue (or the teacher paused them),
    then deletes the upload from another tab (or it expires): the failed run's message, shown on their Train
    page, named the dataset's folder on the server."""
    from catdnn.workers import TrainingPool

    ana = two_classes["ana"]
    mine = photos.import_photos(zip_bytes(photo_tree(3, 3)), name="garden", viewer=ana)
    pool = TrainingPool(processes=1)
    try:
        pool.pause()  # a busy class: the run waits for a worker
        job = pool.submit(SMALL, str(mine.folder), owner=ana.owner)
        photos.delete_dataset("garden", viewer=ana)  # her own delete, from her other tab
        pool.resume()
        out = job.wait(timeout=300)
    finally:
        pool.close()
    assert out is not None and out.status == "failed"
    assert str(photos.datasets_dir()) not in out.message and "/" not in out.message, (
        f"the student's failed run says: {out.message}")
    assert mine.folder.name not in out.message and "not on the server" in out.message


def test_a_damaged_history_names_its_file_to_the_teacher_only(tmp_path, two_classes):
    path = damaged_history(tmp_path / "server" / "runs.sqlite3")
    for who in ("ana", "zoe"):
        with pytest.raises(HistoryError) as refused:
            with History(path, viewer=two_classes[who]) as h:
                h.runs()
        assert str(tmp_path) not in str(refused.value) and "run history on the server" in str(refused.value)
    with pytest.raises(HistoryError, match="not a readable database") as teacher:
        with History(path, viewer=two_classes["teacher3"]) as h:
            h.runs()
    assert str(path) in str(teacher.value)
    (tmp_path / "other").mkdir()
    with sqlite3.connect(tmp_path / "other" / "runs.sqlite3") as db:
        db.execute("CREATE TABLE notes (x)")
    with pytest.raises(HistoryError, match="not a catdnn run history") as refused:
        History(tmp_path / "other" / "runs.sqlite3", viewer=two_classes["ana"])
    assert str(tmp_path) not in str(refused.value)


def test_a_schema_2_history_is_migrated_its_runs_no_class_s(tmp_path, two_classes):
    """A history written before runs recorded their class is copied aside, then migrated: its runs are no
    class's, so no teacher sees them (the CLI does)."""
    path = tmp_path / "runs.sqlite3"
    with sqlite3.connect(path) as db:
        for version in (0, 1):
            step = hist.MIGRATIONS[version]
            if callable(step):
                step(db)
            else:
                db.executescript(step)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (2)")
        db.execute("INSERT INTO runs (created, source, status, config, seed, owner, private) VALUES "
                   "('2026-01-01', 'app', 'finished', ?, 1, ?, 1)",
                   (json.dumps(SMALL.to_dict()), two_classes["ana"].owner))
    with History(path, viewer=two_classes["teacher3"]) as t3, History(path, viewer=two_classes["ana"]) as ana, \
            History(path) as cli:
        assert t3.schema_version == hist.SCHEMA_VERSION == 3
        assert t3.runs() == [] and len(ana.runs()) == 1 and len(cli.runs()) == 1
    assert (tmp_path / "runs.sqlite3.v2.bak").is_file()


def test_a_failed_import_names_no_server_folder_to_a_student(home, two_classes):
    """An upload that cannot be written (here the datasets folder is a file: a full or read-only disk gives the
    same message) tells a student what failed, never where; the command line's user is told the folder."""
    home.mkdir(parents=True)
    photos.datasets_dir().write_text("not a folder")
    with pytest.raises(DataError, match="cannot create the datasets folder") as refused:
        photos.import_photos(zip_bytes(photo_tree(3, 3)), name="garden", viewer=two_classes["ana"])
    assert str(home) not in str(refused.value) and "/" not in str(refused.value)
    with pytest.raises(DataError, match="cannot create the datasets folder") as cli:
        photos.import_photos(zip_bytes(photo_tree(3, 3)), name="garden")
    assert str(photos.datasets_dir()) in str(cli.value)
