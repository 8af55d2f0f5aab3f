"""Sweeps: many training runs at once, on this machine's cores or on a Dask cluster.

:func:`sweep` runs a list of :class:`~catdnn.config.TrainConfig` and yields a :class:`SweepResult`
for each as it finishes (not in the order given). Where they run:

* on a :class:`~catdnn.workers.TrainingPool`, the worker processes that also train the dashboard's
  Train page (one per core, each with one BLAS thread). The dashboard passes its one shared pool,
  so its sweeps, seed spreads and lessons never train more runs at once than it has workers; a
  sweep keeps at most as many of its runs queued or running as the pool has workers, so other
  users' runs take their turn between them. Without an executor, a sweep starts a pool of its own
  (``workers`` processes) and shuts it down at the end: the command line's way;
* or on any :class:`concurrent.futures.Executor`, such as a Dask cluster's:
  ``distributed.Client("tcp://host:8786").get_executor()`` (:func:`dask_executor`). Dask schedules;
  catdnn never does. Each Dask worker needs catdnn and the dataset (at the same path, or its own
  ``$CATDNN_DATA_DIR``).

Given a :class:`~catdnn.history.History`, every run is kept in it the moment its result arrives,
before any is yielded, so a sweep stopped half-way (Ctrl-C, a Stop click, a rerun) keeps every run
it finished, however many finished together. Stopping (a ``stop`` event, or leaving the loop)
cancels the runs not started, and the pool's running ones stop after their current iteration.

Also here: :func:`grid` (every combination of some settings), :func:`parse_seeds` (``"1-5"``) and
:func:`spread` (the mean ± standard deviation of the accuracies over seeds).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from .cluster import SCHEDULERS_ENV_VAR, allowed_schedulers, check_scheduler, dask_client  # noqa: F401 (this module's API)
from .config import TrainConfig
from .errors import CatdnnError, ConfigError
from .history import is_upload
from .labels import dataset_name
from .workers import Outcome, TrainingPool, cached_dataset, check_limits, failure_message, train_one

#: Most runs one sweep may hold (a grid grows fast).
MAX_RUNS = 1000
#: While waiting for results, ``idle`` is called about this often (seconds).
IDLE_SECONDS = 0.2


@dataclass
class SweepResult:
    """One run of a sweep, as it ended.

    ``index`` is the run's position in the configs given; ``status`` is "finished", "stopped",
    "diverged", "failed" (an error, in ``message``) or "crashed" (its worker process died); ``model`` is
    None unless finished or stopped after some iterations; ``run_id`` is its id in the history, when one
    was given.
    """

    index: int
    config: TrainConfig
    status: str
    message: str = ""
    history: list = field(default_factory=list)  # [(iteration, cost)]
    accuracy_history: list = field(default_factory=list)  # [(iteration, train, test)]
    iterations_done: int = 0
    elapsed: float = 0.0
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    solver: str = ""
    dataset: str = ""
    model: object = None
    run_id: int | None = None


# --------------------------------------------------------------------------- on a Dask worker
def run_one(index: int, config: dict, data_dir=None, options: dict | None = None) -> SweepResult:
    """Train one config to its end (on a Dask worker) and return its :class:`SweepResult`; never raises."""
    from .threads import limit_blas_threads

    limit_blas_threads(1)
    cfg = TrainConfig.from_dict(config)
    try:
        return result_of(index, cfg, train_one(cfg, cached_dataset(data_dir, remote=True), options))
    except Exception as exc:  # one line in the sweep's output; the other runs go on
        return SweepResult(index, cfg, "failed", failure_message(exc))


def result_of(index: int, config: TrainConfig, outcome: Outcome) -> SweepResult:
    """The :class:`SweepResult` of run ``index`` from its :class:`~catdnn.workers.Outcome`."""
    model = outcome.model
    return SweepResult(index, config, outcome.status, outcome.message, outcome.history, outcome.accuracy_history,
                       outcome.iterations_done, outcome.elapsed, model.train_accuracy if model is not None else None,
                       model.test_accuracy if model is not None else None, outcome.solver_name, outcome.dataset, model)


# --------------------------------------------------------------------------- the parent side
class _OnPool:
    """A sweep's runs on a :class:`TrainingPool`: at most as many queued or running as it has workers."""

    def __init__(self, pool: TrainingPool, configs: list, data_dir, options: dict, owner: str = "", limits=None):
        self.pool, self.configs, self.data_dir, self.options = pool, configs, data_dir, options
        self.owner, self.limits = owner, limits
        self.jobs: dict = {}  # Job -> index
        self._ended: queue.Queue = queue.Queue()  # jobs, as they end (put by the pool's thread)

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def room(self) -> bool:
        most = self.pool.processes if self.limits is None else min(self.pool.processes, self.limits.runs_at_once)
        return len(self.jobs) < most

    def submit(self, i: int) -> None:
        job = self.pool.submit(self.configs[i], self.data_dir, owner=self.owner, limits=self.limits, **self.options)
        self.jobs[job] = i
        job.add_done_callback(self._ended.put)

    def ended(self, timeout: float) -> list[SweepResult]:
        """The runs that have ended, waiting up to ``timeout`` seconds for a first one (0: no wait)."""
        jobs = []
        try:
            jobs.append(self._ended.get(timeout=timeout) if timeout else self._ended.get_nowait())
            while True:
                jobs.append(self._ended.get_nowait())
        except queue.Empty:
            pass
        return [result_of(self.jobs.pop(j), j.config, j.outcome) for j in jobs]

    def stop(self) -> None:
        for job in self.jobs:
            job.cancel()


class _OnExecutor:
    """A sweep's runs on a :class:`concurrent.futures.Executor` (a Dask cluster's): all submitted at once."""

    def __init__(self, executor: cf.Executor, configs: list, data_dir, options: dict, owner: str = "", limits=None):
        self.executor, self.configs, self.options = executor, configs, options
        self.data_dir = None if data_dir is None else str(data_dir)
        self.futures: dict = {}  # Future -> index

    @property
    def busy(self) -> bool:
        return bool(self.futures)

    def room(self) -> bool:
        return True

    def submit(self, i: int) -> None:
        f = self.executor.submit(run_one, i, self.configs[i].to_dict(), self.data_dir, dict(self.options))
        self.futures[f] = i

    def ended(self, timeout: float) -> list[SweepResult]:
        if not self.futures:
            return []
        done, _ = cf.wait(self.futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        for f in done:
            i = self.futures.pop(f)
            out.append(_result(f, i, self.configs[i]))
        return out

    def stop(self) -> None:
        for f in self.futures:
            f.cancel()


def sweep(configs: Iterable[TrainConfig], executor: TrainingPool | cf.Executor | None = None, *, data_dir=None,
          history=None, source: str = "sweep", label: str = "", idle: Callable[[int, int], None] | None = None,
          workers: int | None = None, stop: threading.Event | None = None, owner: str = "", limits=None,
          **trainer_options) -> Iterator[SweepResult]:
    """Train every config and yield each :class:`SweepResult` as it finishes.

    Parameters
    ----------
    configs : iterable of TrainConfig
        Each is validated first: an impossible one raises :class:`ConfigError` before any run starts.
    executor : TrainingPool or concurrent.futures.Executor, optional
        Where the runs go: a pool of worker processes (the dashboard passes its shared one), or an
        executor such as :func:`dask_executor`'s; default a pool of ``workers`` processes (one per
        core) of the sweep's own, shut down at the end.
    data_dir : path, optional
        The dataset's folder (default: each worker's own, as :func:`catdnn.data.load_dataset` finds it).
    history : catdnn.history.History, optional
        Keep every run there as it arrives (``source`` and ``label`` go with it); sets ``run_id``.
    idle : callable(done, total), optional
        Called about every :data:`IDLE_SECONDS` while waiting, and after the results that arrived
        together (a page redraws its progress bar there; an exception raised there stops the sweep).
    stop : threading.Event, optional
        Set it (from any thread, or a signal handler) to stop the sweep: the runs that have ended are
        kept and yielded, the others cancelled, and the iteration ends normally.
    owner, limits : str, catdnn.classroom.Limits, optional
        Whose runs these are on a pool (:meth:`~catdnn.workers.TrainingPool.submit`: the round-robin, one
        at a time under limits). With ``limits``, a config they forbid (iterations, a CNN) is refused with
        :class:`~catdnn.workers.TrainingRefused` before any run starts, and the sweep keeps at most
        ``limits.runs_at_once`` runs queued or running.
    trainer_options
        Passed to :class:`~catdnn.train.Trainer` (``cost_every``, ``accuracy_every``, ``solver``).

    Leaving the loop early (``break``, an exception) stops the sweep too: the runs that had ended are
    still kept in the history; the runs not started are cancelled and, on a pool, the running ones
    stop after their current iteration.
    """
    configs = [c.validate() for c in configs]
    if len(configs) > MAX_RUNS:
        raise ConfigError(f"a sweep holds at most {MAX_RUNS} runs, not {len(configs)}: narrow the grid")
    if limits is not None:
        for c in configs:
            check_limits(c, limits)
    own = executor is None
    if own:
        executor = TrainingPool(workers)
    on = (_OnPool if isinstance(executor, TrainingPool) else _OnExecutor)(executor, configs, data_dir,
                                                                           trainer_options, owner, limits)
    total, done = len(configs), 0
    todo = collections.deque(range(total))
    # how the runs are kept is decided now, while the folder can tell: an upload may be removed (to make room for
    # newer ones) before a run ends, and its runs must stay private and named by the dataset's display name
    name, private = (dataset_name(data_dir), is_upload(data_dir)) if data_dir else ("", None)

    def kept(results: list) -> list:  # every result in the history before the first is yielded
        if history is not None:
            for res in results:
                res.run_id = _keep(history, res, source, label, name, private)
        return results

    def stopped() -> bool:
        return stop is not None and stop.is_set()

    def fill() -> None:
        while todo and on.room() and not stopped():
            on.submit(todo.popleft())

    try:
        fill()
        if idle is not None:
            idle(0, total)
        while (todo or on.busy) and not stopped():
            for res in kept(on.ended(IDLE_SECONDS)):
                done += 1
                yield res
            if idle is not None:
                idle(done, total)
            fill()
        for res in kept(on.ended(0)):  # stopped: what ended before the stop is kept and reported
            done += 1
            yield res
    finally:
        try:
            if history is not None:  # left at a yield or from idle: keep what had ended all the same
                for res in on.ended(0):
                    _keep(history, res, source, label, name, private)
        except CatdnnError:  # nobody is left to tell; the sweep is being left anyway
            pass
        finally:
            on.stop()
            if own:
                executor.close()


def _result(future: cf.Future, index: int, config: TrainConfig) -> SweepResult:
    try:
        return future.result()
    except Exception as exc:  # the executor itself failed (a worker died, the cluster went away)
        return SweepResult(index, config, "failed", f"the run was lost: {type(exc).__name__}: {exc}")


def _keep(history, res: SweepResult, source: str, label: str, dataset: str = "",
          private: bool | None = None) -> int | None:
    """Keep ``res`` in ``history``; ``dataset`` and ``private``: the sweep's dataset's display name and
    privacy, decided when it started (default: from the folder the run names, :func:`is_upload`)."""
    if res.status not in ("finished", "stopped", "diverged"):
        return None
    return history.add(
        res.config, status=res.status, message=res.message, history=res.history,
        accuracy_history=res.accuracy_history, iterations_done=res.iterations_done,
        train_accuracy=res.train_accuracy, test_accuracy=res.test_accuracy, elapsed=res.elapsed,
        solver=res.solver, source=source, dataset=dataset or res.dataset, sweep=label, model=res.model,
        private=private)


def curve_options(config: TrainConfig) -> dict:
    """The Trainer options a sweep's runs use: the cost sampled about 500 times per run."""
    return {"cost_every": max(1, int(config.iterations) // 500)}


# --------------------------------------------------------------------------- Dask
def dask_executor(client) -> cf.Executor:
    """The cluster's ``concurrent.futures`` executor, for :func:`sweep`."""
    return client.get_executor()


# --------------------------------------------------------------------------- grids and seeds
def parse_seeds(text: str) -> tuple:
    """``"1-5"`` -> (1, 2, 3, 4, 5); ``"1,3,7"``; ``"1-3,10"``. Raises :class:`ConfigError`."""
    from .config import MAX_SEED

    seeds: list = []
    for part in str(text).replace(" ", "").split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ConfigError(f"{text!r} is not a list of seeds such as 1-5 or 1,3,7")
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise ConfigError(f"the seed range {part} runs backwards: write {b}-{a}")
        if b > MAX_SEED or b - a >= MAX_RUNS:
            raise ConfigError(f"the seed range {part} is too large (at most {MAX_RUNS} seeds, each ≤ {MAX_SEED})")
        seeds.extend(s for s in range(a, b + 1) if s not in seeds)
    if len(seeds) > MAX_RUNS:
        raise ConfigError(f"at most {MAX_RUNS} seeds, not {len(seeds)}")
    return tuple(seeds)


def parse_networks(text: str, base: TrainConfig | None = None) -> list[dict]:
    """The networks of a sweep, ``";"`` between them: hidden layer sizes (``"20,7,5"``, ``"none"``) or
    architecture specs, convolutional nets included (``"in32,conv16,conv32,dense64; dense20,dense7,dense5"``).
    Each is the :class:`TrainConfig` fields that set it (for :func:`grid`'s ``network`` axis); a CNN trains
    in ``base``'s dtype when ``base`` is one, else the cnn preset's. Raises :class:`ConfigError`."""
    from .config import PRESETS, parse_layers
    from .data import N_X

    nets = []
    for piece in (p.strip() for p in str(text).split(";")):
        if not piece:
            continue
        if piece.lower() == "none" or all(ch.isdigit() or ch in ", " for ch in piece):
            hidden = () if piece.lower() == "none" else parse_layers(piece)
            nets.append({"layers": (N_X, *hidden, 1), "arch": "", "dtype": "float64"})
            continue
        arch = TrainConfig(arch=piece).parsed_arch()
        if arch.is_cnn:
            dtype = base.dtype if base is not None and base.is_cnn else PRESETS["cnn"].dtype
            nets.append({"arch": arch.text, "dtype": dtype})
        else:
            nets.append({"layers": arch.mlp_layers(), "arch": "", "dtype": "float64"})
    if len(nets) > MAX_RUNS:
        raise ConfigError(f"at most {MAX_RUNS} networks, not {len(nets)}")
    return nets


def grid(base: TrainConfig, **axes) -> list[TrainConfig]:
    """Every combination of the values in ``axes`` (TrainConfig field -> list of values) over ``base``,
    the last axis varying fastest. ``grid(c, learning_rate=[0.0075, 0.01], seed=[1, 2, 3])`` is 6 configs.
    The axis ``network`` takes dicts of fields set together (:func:`parse_networks`: an MLP's layers, or a
    CNN's spec and dtype)."""
    names = [k for k, v in axes.items() if v]
    n = math.prod(len(axes[k]) for k in names) if names else 1
    if n > MAX_RUNS:
        raise ConfigError(f"this grid has {n} runs; a sweep holds at most {MAX_RUNS}: narrow it")
    configs = []
    for combo in itertools.product(*(axes[k] for k in names)):
        fields = {}
        for name, value in zip(names, combo):
            fields.update(value if name == "network" else {name: value})
        configs.append(replace(base, **fields))
    return configs


def seed_configs(config: TrainConfig, seeds) -> list[TrainConfig]:
    """``config`` (any network, CNN included) once per seed."""
    return grid(config, seed=list(seeds))


@dataclass
class Spread:
    """Mean ± standard deviation of the accuracies over ``n`` runs (the sample standard deviation;
    0 for one run)."""

    n: int
    train_mean: float
    train_std: float
    test_mean: float
    test_std: float
    test_min: float
    test_max: float

    def text(self) -> str:
        return (f"over {self.n} seed{'s' if self.n != 1 else ''}: train accuracy {self.train_mean:.3f} ± "
                f"{self.train_std:.3f}, test accuracy {self.test_mean:.3f} ± {self.test_std:.3f} "
                f"(from {self.test_min:.3f} to {self.test_max:.3f})")


def spread(results) -> Spread | None:
    """The :class:`Spread` of the results that have accuracies (None if none has)."""
    import numpy as np

    rows = [(r.train_accuracy, r.test_accuracy) for r in results
            if r.train_accuracy is not None and r.test_accuracy is not None]
    if not rows:
        return None
    a = np.array(rows, dtype=float)
    ddof = 1 if len(a) > 1 else 0
    return Spread(len(a), float(a[:, 0].mean()), float(a[:, 0].std(ddof=ddof)), float(a[:, 1].mean()),
                  float(a[:, 1].std(ddof=ddof)), float(a[:, 1].min()), float(a[:, 1].max()))

