"""Training in worker processes: one pool per server process, shared by every session.

Why: the Gram solver spends its time in many small NumPy calls that hold the GIL, so trainings run
as threads of one server process take turns on one core (measured: four users pressing Train at
once waited 6–7 s each for runs of under 1 s alone). Each run here is a job on a pool of worker
processes, one per core, each with one BLAS thread; a session's page only draws what its job
reports. The dashboard's sweeps, seed spreads and lessons run on the same pool
(:func:`catdnn.sweep.sweep`), so the server never trains more runs at once than it has workers.

How a job talks to its page:

* The pool hands a job to an idle worker; a job waits in the pool's queue while every worker is
  busy, at most :data:`QUEUE_SECONDS` (not counting the time the pool is paused): then it ends
  ``failed`` with a message saying the server was busy.
* Fair share: each job has an ``owner`` (a student's or visitor's :attr:`~catdnn.classroom.Identity.owner`;
  ``""`` for the machine's user, the CLI and local mode). Queued jobs are served round-robin across
  owners: the next job to start is the first queued job of the owner served least recently (owners
  never served first, in the order their first job was queued); one owner's jobs keep their order,
  so with a single owner (local mode) the queue is first come, first served, as before. A job
  submitted with ``limits`` (a :class:`~catdnn.classroom.Limits`: class and public mode) does not
  start while another job of its owner is running, and :meth:`TrainingPool.submit` refuses it
  (:class:`TrainingRefused`) beyond ``limits.runs_at_once`` queued or running, above
  ``limits.max_iterations``, a convolutional net when ``limits.cnn_allowed`` is false, or above
  ``limits.max_work`` multiply-adds (:func:`run_work`'s estimate). Its worker stops it after
  ``limits.max_seconds`` of training, as a Stop would (its model is kept), with a message naming the time limit.
* :meth:`TrainingPool.pause` holds every training: no job starts, and a running one waits after
  its current iteration (its worker reports ``held``) until :meth:`TrainingPool.resume`.
  :meth:`TrainingPool.jobs` lists the queued and running jobs (:class:`JobInfo`) for the teacher view.
* The worker sends ``start`` (its pid and the solver), then ``progress`` at most every
  :data:`SEND_SECONDS` (the latest :class:`~catdnn.train.Progress` and the cost and accuracy
  points added since the last message), then ``done`` with an :class:`Outcome` (the model of a
  finished or stopped run, never a diverged one's), or ``error`` with a message.
* Each worker has a pipe of its own to the server, in both directions: nothing is shared between
  workers but the cancel flags, so a worker that dies at any moment (killed, out of memory; idle,
  training, or half-way through sending a model) cannot leave a lock held or a half-written
  message in another worker's way. A thread of the server reads every worker's pipe and applies each
  message to its :class:`Job`, whose :meth:`Job.updates` the page iterates.
* :meth:`Job.cancel` raises the job's flag in shared memory, which the worker reads after every
  iteration: it stops there and sends the partial model. A job still queued ends at once.
* A worker that dies is noticed from its process at once: its job (if it had one) ends with
  status ``crashed`` and a clear message, the pool starts a new worker and the other jobs go on.
  A job whose worker died before sending its ``start`` (killed while idle, just as the job was
  handed to it) was never that worker's run: it goes back to the front of the queue, for the new
  worker, at most :data:`RETRIES` times.
* A done callback (:meth:`Job.add_done_callback`) that raises is logged and skipped: the job, its
  other callbacks and the pool go on.

The pool uses the ``forkserver`` start method where there is one (never a bare ``fork`` of a
threaded server), else ``spawn``. Everything here is pure Python and NumPy: no Streamlit.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.util  # registers its exit handler first: ours (below) must run before it
import os
import signal
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import TrainConfig
from .data import EXPECTED
from .errors import CatdnnError, DataError
from .train import Progress

if TYPE_CHECKING:
    from .classroom import Limits

#: A worker reports progress at most this often (seconds); the page redraws less often still.
SEND_SECONDS = 0.05
#: Jobs queued or running at once across the server, at most (one cancel flag each).
MAX_JOBS = 256
#: A job that has waited this long for a free worker ends with a message instead (seconds).
QUEUE_SECONDS = 600.0
#: A job whose worker dies before the run began goes back to the queue at most this many times.
RETRIES = 3
#: A worker held by a paused pool looks at the pause flag this often (seconds).
HOLD_SECONDS = 0.05
#: On a Dask cluster a job sends its progress at most this often, and reads its pause and cancel flags
#: (each a round trip to the scheduler) at most this often (seconds).
DASK_SEND_SECONDS = 0.25
CONTROL_SECONDS = 0.25
#: The environment variable naming the Dask scheduler the server's trainings run on (``serve --scheduler``).
SCHEDULER_ENV = "CATDNN_SCHEDULER"
#: In the message of a run its worker stopped at its owner's time limit (``Limits.max_seconds``).
TIME_LIMIT_NOTE = "the run reached the time limit"
#: The course's training images: the run's work is estimated on them (:func:`run_work`).
TRAIN_IMAGES = EXPECTED["train"]
#: A round trip to the Dask scheduler from the server's side (pause, cancel, clean-up) waits at most this long
#: (seconds): past it, the scheduler is taken as gone.
DASK_ROUND_SECONDS = 5.0
#: Owners the round-robin remembers the last service of (the longest-forgotten are dropped beyond it).
MAX_OWNERS = 4096

_log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """How a job ended.

    status : "finished" | "stopped" | "diverged" | "crashed" | "failed"
    model : Model or None
        The finished or stopped run's model (None after a divergence, a crash or a failure, or a
        stop before the first iteration).
    warnings : list of str
        :func:`catdnn.diagnose.diagnose`'s messages about the run.
    dataset : str
        The folder of the dataset the run was trained on.
    """

    status: str
    message: str
    history: list = field(default_factory=list)  # [(iteration, cost)]
    accuracy_history: list = field(default_factory=list)  # [(iteration, train_acc, test_acc)]
    iterations_done: int = 0
    elapsed: float = 0.0
    model: object = None
    warnings: list = field(default_factory=list)
    solver_name: str = ""
    dataset: str = ""


class TrainingRefused(CatdnnError):
    """A training is refused at submission: its owner's limits (runs at once, iterations, CNNs) forbid it."""


@dataclass(frozen=True)
class JobInfo:
    """A queued or running job, as the teacher view lists it (:meth:`TrainingPool.jobs`).

    state : "queued" (waiting for a worker), "running", or "paused" (running, held by :meth:`TrainingPool.pause`)
    waited : seconds from submission to the start (so far, while queued); trained : seconds of training so far.
    """

    id: int
    owner: str
    state: str
    iterations_done: int
    iterations: int
    label: str
    waited: float
    trained: float


def failure_message(exc: BaseException) -> str:
    """One line about a training that raised ``exc`` (a worker goes on after it); a dataset that cannot be read is
    named by its display name, never by its folder on the server (:func:`~catdnn.data.unreadable_message`)."""
    if isinstance(exc, DataError) and exc.folder is not None:
        from .data import unreadable_message

        return unreadable_message(exc)
    if isinstance(exc, CatdnnError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "the training ran out of memory: use smaller hidden layers"
    return f"the training failed: {type(exc).__name__}: {exc}"


def train_one(config: TrainConfig, ds, options: dict | None = None, *, should_stop: Callable[[], bool] | None = None,
              on_start: Callable | None = None, on_progress: Callable | None = None) -> Outcome:
    """Train ``config`` on the dataset ``ds`` to its end, or until ``should_stop()`` is true after an
    iteration; return its :class:`Outcome`. Raises what the Trainer raises (see :func:`failure_message`).

    ``options`` go to :class:`~catdnn.train.Trainer`, except ``fold``: ``{"k": k, "seed": s, "index": j}``
    trains on fold ``j`` of the training images instead, its validation part as the "test" split
    (:func:`catdnn.validation.fold_dataset`; the test images are never read). ``on_start(trainer)`` is
    called once the solver is chosen, ``on_progress(trainer, progress)`` after every iteration. The worker
    pool's jobs and the sweeps' runs on a Dask cluster both train through here.
    """
    from .diagnose import diagnose
    from .train import Trainer

    options = dict(options or {})
    fold = options.pop("fold", None)
    if fold is not None:
        from .validation import fold_dataset

        ds = fold_dataset(ds, fold["k"], fold["seed"], fold["index"])
    trainer = Trainer(config, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, classes=tuple(ds.classes),
                      dataset=ds.name, **options)
    if on_start is not None:
        on_start(trainer)
    events = trainer.run()
    for p in events:
        if should_stop is not None and should_stop():
            break
        if on_progress is not None:
            on_progress(trainer, p)
    events.close()  # marks the trainer "stopped" if the loop was left early
    model = None
    if trainer.status != "diverged" and trainer.iterations_done > 0:
        model = trainer.model()
    weights = {"params": model.params, "bn": model.bn, "X": ds.train.X} if model is not None else {}
    warnings = diagnose(trainer.history, ds.train.Y, trainer.config.learning_rate, **weights)
    status, message = trainer.status, trainer.message
    if status in ("ready", "running"):
        status, message = "stopped", "stopped before the first iteration"
    return Outcome(status, message, list(trainer.history), list(trainer.accuracy_history), trainer.iterations_done,
                   trainer.elapsed, model, warnings, trainer.solver_name, str(ds.source))


# --------------------------------------------------------------------------- the worker side
_datasets: dict = {}  # in each worker process (a pool's, a Dask worker's): the dataset last used
_datasets_lock = threading.Lock()


def cached_dataset(data_dir, *, remote: bool = False):
    """The dataset in folder ``data_dir`` (None: the default folder), kept for the process's next run (one
    dataset is enough: a server uses one folder). ``remote``: on a Dask worker, a folder this machine does
    not have means its own default folder (``$CATDNN_DATA_DIR``)."""
    from .data import load_dataset

    key = str(data_dir or "")
    with _datasets_lock:
        if key not in _datasets:
            _datasets.clear()
            folder = data_dir or None
            if remote and folder and not os.path.isdir(folder):
                folder = None
            _datasets[key] = load_dataset(folder, download=False)
        return _datasets[key]


def _worker_main(conn, cancel, pause) -> None:
    """A worker process: take a job from ``conn``, train it, report on ``conn``; until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    from .threads import limit_blas_threads

    limit_blas_threads(1)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the server has gone
            return
        if task is None:
            return
        job_id, slot, config, data_dir, options = task
        kind, payload = _train_job(conn.send, job_id, config, data_dir,
                                   options, stopped=lambda slot=slot: bool(cancel[slot]),
                                   paused=lambda: bool(pause.value))
        conn.send((job_id, kind, payload))


def _train_job(send, job_id: int, config: dict, data_dir: str | None, options: dict, *,
               stopped: Callable[[], bool], paused: Callable[[], bool], remote: bool = False,
               every: float = SEND_SECONDS) -> tuple:
    """Run one training here, reporting through ``send`` at most every ``every`` seconds (see the module doc);
    return how it ended: ``("done", Outcome)`` or ``("error", message)``. ``stopped()`` and ``paused()`` say
    whether the job was cancelled and whether its pool is paused; both are read after every iteration. The
    time a run is held by a pause is not counted as its training time (its progress, outcome and model)."""
    pid = os.getpid()
    send((job_id, "start", (pid, "")))
    sent = {"h": 0, "a": 0, "last": time.monotonic(), "held": 0.0, "trained": 0.0}
    options = dict(options)
    budget = options.pop("max_seconds", None)  # the owner's time limit per run (Limits.max_seconds)

    def over() -> bool:  # the run's training time (as its progress reports it) has reached the time limit
        return budget is not None and sent["trained"] >= budget

    def held() -> bool:
        return paused() and not stopped()

    def progress(trainer, p) -> None:
        sent["trained"] = p.elapsed - sent["held"]
        now = time.monotonic()
        hold = held()
        if hold or now - sent["last"] >= every or p.iterations_done == p.iterations:
            sent["last"] = now
            p = p._replace(elapsed=p.elapsed - sent["held"])  # Progress is a NamedTuple
            send((job_id, "progress", (p, trainer.history[sent["h"]:], trainer.accuracy_history[sent["a"]:])))
            sent["h"], sent["a"] = len(trainer.history), len(trainer.accuracy_history)
        if hold:  # the pool is paused: wait here, between two iterations, until it resumes (or a Stop)
            send((job_id, "held", True))
            since = time.perf_counter()
            while held():
                time.sleep(HOLD_SECONDS)
            sent["held"] += time.perf_counter() - since
            send((job_id, "held", False))

    try:
        outcome = train_one(TrainConfig.from_dict(config), cached_dataset(data_dir, remote=remote), options,
                            should_stop=lambda: stopped() or over(),
                            on_start=lambda trainer: send((job_id, "start", (pid, trainer.solver_name))),
                            on_progress=progress)
    except Exception as exc:  # reported to the page in one line; the worker lives on
        return "error", failure_message(exc)
    if sent["held"]:
        outcome.elapsed -= sent["held"]
        if outcome.model is not None:
            outcome.model.train_seconds -= sent["held"]
    if outcome.status == "stopped" and not stopped() and over():
        outcome.message = (f"stopped after {outcome.iterations_done:,} iterations: {TIME_LIMIT_NOTE} "
                           f"of {budget:,.0f} s per run set here (by the teacher in a class, by the server for "
                           "visitors); the model so far is kept")
    return "done", outcome


# --------------------------------------------------------------------------- on a Dask worker
def _polled(read: Callable[[], bool], every: float) -> Callable[[], bool]:
    """``read()``, asked at most every ``every`` seconds (each read is a round trip to the Dask scheduler)."""
    last = {"at": -float("inf"), "value": False}

    def get() -> bool:
        now = time.monotonic()
        if now - last["at"] >= every:
            last["at"], last["value"] = now, bool(read())
        return last["value"]

    return get


def _to_wire(message: tuple) -> list:
    """A job's message as plain lists and dicts (a Dask event travels as msgpack)."""
    job_id, kind, payload = message
    if kind == "progress":
        p, history, accuracy = payload
        payload = [p._asdict(), [list(h) for h in history], [list(a) for a in accuracy]]
    return [job_id, kind, payload]


def _from_wire(kind: str, payload):
    if kind == "progress":
        p, history, accuracy = payload
        return Progress(**p), [tuple(h) for h in history], [tuple(a) for a in accuracy]
    return payload


def _dask_job(task: tuple, name: str) -> tuple:
    """A pool's job on a Dask worker: train it, send its messages as events of topic ``name`` (at most every
    :data:`DASK_SEND_SECONDS`), read its pool's pause and its own cancel (distributed Events) at most every
    :data:`CONTROL_SECONDS`; return how it ended (as :func:`_train_job`)."""
    from distributed import Event, get_worker

    from .threads import limit_blas_threads

    limit_blas_threads(1)
    worker = get_worker()
    job_id, _slot, config, data_dir, options = task
    pause, cancel = Event(f"{name}-pause"), Event(f"{name}-cancel-{job_id}")
    return _train_job(lambda message: worker.log_event(name, _to_wire(message)), job_id, config, data_dir, options,
                      stopped=_polled(cancel.is_set, CONTROL_SECONDS), paused=_polled(pause.is_set, CONTROL_SECONDS),
                      remote=True, every=DASK_SEND_SECONDS)


# --------------------------------------------------------------------------- the server side
_main_lock = threading.Lock()
#: forkserver where there is one (never a bare fork of a threaded server), else spawn
_BASE = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


class _Process(_BASE.Process):
    """A worker process that starts without the parent's ``__main__``.

    A new process (forkserver or spawn) first re-runs the parent's main script, as ``__mp_main__``,
    so that functions defined there can be unpickled. Under Streamlit the "main script" is the page
    being run (``streamlit`` sets ``sys.modules["__main__"]`` to it): every worker would run a page
    of the dashboard on start, and fail. The workers need nothing from ``__main__`` (they run
    :func:`_worker_main` from this module), so while a worker is being started ``__main__`` is an
    empty module: its start-up then imports only what its task names.
    """

    def start(self):
        with _main_lock:
            main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                super().start()
            finally:
                sys.modules["__main__"] = main


class _Context(type(_BASE)):
    Process = _Process


class Job:
    """One training on the pool, as its page sees it.

    Attributes kept up to date by :meth:`updates`: ``progress`` (the latest Progress or None),
    ``history`` and ``accuracy_history`` (the points so far), ``solver_name``, ``pid`` (the
    worker's, once started), ``held`` (the worker waits for a paused pool to resume), ``outcome``
    (an :class:`Outcome` once the job has ended). ``owner`` and ``limits`` are as submitted.
    """

    def __init__(self, pool: TrainingPool, job_id: int, slot: int, config: TrainConfig, task: tuple,
                 owner: str = "", limits: Limits | None = None):
        self._pool, self.id, self._slot, self.config, self._task = pool, job_id, slot, config, task
        self.owner, self.limits = owner, limits
        self._news = threading.Event()  # set by the pool's thread at each message
        self.progress: Progress | None = None
        self.history: list = []
        self.accuracy_history: list = []
        self.solver_name = ""
        self.pid: int | None = None
        self.outcome: Outcome | None = None
        self._ending = threading.Lock()
        self._callbacks: list = []
        self._handed_on = threading.Event()  # set once the done callbacks have run and the place is given back
        self.held = False
        self._submitted = self._queued_at = time.monotonic()  # _queued_at: the queue's clock (pauses not counted)
        self.started_at: float | None = None  # time.monotonic() when handed to a worker
        self._retries = 0  # times put back in the queue because its worker died before the run began
        self._turn = 0  # its owner's last service before this job started (put back if the job goes back)

    @property
    def started(self) -> bool:
        return self.pid is not None

    @property
    def pool_size(self) -> int:
        """How many runs the pool trains at once."""
        return self._pool.processes

    @property
    def paused(self) -> bool:
        """Whether the pool is paused (this job does not start, or waits between two iterations)."""
        return self._pool.paused

    @property
    def behind_own(self) -> bool:
        """Whether this job waits because another run of its owner is training (one at a time under limits)."""
        return self.started_at is None and self.limits is not None and self._pool._training(self.owner)

    def info(self, now: float | None = None) -> JobInfo:
        """This job as the teacher view lists it."""
        from .labels import config_label

        now = time.monotonic() if now is None else now
        p = self.progress
        if self.started_at is None:
            state = "queued"
        else:
            state = "paused" if self.held or self._pool.paused else "running"
        return JobInfo(self.id, self.owner, state, p.iterations_done if p else 0, int(self.config.iterations),
                       config_label(self.config), (self.started_at or now) - self._submitted,
                       p.elapsed if p else 0.0)

    def _take(self, kind: str, payload) -> None:
        if kind == "start":
            self.pid, self.solver_name = payload[0], payload[1] or self.solver_name
        elif kind == "held":
            self.held = bool(payload)
        elif kind == "progress":
            self.history.extend(payload[1])
            self.accuracy_history.extend(payload[2])
            self.progress = payload[0]
        self._news.set()

    def _end(self, outcome: Outcome) -> None:
        with self._ending:  # the page's thread and the pool's thread may both end a job
            if self.outcome is not None:
                return
            self.outcome = outcome
            callbacks, self._callbacks = self._callbacks, []
        try:
            for fn in callbacks:  # before the place is given back: a job counted as ended has been handed on
                _call_back(fn, self)
            self._pool._release(self)
        finally:
            self._handed_on.set()
            self._news.set()  # a page still reading sees the outcome at once

    def add_done_callback(self, fn: Callable[[Job], None]) -> None:
        """Call ``fn(job)`` once the job has ended (at once if it has); it runs in the pool's thread.
        An exception it raises is logged (logger ``catdnn.workers``) and goes no further."""
        with self._ending:
            if self.outcome is None:
                self._callbacks.append(fn)
                return
        _call_back(fn, self)

    def updates(self, timeout: float = 0.2):
        """Yield after each message from the worker, and at least every ``timeout`` seconds, until
        the job has ended (then :attr:`outcome` is set). Stopping the iteration does not stop the job:
        call :meth:`cancel` for that."""
        while self.outcome is None:
            self._news.wait(timeout)
            self._news.clear()  # what arrives from now on wakes the next wait; what came is in the attributes
            yield self

    def cancel(self) -> None:
        """Ask the worker to stop after its current iteration (it then sends the partial model); a job
        still waiting for a worker ends at once, ``stopped``."""
        self._pool._cancel_job(self)

    def wait(self, timeout: float | None = None) -> Outcome | None:
        """Follow the job until it ends or ``timeout`` seconds pass; return the outcome (None if not ended)."""
        end = None if timeout is None else time.monotonic() + timeout
        for _ in self.updates(timeout=0.05):
            if end is not None and time.monotonic() >= end:
                break
        if self.outcome is not None:  # its callbacks may still be running on the pool's thread: let them end
            self._handed_on.wait(None if end is None else max(0.0, end - time.monotonic()))
        return self.outcome


class _Worker:
    """The server's end of one worker process: its process, its pipe, the job it trains (or None)."""

    def __init__(self, process, conn):
        self.process, self.conn, self.job = process, conn, None

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, task: tuple) -> None:
        self.conn.send(task)


class _DaskSlot:
    """One thread of a Dask cluster, as the pool counts them: the job it trains there (or None)."""

    process = conn = None

    def __init__(self, dask: _Dask):
        self.dask, self.job = dask, None

    def alive(self) -> bool:
        return True

    def send(self, task: tuple) -> None:
        self.dask.submit(self, task)


class TrainingPool:
    """A pool of worker processes that run trainings (see the module docstring).

    Parameters
    ----------
    processes : int, optional
        Worker processes; default one per core. On a Dask cluster: trainings at once, default the
        cluster's threads when the pool starts.
    queue_seconds : float, optional
        How long a job may wait for a free worker before it ends ``failed`` (default :data:`QUEUE_SECONDS`).
    scheduler : str, optional
        A Dask scheduler's address (``tcp://host:8786``): the trainings run on that cluster instead of
        worker processes of this machine (:class:`_Dask`); Dask schedules them, the pool only decides
        which job goes next and how many at once. Raises :class:`CatdnnError` when no scheduler answers.
    """

    def __init__(self, processes: int | None = None, queue_seconds: float = QUEUE_SECONDS, *,
                 scheduler: str | None = None):
        self._ctx = _Context()
        if self._ctx.get_start_method() == "forkserver":
            self._ctx.set_forkserver_preload(["catdnn.workers", "catdnn.train", "catdnn.data"])
        self._dask = _Dask(self, scheduler) if scheduler else None
        self.processes = int(processes or (self._dask.threads if self._dask else os.cpu_count()) or 1)
        self.queue_seconds = float(queue_seconds)
        self._cancel = self._ctx.RawArray("b", MAX_JOBS)
        self._pause = self._ctx.RawValue("b", 0)  # read by every worker after each iteration
        self._paused_since: float | None = None
        self._served: dict[str, int] = {}  # owner -> when last served (a count), for the round-robin
        self._serves = itertools.count(1)
        self._lock = threading.RLock()
        self._free = list(range(MAX_JOBS))
        self._jobs: dict[int, Job] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._ids = itertools.count(1)
        self._workers: list[_Worker] = []
        self._closed = False
        _POOLS.add(self)
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        for _ in range(self.processes):
            if self._dask is not None:
                self._workers.append(_DaskSlot(self._dask))
            else:
                self._start_worker()
        self._thread = threading.Thread(target=self._serve, name="catdnn-training-pool", daemon=True)
        self._thread.start()

    # ---- the public side
    def submit(self, config: TrainConfig, data_dir, *, owner: str = "", limits: Limits | None = None,
               **options) -> Job:
        """Queue a training of ``config`` on the dataset in folder ``data_dir`` (None: the default folder).

        ``owner`` names whose training it is (the round-robin's unit; ``""``: the machine's user). With
        ``limits`` (class and public mode) the job never runs beside another of its owner's, and is
        refused with :class:`TrainingRefused` when it breaks them (see the module docstring).
        ``options`` go to :class:`~catdnn.train.Trainer` (``cost_every``, ``accuracy_every``,
        ``solver``). The config is validated here, so an impossible one fails at once.
        """
        config.validate()
        owner = str(owner or "")
        if limits is not None:
            check_limits(config, limits)
        with self._lock:
            if self._closed:
                raise CatdnnError("the training pool has been shut down")
            if self._dask is not None and self._dask.lost is not None:
                raise CatdnnError(f"{self._dask.lost}: ask the server's operator to restart it, then press Train "
                                  "again")
            if limits is not None:
                mine = sum(1 for j in self._jobs.values() if j.owner == owner and j.outcome is None)
                if mine >= limits.runs_at_once:
                    raise TrainingRefused(
                        f"you already have {_runs(mine)} queued or training, the most allowed here at once "
                        f"({limits.runs_at_once}): wait for {'it' if mine == 1 else 'one'} to end, or stop it")
            if not self._free:
                raise CatdnnError(f"{MAX_JOBS} trainings are already queued or running on this server: "
                                  "try again in a moment")
            slot = self._free.pop()
            self._cancel[slot] = 0
            job_id = next(self._ids)
            if limits is not None and limits.max_seconds is not None:
                options["max_seconds"] = float(limits.max_seconds)
            job = Job(self, job_id, slot, config, (job_id, slot, config.to_dict(),
                                                   None if data_dir is None else str(data_dir), dict(options)),
                      owner, limits)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._schedule()
        self._wake()  # the pool's thread times the queue
        return job

    def pause(self) -> None:
        """Hold every training: no queued job starts, and each running one waits after its current
        iteration, until :meth:`resume`. A queued job's wait does not count towards its time limit while paused."""
        with self._lock:
            if self._paused_since is None:
                self._paused_since = time.monotonic()
                self._pause.value = 1
                if self._dask is not None:
                    self._dask.pause(True)
        self._wake()

    def resume(self) -> None:
        """Let the trainings go on after :meth:`pause`: held runs continue, queued jobs start in turn."""
        with self._lock:
            if self._paused_since is None:
                return
            held = time.monotonic() - self._paused_since
            for job in self._queue:  # the pause does not count towards the queue's time limit
                job._queued_at += held
            self._paused_since = None
            self._pause.value = 0
            if self._dask is not None:
                self._dask.pause(False)
            self._schedule()
        self._wake()

    @property
    def paused(self) -> bool:
        """Whether :meth:`pause` holds the trainings."""
        return self._paused_since is not None

    def jobs(self) -> list[JobInfo]:
        """The jobs queued or running, running ones first, then the queue in submission order."""
        now = time.monotonic()
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: (j.started_at is None, j.id))
        return [j.info(now) for j in jobs]

    @property
    def running(self) -> int:
        """Jobs queued or running."""
        return len(self._jobs)

    @property
    def queued(self) -> int:
        """Jobs waiting for a free worker."""
        return len(self._queue)

    @property
    def pids(self) -> list[int]:
        """The worker processes' pids (a dead worker's until the pool has replaced it); none on a Dask cluster."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.process is not None]

    @property
    def where(self) -> str:
        """Where the trainings run, for a page: "this server's N worker processes" or "the Dask cluster at …"."""
        if self._dask is not None:
            return f"the Dask cluster at {self._dask.address}"
        return f"this server's {self.processes} worker processes"

    def close(self) -> None:
        """Stop the workers; jobs still queued or running end ``failed``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            left = list(self._jobs.values())
            self._queue.clear()
        for w in workers:
            if w.process is not None:
                w.process.terminate()
        self._wake()
        self._thread.join()  # before closing the pipes it may be waiting on
        with self._lock:
            workers, self._workers = self._workers, []  # those the thread did not bury on their way out
        for w in workers:
            if w.process is not None:
                _close(w)
        if self._dask is not None:
            for job in left:  # a run on the cluster cannot be killed from here: it stops after its iteration
                if job.started_at is not None:
                    self._dask.cancel(job)
            self._dask.close()
        for job in left:
            job._end(_lost(job, "failed", "the training pool was shut down before this run ended"))
        self._wake_r.close()
        self._wake_w.close()

    # ---- the pool's thread
    def _start_worker(self) -> None:
        here, there = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(there, self._cancel, self._pause), daemon=True,
                                    name="catdnn-training-worker")
        process.start()
        there.close()  # only the worker holds its end: its death closes the pipe
        self._workers.append(_Worker(process, here))

    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"")
        except OSError:  # closed: the pool is shutting down
            pass

    def _serve(self) -> None:
        """Read the workers' pipes, notice dead workers, start new ones, time out queued jobs; until the pool
        closes. An unexpected error in one round is logged, and the thread goes on: every page's run depends on it."""
        while True:
            try:
                if self._serve_once():
                    return
            except Exception:
                _log.exception("the training pool's thread met an unexpected error; it goes on")
                time.sleep(0.1)

    def _serve_once(self) -> bool:
        """One round of :meth:`_serve`: wait for news (or a deadline), act on it. True once the pool has closed."""
        with self._lock:
            if self._closed:
                return True
            by_conn = {w.conn: w for w in self._workers if w.conn is not None}
            by_sentinel = {w.process.sentinel: w for w in self._workers if w.process is not None}
            timeout = None
            if self._queue and not self.paused:
                first = min(job._queued_at for job in self._queue)
                timeout = max(0.0, first + self.queue_seconds - time.monotonic())
            if len(self._workers) < self.processes or self._dask is not None:
                # try again to start a worker; on a cluster, see that its scheduler is still there
                timeout = 1.0 if timeout is None else min(timeout, 1.0)
        ready = mp.connection.wait([self._wake_r, *by_conn, *by_sentinel], timeout)
        for r in ready:
            if r is self._wake_r:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            elif r in by_conn:
                self._read(by_conn[r])
            else:  # a worker's process ended: read what it sent before, then replace it
                w = by_sentinel[r]
                while w in self._workers and w.conn.poll():
                    self._read(w)
                self._bury(w)
        if self._dask is not None:
            for slot, job_id, kind, payload in self._dask.ended():
                self._apply(slot, job_id, kind, payload)
            self._dask.check()
            if self._dask.lost is not None:
                self._end_lost(self._dask.lost)
        with self._lock:
            if self._closed:
                return True
            self._expire()
            while len(self._workers) < self.processes:
                try:
                    self._start_worker()
                except OSError:  # no memory or processes left: try again in a moment
                    break
            self._schedule()
        return False

    def _end_lost(self, reason: str) -> None:
        """The Dask scheduler went away: end every job on the cluster ``crashed``, and every queued one ``failed``,
        with ``reason``."""
        with self._lock:
            running = [w.job for w in self._workers if w.job is not None]
            for w in self._workers:
                w.job = None
            queued = list(self._queue)
            self._queue.clear()
        for job in running:
            job._end(_cluster_lost(job, reason))
        for job in queued:
            job._end(_lost(job, "failed", f"{reason}. This run had not started: press Train to try again once the "
                                          "cluster is back"))

    def _read(self, w: _Worker) -> None:
        try:
            job_id, kind, payload = w.conn.recv()
        except (EOFError, OSError):  # the worker died, perhaps half-way through a message
            self._bury(w)
            return
        self._apply(w, job_id, kind, payload)

    def _apply(self, w: _Worker | _DaskSlot, job_id: int, kind: str, payload) -> None:
        """A message about job ``job_id`` from the worker (or Dask slot) ``w``."""
        job = w.job
        if job is None or job.id != job_id:
            return
        if kind in ("done", "error", "lost"):
            with self._lock:
                w.job = None  # idle again
            if kind == "error":
                job._end(Outcome("failed", payload, list(job.history), list(job.accuracy_history),
                                 job.progress.iterations_done if job.progress else 0))
            elif kind == "lost":  # on a Dask cluster: ``payload`` says why
                job._end(_cluster_lost(job, payload))
            else:
                job._end(payload)
        else:
            job._take(kind, payload)

    def _bury(self, w: _Worker) -> None:
        """A worker died: end its job as crashed; the pool's thread starts a new worker.

        A job the worker had not begun (no ``start`` from it; the server reads everything a dead worker
        sent before burying it) goes back to the front of the queue instead, at most :data:`RETRIES`
        times; a job cancelled meanwhile ends ``stopped``; at shut-down :meth:`close` ends it."""
        with self._lock:
            if w not in self._workers:
                return
            self._workers.remove(w)
            job, w.job = w.job, None
            begun = job is not None and job.started
            again = job is not None and not begun and not self._closed and not self._cancel[job._slot] \
                and job._retries < RETRIES
            if again:
                job._retries += 1
                job.started_at = None
                self._queue.appendleft(job)  # it keeps its place in line, and its owner's turn
                self._served[job.owner] = job._turn  # as if it had not been served
        _close(w)
        if job is None or again or (not begun and self._closed):
            return
        if begun:
            done = job.progress.iterations_done if job.progress else 0
            job._end(_lost(
                job, "crashed",
                f"the worker process training this run stopped unexpectedly after {done:,} iterations "
                "(killed, or out of memory); no model was kept. Other users' runs are not affected: "
                "press Train to try again, perhaps with smaller layers."))
        elif self._cancel[job._slot]:
            job._end(Outcome("stopped", "stopped before the first iteration"))
        else:
            job._end(_lost(
                job, "crashed",
                f"{job._retries + 1} worker processes in a row stopped unexpectedly (killed, or out of memory) "
                "as this run was handed to them, before the run began; it was not tried again. Other users' "
                "runs are not affected: press Train to try again."))

    def _training(self, owner: str) -> bool:
        """Whether a job of ``owner`` is training."""
        with self._lock:
            return any(w.job is not None and w.job.owner == owner for w in self._workers)

    def _next(self) -> Job | None:
        """The queued job whose turn it is (round-robin across owners, see the module docstring), or None.
        Called with the lock held."""
        busy = {w.job.owner for w in self._workers if w.job is not None}
        best, best_key, seen = None, None, set()
        for position, job in enumerate(self._queue):
            if job.owner in seen:
                continue  # an owner's own jobs keep their order: only the first can be next
            seen.add(job.owner)
            if job.limits is not None and job.owner in busy:
                continue  # one training at a time for an owner with limits
            key = (self._served.get(job.owner, 0), position)
            if best_key is None or key < best_key:
                best, best_key = job, key
        return best

    def _schedule(self) -> None:
        """Hand queued jobs to idle workers, in turn. Called with the lock held."""
        if self.paused:
            return
        idle = [w for w in self._workers if w.job is None and w.alive()]
        while idle:
            job = self._next()
            if job is None:
                break
            w = idle.pop()
            try:
                w.send(job._task)
            except OSError:  # that worker has just died: the job waits for the next one
                continue
            self._queue.remove(job)
            w.job, job.started_at = job, time.monotonic()
            job._turn, self._served[job.owner] = self._served.get(job.owner, 0), next(self._serves)
            if len(self._served) > MAX_OWNERS:  # forget the owners served longest ago
                for owner in sorted(self._served, key=self._served.get)[:MAX_OWNERS // 2]:
                    del self._served[owner]

    def _expire(self) -> None:
        """End the jobs that have waited :attr:`queue_seconds` for a worker (the pool not paused). Called with
        the lock held."""
        if self.paused:
            return
        now = time.monotonic()
        for job in [j for j in self._queue if now - j._queued_at >= self.queue_seconds]:
            self._queue.remove(job)
            job._end(_lost(
                job, "failed",
                f"no worker became free within {self.queue_seconds:g} s: the server's {self.processes} "
                "worker processes were all training other runs. Try again later, or stop a run."))

    def _cancel_job(self, job: Job) -> None:
        with self._lock:
            if job.outcome is not None:
                return
            if job in self._queue:
                self._queue.remove(job)
                job._end(Outcome("stopped", "stopped before the first iteration"))
            else:
                self._cancel[job._slot] = 1
                if self._dask is not None:
                    self._dask.cancel(job)

    def _release(self, job: Job) -> None:
        with self._lock:
            if self._jobs.pop(job.id, None) is not None:
                self._free.append(job._slot)


def run_work(config: TrainConfig, images: int = TRAIN_IMAGES) -> int:
    """Estimated multiply-adds of a whole run of ``config`` on ``images`` training images: per iteration, three
    times one forward pass (:meth:`~catdnn.arch.Arch.multiply_adds`: the forward pass and the backward pass's two
    products) on each image of a batch (all of them without mini-batches). An estimate for the limits, not a
    measure (``max_work``)."""
    batch = images if config.batch_size <= 0 else min(int(config.batch_size), images)
    return 3 * config.parsed_arch().multiply_adds() * batch * int(config.iterations)


def check_limits(config: TrainConfig, limits: Limits) -> None:
    """Raise :class:`TrainingRefused` when ``config`` breaks ``limits`` (iterations, CNNs allowed, work); what
    depends on the owner's other jobs (runs at once) is :meth:`TrainingPool.submit`'s to check, and the time
    limit the worker's (it stops the run there)."""
    if limits.max_iterations is not None and config.iterations > limits.max_iterations:
        raise TrainingRefused(f"this run asks for {config.iterations:,} iterations, more than the "
                              f"{limits.max_iterations:,} allowed here per run: lower the iterations")
    if config.is_cnn and not limits.cnn_allowed:
        raise TrainingRefused("convolutional networks are not allowed here (your teacher turned them off): "
                              "train a dense network instead")
    if limits.max_work is not None:
        work = run_work(config)
        if work > limits.max_work:
            raise TrainingRefused(
                f"this run is about {work:.1e} multiply-adds of training ({config.iterations:,} iterations of a "
                f"network of {config.parsed_arch().multiply_adds():,} multiply-adds per image), more than the "
                f"{limits.max_work:.1e} allowed here per run: use fewer iterations or smaller layers")


def _runs(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


class _Dask:
    """A pool's side of a Dask cluster (``TrainingPool(scheduler=...)``): its client, the topic of its jobs'
    events, the Events that pause and cancel them, and the futures that have ended.

    Dask runs each job handed to it (:func:`_dask_job`); its messages (start, progress, held) arrive as
    events of the pool's topic, read on the client's thread; its outcome is the future's result, collected by
    the pool's thread (:meth:`ended`). A job lost on the cluster (its worker died) ends ``crashed`` with the
    reason. Each round trip to the scheduler waits at most :data:`DASK_ROUND_SECONDS`; one that fails means the
    scheduler went away: :attr:`lost` then says so, and the pool ends every job it has on the cluster
    ``crashed`` with that reason and refuses new ones.
    """

    def __init__(self, pool: TrainingPool, address: str):
        from distributed import Event

        from .cluster import check_scheduler, dask_client

        self.address = check_scheduler(address)
        self.client = dask_client(self.address)
        self.name = f"catdnn-pool-{os.getpid()}-{id(pool):x}-{time.time_ns():x}"
        self._pool = weakref.ref(pool)
        self._ended: collections.deque = collections.deque()  # (slot, job id, future)
        self._pause = Event(f"{self.name}-pause", client=self.client)
        self.threads = sum(self.client.nthreads().values())
        self.client.subscribe_topic(self.name, self._event)
        self.lost: str | None = None  # why the pool can no longer use the cluster (None while it can)
        self._closing = False

    def _lose(self, exc: BaseException) -> None:
        if self.lost is None:
            self.lost = (f"the Dask cluster's scheduler at {self.address} went away ({type(exc).__name__}: {exc}); "
                         "the server's trainings cannot run until it is restarted")
            _log.error("%s", self.lost)
            pool = self._pool()
            if pool is not None:
                pool._wake()

    def _round(self, call: str, **kwargs):
        """One round trip to the scheduler (``client.scheduler.<call>``), at most :data:`DASK_ROUND_SECONDS`; None
        once the scheduler is lost (then or before)."""
        if self.lost is not None:
            return None
        try:
            return self.client.sync(getattr(self.client.scheduler, call), callback_timeout=DASK_ROUND_SECONDS,
                                    **kwargs)
        except Exception as exc:  # timed out, connection refused or closed, the client closed: all the same here
            self._lose(exc)
            return None

    def check(self) -> None:
        """Notice a client that has given up on its scheduler (it closes itself after failing to reconnect)."""
        if self.lost is None and not self._closing and self.client.status in ("closing", "closed", "failed"):
            self._lose(ConnectionError(f"the client is {self.client.status}"))

    def _event(self, event) -> None:
        pool = self._pool()
        if pool is None:
            return
        job_id, kind, payload = event[1]
        job = pool._jobs.get(job_id)
        if job is not None and job.outcome is None:
            job._take(kind, _from_wire(kind, payload))

    def submit(self, slot: _DaskSlot, task: tuple) -> None:
        job_id = task[0]
        if self.lost is not None:
            raise OSError(self.lost)
        try:
            future = self.client.submit(_dask_job, task, self.name, key=f"{self.name}-{job_id}", pure=False)
        except Exception as exc:
            self._lose(exc)
            raise OSError(self.lost) from exc

        def done(_future, slot=slot, job_id=job_id) -> None:
            self._ended.append((slot, job_id, future))
            pool = self._pool()
            if pool is not None:
                pool._wake()

        future.add_done_callback(done)

    def ended(self) -> list[tuple]:
        """``(slot, job id, kind, payload)`` of each job that has ended on the cluster since the last call."""
        out = []
        while self._ended:
            slot, job_id, future = self._ended.popleft()
            try:
                kind, payload = future.result()
            except Exception as exc:  # the cluster lost it: a worker died, the scheduler went away
                kind, payload = "lost", (f"the Dask cluster at {self.address} lost this run "
                                         f"({type(exc).__name__}: {exc})")
            self._round("event_clear", name=self._cancel_name(job_id))  # the scheduler forgets the cancel flag
            if kind == "lost" and self.lost is not None:  # ... or could not: it went away
                payload = self.lost
            out.append((slot, job_id, kind, payload))
        return out

    def _cancel_name(self, job_id: int) -> str:
        return f"{self.name}-cancel-{job_id}"  # a distributed Event's name, as _dask_job reads it

    def cancel(self, job: Job) -> None:
        self._round("event_set", name=self._cancel_name(job.id))

    def pause(self, on: bool) -> None:
        self._round("event_set" if on else "event_clear", name=self._pause.name)

    def close(self) -> None:
        self._round("event_clear", name=self._pause.name)
        self._closing = True
        try:
            if self.lost is None:
                self.client.unsubscribe_topic(self.name)
        except Exception:  # the scheduler went away meanwhile: nothing to unsubscribe from
            pass
        finally:
            self.client.close(timeout=DASK_ROUND_SECONDS)


def _call_back(fn: Callable[[Job], None], job: Job) -> None:
    """Call a done callback; one that raises must not stop the pool's thread, which reads every worker."""
    try:
        fn(job)
    except Exception:
        _log.exception("a done callback of training job %d raised; the job and the pool go on", job.id)


def _close(w: _Worker) -> None:
    """Reap a worker's ended (or ending) process and close its pipe and process handles."""
    w.process.join(timeout=5)
    w.conn.close()
    try:
        w.process.close()
    except ValueError:  # still running after 5 s: its handles go with the object
        pass


def _lost(job: Job, status: str, message: str) -> Outcome:
    """The outcome of a job that ended without its worker's word: what the page had heard, no model."""
    done = job.progress.iterations_done if job.progress else 0
    return Outcome(status, message, list(job.history), list(job.accuracy_history), done)


def _cluster_lost(job: Job, reason: str) -> Outcome:
    """The outcome of a job the Dask cluster lost, for ``reason`` (its worker died, the scheduler went away)."""
    done = job.progress.iterations_done if job.progress else 0
    return _lost(job, "crashed", f"{reason}. This run was lost after {done:,} iterations and no model was kept: "
                                 "press Train to try again")


_shared: TrainingPool | None = None
_shared_lock = threading.Lock()


#: Every pool not yet closed, for :func:`_close_pools` at exit.
_POOLS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    """Close every open pool when the interpreter exits. multiprocessing's own exit handler (registered
    before this one, so run after it) terminates the daemon workers and then joins every child: left to
    it, the pool's thread would see the workers die, start replacements, and the join would wait for
    them for ever (a CLI run or a server that never exits)."""
    for pool in list(_POOLS):
        pool.close()


def shared_pool() -> TrainingPool:
    """The server's one pool (created on first use), shared by all sessions: it holds no user data. With
    ``$CATDNN_SCHEDULER`` set (``catdnn serve --scheduler``), its trainings run on that Dask cluster."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TrainingPool(scheduler=os.environ.get(SCHEDULER_ENV, "").strip() or None)
        return _shared
