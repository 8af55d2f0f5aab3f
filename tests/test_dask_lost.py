"""A Dask scheduler that dies under the server's trainings ($CATDNN_SCHEDULER; attack review 2): the run on it ends
``crashed`` with the reason, pause, Stop and shut-down do not raise, new runs are refused with a clear message,
and the pool's thread lives on. The scheduler and its worker are processes of their own, so the test can kill one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catdnn import TrainConfig
from catdnn.errors import CatdnnError
from catdnn.workers import TrainingPool

ROOT = Path(__file__).resolve().parents[1]
LONG = TrainConfig(layers=(12288, 64, 32, 1), iterations=1_000_000, learning_rate=0.001)
SMALL = TrainConfig(layers=(12288, 2, 1), iterations=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(what, timeout=120.0):
    end = time.monotonic() + timeout
    while not what() and time.monotonic() < end:
        time.sleep(0.2)
    return what()


@pytest.fixture
def scheduler():
    """A real Dask scheduler and one worker of one thread, each its own process on 127.0.0.1."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
             "env": {**os.environ, "PYTHONPATH": str(ROOT)}}
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", str(port), "--no-dashboard"], **quiet)
    worker = None
    try:
        def up() -> bool:
            try:
                with Client(address, timeout=2, set_as_default=False):
                    return True
            except (OSError, TimeoutError):
                return False

        assert _until(up, 60), "the scheduler did not start"
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-dashboard", "--host", "127.0.0.1"], **quiet)
        with Client(address, timeout=10, set_as_default=False) as c:
            c.wait_for_workers(1, timeout=60)
        yield address, sched
    finally:
        for p in (worker, sched):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def test_a_dead_scheduler_ends_the_run_with_the_reason_and_the_pool_goes_on(scheduler, data_dir):
    address, sched = scheduler
    pool = TrainingPool(scheduler=address)
    try:
        job = pool.submit(LONG, data_dir, owner="ana")
        assert _until(lambda: job.progress is not None), f"the run did not start: {job.outcome}"
        sched.kill()  # the operator's scheduler dies (out of memory, a reboot) while a student trains
        sched.wait()
        out = job.wait(timeout=120)
        assert out is not None and out.status == "crashed", "the run whose scheduler died never ended"
        assert f"scheduler at {address} went away" in out.message and "press Train" in out.message
        job.cancel()  # the Train page's clean-up after the run: must not raise
        pool.pause()  # the Teacher page's Pause button: must not raise
        pool.resume()
        with pytest.raises(CatdnnError, match="went away"):
            pool.submit(SMALL, data_dir, owner="bob")
        assert pool._thread.is_alive()
    finally:
        pool.close()  # must not raise either
