"""The Class board and Teacher pages under Streamlit's AppTest, in local mode (they explain class mode) and in
class mode as a student and as the teacher: a student submits their own run and sees it ranked by validation
score, test accuracies appear only after the teacher's reveal; a student on the Teacher page gets one sentence;
the teacher sees the link, who is online, pauses and resumes, sets limits, reveals, exports and deletes."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import streamlit as st

from catdnn import classroom
from catdnn.classroom import ClassStore
from catdnn.config import PRESETS
from catdnn.data import COURSE_NAME
from catdnn.history import History
from catdnn.workers import shared_pool
from tests.app_support import BOARD, RUNS, TEACHER, app, assert_clean, class_home
from tests.history_support import constant_model
from ui.board import class_board

CONFIG = replace(PRESETS["two-layer"], iterations=20)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh class-mode home for each test (:func:`tests.app_support.class_home`)."""
    return class_home(tmp_path, monkeypatch)


@pytest.fixture
def klass(home, monkeypatch):
    """A class served in class mode with one student, Ana, who kept one finished run: a namespace."""
    k = type("Class", (), {})()
    with ClassStore(home / classroom.FILE_NAME) as store:
        info, k.token = store.start_class("Period 3")
        k.ana = store.join(info.code, "Ana")
        k.teacher_identity = store.teacher(info.code, k.token)
    with ClassStore(home / classroom.FILE_NAME, clock=lambda: time.time() - 600) as store:  # ten minutes ago
        k.bob = store.join(info.code, "-Bob")  # a name a spreadsheet would take for a formula
    k.code = info.code
    monkeypatch.setenv(classroom.MODE_ENV, "class")
    monkeypatch.setenv(classroom.CLASS_ENV, info.code)
    with History(viewer=k.ana) as h:
        k.run = h.add(CONFIG, status="finished", train_accuracy=0.9, iterations_done=20, source="app",
                      dataset=COURSE_NAME, model=constant_model(CONFIG, cat=True))  # 66% on the course's test
    return k


def as_student(path: str, k, who=None):
    at = app(path)
    at.query_params["key"] = (who or k.ana).key
    return at.run()


def as_teacher(path: str, k):
    at = app(path)
    at.query_params["teacher"] = k.token
    return at.run()


def texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "error", "success", "code", "title")
                     for e in at.get(kind))


@pytest.mark.parametrize("mode, words", [("local", "local mode"), ("public", "serves the public")])
@pytest.mark.parametrize("page", [BOARD, TEACHER])
def test_local_and_public_mode_explain_class_mode_and_how_to_start_it(home, monkeypatch, page, mode, words):
    monkeypatch.setenv(classroom.MODE_ENV, mode)
    at = app(page).run()
    assert_clean(at)
    assert "is for a class" in at.info[0].value and words in at.info[0].value
    assert at.code[0].value == 'python -m catdnn serve --class "Period 3"'
    assert not at.get("dataframe") and not at.main.button and not at.get("form_submit_button")


def test_a_student_submits_their_run_and_the_board_hides_test_accuracy_until_the_reveal(klass):
    at = as_student(BOARD, klass)
    assert_clean(at)
    assert "No runs on the board yet" in at.info[0].value
    assert at.selectbox(key="board_run").options[0].startswith(f"#{klass.run} ")
    at.button(key="board_submit").click().run()
    assert_clean(at)
    assert any(f"Run {klass.run} is on the board" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["name"]) == ["Ana (you)"] and list(table["run"]) == [klass.run]
    assert "test accuracy" not in table.columns and "(5 folds)" in table["validation score"][0]
    assert "66" not in texts(at)  # the test accuracy is nowhere on the page
    assert "seed" not in table.columns and "seed" not in table["settings"][0]  # nor the seed that reproduces it
    assert "each run's seed" in texts(at)  # the board says the seeds come with the reveal

    at_bob = as_student(BOARD, klass, klass.bob)  # another student sees the entry, without "(you)" and no run
    assert list(at_bob.dataframe[0].value["name"]) == ["Ana"]
    assert not at_bob.main.selectbox  # Bob has no run of his own to submit (Ana's is not offered)

    with ClassStore(classroom.default_path()) as store:
        store.update_class(klass.code, revealed=True)
    at.run()
    table = at.dataframe[0].value
    assert list(table["test accuracy"]) == ["66.0%"] and list(table["validation rank"]) == [1]
    assert list(table["seed"]) == [CONFIG.seed]
    assert "test accuracies are revealed" in texts(at)

    at.button(key="board_withdraw").click().run()  # Ana takes her run off the board
    assert_clean(at)
    assert not at.dataframe and "No runs on the board yet" in at.info[0].value


def test_a_student_deleting_her_run_on_the_runs_page_takes_it_off_the_board(klass):
    """The Runs page's delete took the run out of the history and left its entry on the board (the Teacher page's
    took both): a student's delete now withdraws her entry too, says so before, and leaves a classmate's alone."""
    with History(viewer=klass.bob) as h:
        bob_run = h.add(CONFIG, status="finished", train_accuracy=0.9, iterations_done=20, source="app",
                        dataset=COURSE_NAME, model=constant_model(CONFIG, cat=True))
    for who in (klass.ana, klass.bob):
        as_student(BOARD, klass, who).button(key="board_submit").click().run()
    assert sorted(r.entry.run_id for r in class_board().standings(klass.teacher_identity).rows) == sorted(
        [klass.run, bob_run])
    at = as_student(RUNS, klass)
    assert_clean(at)
    assert at.multiselect(key="runs_chosen").value == [klass.run]  # her one run, chosen by default
    sure = at.checkbox(key="runs_delete_confirm")
    assert "take them off the class board" in sure.label
    sure.check().run()
    at.button(key="runs_delete").click().run()
    assert_clean(at)
    with History(viewer=klass.ana) as h:
        assert h.runs() == []
    assert [r.entry.run_id for r in class_board().standings(klass.teacher_identity).rows] == [bob_run]
    assert any("No runs yet" in i.value for i in at.info)


def test_a_student_on_the_teacher_page_gets_one_sentence(klass):
    at = as_student(TEACHER, klass)
    assert_clean(at)
    assert [e.value for e in at.error] == [
        "**This page is the teacher's**: it opens with the teacher link that `catdnn serve` printed."]
    assert not at.main.button and not at.get("dataframe") and not at.get("code") and not at.get("image")


def test_the_teacher_sees_the_class_pauses_sets_limits_reveals_exports_and_deletes(klass, monkeypatch):
    exports = []
    real = st.download_button

    def download_button(label, data, *args, **kwargs):  # what the page offers to download
        exports.append({"label": label, "data": data})
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", download_button)
    with History(viewer=klass.bob) as h:
        klass.bob_run = h.add(CONFIG, status="finished", test_accuracy=0.5, source="app", dataset=COURSE_NAME)
    with History() as h:  # the machine's own run (the CLI's): not the class's, not exported
        h.add(CONFIG, status="finished", test_accuracy=0.5, source="cli", dataset=COURSE_NAME)
    as_student(BOARD, klass).button(key="board_submit").click().run()  # Ana is online (Bob was last seen ten
    # minutes ago), and her run is on the board
    at = as_teacher(TEACHER, klass)
    assert_clean(at)
    assert at.code[0].value.endswith(f"/?join={klass.code}")
    assert len(at.get("image")) == 1  # the link's QR code
    monkeypatch.setenv("CATDNN_CLASS_URL", f"https://10.0.0.5:8501/?join={klass.code}")  # as catdnn serve sets it
    assert as_teacher(TEACHER, klass).code[0].value == f"https://10.0.0.5:8501/?join={klass.code}"
    online = at.dataframe[0].value
    assert list(online["name"]) == ["Ana"] and list(online["page"]) == ["Class board"]
    assert [m.label for m in at.metric][:1] == ["Cores"]

    pool = shared_pool()
    try:
        at.button(key="teacher_pause").click().run()
        assert pool.paused
        with ClassStore(classroom.default_path()) as store:
            assert store.get_class(klass.code).paused
        assert at.button(key="teacher_pause").label == "Resume training for everyone"
        at.button(key="teacher_pause").click().run()
        assert not pool.paused
        with ClassStore(classroom.default_path()) as store:  # paused before the server restarted: it holds
            store.update_class(klass.code, paused=True)
        at.run()
        assert pool.paused and at.button(key="teacher_pause").label == "Resume training for everyone"
        at.button(key="teacher_pause").click().run()
        assert not pool.paused
    finally:
        pool.resume()

    at.number_input(key="teacher_max_iterations").set_value(3000)
    at.number_input(key="teacher_max_minutes").set_value(10)
    at.checkbox(key="teacher_cnn_allowed").uncheck()
    at.button(key="teacher_limits_set").click().run()
    at.button(key="teacher_reveal").click().run()
    assert_clean(at)
    with ClassStore(classroom.default_path()) as store:
        info = store.get_class(klass.code)
    assert info.limits == classroom.Limits(max_iterations=3000, runs_at_once=1, cnn_allowed=False,
                                          max_seconds=600.0) and info.revealed

    export = exports[-1]  # the class's runs: a student column, names a spreadsheet would run neutralised
    assert export["label"] == "Export the class's runs (CSV)"
    assert callable(export["data"])  # built when the button is pressed, not on every rerun
    lines = export["data"]().splitlines()
    assert len(lines) == 3 and lines[0].startswith("id,student,")  # newest first; not the machine's run
    assert lines[1].startswith(f"{klass.bob_run},'-Bob,") and lines[2].startswith(f"{klass.run},Ana,")

    at.multiselect(key="teacher_delete_ids").set_value([klass.run]).run()
    at.checkbox(key="teacher_delete_sure").check().run()
    at.button(key="teacher_delete").click().run()
    assert_clean(at)
    with History() as h:
        assert len(h) == 2 and klass.run not in [r.id for r in h.runs()]  # Ana's run is gone, and off the board
    assert class_board().standings(klass.teacher_identity).rows == ()


def test_the_teacher_page_lists_a_bounded_number_of_runs_and_builds_the_csv_only_when_asked(klass, monkeypatch):
    """Each rerun of the Teacher page built the whole CSV export and a delete list of every run: seconds a rerun
    once a class kept thousands (bench/bench_teacher_page.py). The delete list holds the newest DELETE_LIST runs,
    of every student or of the one chosen, and the CSV, of every run of the class, is built when pressed."""
    import ui.board

    monkeypatch.setattr(ui.board, "DELETE_LIST", 3)
    exports, built = [], []
    real_button, real_csv = st.download_button, History.csv_text

    def download_button(label, data, *args, **kwargs):
        exports.append(data)
        return real_button(label, data, *args, **kwargs)

    def csv_text(self, *args, **kwargs):
        built.append(1)
        return real_csv(self, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", download_button)
    monkeypatch.setattr(History, "csv_text", csv_text)
    with History(viewer=klass.ana) as h:
        ana = [klass.run] + [h.add(CONFIG, status="finished", source="app", dataset=COURSE_NAME) for _ in range(4)]
    with History(viewer=klass.bob) as h:
        bob = h.add(CONFIG, status="finished", source="app", dataset=COURSE_NAME)
    at = as_teacher(TEACHER, klass)
    assert_clean(at)
    assert [o.split(":")[0] for o in at.multiselect(key="teacher_delete_ids").options] == ["-Bob", "Ana", "Ana"]
    assert "newest 3 runs" in texts(at)
    at.selectbox(key="teacher_delete_student").set_value(klass.ana.owner).run()
    assert [o.split(" ")[1] for o in at.multiselect(key="teacher_delete_ids").options] == [
        f"#{i}" for i in ana[::-1][:3]]
    at.selectbox(key="teacher_delete_student").set_value(klass.bob.owner).run()
    assert [o.split(" ")[1] for o in at.multiselect(key="teacher_delete_ids").options] == [f"#{bob}"]
    assert "newest 3 runs" not in texts(at)
    assert not built  # three reruns, no CSV
    lines = exports[-1]().splitlines()  # pressing the button: every run of the class
    assert len(lines) == 1 + 6 and built == [1]


def test_the_teacher_and_board_tables_neutralise_formula_cells_for_their_csv_download():
    """st.dataframe's toolbar downloads the table as CSV (attack review): a display name such as -Bob, which
    names allow, is a cell a spreadsheet would run as a formula, so it is written as '-Bob there too."""
    from types import SimpleNamespace

    from ui.board import job_rows, online_rows

    member = SimpleNamespace(name="-Bob", page="=Train", last_seen=time.time())
    assert online_rows([member])[0]["name"] == "'-Bob" and online_rows([member])[0]["page"] == "'=Train"
    job = SimpleNamespace(owner="o", state="queued", iterations_done=0, iterations=10, label="@x", waited=1.0,
                          trained=0.0)
    row = job_rows([job], {"o": "-Bob"})[0]
    assert row["student"] == "'-Bob" and row["run"] == "'@x" and row["iterations"] == "0 / 10"


def test_the_teacher_closes_the_class_to_new_students_and_removes_one(klass):
    at = as_teacher(TEACHER, klass)
    assert_clean(at)
    at.toggle(key="teacher_joining").set_value(False).run()
    with ClassStore(classroom.default_path()) as store:
        assert not store.get_class(klass.code).joining
        with pytest.raises(classroom.JoinRefused, match="no new students"):
            store.join(klass.code, "Cy")
    at.multiselect(key="teacher_remove_ids").set_value([klass.bob.owner]).run()
    at.button(key="teacher_remove").click().run()
    assert_clean(at)
    with ClassStore(classroom.default_path()) as store:
        assert [m.name for m in store.members(klass.code)] == ["Ana"]
    refused = as_student(BOARD, klass, who=klass.bob)  # Bob's link no longer opens the class
    assert refused.error and "not known" in refused.error[0].value


def test_the_submit_form_tells_apart_runs_that_differ_only_in_iterations(klass):
    """A student who trained the same settings twice, for 20 and then 40 iterations, sees which run is which in the
    form's list (each label names what sets it apart), not two labels that differ only by their numbers."""
    with History(viewer=klass.ana) as h:
        longer = h.add(replace(CONFIG, iterations=40), status="finished", train_accuracy=0.95, test_accuracy=0.7,
                       iterations_done=40, source="app", dataset=COURSE_NAME)
    at = as_student(BOARD, klass)
    assert_clean(at)
    labels = at.selectbox(key="board_run").options
    assert [label.split()[0] for label in labels] == [f"#{longer}", f"#{klass.run}"]
    assert "40 iterations" in labels[0] and "20 iterations" in labels[1], labels
