"""The Train page trains on the server's worker pool: a killed worker gives that user one clear error
and the server goes on; a run waits, visibly, while every worker is busy."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import replace

from catdnn import PRESETS, TrainConfig, fit
from catdnn.workers import TrainingPool, shared_pool
from tests.app_support import RUNS, TRAIN, app, assert_clean, session_of


def test_a_killed_worker_gives_a_clear_error_and_the_next_run_works(data_dir, monkeypatch):
    import ui.training

    draw = ui.training.draw_training_frame
    killed = []

    def kill_the_worker_at_the_second_redraw(job, progress, frame):
        draw(job, progress, frame)
        if frame == 2 and job.pid is not None and not killed:
            os.kill(job.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
            killed.append(job.pid)

    monkeypatch.setattr(ui.training, "draw_training_frame", kill_the_worker_at_the_second_redraw)
    at = app(TRAIN).run()
    at.text_input(key="train_hidden").set_value("100")
    at.slider(key="train_iters").set_value(10_000)
    at.button(key="train_submit").click().run()
    assert_clean(at)  # no traceback
    assert killed
    run = session_of(at).run
    assert run.status == "crashed" and run.model is None and not session_of(at).models
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Training crashed" in errors[0] and "stopped unexpectedly" in errors[0]
    monkeypatch.setattr(ui.training, "draw_training_frame", draw)
    at.text_input(key="train_hidden").set_value("7")
    at.slider(key="train_iters").set_value(200)
    at.button(key="train_submit").click().run()  # the pool replaced the worker: the next run trains
    assert_clean(at)
    assert session_of(at).run.status == "finished" and len(session_of(at).models) == 1


def test_a_run_waits_for_a_free_worker_and_says_so(data_dir, monkeypatch):
    import ui.training

    pool = shared_pool()
    busy = [pool.submit(TrainConfig(layers=(12288, 64, 1), iterations=1_000_000), data_dir)
            for _ in range(pool.processes)]  # other users' long runs hold every worker
    draw = ui.training.draw_training_frame
    seen = []

    def note_the_waiting_frames(job, progress, frame):
        draw(job, progress, frame)
        seen.append(progress is None)
        if len(seen) == 3:
            for other in busy:  # those users stop: a worker frees up
                other.cancel()

    monkeypatch.setattr(ui.training, "draw_training_frame", note_the_waiting_frames)
    at = app(TRAIN).run()
    at.slider(key="train_iters").set_value(300)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    assert seen[:3] == [True, True, True]  # waited while every worker was busy, then trained:
    assert session_of(at).run.status == "finished" and session_of(at).run.model.iterations_done == 300
    assert all(other.wait(timeout=30).status == "stopped" for other in busy)


def _spread_page(model):
    """The Runs page of a session whose last model is ``model``, its seed spread set to 3 seeds."""
    at = app(RUNS, model).run()
    at.number_input(key="runs_spread_n").set_value(3)
    return at


def test_sweeps_from_several_sessions_train_on_the_one_shared_pool(data_dir, dataset, tmp_path, monkeypatch):
    """Issue 19 A3: each sweep, seed spread or lesson started a process pool of its own (six tabs gave 12
    training processes on 2 cores). Three sessions' spreads at once now start no process at all: they queue
    on the server's shared pool, one training process per core in all."""
    import multiprocessing.process

    import pandas  # noqa: F401  imported once before the sessions, as a server does at start-up (issue 19 A14)

    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    pool = shared_pool()  # the server's pool exists before the sessions come
    started, submitted = [], threading.Semaphore(0)  # a session's sweep is under way: it queued or started
    start = multiprocessing.process.BaseProcess.start

    def counted(self):
        started.append(self)
        submitted.release()
        return start(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", counted)
    submit = TrainingPool.submit

    def noted(self, *args, **kwargs):
        job = submit(self, *args, **kwargs)
        submitted.release()
        return job

    monkeypatch.setattr(TrainingPool, "submit", noted)
    model = fit(replace(PRESETS["two-layer"], iterations=1500), dataset, cost_every=10)
    pages = [_spread_page(model) for _ in range(3)]
    threads = [threading.Thread(target=lambda at=at: at.button(key="runs_spread_run").click().run()) for at in pages]
    for t in threads:
        t.start()
        # the next session clicks once this one's spread is on the pool (two pages compiled at the same
        # moment trip a CPython 3.11 bug in ast.parse, which Streamlit calls on every run)
        assert submitted.acquire(timeout=120)
    for t in threads:
        t.join(timeout=600)
    for at in pages:
        assert_clean(at)
        assert not at.error
    assert started == []  # no sweep started a training process of its own
    assert len(pool.pids) == pool.processes
    from catdnn.history import History

    with History(tmp_path / "runs.sqlite3") as h:
        runs = h.runs()
    assert len(runs) == 9 and {r.status for r in runs} == {"finished"}


def test_a_spread_keeps_its_models_in_the_history_not_in_the_servers_memory(data_dir, dataset, tmp_path,
                                                                           monkeypatch):
    """Issue 19 A5: a sweep's result list held every run's model until the sweep ended (+559 MB for three
    runs of a 2000-unit layer). The runs' models go to the history as they arrive; the list keeps none."""
    import ui.history
    from catdnn.history import History

    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    draw, seen = ui.history.draw_spread, []
    monkeypatch.setattr(ui.history, "draw_spread",
                        lambda results, *args: (seen.append(list(results)), draw(results, *args)))
    model = fit(replace(PRESETS["two-layer"], iterations=50), dataset, cost_every=10)
    at = _spread_page(model)
    at.button(key="runs_spread_run").click().run()
    assert_clean(at)
    (results,) = seen
    assert len(results) == 3 and all(r.test_accuracy is not None and r.history for r in results)
    assert [r.model for r in results] == [None, None, None]  # the list holds metrics and curves only
    with History(tmp_path / "runs.sqlite3") as h:
        assert sorted(r.id for r in h.runs() if r.has_model) == sorted(r.run_id for r in results)
