"""The Train page on a shared server: a run is its student's or visitor's on the pool, within their limits (a run
beyond them is refused with one sentence), a paused class holds the run, and the live view slows down under load."""

from __future__ import annotations

import pytest

from catdnn import classroom
from catdnn.classroom import PUBLIC_LIMITS, ClassStore, Limits
from catdnn.workers import shared_pool
from tests.app_support import TRAIN, app, assert_clean, class_home, session_of
from ui.training import MAX_REDRAW_SECONDS, REDRAW_SECONDS, redraw_seconds


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh class-mode home for each test (:func:`tests.app_support.class_home`)."""
    return class_home(tmp_path, monkeypatch)


@pytest.fixture
def pool():
    """The server's shared pool, never left paused for the tests that follow."""
    p = shared_pool()
    yield p
    p.resume()


@pytest.fixture
def jobs_seen(monkeypatch):
    """Every frame the Train page draws, as (job, progress is None, job.paused); ``hooks`` run after each."""
    import ui.training

    draw = ui.training.draw_training_frame
    seen, hooks = [], []

    def noted(job, progress, frame):
        draw(job, progress, frame)
        seen.append((job, progress is None, job.paused))
        for hook in hooks:
            hook(job, progress, frame)

    monkeypatch.setattr(ui.training, "draw_training_frame", noted)
    return seen, hooks


def _train(at, iterations: int):
    at.text_input(key="train_hidden").set_value("7")
    at.slider(key="train_iters").set_value(iterations)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    return session_of(at).run


def test_a_visitors_run_beyond_the_public_limits_is_refused_and_one_within_them_is_theirs(home, monkeypatch, pool,
                                                                                           jobs_seen):
    monkeypatch.setenv(classroom.MODE_ENV, "public")
    seen, _hooks = jobs_seen
    at = app(TRAIN).run()
    assert_clean(at)
    visitor = session_of(at).identity
    assert visitor.role == "visitor"
    before = pool.running
    run = _train(at, PUBLIC_LIMITS.max_iterations + 100)
    assert run.status == "refused" and run.model is None and not seen and pool.running == before
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Training not started" in errors[0]
    assert f"more than the {PUBLIC_LIMITS.max_iterations:,} allowed here per run" in errors[0]
    run = _train(at, 200)
    assert run.status == "finished" and run.model.iterations_done == 200
    job = seen[0][0]
    assert job.owner == visitor.owner and job.limits == PUBLIC_LIMITS


def test_a_students_run_follows_the_class_limits_and_a_paused_class_holds_it(home, monkeypatch, pool, jobs_seen):
    with ClassStore(home / classroom.FILE_NAME) as store:
        info, _token = store.start_class("Period 3")
        student = store.join(info.code, "Ada")
        store.update_class(info.code, limits=Limits(max_iterations=300, runs_at_once=1, cnn_allowed=False),
                           paused=True)
    monkeypatch.setenv(classroom.MODE_ENV, "class")
    monkeypatch.setenv(classroom.CLASS_ENV, info.code)
    seen, hooks = jobs_seen
    at = app(TRAIN)
    at.query_params["key"] = student.key
    at.run()
    assert_clean(at)
    assert session_of(at).identity.owner == student.owner
    run = _train(at, 400)
    assert run.status == "refused" and "more than the 300 allowed here per run" in at.error[0].value

    def the_teacher_resumes_after_three_frames(job, progress, frame):
        if frame == 3:
            with ClassStore(home / classroom.FILE_NAME) as store:
                store.update_class(info.code, paused=False)
            pool.resume()  # what the teacher view does

    hooks.append(the_teacher_resumes_after_three_frames)
    run = _train(at, 300)  # the class is paused (its store says so): the pool holds the run until it resumes
    assert [(waiting, paused) for _job, waiting, paused in seen[:3]] == [(True, True)] * 3
    assert run.status == "finished" and run.model.iterations_done == 300 and not pool.paused
    assert seen[0][0].owner == student.owner and seen[0][0].limits.max_iterations == 300


def test_live_redraws_slow_down_as_the_servers_trainings_grow():
    assert redraw_seconds(0) == redraw_seconds(1) == redraw_seconds(2) == REDRAW_SECONDS  # as before, unloaded
    steps = [redraw_seconds(n) for n in range(0, 100)]
    assert steps == sorted(steps) and steps[-1] == MAX_REDRAW_SECONDS
    assert redraw_seconds(4) > REDRAW_SECONDS and 30 * (1 / redraw_seconds(30)) <= 10  # 30 pages: ≤ 10 redraws/s


def test_a_students_run_stops_at_the_class_time_limit_and_the_page_says_so(home, monkeypatch, pool):
    with ClassStore(home / classroom.FILE_NAME) as store:
        info, _token = store.start_class("Period 3")
        student = store.join(info.code, "Ada")
        store.update_class(info.code, limits=Limits(max_seconds=1, max_work=None))
    monkeypatch.setenv(classroom.MODE_ENV, "class")
    monkeypatch.setenv(classroom.CLASS_ENV, info.code)
    at = app(TRAIN)
    at.query_params["key"] = student.key
    at.run()
    at.text_input(key="train_hidden").set_value("512")
    at.slider(key="train_iters").set_value(5000)  # about a minute alone on this machine
    at.button(key="train_submit").click().run()
    assert_clean(at)
    run = session_of(at).run
    assert run.status == "stopped" and 0 < run.model.iterations_done < 5000
    shown = [w.value for w in at.warning]
    assert any("Stopped at the time limit" in w and "1 s per run" in w and "partial model is kept" in w
               for w in shown), shown
