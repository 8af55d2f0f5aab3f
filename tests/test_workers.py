"""catdnn.workers: trainings run in a pool of worker processes, report progress, stop on request with
the partial model, and a killed worker ends only its own run."""

from __future__ import annotations

import os
import signal
import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import pytest

from catdnn import PRESETS, ConfigError, TrainConfig, fit, load_dataset
from catdnn.workers import TrainingPool
from tests.pool_support import started

ROOT = Path(__file__).resolve().parent.parent

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
        started(first)
        first.cancel()  # the page gives up at once and never reads the job again
        deadline = time.monotonic() + 60
        while own.running and time.monotonic() < deadline:  # the job ends unread
            time.sleep(0.05)
        assert own.running == 0 and first.outcome is not None and first.outcome.status == "stopped"
    finally:
        own.close()

def _replaced(pool, dead, timeout=60):
    """Wait (bounded) until the pool holds its full count of live workers, none of them ``dead``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pids = pool.pids
        if dead not in pids and len(pids) == pool.processes:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"the pool did not replace worker {dead}: {pool.pids}")


def test_an_idle_workers_death_does_not_wedge_the_pool(data_dir):
    """Issue 19 A2: with a stock multiprocessing.Pool, the idle worker died holding the task queue's
    lock, and no job ever started again."""
    own = TrainingPool(processes=2)
    try:
        busy = own.submit(LONG, data_dir)
        started(busy)
        (idle,) = [pid for pid in own.pids if pid != busy.pid]
        os.kill(idle, signal.SIGKILL)
        _replaced(own, idle)
        out = own.submit(PRESETS["two-layer"], data_dir).wait(timeout=120)
        assert out is not None and out.status == "finished" and out.model.test_accuracy == 0.72
        assert busy.outcome is None  # the other run trains on, untouched
        busy.cancel()
        assert busy.wait(timeout=60).status == "stopped"
        assert own.running == 0
    finally:
        own.close()


def test_a_worker_killed_just_after_it_sent_its_model_does_not_wedge_the_pool(data_dir):
    own = TrainingPool(processes=2)
    try:
        busy = own.submit(LONG, data_dir)
        started(busy)
        quick = own.submit(PRESETS["two-layer"], data_dir)
        out = quick.wait(timeout=120)
        assert out is not None and out.status == "finished" and out.model is not None
        os.kill(quick.pid, signal.SIGKILL)  # the model is in; the worker dies on its way back to the queue
        _replaced(own, quick.pid)
        again = own.submit(PRESETS["two-layer"], data_dir).wait(timeout=120)
        assert again is not None and again.status == "finished" and again.model.test_accuracy == 0.72
        busy.cancel()
        assert busy.wait(timeout=60).status == "stopped"
    finally:
        own.close()


def test_a_worker_killed_while_sending_its_model_ends_only_its_own_run(data_dir):
    """A big model takes several writes to send: a worker killed half-way leaves nothing in the way."""
    own = TrainingPool(processes=1)
    try:
        big = TrainConfig(layers=(12288, 800, 1), iterations=1)  # a 79 MB model, sent in many writes
        job = own.submit(big, data_dir)
        for _ in job.updates(timeout=0.01):
            if job.progress is not None and job.progress.iterations_done == 1:
                os.kill(job.pid, signal.SIGKILL)  # the worker is now building, checking or sending the model
                break
        out = job.wait(timeout=120)
        assert out is not None and out.status in ("crashed", "finished")
        again = own.submit(PRESETS["two-layer"], data_dir).wait(timeout=120)
        assert again is not None and again.status == "finished"
    finally:
        own.close()


def test_a_queued_job_times_out_with_a_message_and_frees_its_place(data_dir):
    own = TrainingPool(processes=1, queue_seconds=0.5)
    try:
        busy = own.submit(LONG, data_dir)
        started(busy)
        waiting = own.submit(PRESETS["two-layer"], data_dir)
        out = waiting.wait(timeout=60)
        assert out is not None and out.status == "failed" and out.model is None
        assert "no worker became free within 0.5 s" in out.message and "Try again later" in out.message
        assert own.running == 1  # only the busy job holds a place
        busy.cancel()
        assert busy.wait(timeout=60).status == "stopped" and own.running == 0
    finally:
        own.close()


def test_a_queued_job_cancelled_ends_at_once(data_dir):
    own = TrainingPool(processes=1)
    try:
        busy = own.submit(LONG, data_dir)
        waiting = own.submit(PRESETS["two-layer"], data_dir)
        waiting.cancel()
        assert waiting.outcome is not None and waiting.outcome.status == "stopped" and own.running == 1
        busy.cancel()
        assert busy.wait(timeout=60).status == "stopped"
    finally:
        own.close()


EXIT_SCRIPT = """
import sys
from dataclasses import replace
from catdnn import PRESETS
from catdnn.workers import TrainingPool

pool = TrainingPool(2)  # never closed: the process simply ends, as a CLI run or a server does
out = pool.submit(replace(PRESETS["two-layer"], layers=(12288, 2, 1), iterations=2), sys.argv[1]).wait(timeout=60)
print("outcome", out.status)
"""


def test_a_process_with_an_open_pool_exits_cleanly(tmp_path, data_dir):
    """At exit, multiprocessing terminates the daemon workers and joins every child. The pool's thread used
    to see its workers die and start new ones, which that join then waited on for ever (a hang), or close
    a process the join was about to wait on ("process object is closed" traceback). Either way the
    process did not end cleanly; each of these runs must. (The timeout only bounds a hang.)"""
    import subprocess

    script = tmp_path / "open_pool.py"
    script.write_text(EXIT_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for _ in range(4):
        try:
            done = subprocess.run([sys.executable, str(script), str(data_dir)], capture_output=True, text=True,
                                  timeout=120, env=env)
        except subprocess.TimeoutExpired:
            pytest.fail("the process hung at exit with a pool open")
        assert done.returncode == 0 and "outcome finished" in done.stdout, done.stderr
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


def test_a_worker_that_dies_before_its_job_begins_hands_the_job_to_its_replacement(data_dir):
    """Attack finding 4: a worker killed while idle, just as a job was sent to it (its process not yet
    reaped, so still "alive"), took the new job down as "crashed". The worker never began that run:
    the job goes back to the front of the queue and runs on the new worker. A stopped (SIGSTOP)
    worker makes the race certain: it is alive when the job is sent and never reads it."""
    own = TrainingPool(processes=1)
    try:
        (worker,) = own.pids
        os.kill(worker, signal.SIGSTOP)
        job = own.submit(PRESETS["two-layer"], data_dir)
        os.kill(worker, signal.SIGKILL)
        out = job.wait(timeout=120)
        assert out is not None and out.status == "finished", out and out.message
        assert out.model.test_accuracy == 0.72 and job.pid != worker
        assert own.running == 0
    finally:
        own.close()


def test_a_job_cancelled_before_its_dead_worker_began_it_ends_stopped(data_dir):
    own = TrainingPool(processes=1)
    try:
        (worker,) = own.pids
        os.kill(worker, signal.SIGSTOP)
        job = own.submit(PRESETS["two-layer"], data_dir)
        job.cancel()  # handed to the worker already: the flag is raised, the worker never reads it
        os.kill(worker, signal.SIGKILL)
        out = job.wait(timeout=60)
        assert out is not None and out.status == "stopped" and out.model is None and own.running == 0
    finally:
        own.close()


class _KillsItsWorker:
    """An option whose unpickling ends the worker process that receives the job, before the job begins."""

    def __reduce__(self):
        return os._exit, (3,)


def test_a_job_that_kills_every_worker_before_it_begins_is_tried_a_bounded_number_of_times(data_dir):
    own = TrainingPool(processes=1)
    try:
        poison = own.submit(PRESETS["two-layer"], data_dir, solver=_KillsItsWorker())
        out = poison.wait(timeout=120)
        assert out is not None and out.status == "crashed" and out.model is None
        assert "before the run began" in out.message and "not tried again" in out.message
        assert own.running == 0
        again = own.submit(PRESETS["two-layer"], data_dir).wait(timeout=120)  # the pool goes on
        assert again is not None and again.status == "finished"
    finally:
        own.close()


def test_a_done_callback_that_raises_stops_neither_its_job_nor_the_pool(data_dir, caplog):
    """Attack finding 6: a raising callback ran in the pool's one thread and killed it."""
    own = TrainingPool(processes=1)
    try:
        small = replace(PRESETS["two-layer"], layers=(12288, 2, 1), iterations=2)
        first = own.submit(small, data_dir)
        called = []

        def broken(job):
            called.append(job.id)
            raise RuntimeError("a broken callback")

        first.add_done_callback(broken)
        first.add_done_callback(lambda job: called.append("after"))
        out = first.wait(timeout=120)
        assert out is not None and out.status == "finished" and called == [first.id, "after"]
        second = own.submit(small, data_dir)
        assert second.wait(timeout=120) is not None and second.outcome.status == "finished"
        second.add_done_callback(broken)  # an ended job calls it at once: that raises nowhere either
        assert own.running == 0
        logged = [r for r in caplog.records if r.name == "catdnn.workers" and r.exc_info]
        assert len(logged) == 2 and "a broken callback" in str(logged[0].exc_info[1])
    finally:
        own.close()


def test_an_unexpected_error_in_the_pools_thread_is_logged_and_the_pool_goes_on(data_dir, caplog):
    """Attack review 2: one error in the pool's thread (a Dask scheduler's clean-up raising) killed it, and with it
    every training on the server. One round of the thread that raises is logged; the next rounds serve the jobs."""
    own = TrainingPool(processes=1)
    try:
        broken = []

        def expire_once():  # the thread's timing of the queue raises once, as any step of a round might
            if not broken:
                broken.append(True)
                raise RuntimeError("an unexpected error")

        own._expire = expire_once
        own._wake()
        small = replace(PRESETS["two-layer"], layers=(12288, 2, 1), iterations=2)
        assert own.submit(small, data_dir).wait(timeout=120).status == "finished"
        assert broken and own.submit(small, data_dir).wait(timeout=120).status == "finished"
        logged = [r for r in caplog.records if r.name == "catdnn.workers" and r.exc_info]
        assert "an unexpected error" in str(logged[0].exc_info[1])
    finally:
        own.close()
