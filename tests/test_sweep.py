"""Sweeps: the same results as one run after another, kept as they finish, stopped cleanly, on Dask too."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from dataclasses import replace

import pytest

from catdnn import PRESETS, ConfigError, fit
from catdnn.history import History
from catdnn.sweep import check_scheduler, grid, parse_seeds, seed_configs, spread, sweep
from catdnn.workers import TrainingPool

DEEP = replace(PRESETS["deep"], iterations=60)


def test_a_sweep_gives_each_config_the_result_of_a_plain_run(dataset, data_dir, tmp_path):
    configs = seed_configs(DEEP, [1, 2, 3])
    seen = []
    with History(tmp_path / "runs.sqlite3") as h:
        results = list(sweep(configs, data_dir=data_dir, history=h, label="three seeds",
                             idle=lambda done, total: seen.append((done, total))))
        assert sorted(r.index for r in results) == [0, 1, 2]
        for r in results:
            alone = fit(configs[r.index], dataset)
            assert r.status == "finished" and r.config == configs[r.index]
            assert (r.train_accuracy, r.test_accuracy) == (alone.train_accuracy, alone.test_accuracy)
            assert h.get(r.run_id).sweep == "three seeds" and h.get(r.run_id).source == "sweep"
        assert len(h) == 3
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)


def test_a_stopped_sweep_keeps_the_runs_it_finished(data_dir, tmp_path):
    long = [replace(PRESETS["deep"], iterations=200_000, seed=s) for s in range(1, 5)]
    quick = replace(PRESETS["deep"], iterations=20)
    with History(tmp_path / "runs.sqlite3") as h:
        got = []
        for r in sweep([quick, *long], data_dir=data_dir, history=h, workers=2):
            got.append(r)
            break  # stop as soon as the quick one is in: the long ones are running or waiting
        assert [r.config for r in got] == [quick]
        kept = h.runs()
        assert [r.id for r in kept] == [got[0].run_id] and kept[0].status == "finished"


def test_an_error_in_the_progress_callback_stops_the_sweep(data_dir, tmp_path):
    class Stop(Exception):
        pass

    def idle(done, total):
        if done >= 1:
            raise Stop

    configs = [replace(PRESETS["deep"], iterations=20), *(replace(DEEP, iterations=200_000, seed=s) for s in (2, 3))]
    with History(tmp_path / "runs.sqlite3") as h, pytest.raises(Stop):
        for _ in sweep(configs, data_dir=data_dir, history=h, idle=idle):
            pass
    with History(tmp_path / "runs.sqlite3") as h:
        assert len(h) == 1


def test_a_bad_config_is_refused_before_any_run(data_dir):
    with pytest.raises(ConfigError, match="learning rate"):
        list(sweep([DEEP, replace(DEEP, learning_rate=-1.0)], data_dir=data_dir))


def test_grid_seeds_and_spread():
    g = grid(DEEP, learning_rate=[0.0075, 0.01], layers=[(12288, 7, 1)], seed=[1, 2, 3])
    assert len(g) == 6 and [c.seed for c in g[:3]] == [1, 2, 3] and g[3].learning_rate == 0.01
    assert grid(DEEP, learning_rate=None) == [DEEP]
    with pytest.raises(ConfigError, match="at most"):
        grid(DEEP, seed=list(range(40)), learning_rate=[0.1 * i for i in range(1, 40)])
    assert parse_seeds("1-5") == (1, 2, 3, 4, 5) and parse_seeds("1-3,10, 2") == (1, 2, 3, 10)
    for bad in ("5-1", "a", "1-", "", "1-99999"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)

    class R:
        def __init__(self, train, test):
            self.train_accuracy, self.test_accuracy = train, test

    s = spread([R(1.0, 0.7), R(0.9, 0.8), R(None, None)])
    assert s.n == 2 and s.test_mean == pytest.approx(0.75) and s.test_std == pytest.approx(0.0707107, rel=1e-5)
    assert "± 0.071" in s.text() and spread([]) is None


def test_scheduler_addresses():
    assert check_scheduler("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert check_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for bad in ("http://x:1", "tcp://host", "tcp://:8786", "tcp://h:1/path"):
        with pytest.raises(ConfigError, match="not a Dask scheduler address"):
            check_scheduler(bad)
    # the dashboard: this machine, or an address the one who started it allowed
    assert check_scheduler("tcp://localhost:8786", allowed=[]) == "tcp://localhost:8786"
    assert check_scheduler("tcp://10.0.0.5:8786", allowed=["tcp://10.0.0.5:8786"])
    with pytest.raises(ConfigError, match="CATDNN_SCHEDULERS=tcp://10.0.0.6:8786"):
        check_scheduler("tcp://10.0.0.6:8786", allowed=["tcp://10.0.0.5:8786"])


def test_the_same_sweep_runs_on_a_dask_cluster(data_dir, tmp_path):
    from distributed import LocalCluster

    from catdnn.sweep import dask_client, dask_executor

    configs = seed_configs(DEEP, [1, 2])
    local = sorted(sweep(configs, data_dir=data_dir), key=lambda r: r.index)
    with LocalCluster(host="127.0.0.1", protocol="tcp", processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        client = dask_client(cluster.scheduler_address)
        try:
            with History(tmp_path / "runs.sqlite3") as h:
                remote = sorted(sweep(configs, dask_executor(client), data_dir=data_dir, history=h),
                                key=lambda r: r.index)
                assert len(h) == 2
        finally:
            client.close()
    assert [(r.status, r.test_accuracy, r.train_accuracy) for r in remote] == \
        [(r.status, r.test_accuracy, r.train_accuracy) for r in local]


def test_no_scheduler_at_an_address_is_a_clear_error():
    from catdnn import CatdnnError
    from catdnn.sweep import dask_client

    with pytest.raises(CatdnnError, match="no Dask scheduler answered at tcp://127.0.0.1:9"):
        dask_client("tcp://127.0.0.1:9", timeout=2)


def test_a_tls_scheduler_is_refused_with_the_reason():
    """Issue 19 A13: tls:// passed the check, then Dask raised TypeError (it needs certificates)."""
    from catdnn.sweep import dask_client

    for check in (check_scheduler, lambda a: check_scheduler(a, allowed=[]), dask_client):
        with pytest.raises(ConfigError, match="TLS scheduler.*certificate and key.*tcp://"):
            check("tls://127.0.0.1:8786")


class _Recording(cf.Executor):
    """An executor that lets the test see the futures a sweep submits."""

    def __init__(self, inner: cf.Executor):
        self.inner, self.futures = inner, []

    def submit(self, fn, /, *args, **kwargs):
        f = self.inner.submit(fn, *args, **kwargs)
        self.futures.append(f)
        return f

    def shutdown(self, wait=True, **kwargs):
        self.inner.shutdown(wait, **kwargs)


def test_a_stop_keeps_every_run_that_had_finished_not_only_the_first(data_dir, tmp_path):
    """Issue 19 A4: both runs of a two-run spread had finished when the Stop came, and only the first
    reached the history."""
    ex = _Recording(cf.ThreadPoolExecutor(2))

    def both_finish_first(done, total):
        if done == 0:  # the sweep looks for results only once both have ended
            finished, _ = cf.wait(ex.futures, timeout=120)
            assert len(finished) == 2

    try:
        with History(tmp_path / "runs.sqlite3") as h:
            got = []
            for r in sweep(seed_configs(DEEP, [1, 2]), ex, data_dir=data_dir, history=h, idle=both_finish_first):
                got.append(r)
                break  # the Stop click: the page's script ends with the first result
            assert len(got) == 1
            kept = h.runs()
            assert sorted(r.config.seed for r in kept) == [1, 2] and {r.status for r in kept} == {"finished"}
            assert all(r.has_model for r in kept)
    finally:
        ex.shutdown()


def test_on_the_pool_too_a_stop_keeps_every_finished_run(data_dir, tmp_path):
    pool = TrainingPool(processes=2)

    def both_finish_first(done, total):
        if done == 0:
            deadline = time.monotonic() + 120
            while pool.running and time.monotonic() < deadline:  # both jobs end (and are handed on)
                time.sleep(0.05)
            assert pool.running == 0

    class Stop(Exception):
        pass

    def stop_at_the_first_result(done, total):
        both_finish_first(done, total)
        if done:
            raise Stop  # as Streamlit raises at the progress bar's redraw after a Stop click

    try:
        with History(tmp_path / "runs.sqlite3") as h, pytest.raises(Stop):
            for _ in sweep(seed_configs(DEEP, [1, 2]), pool, data_dir=data_dir, history=h,
                           idle=stop_at_the_first_result):
                pass
        with History(tmp_path / "runs.sqlite3") as h:
            assert sorted(r.config.seed for r in h.runs()) == [1, 2]
    finally:
        pool.close()


def test_a_stop_event_ends_the_sweep_normally_keeping_what_finished(data_dir, tmp_path):
    stop = threading.Event()
    quick, long = replace(DEEP, iterations=20), replace(DEEP, iterations=200_000, seed=2)
    with History(tmp_path / "runs.sqlite3") as h:
        got = []
        for r in sweep([quick, long, long], data_dir=data_dir, history=h, workers=2, stop=stop):
            got.append(r)
            stop.set()  # as the command line's Ctrl-C handler does
        assert [r.config for r in got] == [quick] and got[0].status == "finished"
        assert [r.id for r in h.runs()] == [got[0].run_id]


def test_a_sweep_on_a_pool_keeps_no_more_runs_in_flight_than_it_has_workers(data_dir):
    pool = TrainingPool(processes=1)
    seen = []
    try:
        results = list(sweep(seed_configs(DEEP, [1, 2, 3]), pool, data_dir=data_dir,
                             idle=lambda done, total: seen.append(pool.running)))
        assert sorted(r.status for r in results) == ["finished"] * 3
        assert max(seen) <= 1  # the other two waited in the sweep, not in the pool's queue
    finally:
        pool.close()
