"""Sweeps: many training runs at once, on this machine's cores or on a Dask cluster.

:func:`sweep` runs a list of :class:`~catdnn.config.TrainConfig` and yields a :class:`SweepResult`
for each as it finishes (not in the order given). Where they run is a
:class:`concurrent.futures.Executor`:

* by default a local process pool, one worker per core, each with one BLAS thread
  (:mod:`catdnn.threads`). Its workers start like the dashboard's training pool
  (:mod:`catdnn.workers`): ``forkserver`` (never a bare ``fork`` of a threaded server), and without
  re-running the parent's ``__main__`` (under Streamlit, the page script);
* or any executor, such as a Dask cluster's: ``distributed.Client("tcp://host:8786").get_executor()``
  (:func:`dask_executor`). Dask schedules; catdnn never does. Each Dask worker needs catdnn and
  the dataset (at the same path, or its own ``$CATDNN_DATA_DIR``).

Given a :class:`~catdnn.history.History`, every run is kept in it the moment its result arrives,
so a sweep stopped half-way (Ctrl-C, a Stop click) keeps every run it finished. Stopping cancels
the runs not started, and the local pool's running ones stop after their current iteration.

Also here: :func:`grid` (every combination of some settings), :func:`parse_seeds` (``"1-5"``) and
:func:`spread` (the mean ± standard deviation of the accuracies over seeds).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from .config import TrainConfig
from .errors import CatdnnError, ConfigError

#: Most runs one sweep may hold (a grid grows fast).
MAX_RUNS = 1000
#: While waiting for results, ``idle`` is called about this often (seconds).
IDLE_SECONDS = 0.2
#: ``CATDNN_SCHEDULERS``: the Dask scheduler addresses (comma-separated) the dashboard may connect to,
#: besides this machine's own. A scheduler's results are unpickled, so it must be trusted.
SCHEDULERS_ENV_VAR = "CATDNN_SCHEDULERS"


@dataclass
class SweepResult:
    """One run of a sweep, as it ended.

    ``index`` is the run's position in the configs given; ``status`` is "finished", "stopped",
    "diverged" or "failed" (an error, in ``message``); ``model`` is None unless finished or stopped
    after some iterations; ``run_id`` is its id in the history, when one was given.
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


# --------------------------------------------------------------------------- the worker side
_datasets: dict = {}
_datasets_lock = threading.Lock()
_stop = None  # in a local pool's worker: the sweep's shared stop flag


def _init_local_worker(stop_flag) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the sweep
    global _stop
    _stop = stop_flag


def _dataset(data_dir):
    from .data import load_dataset

    key = str(data_dir or "")
    with _datasets_lock:
        if key not in _datasets:
            _datasets.clear()
            folder = data_dir if data_dir and os.path.isdir(data_dir) else None  # a remote worker: its own
            _datasets[key] = load_dataset(folder, download=False)
        return _datasets[key]


def run_one(index: int, config: dict, data_dir=None, options: dict | None = None) -> SweepResult:
    """Train one config to its end (in a worker) and return its :class:`SweepResult`; never raises."""
    from .threads import limit_blas_threads
    from .train import Trainer

    limit_blas_threads(1)
    cfg = TrainConfig.from_dict(config)
    res = SweepResult(index, cfg, "failed")
    try:
        ds = _dataset(data_dir)
        res.dataset = str(ds.source)
        trainer = Trainer(cfg, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, classes=tuple(ds.classes),
                          **(options or {}))
        res.solver = trainer.solver_name
        events = trainer.run()
        for _ in events:
            if _stop is not None and _stop.value:
                break
        events.close()
        res.status, res.message = trainer.status, trainer.message
        if res.status in ("ready", "running"):
            res.status, res.message = "stopped", "stopped before the first iteration"
        res.history, res.accuracy_history = list(trainer.history), list(trainer.accuracy_history)
        res.iterations_done, res.elapsed = trainer.iterations_done, trainer.elapsed
        if res.status != "diverged" and trainer.iterations_done > 0:
            res.model = trainer.model()
            res.train_accuracy, res.test_accuracy = res.model.train_accuracy, res.model.test_accuracy
    except CatdnnError as exc:
        res.message = str(exc)
    except MemoryError:
        res.message = "the training ran out of memory: use smaller hidden layers"
    except Exception as exc:  # one line in the sweep's output; the other runs go on
        res.message = f"the training failed: {type(exc).__name__}: {exc}"
    return res


# --------------------------------------------------------------------------- the parent side
def local_executor(workers: int | None = None):
    """A process pool for one sweep, one worker per core by default; returns ``(executor, stop_flag)``."""
    from .workers import _Context  # the dashboard pool's start method and __main__ handling, reused

    ctx = _Context()
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["catdnn.sweep", "catdnn.train", "catdnn.data"])
    stop = ctx.RawValue("b", 0)
    n = int(workers or os.cpu_count() or 1)
    return cf.ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_local_worker, initargs=(stop,)), stop


def sweep(configs: Iterable[TrainConfig], executor: cf.Executor | None = None, *, data_dir=None, history=None,
          source: str = "sweep", label: str = "", idle: Callable[[int, int], None] | None = None,
          workers: int | None = None, **trainer_options) -> Iterator[SweepResult]:
    """Train every config and yield each :class:`SweepResult` as it finishes.

    Parameters
    ----------
    configs : iterable of TrainConfig
        Each is validated first: an impossible one raises :class:`ConfigError` before any run starts.
    executor : concurrent.futures.Executor, optional
        Where the runs go (e.g. :func:`dask_executor`'s); default a local process pool of ``workers``
        processes (one per core), shut down at the end.
    data_dir : path, optional
        The dataset's folder (default: each worker's own, as :func:`catdnn.data.load_dataset` finds it).
    history : catdnn.history.History, optional
        Keep every run there as it arrives (``source`` and ``label`` go with it); sets ``run_id``.
    idle : callable(done, total), optional
        Called about every :data:`IDLE_SECONDS` while waiting, and after each result (a page redraws
        its progress bar there; an exception raised there stops the sweep).
    trainer_options
        Passed to :class:`~catdnn.train.Trainer` (``cost_every``, ``accuracy_every``, ``solver``).

    Leaving the loop early (``break``, Ctrl-C, an exception) stops the sweep: the runs not started
    are cancelled and, on the local pool, the running ones stop after their current iteration.
    """
    configs = [c.validate() for c in configs]
    if len(configs) > MAX_RUNS:
        raise ConfigError(f"a sweep holds at most {MAX_RUNS} runs, not {len(configs)}: narrow the grid")
    stop = None
    own = executor is None
    if own:
        executor, stop = local_executor(workers)
    total, done = len(configs), 0
    pending: set = set()
    index_of: dict = {}
    try:
        for i, c in enumerate(configs):
            f = executor.submit(run_one, i, c.to_dict(), None if data_dir is None else str(data_dir),
                                dict(trainer_options))
            index_of[f] = i
            pending.add(f)
        if idle is not None:
            idle(0, total)
        while pending:
            finished, pending = cf.wait(pending, timeout=IDLE_SECONDS, return_when=cf.FIRST_COMPLETED)
            for f in finished:
                res = _result(f, index_of[f], configs[index_of[f]])
                if history is not None:
                    res.run_id = _keep(history, res, source, label)
                done += 1
                yield res
                if idle is not None:
                    idle(done, total)
            if not finished and idle is not None:
                idle(done, total)
    finally:
        if pending:  # left early: cancel what has not started, stop what runs
            if stop is not None:
                stop.value = 1
            for f in pending:
                f.cancel()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)


def _result(future: cf.Future, index: int, config: TrainConfig) -> SweepResult:
    try:
        return future.result()
    except Exception as exc:  # the executor itself failed (a worker died, the cluster went away)
        return SweepResult(index, config, "failed", f"the run was lost: {type(exc).__name__}: {exc}")


def _keep(history, res: SweepResult, source: str, label: str) -> int | None:
    if res.status not in ("finished", "stopped", "diverged"):
        return None
    return history.add(
        res.config, status=res.status, message=res.message, history=res.history,
        accuracy_history=res.accuracy_history, iterations_done=res.iterations_done,
        train_accuracy=res.train_accuracy, test_accuracy=res.test_accuracy, elapsed=res.elapsed,
        solver=res.solver, source=source, dataset=res.dataset, sweep=label, model=res.model)


def curve_options(config: TrainConfig) -> dict:
    """The Trainer options a sweep's runs use: the cost sampled about 500 times per run."""
    return {"cost_every": max(1, int(config.iterations) // 500)}


# --------------------------------------------------------------------------- Dask
def check_scheduler(address: str, allowed: Iterable[str] | None = None) -> str:
    """``address`` as ``tcp://host:port`` if it is well formed and, when ``allowed`` is given, either on
    this machine (loopback) or in ``allowed``; else :class:`ConfigError` saying why."""
    text = str(address or "").strip()
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"{address!r} is not a Dask scheduler address such as tcp://127.0.0.1:8786")
    text = f"{parts.scheme}://{parts.netloc}"
    if allowed is not None:
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        listed = {a.strip().rstrip("/") for a in allowed if a.strip()}
        if not local and text not in listed and parts.netloc not in listed:
            raise ConfigError(
                f"the dashboard connects only to schedulers on this machine, or those listed in "
                f"{SCHEDULERS_ENV_VAR} (a scheduler's results are unpickled here, so it must be trusted): start "
                f"the app with {SCHEDULERS_ENV_VAR}={text} to allow this one")
    return text


def allowed_schedulers() -> list[str]:
    """The addresses in ``$CATDNN_SCHEDULERS``."""
    return [a.strip() for a in os.environ.get(SCHEDULERS_ENV_VAR, "").split(",") if a.strip()]


def dask_client(address: str, timeout: float = 10.0):
    """A ``distributed.Client`` connected to the scheduler at ``address`` (close it when done).

    Raises :class:`CatdnnError` when ``distributed`` is not installed or the scheduler does not answer.
    """
    address = check_scheduler(address)
    try:
        from distributed import Client
    except ImportError:
        raise CatdnnError("running on a Dask cluster needs the `distributed` package: "
                          "pip install -r requirements-dist.txt") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise CatdnnError(f"no Dask scheduler answered at {address} within {timeout:g} s ({exc})") from None


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

