"""The live training loop that redraws the curve (:func:`train_live`), and how a run ended."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import streamlit as st

from catdnn.config import TrainConfig
from catdnn.data import Dataset
from catdnn.diagnose import diagnose
from catdnn.train import Progress, Trainer, latest_accuracies

from . import figures
from .state import Run, SessionState, fmt_bytes, session

REDRAW_SECONDS = 0.2  # live training redraws about 5 times a second
NO_HIDDEN_LAYER = (
    "**No hidden layer**: [12288, 1] is logistic regression, the course's first model (one sigmoid unit "
    "on the 12288 pixel values). Enter hidden layer sizes, such as `7` or `20, 7, 5`, for a deep network."
)


def trainer_for(config: TrainConfig, ds: Dataset) -> Trainer:
    """A Trainer on the dataset that samples the cost about 500 and the accuracies about 100 times."""
    it = int(config.iterations)
    return Trainer(config, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, cost_every=max(1, it // 500),
                   accuracy_every=max(1, it // 100), classes=tuple(ds.classes))


def train_live(config: TrainConfig, ds: Dataset, on_frame: Callable[[Trainer, Progress, int], None]) -> Run:
    """Train ``config``, calling ``on_frame(trainer, progress, frame)`` about 5 times a second.

    Every redraw is a Streamlit call, which is where a Stop click (a rerun) interrupts the loop.
    The :class:`Run` is this session's last run from the start and follows the progress at each
    redraw; the ``finally`` block, which also runs when a Stop click or a page switch interrupts the
    loop, builds the model once and keeps it (finished or stopped; never a diverged one). Building it
    at every redraw would cost a rebuild of W[1] and two forward passes each time.
    """
    state = session()  # fetched now: the finally block below must not touch st.session_state
    run = Run(config=config)
    state.run = run
    trainer = trainer_for(config, ds)
    slot = st.empty()
    events = trainer.run()
    frame, last = 0, -math.inf
    try:
        for p in events:
            now = time.monotonic()
            if now - last >= REDRAW_SECONDS or p.iterations_done == p.iterations:
                last = now
                frame += 1
                run.iterations_done, run.elapsed = p.iterations_done, p.elapsed  # the model is built in finally
                with slot.container():
                    on_frame(trainer, p, frame)
    finally:
        try:
            events.close()  # marks the trainer "stopped" if we left early
            _finish(trainer, run, state)
        finally:
            run.finished.set()
    slot.empty()
    return run


def _finish(trainer: Trainer, run: Run, state: SessionState) -> None:
    """Record how the run ended and keep its model. Runs in a ``finally``: no Streamlit calls here."""
    run.status, run.message = trainer.status, trainer.message
    run.history, run.accuracy_history = list(trainer.history), list(trainer.accuracy_history)
    run.iterations_done, run.elapsed = trainer.iterations_done, trainer.elapsed
    if trainer.status != "diverged" and trainer.iterations_done > 0:
        run.model = trainer.model()
        run.name, run.dropped = state.keep(run.model)
    # with the kept model's weights, diagnose sees dead layers directly (never a diverged run's weights)
    weights = {"params": run.model.params, "X": trainer.X} if run.model is not None else {}
    run.warnings = diagnose(trainer.history, trainer.Y, trainer.config.learning_rate, **weights)
    if trainer.status in ("ready", "running"):
        run.status = "stopped"
        run.message = run.message or "stopped before the first iteration"


# --------------------------------------------------------------------------- the live views
def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 60:
        return f"{s:.0f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def progress_text(p: Progress) -> str:
    rate = p.iterations_done / p.elapsed if p.elapsed > 0 else float("nan")
    left = (p.iterations - p.iterations_done) / rate if rate and math.isfinite(rate) else float("nan")
    rate_text = f"{rate:,.0f} it/s" if math.isfinite(rate) else "… it/s"
    return f"Iteration {p.iterations_done:,} of {p.iterations:,} · {rate_text} · about {fmt_seconds(left)} left"


def draw_progress_frame(trainer: Trainer, p: Progress, frame: int) -> None:
    """The short live view: a progress bar with speed and time left."""
    st.progress(p.iterations_done / p.iterations, text=progress_text(p))


def draw_training_frame(trainer: Trainer, p: Progress, frame: int) -> None:
    """The full live view: progress, cost, accuracies and the two growing curves."""
    st.progress(p.iterations_done / p.iterations, text=progress_text(p))
    train_acc, test_acc = latest_accuracies(trainer.accuracy_history)
    cost = trainer.history[-1][1] if trainer.history else None
    with st.container(horizontal=True, gap="medium"):
        st.metric("Cost", "–" if cost is None else f"{cost:.4f}", width="content")
        st.metric("Train accuracy", "–" if train_acc is None else f"{train_acc:.2f}", width="content")
        st.metric("Test accuracy", "–" if test_acc is None else f"{test_acc:.2f}", width="content")
    draw_curves(trainer.history, trainer.accuracy_history, p.iterations, key=f"train_live_{frame}")


def draw_curves(history, accuracy_history, iterations: int, key: str) -> None:
    """The cost curve and the accuracy curves side by side (``key``: unique per redraw)."""
    left, right = st.columns(2)
    left.plotly_chart(figures.cost_figure(history, iterations), key=f"{key}_cost", config={"displayModeBar": False})
    right.plotly_chart(figures.accuracy_figure(accuracy_history, iterations), key=f"{key}_acc",
                       config={"displayModeBar": False})


# --------------------------------------------------------------------------- how a run ended
def draw_layers_note(config: TrainConfig) -> None:
    """Say so when the layers have no hidden layer (an empty "Hidden layer sizes" field)."""
    if len(config.layers) == 2:
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
    elif run.status == "stopped" and model is not None:
        st.warning(
            f"**Stopped** after {model.iterations_done:,} of {model.config.iterations:,} iterations: the "
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
    if run.status != "diverged":
        for warning in run.warnings:
            st.warning(warning[:1].upper() + warning[1:], icon=":material/lightbulb:")
