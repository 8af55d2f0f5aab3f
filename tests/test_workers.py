"""catdnn.workers: trainings run in a pool of worker processes, report progress, stop on request with
the partial model, and a killed worker ends only its own run."""

from __future__ import annotations

import os
import signal
import sys
import time
import types

import pytest

from catdnn import PRESETS, ConfigError, TrainConfig, fit, load_dataset
from catdnn.workers import TrainingPool

# A run long enough to be mid-way whenever the test acts (minutes if left alone).
LONG = TrainConfig(layers=(12288, 64, 32, 1), iterations=1_000_000, learning_rate=0.001)


@pytest.fixture(scope="module")
def pool():
    p = TrainingPool(processes=2)
    yield p
    p.close()


def _until(job, iterations_done):
    for _ in job.updates():
        if job.progress is not None and job.progress.iterations_done >= iterations_done:
            return
    raise AssertionError(f"the job ended early: {job.outcome}")


def test_a_job_trains_the_course_network_and_reports_progress(pool, data_dir):
    job = pool.submit(PRESETS["two-layer"], data_dir, cost_every=100)
    seen = []
    for _ in job.updates():
        if job.progress is not None:
            seen.append(job.progress.iterations_done)
    out = job.outcome
    assert out.status == "finished" and out.iterations_done == 2500
    assert seen == sorted(seen) and seen[-1] == 2500  # progress only moves forward, and reaches the end
    assert out.model.test_accuracy == 0.72 and out.model.train_accuracy == 1.0  # the course's numbers
    ref = fit(PRESETS["two-layer"], load_dataset(data_dir))
    assert [i for i, _c in out.history] == [i for i, _c in ref.history]
    # same iterates as training in this process, up to BLAS summation order (thread counts differ)
    assert max(abs(a[1] - b[1]) for a, b in zip(out.history, ref.history)) < 1e-9
    assert job.history == out.history and job.solver_name == "gram"


def test_cancel_stops_the_worker_and_keeps_the_partial_model(pool, data_dir):
    job = pool.submit(LONG, data_dir)
    _until(job, 3)
    job.cancel()
    out = job.wait(timeout=30)
    assert out is not None and out.status == "stopped"
    assert 3 <= out.iterations_done < LONG.iterations
    assert out.model is not None and out.model.iterations_done == out.iterations_done
    assert out.model.status == "stopped"


def test_a_killed_worker_ends_only_its_own_run(pool, data_dir):
    victim = pool.submit(LONG, data_dir)
    _until(victim, 2)
    bystander = pool.submit(PRESETS["two-layer"], data_dir)
    os.kill(victim.pid, signal.SIGKILL)
    out = victim.wait(timeout=30)
    assert out is not None and out.status == "crashed" and out.model is None
    assert "stopped unexpectedly" in out.message and "Train" in out.message
    other = bystander.wait(timeout=120)
    assert other.status == "finished" and other.model.test_accuracy == 0.72
    again = pool.submit(PRESETS["deep"], data_dir).wait(timeout=120)  # the pool replaced the worker
    assert again.status == "finished" and again.model.test_accuracy == 0.8


def test_four_runs_at_once_all_finish_with_the_course_numbers(pool, data_dir):
    jobs = [pool.submit(PRESETS["deep"], data_dir) for _ in range(4)]
    outs = [j.wait(timeout=300) for j in jobs]
    assert [o.status for o in outs] == ["finished"] * 4
    assert {(o.model.train_accuracy, o.model.test_accuracy) for o in outs} == {(206 / 209, 0.8)}
    assert pool.running == 0


def test_impossible_settings_fail_before_queueing(pool, data_dir):
    with pytest.raises(ConfigError, match="learning rate"):
        pool.submit(TrainConfig(learning_rate=-1.0), data_dir)


def test_a_missing_dataset_is_a_clear_failure_not_a_hang(pool, tmp_path):
    out = pool.submit(PRESETS["deep"], tmp_path).wait(timeout=60)
    assert out.status == "failed" and "dataset not found" in out.message and out.model is None


def test_a_diverging_run_ends_diverged_without_a_model(pool, data_dir):
    out = pool.submit(TrainConfig(learning_rate=5.0, iterations=200), data_dir, cost_every=1).wait(timeout=60)
    assert out.status == "diverged" and out.model is None and "smaller learning rate" in out.message


def test_workers_start_without_running_the_parents_main_script(tmp_path, data_dir, monkeypatch):
    """Under Streamlit, ``__main__`` is the page being run: a worker must not run it on start."""
    script = tmp_path / "page.py"
    script.write_text("raise SystemExit('a page of the dashboard ran inside a worker')\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    own = TrainingPool(processes=1)
    try:
        out = own.submit(PRESETS["two-layer"], data_dir).wait(timeout=60)
    finally:
        own.close()
    assert out is not None and out.status == "finished" and out.model.test_accuracy == 0.72
    assert sys.modules["__main__"] is page  # put back after starting the worker


def test_a_job_nobody_follows_any_more_still_frees_its_slot(data_dir):
    """A page that gave up waiting after a Stop no longer reads its job: the job's end must still give
    its place back, or a server would run out of places after enough such stops."""
    own = TrainingPool(processes=1)
    try:
        first = own.submit(LONG, data_dir)
        queued = own.submit(PRESETS["two-layer"], data_dir)  # waits behind the first
        queued.cancel()
        assert queued.wait(timeout=0.3) is None  # the page gives up: still queued
        first.cancel()
        assert first.wait(timeout=60).status == "stopped"
        deadline = time.monotonic() + 60
        while own.running and time.monotonic() < deadline:  # the queued job ends unread
            time.sleep(0.1)
        assert own.running == 0 and queued.outcome is not None
    finally:
        own.close()
