"""Fair share on the worker pool: round-robin across owners, one training at a time per owner under limits,
refusals at submission, a pause that holds running and queued trainings, and the teacher view's job list."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from catdnn import PRESETS, TrainConfig
from catdnn.classroom import PUBLIC_LIMITS, Limits
from catdnn.errors import CatdnnError
from catdnn.labels import config_label
from catdnn.workers import TrainingPool, TrainingRefused, check_limits, run_work
from tests.pool_support import started

# A run long enough to be mid-way whenever the test acts (minutes if left alone).
LONG = TrainConfig(layers=(12288, 64, 32, 1), iterations=1_000_000, learning_rate=0.001)
SMALL = replace(PRESETS["two-layer"], layers=(12288, 2, 1), iterations=2)
CLASS = Limits(max_iterations=None, runs_at_once=3, max_work=None, max_seconds=None)  # LONG is within them


def _until(job, what, timeout=120):
    """Follow ``job`` until ``what(job)`` holds (bounded)."""
    end = time.monotonic() + timeout
    for _ in job.updates(timeout=0.05):
        if what(job) or time.monotonic() > end:
            break
    assert what(job), f"never happened; the job: {job.outcome}"


def _start_order(jobs):
    outs = [j.wait(timeout=120) for j in jobs]
    assert [o.status for o in outs] == ["finished"] * len(jobs)
    return [j.owner for j in sorted(jobs, key=lambda j: j.started_at)]


@pytest.mark.parametrize("limits", [None, CLASS])
def test_queued_jobs_start_round_robin_across_owners(data_dir, limits):
    pool = TrainingPool(processes=1)
    try:
        pool.pause()  # everything queued before the first one starts
        jobs = [pool.submit(SMALL, data_dir, owner=o, limits=limits) for o in "AAABC"]
        assert [info.state for info in pool.jobs()] == ["queued"] * 5
        pool.resume()
        assert _start_order(jobs) == list("ABCAA")
    finally:
        pool.close()


def test_an_owner_just_served_waits_behind_those_not_served(data_dir):
    """A's first run is training when A queues two more and B and C one each: B and C go before A again."""
    pool = TrainingPool(processes=1)
    try:
        first = pool.submit(LONG, data_dir, owner="A", limits=CLASS)
        started(first)
        rest = [pool.submit(SMALL, data_dir, owner=o, limits=CLASS) for o in "AABC"]
        first.cancel()
        assert first.wait(timeout=60).status == "stopped"
        assert _start_order(rest) == list("BCAA")
    finally:
        pool.close()


def test_one_training_at_a_time_per_owner_with_limits(data_dir):
    pool = TrainingPool(processes=2)
    try:
        a1 = pool.submit(LONG, data_dir, owner="A", limits=CLASS)
        started(a1)
        a2 = pool.submit(SMALL, data_dir, owner="A", limits=CLASS)
        b1 = pool.submit(SMALL, data_dir, owner="B", limits=CLASS)
        assert b1.wait(timeout=120).status == "finished"  # B trains on the idle worker ...
        assert a2.outcome is None and a2.started_at is None  # ... which A's second run never took
        assert a2.behind_own and not b1.behind_own
        assert [(i.owner, i.state) for i in pool.jobs()] == [("A", "running"), ("A", "queued")]
        a1.cancel()
        assert a1.wait(timeout=60).status == "stopped" and a2.wait(timeout=120).status == "finished"
        # without limits (the machine's user, local mode) an owner's runs train side by side, as before
        local = [pool.submit(LONG, data_dir) for _ in range(2)]
        for job in local:
            started(job)
            job.cancel()
        assert [j.wait(timeout=60).status for j in local] == ["stopped", "stopped"]
    finally:
        pool.close()


def test_what_the_limits_forbid_is_refused_at_submission(data_dir):
    pool = TrainingPool(processes=1)
    try:
        strict = Limits(max_iterations=1000, runs_at_once=1, cnn_allowed=False)
        with pytest.raises(TrainingRefused, match="asks for 2,500 iterations, more than the 1,000 allowed"):
            pool.submit(PRESETS["two-layer"], data_dir, owner="A", limits=strict)
        with pytest.raises(TrainingRefused, match="convolutional networks are not allowed"):
            pool.submit(replace(PRESETS["cnn"], iterations=10), data_dir, owner="A", limits=strict)
        assert issubclass(TrainingRefused, CatdnnError) and pool.running == 0  # nothing was queued
        first = pool.submit(replace(LONG, iterations=1000), data_dir, owner="A", limits=strict)
        with pytest.raises(TrainingRefused, match=r"already have 1 run queued or training.*at once \(1\)"):
            pool.submit(SMALL, data_dir, owner="A", limits=strict)
        other = pool.submit(SMALL, data_dir, owner="B", limits=strict)  # someone else's limit is their own
        mine = pool.submit(SMALL, data_dir)  # and the machine's user has none
        first.cancel()
        assert first.wait(timeout=60).status in ("stopped", "finished") and other.wait(timeout=120).status == "finished"
        assert mine.wait(timeout=120).status == "finished"
        again = pool.submit(SMALL, data_dir, owner="A", limits=strict)  # once it has ended, A may train again
        assert again.wait(timeout=120).status == "finished"
    finally:
        pool.close()


def test_pause_holds_a_running_training_between_iterations(data_dir):
    pool = TrainingPool(processes=1)
    try:
        job = pool.submit(LONG, data_dir, owner="A")
        _until(job, lambda j: j.progress is not None and j.progress.iterations_done >= 3)
        pool.pause()
        assert pool.paused and job.paused
        _until(job, lambda j: j.held)
        held_at = job.progress.iterations_done
        time.sleep(1.0)  # a second of a paused pool: the worker does not train
        assert job.progress.iterations_done == held_at and job.held and job.outcome is None
        assert [i.state for i in pool.jobs()] == ["paused"]
        pool.resume()
        assert not pool.paused
        _until(job, lambda j: j.progress.iterations_done >= held_at + 3)
        assert [i.state for i in pool.jobs()] == ["running"]
        job.cancel()
        out = job.wait(timeout=60)
        assert out.status == "stopped" and out.iterations_done >= held_at + 3 and out.model is not None
    finally:
        pool.close()


def test_a_queued_job_neither_starts_nor_times_out_while_paused(data_dir):
    pool = TrainingPool(processes=1, queue_seconds=0.3)
    try:
        busy = pool.submit(LONG, data_dir)
        started(busy)
        pool.pause()
        waiting = pool.submit(SMALL, data_dir, owner="B")
        time.sleep(1.0)  # more than the queue's time limit, all of it paused
        assert waiting.outcome is None
        busy.cancel()  # a Stop while held ends the run
        assert busy.wait(timeout=60).status == "stopped"
        time.sleep(0.5)  # a worker is free, but the pool is paused
        assert waiting.outcome is None and waiting.started_at is None
        assert [(i.owner, i.state) for i in pool.jobs()] == [("B", "queued")]
        pool.resume()
        assert waiting.wait(timeout=120).status == "finished"
    finally:
        pool.close()


def test_jobs_lists_who_trains_what(data_dir):
    pool = TrainingPool(processes=1)
    try:
        running = pool.submit(LONG, data_dir, owner="A", limits=CLASS)
        _until(running, lambda j: j.progress is not None and j.progress.iterations_done >= 2)
        queued = pool.submit(PRESETS["deep"], data_dir, owner="B", limits=CLASS)
        first, second = pool.jobs()
        assert (first.id, first.owner, first.state, first.iterations, first.label) == (
            running.id, "A", "running", LONG.iterations, config_label(LONG))
        assert first.iterations_done >= 2 and first.trained > 0 and first.waited >= 0
        assert (second.id, second.owner, second.state, second.iterations_done, second.iterations, second.label) == (
            queued.id, "B", "queued", 0, PRESETS["deep"].iterations, config_label(PRESETS["deep"]))
        assert second.trained == 0 and second.waited >= 0
        queued.cancel()
        running.cancel()
        running.wait(timeout=60)
        assert pool.jobs() == []
    finally:
        pool.close()


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(host="127.0.0.1", protocol="tcp", processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as c:
        assert c.scheduler_address.startswith("tcp://127.0.0.1:")
        yield c


def test_the_servers_trainings_run_on_the_dask_cluster_it_names(cluster, data_dir, monkeypatch):
    """``$CATDNN_SCHEDULER`` (``catdnn serve --scheduler``): the shared pool's trainings run on that cluster,
    reporting live progress while it trains, and the course's costs."""
    from catdnn import workers

    monkeypatch.setenv(workers.SCHEDULER_ENV, cluster.scheduler_address)
    monkeypatch.setattr(workers, "_shared", None)
    pool = workers.shared_pool()
    try:
        assert pool.where == f"the Dask cluster at {cluster.scheduler_address}" and pool.processes == 2
        assert pool.pids == []  # no worker process of this pool's own
        # the course's two-layer run carried on to 25,000 iterations: the course's 2,500 now take 0.16 s, less than
        # the cluster's first progress message (issue 18), and a run must be long enough to report while it trains
        config = replace(PRESETS["two-layer"], iterations=25_000)
        job = pool.submit(config, data_dir, owner="A", limits=CLASS, cost_every=100)
        seen = []
        for _ in job.updates():
            if job.progress is not None and job.outcome is None:
                seen.append(job.progress.iterations_done)
        out = job.outcome
        assert out.status == "finished" and out.iterations_done == 25_000
        assert seen and seen == sorted(seen) and seen[0] < 25_000  # progress arrived while it trained
        costs = dict(out.history)
        assert (round(costs[0], 6), round(costs[2400], 6)) == (0.693050, 0.048555)  # the course's printed costs
        assert job.history == out.history and len(out.history) == 251 and job.solver_name == "gram"
        assert pool.running == 0 and pool.jobs() == []
    finally:
        pool.close()


def test_on_a_dask_cluster_pause_holds_and_stop_keeps_the_partial_model(cluster, data_dir):
    pool = TrainingPool(scheduler=cluster.scheduler_address)
    try:
        job = pool.submit(LONG, data_dir, owner="A", limits=CLASS)
        _until(job, lambda j: j.progress is not None and j.progress.iterations_done >= 3)
        pool.pause()
        _until(job, lambda j: j.held)
        held_at = job.progress.iterations_done
        time.sleep(1.0)
        assert job.progress.iterations_done == held_at and [i.state for i in pool.jobs()] == ["paused"]
        pool.resume()
        _until(job, lambda j: j.progress.iterations_done >= held_at + 3)
        job.cancel()
        out = job.wait(timeout=60)
        assert out is not None and out.status == "stopped" and out.model is not None
        assert out.model.iterations_done == out.iterations_done >= held_at + 3
        with pytest.raises(TrainingRefused, match="more than the 1,000 allowed"):  # limits hold there too
            pool.submit(PRESETS["two-layer"], data_dir, owner="A", limits=Limits(max_iterations=1000))
    finally:
        pool.close()


def test_a_dask_scheduler_that_does_not_answer_is_a_clear_error():
    with pytest.raises(CatdnnError, match="no Dask scheduler answered at tcp://127.0.0.1:9"):
        TrainingPool(scheduler="tcp://127.0.0.1:9")


def test_a_sweep_of_an_owner_with_limits_keeps_to_them(data_dir):
    from catdnn.sweep import seed_configs, sweep

    pool = TrainingPool(processes=2)
    try:
        strict = Limits(max_iterations=100, runs_at_once=1, cnn_allowed=False)
        with pytest.raises(TrainingRefused, match="more than the 100 allowed"):  # before any run starts
            list(sweep([replace(SMALL, iterations=50), replace(SMALL, iterations=200)], pool, data_dir=data_dir,
                       owner="A", limits=strict))
        assert pool.running == 0
        most = []

        def idle(done, total):
            most.append(sum(1 for info in pool.jobs() if info.owner == "A"))

        results = list(sweep(seed_configs(replace(SMALL, iterations=20), [1, 2, 3]), pool, data_dir=data_dir,
                             owner="A", limits=strict, idle=idle))
        assert sorted(r.status for r in results) == ["finished"] * 3 and max(most) == 1  # one at a time, as asked
    finally:
        pool.close()


def test_closing_a_pool_stops_its_runs_on_the_dask_cluster(cluster, data_dir):
    """A thread of a Dask worker cannot be killed: the pool's close asks its runs to stop, as a Stop does."""
    pool = TrainingPool(scheduler=cluster.scheduler_address)
    job = pool.submit(LONG, data_dir)
    started(job)
    pool.close()
    assert job.outcome is not None and job.outcome.status == "failed"

    def executing() -> int:
        return sum(w.state.executing_count for w in cluster.workers.values())

    end = time.monotonic() + 60
    while executing() and time.monotonic() < end:
        time.sleep(0.1)
    assert executing() == 0


# Within PUBLIC_LIMITS' 5,000 iterations (dense): 14 layers of 2,000 units, 460 MB of weights, under the engine's
# 512 MiB; 8.9 s an iteration on one core, so about 12 hours of a worker (attack review 2).
HEAVY = TrainConfig(layers=(12288, 8) + (2000,) * 14 + (1,), iterations=5000, learning_rate=0.001)


def test_the_work_limit_refuses_a_run_of_hours_within_the_iteration_limit_and_keeps_the_presets():
    """Two visitors each queueing HEAVY held both workers for hours; a run's estimated work is refused above the
    limit, with the estimate and the limit in the message; the course's presets and the CNN preset pass both the
    class defaults and the public limits."""
    assert HEAVY.validate().iterations <= PUBLIC_LIMITS.max_iterations
    for limits in (PUBLIC_LIMITS, Limits()):
        with pytest.raises(TrainingRefused) as refused:
            check_limits(HEAVY, limits)
        assert f"about {run_work(HEAVY):.1e} multiply-adds" in str(refused.value)
        assert f"more than the {limits.max_work:.1e} allowed here per run" in str(refused.value)
        for name, preset in PRESETS.items():
            check_limits(preset, limits)
            assert run_work(preset) * 4 < limits.max_work, name  # well inside


def test_a_run_stops_at_its_time_limit_and_keeps_its_model(data_dir):
    """A run within every other limit stops after ``max_seconds`` of training, like a Stop, with its partial model
    and a message that names the time limit; without limits (local mode) nothing stops it."""
    limits = Limits(max_iterations=None, runs_at_once=1, max_work=None, max_seconds=1)
    pool = TrainingPool(processes=2)
    try:
        free = pool.submit(LONG, data_dir)  # local mode: no time limit
        out = pool.submit(LONG, data_dir, owner="A", limits=limits).wait(timeout=120)
        assert out is not None and out.status == "stopped", out
        assert "reached the time limit of 1 s per run" in out.message
        assert out.model is not None and 0 < out.iterations_done < LONG.iterations
        assert free.outcome is None and free.progress is not None  # still training
    finally:
        pool.close()


def test_runs_within_the_public_limits_cannot_starve_other_visitors(data_dir):
    """Attack review 2: two visitors' long runs within the public limits held both workers, and every other
    visitor's run failed with "no worker became free". Under a time limit they end, and the third visitor's run
    is served within the queue's limit (30 s here, the time limit 2 s, the long runs minutes alone: 2e13
    multiply-adds each, no work limit here)."""
    limits = replace(PUBLIC_LIMITS, max_work=None, max_seconds=2)
    slow = TrainConfig(layers=(12288, 512, 1), iterations=PUBLIC_LIMITS.max_iterations, learning_rate=0.001)
    check_limits(slow, limits)
    pool = TrainingPool(processes=2, queue_seconds=30)
    try:
        a = pool.submit(slow, data_dir, owner="visitor-a", limits=limits)
        b = pool.submit(slow, data_dir, owner="visitor-b", limits=limits)
        assert (a.outcome, b.outcome) == (None, None)
        out = pool.submit(SMALL, data_dir, owner="visitor-c", limits=limits).wait(timeout=120)
        assert out is not None and out.status == "finished", out and (out.status, out.message)
    finally:
        pool.close()
