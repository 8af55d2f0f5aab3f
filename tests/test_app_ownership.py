"""Ownership in the app (AppTest), class mode: two students' sessions on one server each see only their own runs
and imported photos, the teacher everyone's; a student deletes their own upload on the page; the Runs page names
no server folder to a student."""

from __future__ import annotations

import pytest

from catdnn import classroom, photos
from catdnn.classroom import ClassStore, RateLimiter
from catdnn.history import History, HistoryError
from tests.app_support import ENTRY, RUNS, TRAIN, app, assert_clean, session_of
from tests.photo_support import photo_tree, write_tree, zip_bytes


@pytest.fixture
def klass(tmp_path, monkeypatch):
    """A class served in class mode, with Ana and Bob joined: their keys, and the teacher's token."""
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    monkeypatch.setattr(classroom, "FAILURES", RateLimiter(10, 100))
    monkeypatch.setattr(classroom, "JOINS", RateLimiter(50, 500))
    with ClassStore(tmp_path / classroom.FILE_NAME) as store:
        info, token = store.start_class("Period 3")
        ana, bob = store.join(info.code, "Ana"), store.join(info.code, "Bob")
    monkeypatch.setenv(classroom.MODE_ENV, "class")
    monkeypatch.setenv(classroom.CLASS_ENV, info.code)
    return {"ana": ana.key, "bob": bob.key, "teacher": token, "home": tmp_path}


def as_(page: str, param: str, key: str):
    at = app(page)
    at.query_params[param] = key
    return at.run()


def offered(at) -> list[str]:
    return sorted(label.split(" (")[0] for label in at.sidebar.selectbox(key="sidebar_dataset").options)


def test_two_students_see_only_their_own_runs_and_photos(klass, data_dir, tmp_path):
    photos.import_photos(write_tree(tmp_path / "for the class", photo_tree(3, 3)))  # the teacher's, on the machine
    with History(klass["home"] / "runs.sqlite3") as cli:
        machine = cli.add(session_of(app(ENTRY)).form_config, status="finished", source="cli")
    # Ana imports her photos and trains on them on the Train page (record_run keeps the run as hers)
    ana = as_(TRAIN, "key", klass["ana"])
    ana.file_uploader(key="dataset_zip").set_value(("ana garden.zip", zip_bytes(photo_tree(6, 5)),
                                                    "application/zip")).run()
    ana.button(key="dataset_import").click().run()
    assert_clean(ana)
    ana.segmented_control(key="train_preset").set_value("two-layer").run()
    ana.slider(key="train_iters").set_value(20)
    ana.button(key="train_submit").click().run()
    assert_clean(ana)
    assert session_of(ana).run.status == "finished"
    assert offered(ana) == ["ana garden", "cat / non-cat", "for the class"]

    ana_runs = as_(RUNS, "key", klass["ana"])
    assert_clean(ana_runs)
    (mine,) = ana_runs.dataframe[0].value["id"].tolist()
    assert ana_runs.dataframe[0].value["dataset"].tolist() == ["ana garden"]
    caption = " ".join(c.value for c in ana_runs.caption)
    assert "yours alone" in caption and str(klass["home"]) not in caption  # no server folder shown to a student

    bob = as_(RUNS, "key", klass["bob"])
    assert_clean(bob)
    assert any("No runs yet" in i.value for i in bob.info)  # neither Ana's run nor the machine's
    assert offered(bob) == ["cat / non-cat", "for the class"]
    # a crafted id in Bob's session (his connection, as the page uses it) gets what a missing one gets
    from ui.history import session_history

    for run_id in (mine, machine):
        with pytest.raises(HistoryError, match=f"there is no run {run_id} in the history"):
            session_history(session_of(bob)).model(run_id)
    assert session_history(session_of(bob)).delete([mine, machine]) == 0
    # naming Ana's folder in Bob's session does not reach it either
    (upload,) = [d for d in photos.list_datasets() if d.uploaded]
    bob.session_state["dataset_choice"] = str(upload.folder)
    bob.run()
    assert_clean(bob)
    assert bob.sidebar.selectbox(key="sidebar_dataset").value == ""

    teacher = as_(RUNS, "teacher", klass["teacher"])
    assert_clean(teacher)
    assert sorted(teacher.dataframe[0].value["id"].tolist()) == sorted([mine, machine])
    assert offered(teacher) == ["ana garden", "cat / non-cat", "for the class"]


def test_a_student_deletes_her_upload_on_the_page(klass, data_dir, tmp_path):
    shared = photos.import_photos(write_tree(tmp_path / "for the class", photo_tree(3, 3)))
    ana = as_(ENTRY, "key", klass["ana"])
    ana.file_uploader(key="dataset_zip").set_value(("garden.zip", zip_bytes(photo_tree(4, 4)),
                                                    "application/zip")).run()
    ana.button(key="dataset_import").click().run()
    assert_clean(ana)
    (upload,) = [d for d in photos.list_datasets() if d.uploaded]
    assert ana.sidebar.selectbox(key="sidebar_dataset").value == str(upload.folder)
    # only her own upload is hers to delete (the class's folder is the teacher's)
    pick = ana.selectbox(key="dataset_delete_pick")
    assert pick.value == upload.folder.name and [o.split(" (")[0] for o in pick.options] == ["garden"]
    ana.checkbox(key="dataset_delete_confirm").check().run()
    ana.button(key="dataset_delete").click().run()
    assert_clean(ana)
    assert not upload.folder.exists() and shared.folder.is_dir()
    assert offered(ana) == ["cat / non-cat", "for the class"]
    assert ana.sidebar.selectbox(key="sidebar_dataset").value == ""  # back to the course's
    # Bob has nothing of his to delete: no delete offered
    bob = as_(ENTRY, "key", klass["bob"])
    assert_clean(bob)
    assert not [s for s in bob.get("selectbox") if s.key == "dataset_delete_pick"]


def test_the_runs_table_neutralises_formula_cells(tmp_path, monkeypatch, data_dir):
    """The Runs page's table has its own CSV download (the dataframe's toolbar): its cells are neutralised too."""
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    with History(tmp_path / "runs.sqlite3") as cli:
        cli.add(session_of(app(ENTRY)).form_config, status="finished", source="cli", dataset="=1+1",
                sweep="@SUM(A1)")
    at = app(RUNS).run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table["dataset"].tolist() == ["'=1+1"] and table["sweep"].tolist() == ["'@SUM(A1)"]


def test_every_page_runs_for_a_public_visitor(tmp_path, monkeypatch, data_dir):
    """Public mode: a visitor gets every page, Runs and Lessons included, with their own (empty) history."""
    from tests.app_support import PAGES

    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    monkeypatch.setenv(classroom.MODE_ENV, "public")
    monkeypatch.setattr(classroom, "JOINS", RateLimiter(50, 500))
    with History(tmp_path / "runs.sqlite3") as cli:
        cli.add(session_of(app(ENTRY)).form_config, status="finished", source="cli")
    for page in [ENTRY, *PAGES]:
        at = app(page).run()
        assert_clean(at)
        assert session_of(at).identity.role == "visitor", page
        if page == RUNS:
            assert any("No runs yet" in i.value for i in at.info)  # not the machine's run
