"""The live training loop that redraws the curve (:func:`train_live`), and how a run ended.

The training itself runs on the server's pool of worker processes (:mod:`catdnn.workers`): a
session's page only follows its job and draws, so one user's training never holds up another's
page, and a crashed worker ends only its own run.

Under load the live view redraws less often (:func:`redraw_seconds`): every redraw of every page is
drawn by the one server process, which would otherwise be the first thing to slow down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from catdnn.classroom import Limits
from catdnn.config import TrainConfig
from catdnn.data import Dataset
from catdnn.errors import CatdnnError, ConfigError, DataError
from catdnn.photos import TEST_FRACTION
from catdnn.solvers import cnn_solver_reason, solver_choice
from catdnn.train import Progress, latest_accuracies
from catdnn.workers import TIME_LIMIT_NOTE, Job, shared_pool

from . import figures
from .dataset import cached_dataset
from .history import record_run, training_rights
from .state import Run, SessionState, fmt_bytes, session, shown_name

REDRAW_SECONDS = 0.2  # live training redraws about 5 times a second (when the server is not busy)
#: Under load, the live views of all the server's trainings together redraw about this often a second at most...
SERVER_REDRAWS = 10.0
#: ... but each at least this often (seconds): a Stop click is seen at the next redraw.
MAX_REDRAW_SECONDS = 3.0
#: After a Stop click, how long to wait for the worker to send the partial model.
STOP_WAIT_SECONDS = 10.0
NO_HIDDEN_LAYER = (
    "**No hidden layer**: [12288, 1] is logistic regression, the course's first model (one sigmoid unit "
    "on the 12288 pixel values). Enter hidden layer sizes, such as `7` or `20, 7, 5`, for a deep network."
)


#: A test set of fewer images gets a warning next to its accuracy (each image is then worth more than 5 %).
SMALL_TEST_SET = 20


#: The Inside page's gradient and activation statistics are recorded about this many times a run.
STATS_POINTS = 25


#: A convolutional net's accuracies are measured about this many times a run (each is a forward pass
#: over every image, twice with mirror averaging: many mini-batch steps' worth).
CNN_ACCURACY_POINTS = 20


def trainer_options(config: TrainConfig) -> dict:
    """The Trainer options the page uses: the cost sampled about 500 times, the accuracies about 100, the
    per-layer statistics about :data:`STATS_POINTS` times (each costs about one plain iteration). A
    convolutional net: the accuracies about :data:`CNN_ACCURACY_POINTS` times, no per-layer statistics
    (they are the MLP's)."""
    it = int(config.iterations)
    if config.is_cnn:
        return {"cost_every": max(1, it // 500), "accuracy_every": max(1, it // CNN_ACCURACY_POINTS)}
    return {"cost_every": max(1, it // 500), "accuracy_every": max(1, it // 100),
            "stats_every": max(1, it // STATS_POINTS)}


def solver_reason(config: TrainConfig, ds: Dataset) -> str:
    """Which solver trains ``config`` on ``ds`` and why, in one line (the engine's choice, as the worker makes it)."""
    if config.is_cnn:
        return cnn_solver_reason(config)
    try:
        return solver_choice("auto", ds.train.X.shape[0], ds.train.m, config.layers, config.iterations, config)[1]
    except ConfigError as exc:
        return str(exc)


#: Solver names written in capitals when a sentence starts with them.
ACRONYMS = {"cnn": "CNN"}


def draw_solver(config: TrainConfig, ds: Dataset) -> None:
    """The solver and the reason for it, under the run."""
    reason = solver_reason(config, ds)
    first, _, rest = reason.partition(" ")
    first = ACRONYMS.get(first, first[:1].upper() + first[1:])
    st.caption(f":material/memory: **{first} {rest}.**" if reason else "")


def run_dataset_ui(run: Run, ds: Dataset) -> Dataset | None:
    """The dataset ``run`` trained on: ``ds`` (the sidebar's), or the run's own when the sidebar now names
    another; None, with a note, when that one can no longer be read (its folder was removed)."""
    if run.source is None or Path(run.source) == Path(ds.source):
        return ds
    try:
        return cached_dataset(str(run.source))
    except DataError as exc:
        st.caption(f"The dataset this run trained on, *{shown_name(run.dataset)}*, can no longer be read ({exc}): "
                   "only the figures measured while it trained are shown.")
        return None


def draw_test_set_note(ds: Dataset, test_accuracy: float | None) -> None:
    """Which images the accuracies were measured on, and how much one test image weighs; a warning when
    the test set is small (fewer than :data:`SMALL_TEST_SET` images)."""
    m = ds.test.m
    share = 100 / m if m else float("nan")
    st.caption(f"Train accuracy on the {ds.train.m:,} training images of *{shown_name(ds.name)}*; test accuracy, "
               f"balanced accuracy and AUC on its {m:,} test images, each worth {share:.3g} % of the test accuracy.")
    if m < SMALL_TEST_SET:
        shown = "" if test_accuracy is None else f" a test accuracy of {test_accuracy:.2f}"
        need = math.ceil(SMALL_TEST_SET / TEST_FRACTION)
        st.warning(f"**Only {m} test image{'s' if m != 1 else ''}:** each one right or wrong moves the test accuracy "
                   f"by {share:.3g} %, so{shown or ' it'} says little about new photos. An import keeps "
                   f"{TEST_FRACTION:.0%} of each class for testing: about {need} photos give {SMALL_TEST_SET} "
                   "test images.", icon=":material/science:")


def redraw_seconds(trainings: int) -> float:
    """Seconds between two redraws of a live view while ``trainings`` runs are queued or training on the
    server: :data:`REDRAW_SECONDS` (about 5 a second) up to 2 trainings, then ``trainings /`` :data:`SERVER_REDRAWS`,
    so that all the live views together redraw about 10 times a second (4 trainings: every 0.4 s; 10: every
    second), at most :data:`MAX_REDRAW_SECONDS` apart (30 trainings and more: every 3 s)."""
    return min(MAX_REDRAW_SECONDS, max(REDRAW_SECONDS, trainings / SERVER_REDRAWS))


def train_live(config: TrainConfig, ds: Dataset, on_frame: Callable[[Job, Progress | None, int], None], *,
               owner: str | None = None, limits: Limits | None = None) -> Run:
    """Train ``config`` on a worker process, calling ``on_frame(job, progress, frame)`` about 5 times a
    second, less often when the server is busy (:func:`redraw_seconds`; ``progress`` is None while the
    job waits for a free worker).

    ``owner`` and ``limits`` go to :meth:`catdnn.workers.TrainingPool.submit` (default: the session's,
    :func:`training_rights`): a run the limits forbid is not started, and the run's status is ``refused``
    with the reason as its message.

    Every redraw is a Streamlit call, which is where a Stop click (a rerun) interrupts the loop.
    The :class:`Run` is this session's last run from the start and follows the progress at each
    redraw; the ``finally`` block, which also runs when a Stop click or a page switch interrupts the
    loop, asks the worker to stop (if it still runs), waits for the partial model and keeps it
    (finished or stopped; never a diverged one).
    """
    state = session()  # fetched now: the finally block below must not touch st.session_state
    run = Run(config=config, dataset=ds.name, source=ds.source)
    state.run = run
    try:
        pool = shared_pool()
        if owner is None:
            owner, limits = training_rights()
        job = pool.submit(config, ds.source, owner=owner, limits=limits, **trainer_options(config))
    except CatdnnError as exc:  # the session's limits, or a server with no room left: nothing started
        run.status, run.message = "refused", str(exc)
        run.finished.set()
        return run
    slot = st.empty()
    frame, last = 0, -math.inf
    try:
        for _ in job.updates(timeout=REDRAW_SECONDS):
            now = time.monotonic()
            if now - last >= redraw_seconds(pool.running) and job.outcome is None:
                last = now
                frame += 1
                p = job.progress
                if p is not None:
                    run.iterations_done, run.elapsed = p.iterations_done, p.elapsed
                with slot.container():
                    on_frame(job, p, frame)
    finally:
        try:
            if job.outcome is None:  # left early: a Stop click, a page switch
                job.cancel()
                job.wait(STOP_WAIT_SECONDS)
            _finish(job, run, state)
            record_run(state, run, job.solver_name, ds)  # the run history (ui.history)
        finally:
            run.finished.set()
    slot.empty()
    return run


def _finish(job: Job, run: Run, state: SessionState) -> None:
    """Record how the run ended and keep its model. Runs in a ``finally``: no Streamlit calls here."""
    out = job.outcome
    if out is None:  # the worker did not answer in time after a stop: nothing to keep
        run.status = "stopped"
        run.message = f"stopped; the worker did not send the partial model within {STOP_WAIT_SECONDS:g} s"
        run.history, run.accuracy_history = list(job.history), list(job.accuracy_history)
        return
    run.status, run.message, run.warnings = out.status, out.message, list(out.warnings)
    run.history, run.accuracy_history = out.history, out.accuracy_history
    run.iterations_done, run.elapsed = out.iterations_done, out.elapsed
    if out.model is not None:
        out.model.dataset = run.dataset
        run.model = out.model
        run.name, run.dropped = state.keep(out.model)


# --------------------------------------------------------------------------- the live views
def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 60:
        return f"{s:.0f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def progress_text(p: Progress, config: TrainConfig | None = None) -> str:
    """The live view's line; with mini-batches the epoch, with a decaying schedule the learning rate."""
    rate = p.iterations_done / p.elapsed if p.elapsed > 0 else float("nan")
    left = (p.iterations - p.iterations_done) / rate if rate and math.isfinite(rate) else float("nan")
    rate_text = f"{rate:,.0f} it/s" if math.isfinite(rate) else "… it/s"
    extra = ""
    if config is not None and config.batch_size:
        extra += f" · epoch {p.epoch + 1:,}"
    if config is not None and config.schedule != "constant" and p.learning_rate is not None:
        extra += f" · α {p.learning_rate:.3g}"
    return (f"Iteration {p.iterations_done:,} of {p.iterations:,}{extra} · {rate_text} · "
            f"about {fmt_seconds(left)} left")


#: What a live view says while the server's trainings are paused.
PAUSED = "Training is paused on this server (by the teacher)"


def draw_waiting(job: Job) -> None:
    """While a job waits for a free worker process (every worker is training someone's run), or for a
    paused server to resume."""
    if job.paused:
        st.progress(0.0, text=f"{PAUSED}: your run starts when it resumes")
        return
    if job.behind_own:
        st.progress(0.0, text="Waiting for your other run: each person trains one run at a time on this server · "
                              "this one starts when it ends (stop it there, or here)")
        return
    st.progress(0.0, text=f"Waiting for a free worker: the server trains {job.pool_size} runs at once, "
                          "and all are busy · your run starts as soon as one finishes")


def draw_paused(job: Job, p: Progress) -> None:
    """A running job held by a paused server says so under its progress bar."""
    if job.paused or job.held:
        st.caption(f":material/pause_circle: {PAUSED}: your run waits after iteration {p.iterations_done:,} and "
                   "goes on when it resumes (press Stop to keep the model as it is).")


def draw_progress_frame(job: Job, p: Progress | None, frame: int) -> None:
    """The short live view: a progress bar with speed and time left."""
    if p is None:
        return draw_waiting(job)
    st.progress(p.iterations_done / p.iterations, text=progress_text(p))
    draw_paused(job, p)


def draw_training_frame(job: Job, p: Progress | None, frame: int) -> None:
    """The full live view: progress, cost, accuracies and the two growing curves."""
    if p is None:
        return draw_waiting(job)
    st.progress(p.iterations_done / p.iterations, text=progress_text(p, job.config))
    draw_paused(job, p)
    train_acc, test_acc = latest_accuracies(job.accuracy_history)
    cost = job.history[-1][1] if job.history else None
    with st.container(horizontal=True, gap="medium"):
        st.metric("Cost", "–" if cost is None else f"{cost:.4f}", width="content")
        st.metric("Train accuracy", "–" if train_acc is None else f"{train_acc:.2f}", width="content")
        st.metric("Test accuracy", "–" if test_acc is None else f"{test_acc:.2f}", width="content")
        if job.config.batch_size:
            st.metric("Epoch", f"{p.epoch + 1:,}", width="content")
        if job.config.schedule != "constant" and p.learning_rate is not None:
            st.metric("Learning rate", f"{p.learning_rate:.3g}", width="content")
    draw_curves(job.history, job.accuracy_history, p.iterations, key=f"train_live_{frame}", config=job.config)


def draw_curves(history, accuracy_history, iterations: int, key: str, config: TrainConfig | None = None) -> None:
    """The cost curve and the accuracy curves side by side (``key``: unique per redraw; ``config``: the run's
    settings, which say what its cost measures)."""
    left, right = st.columns(2)
    ytitle = figures.cost_axis([config]) if config is not None else "cross-entropy cost"
    left.plotly_chart(figures.cost_figure(history, iterations, ytitle=ytitle), key=f"{key}_cost",
                      config={"displayModeBar": False})
    right.plotly_chart(figures.accuracy_figure(accuracy_history, iterations), key=f"{key}_acc",
                       config={"displayModeBar": False})


# --------------------------------------------------------------------------- how a run ended
def draw_layers_note(config: TrainConfig) -> None:
    """Say so when the layers have no hidden layer (an empty "Hidden layer sizes" field)."""
    if len(config.layers) == 2 and not config.is_cnn:
        st.info(NO_HIDDEN_LAYER, icon=":material/info:")


def draw_run_status(run: Run | None) -> None:
    """How the last run ended, in one line, then the models dropped for it and the diagnoses."""
    if run is None:
        return
    draw_layers_note(run.config)
    model = run.model
    if run.status == "diverged":
        st.warning(f"**Training diverged: no model kept.** {run.message[:1].upper()}{run.message[1:]}",
                   icon=":material/warning:")
    elif run.status == "refused":
        st.error(f"**Training not started.** {run.message[:1].upper()}{run.message[1:]}.", icon=":material/block:")
    elif run.status in ("crashed", "failed"):
        st.error(f"**Training {'crashed' if run.status == 'crashed' else 'failed'}: no model kept.** "
                 f"{run.message[:1].upper()}{run.message[1:]}", icon=":material/error:")
    elif run.status == "stopped" and model is not None:
        why = " at the time limit" if TIME_LIMIT_NOTE in run.message else ""  # the class's or the server's
        st.warning(
            f"**Stopped{why}** after {model.iterations_done:,} of {model.config.iterations:,} iterations"
            f"{': ' + run.message.split(': ', 1)[1] if why else ''}: the "
            f"partial model is kept (train accuracy {model.train_accuracy:.2f}, test {model.test_accuracy:.2f}).",
            icon=":material/stop_circle:",
        )
    elif run.status == "stopped":
        st.warning("**Stopped** before the first iteration: no model kept.", icon=":material/stop_circle:")
    elif run.status == "finished" and model is not None:
        st.success(
            f"**Finished** {model.iterations_done:,} iterations in {model.train_seconds:.1f} s: train "
            f"accuracy {model.train_accuracy:.2f}, test accuracy {model.test_accuracy:.2f}.",
            icon=":material/check_circle:",
        )
    if run.dropped:
        state = session()
        names = ", ".join(f"**{n}**" for n in run.dropped)
        st.info(
            f"To keep this session's models under {fmt_bytes(state.max_bytes)} of weights (and at most "
            f"{state.max_models} models), the oldest were dropped: {names}.",
            icon=":material/delete_sweep:",
        )
    if run.status not in ("diverged", "crashed", "failed", "refused"):
        for warning in run.warnings:
            st.warning(warning[:1].upper() + warning[1:], icon=":material/lightbulb:")
