"""Training in worker processes: one pool per server process, shared by every session.

Why: the Gram solver spends its time in many small NumPy calls that hold the GIL, so trainings run
as threads of one server process take turns on one core (measured: four users pressing Train at
once waited 6–7 s each for runs of under 1 s alone). Each run here is a job on a pool of worker
processes, one per core, each with one BLAS thread; a session's page only draws what its job
reports.

How a job talks to its page:

* The worker sends ``start`` (its pid and the solver), then ``progress`` at most every
  :data:`SEND_SECONDS` (the latest :class:`~catdnn.train.Progress` and the cost and accuracy
  points added since the last message), then ``done`` with an :class:`Outcome` (the model of a
  finished or stopped run, never a diverged one's), or ``error`` with a message.
* Messages from all workers come back on one queue; a dispatcher thread in the server hands each
  to its :class:`Job`, whose :meth:`Job.updates` the page iterates.
* :meth:`Job.cancel` raises the job's flag in shared memory, which the worker reads after every
  iteration: it stops there and sends the partial model.
* A worker that dies (killed, out of memory) is noticed from its pid: that job ends with status
  ``crashed`` and a clear message; the pool starts a new worker and the other jobs go on.

The pool uses the ``forkserver`` start method where there is one (never a bare ``fork`` of a
threaded server), else ``spawn``. Everything here is pure Python and NumPy: no Streamlit.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import types
from dataclasses import dataclass, field

from .config import TrainConfig
from .errors import CatdnnError
from .train import Progress

#: A worker reports progress at most this often (seconds); the page redraws less often still.
SEND_SECONDS = 0.05
#: Jobs queued or running at once across the server, at most (one cancel flag each).
MAX_JOBS = 256
#: A job whose worker has said nothing for this long is checked for a dead worker (seconds).
SILENCE_SECONDS = 0.5


@dataclass
class Outcome:
    """How a job ended.

    status : "finished" | "stopped" | "diverged" | "crashed" | "failed"
    model : Model or None
        The finished or stopped run's model (None after a divergence, a crash or a failure, or a
        stop before the first iteration).
    warnings : list of str
        :func:`catdnn.diagnose.diagnose`'s messages about the run.
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


# --------------------------------------------------------------------------- the worker side
_worker: dict = {}  # in each worker process: the results queue, the cancel flags, cached datasets


def _init_worker(results, cancel) -> None:
    from .threads import limit_blas_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    limit_blas_threads(1)
    _worker.update(results=results, cancel=cancel, datasets={})


def _dataset(data_dir: str):
    from .data import load_dataset

    datasets = _worker["datasets"]
    if data_dir not in datasets:
        datasets.clear()  # one dataset per worker is enough (a server uses one folder)
        datasets[data_dir] = load_dataset(data_dir, download=False)
    return datasets[data_dir]


def _train_job(job_id: int, slot: int, config: dict, data_dir: str, options: dict) -> None:
    """Run one training in this worker process, reporting on the shared queue (see the module doc)."""
    from .diagnose import diagnose
    from .train import Trainer

    put, cancel = _worker["results"].put, _worker["cancel"]
    put((job_id, "start", (os.getpid(), "")))
    try:
        ds = _dataset(data_dir)
        trainer = Trainer(TrainConfig.from_dict(config), ds.train.X, ds.train.Y, ds.test.X, ds.test.Y,
                          classes=tuple(ds.classes), **options)
        put((job_id, "start", (os.getpid(), trainer.solver_name)))
        sent_h = sent_a = 0
        last = time.monotonic()
        events = trainer.run()
        for p in events:
            if cancel[slot]:
                break
            now = time.monotonic()
            if now - last >= SEND_SECONDS or p.iterations_done == p.iterations:
                last = now
                put((job_id, "progress", (p, trainer.history[sent_h:], trainer.accuracy_history[sent_a:])))
                sent_h, sent_a = len(trainer.history), len(trainer.accuracy_history)
        events.close()  # marks the trainer "stopped" if the loop was left early
        model = None
        if trainer.status != "diverged" and trainer.iterations_done > 0:
            model = trainer.model()
        weights = {"params": model.params, "X": ds.train.X} if model is not None else {}
        warnings = diagnose(trainer.history, ds.train.Y, trainer.config.learning_rate, **weights)
        status, message = trainer.status, trainer.message
        if status in ("ready", "running"):
            status, message = "stopped", "stopped before the first iteration"
        put((job_id, "done", Outcome(status, message, list(trainer.history), list(trainer.accuracy_history),
                                     trainer.iterations_done, trainer.elapsed, model, warnings,
                                     trainer.solver_name)))
    except CatdnnError as exc:
        put((job_id, "error", str(exc)))
    except MemoryError:
        put((job_id, "error", "the training ran out of memory: use smaller hidden layers"))
    except Exception as exc:  # reported to the page in one line; the worker lives on
        put((job_id, "error", f"the training failed: {type(exc).__name__}: {exc}"))


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
    :func:`_train_job` from this module), so while a worker is being started ``__main__`` is an
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


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class Job:
    """One training on the pool, as its page sees it.

    Attributes kept up to date by :meth:`updates`: ``progress`` (the latest Progress or None),
    ``history`` and ``accuracy_history`` (the points so far), ``solver_name``, ``pid`` (the
    worker's, once started), ``outcome`` (an :class:`Outcome` once the job has ended).
    """

    def __init__(self, pool: TrainingPool, job_id: int, slot: int, config: TrainConfig):
        self._pool, self.id, self._slot, self.config = pool, job_id, slot, config
        self._inbox: queue.Queue = queue.Queue()
        self.progress: Progress | None = None
        self.history: list = []
        self.accuracy_history: list = []
        self.solver_name = ""
        self.pid: int | None = None
        self.outcome: Outcome | None = None
        self._ending = threading.Lock()
        self._heard = time.monotonic()

    @property
    def started(self) -> bool:
        return self.pid is not None

    @property
    def pool_size(self) -> int:
        """How many runs the pool trains at once."""
        return self._pool.processes

    def _take(self, kind: str, payload) -> None:
        self._heard = time.monotonic()
        if kind == "start":
            self.pid, self.solver_name = payload[0], payload[1] or self.solver_name
        elif kind == "progress":
            self.progress = payload[0]
            self.history.extend(payload[1])
            self.accuracy_history.extend(payload[2])
        elif kind == "done":
            self._end(payload)
        elif kind == "error":
            self._end(Outcome("failed", payload, list(self.history), list(self.accuracy_history),
                              self.progress.iterations_done if self.progress else 0))

    def _end(self, outcome: Outcome) -> None:
        with self._ending:  # the page's thread and the dispatcher may both end a job
            if self.outcome is not None:
                return
            self.outcome = outcome
        self._pool._release(self)

    def _check_worker(self) -> None:
        """End the job as crashed if its worker died without a word."""
        if self.outcome is None and self.pid is not None and time.monotonic() - self._heard > SILENCE_SECONDS:
            if not _alive(self.pid):
                done = self.progress.iterations_done if self.progress else 0
                self._end(Outcome(
                    "crashed",
                    f"the worker process training this run stopped unexpectedly after {done:,} iterations "
                    "(killed, or out of memory); no model was kept. Other users' runs are not affected: "
                    "press Train to try again, perhaps with smaller layers.",
                    list(self.history), list(self.accuracy_history), done))
            else:
                self._heard = time.monotonic()

    def updates(self, timeout: float = 0.2):
        """Yield after each message from the worker, and at least every ``timeout`` seconds, until
        the job has ended (then :attr:`outcome` is set). Stopping the iteration does not stop the job:
        call :meth:`cancel` for that."""
        while self.outcome is None:
            try:
                self._take(*self._inbox.get(timeout=timeout))
                while True:  # take everything that is waiting, then yield once
                    self._take(*self._inbox.get_nowait())
            except queue.Empty:
                pass
            self._check_worker()
            yield self

    def cancel(self) -> None:
        """Ask the worker to stop after its current iteration (it then sends the partial model)."""
        if self.outcome is None:
            self._pool._cancel[self._slot] = 1

    def wait(self, timeout: float | None = None) -> Outcome | None:
        """Follow the job until it ends or ``timeout`` seconds pass; return the outcome (None if not ended)."""
        end = None if timeout is None else time.monotonic() + timeout
        for _ in self.updates(timeout=0.05):
            if end is not None and time.monotonic() >= end:
                break
        return self.outcome


class TrainingPool:
    """A pool of worker processes that run trainings (see the module docstring).

    Parameters
    ----------
    processes : int, optional
        Worker processes; default one per core.
    """

    def __init__(self, processes: int | None = None):
        ctx = _Context()
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["catdnn.workers", "catdnn.train", "catdnn.data"])
        self.processes = int(processes or os.cpu_count() or 1)
        self._results = ctx.Queue()
        self._cancel = ctx.RawArray("b", MAX_JOBS)
        self._lock = threading.Lock()
        self._free = list(range(MAX_JOBS))
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._pool = ctx.Pool(self.processes, initializer=_init_worker, initargs=(self._results, self._cancel))
        self._dispatcher = threading.Thread(target=self._dispatch, name="catdnn-training-results", daemon=True)
        self._dispatcher.start()

    def submit(self, config: TrainConfig, data_dir, **options) -> Job:
        """Queue a training of ``config`` on the dataset in folder ``data_dir``.

        ``options`` go to :class:`~catdnn.train.Trainer` (``cost_every``, ``accuracy_every``,
        ``solver``). The config is validated here, so an impossible one fails at once.
        """
        config.validate()
        with self._lock:
            if not self._free:
                raise CatdnnError(f"{MAX_JOBS} trainings are already queued or running on this server: "
                                  "try again in a moment")
            slot = self._free.pop()
            self._cancel[slot] = 0
            job = Job(self, next(self._ids), slot, config)
            self._jobs[job.id] = job
        self._pool.apply_async(_train_job, (job.id, slot, config.to_dict(), str(data_dir), dict(options)),
                               error_callback=lambda exc, j=job: j._take("error", f"the training failed: {exc}"))
        return job

    def _release(self, job: Job) -> None:
        with self._lock:
            if self._jobs.pop(job.id, None) is not None:
                self._cancel[job._slot] = 1  # a job ended by a crash must not run on if it was requeued
                self._free.append(job._slot)

    def _dispatch(self) -> None:
        while True:
            try:
                job_id, kind, payload = self._results.get()
            except (EOFError, OSError, ValueError):  # the queue was closed: the pool is shutting down
                return
            job = self._jobs.get(job_id)
            if job is None:
                continue
            if kind in ("done", "error"):
                # ended here, not only when a page reads its inbox: a page that stopped reading (it
                # gave up waiting after a Stop) must not keep the job's slot for ever
                job._take(kind, payload)
                job._inbox.put(("wake", None))  # a page still reading sees the outcome at once
            else:
                job._inbox.put((kind, payload))

    @property
    def running(self) -> int:
        """Jobs queued or running."""
        return len(self._jobs)

    def close(self) -> None:
        """Stop the workers (running jobs are abandoned)."""
        self._pool.terminate()
        self._pool.join()


_shared: TrainingPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> TrainingPool:
    """The server's one pool (created on first use), shared by all sessions: it holds no user data."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TrainingPool()
        return _shared
