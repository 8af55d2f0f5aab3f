"""The Train page trains on the server's worker pool: a killed worker gives that user one clear error
and the server goes on; a run waits, visibly, while every worker is busy."""

from __future__ import annotations

import os
import signal

from catdnn import TrainConfig
from catdnn.workers import shared_pool
from tests.app_support import TRAIN, app, assert_clean, session_of


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
