"""This browser session's models and its last training run: two small dataclasses in ``st.session_state``.

Each visitor's state lives in their own ``st.session_state`` (never in ``st.cache_resource`` or a
module global: those are shared by every visitor). :func:`session` returns it.

The training loop's ``finally`` block runs while Streamlit is stopping the script (a Stop click, a
page switch), when every ``st.session_state`` access raises the stop signal again. So the loop
fetches its :class:`SessionState` before it starts and afterwards only changes that object and its
:class:`Run`, plain Python objects. The next script run may start while the stopped one is still in
its ``finally`` block, on another thread: :func:`session` waits for :attr:`Run.finished` first.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from catdnn.classroom import Identity
from catdnn.config import PRESETS, TrainConfig, preset_name
from catdnn.data import COURSE_NAME
from catdnn.model import MAX_KEPT_BYTES, MAX_KEPT_MODELS, Model, drop_oldest

KEY = "catdnn"  # this app's one entry in st.session_state
#: How long :func:`session` waits for a stopped run on another thread to record its outcome.
FINISH_WAIT_SECONDS = 10.0
#: A dataset's name is shown with these characters besides letters and digits, and at most NAME_CHARS of them.
SAFE_CHARS = " -_.,'()/"
NAME_CHARS = 60


@dataclass(eq=False)
class Run:
    """One training run: updated while it trains, then how it ended."""

    config: TrainConfig
    dataset: str = COURSE_NAME  # the name of the dataset it trains and is measured on
    source: Path | None = None  # that dataset's folder (catdnn.data.Dataset.source)
    status: str = "running"  # running | finished | stopped | diverged | crashed | failed (catdnn.workers) | refused
    message: str = ""  # the engine's account of how it ended
    model: Model | None = None  # kept when finished or stopped, never when diverged
    name: str | None = None  # the model's name in SessionState.models
    dropped: list = field(default_factory=list)  # names of older models dropped to make room for it
    warnings: list = field(default_factory=list)  # catdnn.diagnose's plain-language warnings
    history: list = field(default_factory=list)  # [(iteration, cost)]
    accuracy_history: list = field(default_factory=list)  # [(iteration, train accuracy, test accuracy)]
    iterations_done: int = 0
    elapsed: float = 0.0  # seconds of training
    test_scores: dict = field(default_factory=dict)  # dataset name -> (P(cat) of its test images, metrics): once
    thread: int = field(default_factory=threading.get_ident)  # the script thread that runs it
    finished: threading.Event = field(default_factory=threading.Event, repr=False)  # set once the outcome is in


@dataclass(eq=False)
class SessionState:
    """The models trained in this session (oldest first), which one the pages use, and the last run.

    At most ``max_models`` models and ``max_bytes`` bytes of weights are kept (SECURITY.md,
    "Resources"): :meth:`keep` drops the oldest beyond that, never the current one.
    """

    models: dict = field(default_factory=dict)  # name -> Model, oldest first
    current: str | None = None  # the name of the model the pages use
    run: Run | None = None  # the last training run
    kept: int = 0  # how many models this session has kept (numbers their names)
    max_models: int = MAX_KEPT_MODELS
    max_bytes: int = MAX_KEPT_BYTES
    owner: str = field(default_factory=lambda: secrets.token_urlsafe(16))  # who this session is to the run history
    identity: Identity | None = None  # who this session is (ui.identity.identity_ui; local mode: owner = its token)
    form: TrainConfig | None = None  # the Train form's settings as it last showed them (None: not opened yet)

    @property
    def form_config(self) -> TrainConfig:
        """What the Train form shows: its settings as last drawn, else what it opens with (the last run's
        settings, else the course's deep network)."""
        if self.form is not None:
            return self.form
        return self.run.config if self.run is not None else PRESETS["deep"]

    @property
    def current_model(self) -> Model | None:
        """The model the pages use: the chosen one, else the newest; None before the first."""
        if not self.models:
            return None
        return self.models.get(self.current) or self.models[next(reversed(self.models))]

    def keep(self, model: Model) -> tuple[str, list[str]]:
        """Keep ``model`` under a new name and make it the current one; drop the oldest others beyond
        the limits. Returns the new name and the names dropped."""
        self.kept += 1
        name = f"#{self.kept} {model_label(model)}"
        self.models[name] = model
        self.current = name
        return name, drop_oldest(self.models, name, self.max_models, self.max_bytes)


def session(store=None) -> SessionState:
    """This session's state, created on first use, in ``store`` (default: ``st.session_state``).

    When the last run was stopped from another script run and is still recording its outcome on its
    own thread, this waits (at most :data:`FINISH_WAIT_SECONDS`) so that its model is there.
    """
    store = st.session_state if store is None else store
    if KEY not in store:
        store[KEY] = SessionState()
    state = store[KEY]
    run = state.run
    if run is not None and run.thread != threading.get_ident():
        run.finished.wait(FINISH_WAIT_SECONDS)
    return state


def model_label(model: Model) -> str:
    """A model in a few words: preset, hidden layers, the dataset it was trained on, test accuracy, and
    where it stopped."""
    hidden = model.config.arch or ", ".join(str(n) for n in model.config.hidden) or "none"
    text = f"{preset_name(model.config)} ({hidden}) on {shown_name(model.dataset)}"
    if model.test_accuracy is not None:
        text += f", test {model.test_accuracy:.2f}"
    if model.status == "stopped":
        text += f", stopped at {model.iterations_done:,}/{model.config.iterations:,}"
    return text


def shown_name(text: str) -> str:
    """A dataset's name (from a zip or a model file) as the pages show it, in plain text and in Markdown
    alike: letters, digits, spaces and ``-_.,'()/`` are kept, any other character (Markdown's ``*``, ``[``,
    Streamlit's ``:material/…:``, line breaks) becomes a space; at most :data:`NAME_CHARS` characters."""
    text = "".join(ch if ch.isalnum() or ch in SAFE_CHARS else " " for ch in str(text))
    text = " ".join(text.split())
    return text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"


def fmt_bytes(n: int) -> str:
    return f"{n / 1024**3:g} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"
