"""Streamlit glue for the dashboard: session-state keys, the cached dataset, the live training loop,
and the drawing helpers the pages share. Only the app imports this module; the math is in catdnn.

Naming: a helper that returns values is ``*_ui()``, one that only draws is ``draw_*()``.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import streamlit as st
from PIL import Image

from catdnn import evaluate, plots
from catdnn.data import DEFAULT_DATA_DIR, ENV_VAR, FILES, Dataset, download_dataset, find_data_dir, load_dataset
from catdnn.diagnose import diagnose
from catdnn.errors import CatdnnError, DataError
from catdnn.evaluate import CELL_DESCRIPTIONS
from catdnn.inspect import gradient_check_verdict
from catdnn.model_io import Model, model_to_bytes
from catdnn.network import INIT_DESCRIPTIONS, INITS
from catdnn.train import MAX_SEED, N_X, PRESETS, TrainConfig, Trainer, parse_layers

# --------------------------------------------------------------------------- session state
#: All of the app's own state is one plain dict in ``st.session_state[STATE]`` (see app_state()).
#: Plain dicts matter: the training loop's ``finally`` block runs while Streamlit is stopping the
#: script, when every ``st.session_state`` access raises the stop signal again; mutating a dict
#: fetched before the loop does not.
STATE = "catdnn"
MODELS = "models"  # dict name -> Model: the models trained (or stopped) in this session, oldest first
CURRENT = "current"  # name of the model the pages use
RUN = "run"  # the last training run: dict(status, message, config, model, history, ...)
RUN_COUNT = "run_count"  # how many runs this session started (numbers the model names)
SETTINGS = "settings"  # the Train form's last submitted values (widget state is dropped off-page)
#: A Stop click (or leaving the page) mid-run starts the next script run while the stopped one is
#: still in its finally block, on another thread; app_state() waits this long for it to finish.
FINISH_WAIT_SECONDS = 10.0

MAX_MODELS = 8  # older session models are forgotten beyond this
#: At most this many bytes of weights are kept per session, all its models together (SECURITY.md,
#: "Resources"). One model may hold up to 512 MiB (catdnn.train.MAX_PARAM_BYTES), so MAX_MODELS of
#: them would be 4 GiB per browser tab. Beyond it the oldest models are dropped, never the current one.
MAX_SESSION_BYTES = 1024**3
REDRAW_SECONDS = 0.2  # live training redraws about 5 times a second
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
HONEST_NOTE = (
    "These networks learn from only **209 small photos** (64×64 pixels); the course's deep network "
    "gets 80 % of the 50 test photos right. Everyday photos differ (framing, light, other animals, "
    "people), so it is **often wrong on them**: read its verdict as a demonstration, not a fact."
)


# --------------------------------------------------------------------------- dataset
@st.cache_data(show_spinner="Loading the dataset…", max_entries=4)
def _load_dataset(folder: str) -> Dataset:
    return load_dataset(folder, download=False)


def _download_ui() -> None:
    bar = st.progress(0.0, text="Downloading the cat / non-cat dataset (about 3 MB, first use only)…")
    last = [0.0]

    def progress(name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and not (total and done >= total):
            return
        last[0] = now
        frac = min(done / total, 1.0) if total else 0.0
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        bar.progress(frac, text=f"Downloading {name}: {size}")

    try:
        download_dataset(DEFAULT_DATA_DIR, progress=progress)
    finally:
        bar.empty()  # also when the download fails: the error replaces the bar


def draw_dataset_error(action: str, details: str | None = None, title: str = "Details") -> None:
    """What to do first (in the error box), then the engine's message, one line per item, in an expander."""
    st.error(f"**The dataset is not available.** {action}", icon=":material/block:")
    if details is None:
        return
    lines = [line for line in details.splitlines() if line.strip()]
    # data.download_dataset's message: a headline, one indented line per URL tried, then advice for the
    # CLI (its --data-dir), which the action above replaces
    items = [line.strip() for line in lines[1:] if line.startswith((" ", "\t"))]
    with st.expander(title, key="dataset_error_details"):
        st.markdown(lines[0] if lines else "")
        if items:
            st.markdown("\n".join(f"- `{item.replace('`', chr(39))}`" for item in items))


def dataset_ui() -> Dataset:
    """The dataset (downloaded on first use, with a progress bar); stops the page with a clear error."""
    folder, _why = find_data_dir()
    files = " and ".join(f"`{name}`" for name in FILES.values())
    if folder is None:
        try:
            _download_ui()
        except DataError as exc:
            draw_dataset_error(
                f"Copy {files} into `{DEFAULT_DATA_DIR}`, or set `{ENV_VAR}` to a folder holding them, "
                "then reload this page.",
                str(exc), "Why the download failed")
            st.stop()
        folder = DEFAULT_DATA_DIR
    try:
        return _load_dataset(str(folder))
    except CatdnnError as exc:
        if all((folder / name).is_file() for name in FILES.values()):  # a damaged or substituted file, named
            draw_dataset_error(f"{exc} Then reload this page.")
        else:  # $CATDNN_DATA_DIR names a folder without the files
            missing = [name for name in FILES.values() if not (folder / name).is_file()]
            draw_dataset_error(
                f"Copy {files} into `{folder}` (named by `{ENV_VAR}`), then reload this page; or start the app "
                f"without `{ENV_VAR}` to download them into `{DEFAULT_DATA_DIR}`.",
                f"missing from {folder}:\n" + "\n".join(f"  {name}" for name in missing))
        st.stop()


# --------------------------------------------------------------------------- models in the session
def app_state() -> dict:
    """The app's state for this session (a plain dict), created on first use."""
    state = st.session_state.setdefault(STATE, {})
    for key, default in ((MODELS, {}), (CURRENT, None), (RUN, None), (RUN_COUNT, 0), (SETTINGS, None)):
        state.setdefault(key, default)
    run = state[RUN]
    if run is not None and run.get("thread") != threading.get_ident() and "finished" in run:
        run["finished"].wait(FINISH_WAIT_SECONDS)  # a stopped run on another thread is saving its model
    return state


def models() -> dict:
    return app_state()[MODELS]


def current_model() -> Model | None:
    state = app_state()
    ms = state[MODELS]
    if not ms:
        return None
    return ms.get(state[CURRENT]) or ms[next(reversed(ms))]


def preset_name(config: TrainConfig) -> str:
    """ "two-layer" or "deep" when the layers and init are a preset's, else "custom"."""
    for name, preset in PRESETS.items():
        if preset.layers == config.layers and preset.init == config.init:
            return name
    return "custom"


def model_label(model: Model) -> str:
    hidden = ", ".join(str(n) for n in model.config.hidden) or "none"
    text = f"{preset_name(model.config)} ({hidden})"
    if model.test_accuracy is not None:
        text += f", test {model.test_accuracy:.2f}"
    if model.status == "stopped":
        text += f", stopped at {model.iterations_done:,}/{model.config.iterations:,}"
    return text


def model_bytes(model: Model) -> int:
    """The bytes of a model's weights and biases."""
    return sum(W.nbytes + b.nbytes for W, b in model.params)


def fmt_bytes(n: int) -> str:
    return f"{n / 1024**3:g} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def add_model(state: dict, model: Model) -> tuple[str, list[str]]:
    """Keep ``model`` in ``state`` (from app_state()) and make it the current one.

    Then drop the oldest other models while the session holds more than MAX_MODELS models or more
    than MAX_SESSION_BYTES of weights. Returns the new model's name and the names dropped.
    """
    name = f"#{state[RUN_COUNT]} {model_label(model)}"
    ms = state[MODELS]
    ms[name] = model
    state[CURRENT] = name
    dropped = []
    total = sum(model_bytes(m) for m in ms.values())
    while len(ms) > MAX_MODELS or total > MAX_SESSION_BYTES:
        oldest = next((n for n in ms if n != name), None)
        if oldest is None:  # only the current model is left (one model is at most 512 MiB)
            break
        total -= model_bytes(ms.pop(oldest))
        dropped.append(oldest)
    return name, dropped


def model_picker_ui(key: str) -> Model | None:
    """The current model, with a selector when the session holds more than one."""
    state = app_state()
    ms = state[MODELS]
    if len(ms) > 1:
        names = list(reversed(ms))
        current = state[CURRENT]
        st.session_state[key] = current if current in ms else names[0]

        def _pick():
            state[CURRENT] = st.session_state[key]

        st.selectbox("Model", names, key=key, on_change=_pick, help="Models trained in this session, newest first")
    model = current_model()
    if model is not None and len(ms) == 1:
        st.caption(f"Model: {model_label(model)}")
    return model


def model_or_offer_ui(key: str, dataset_loader=None) -> Model | None:
    """The current model; without one, say so and offer to train the deep preset in one click."""
    model = model_picker_ui(key=f"{key}_model")
    if model is not None:
        return model
    st.info(
        "**No model yet.** Train one on the **Train** page (sidebar), or train the course's deep "
        "network here with one click (a few seconds)."
    )
    if st.button("Train the deep preset now", key=f"{key}_train_deep", type="primary"):
        ds = dataset_loader() if dataset_loader else dataset_ui()
        run = train_live(PRESETS["deep"], ds, draw_progress_frame)
        if run["status"] == "finished":
            st.rerun()  # redraw the page with the new model (and without this offer)
        draw_run_status(run)
    return None


# --------------------------------------------------------------------------- training
def trainer_for(config: TrainConfig, ds: Dataset) -> Trainer:
    it = int(config.iterations)
    return Trainer(
        config,
        ds.train.X,
        ds.train.Y,
        ds.test.X,
        ds.test.Y,
        cost_every=max(1, it // 500),
        accuracy_every=max(1, it // 100),
        classes=tuple(ds.classes),
    )


def train_live(config: TrainConfig, ds: Dataset, draw_frame) -> dict:
    """Train ``config``, calling ``draw_frame(trainer, progress, frame)`` about 5 times a second.

    Every redraw is a Streamlit call, which is where a Stop click (a rerun) interrupts the loop.
    The run's progress is kept in ``app_state()[RUN]`` at each redraw; the ``finally`` block, which
    also runs when a Stop click or a page switch interrupts the loop, builds the model once and
    keeps it (finished or stopped; never a diverged one). Building it at every redraw would cost
    a rebuild of W[1] and two forward passes each time.
    Returns the run record.
    """
    state = app_state()  # fetched now: the finally block below must not touch st.session_state
    state[RUN_COUNT] += 1
    run = {
        "status": "running",
        "message": "",
        "config": config,
        "model": None,
        "name": None,
        "history": [],
        "accuracy_history": [],
        "done": 0,
        "elapsed": 0.0,
        "thread": threading.get_ident(),
        "finished": threading.Event(),  # set once the finally block has recorded the outcome
    }
    state[RUN] = run
    trainer = trainer_for(config, ds)
    slot = st.empty()
    events = trainer.run()
    frame, last = 0, -math.inf
    try:
        for p in events:
            now = time.monotonic()
            if now - last >= REDRAW_SECONDS or p.done == p.iterations:
                last = now
                frame += 1
                run.update(done=p.done, elapsed=p.elapsed)  # the model is built once, in finally
                with slot.container():
                    draw_frame(trainer, p, frame)
    finally:
        try:
            events.close()  # marks the trainer "stopped" if we left early
            _finish(trainer, run, state)
        finally:
            run["finished"].set()
    slot.empty()
    return run


def _finish(trainer: Trainer, run: dict, state: dict) -> None:
    """Record how the run ended and keep its model. Runs in a ``finally``: no Streamlit calls here."""
    run.update(
        status=trainer.status,
        message=trainer.message,
        history=list(trainer.history),
        accuracy_history=list(trainer.accuracy_history),
        done=trainer.iteration,
        elapsed=trainer.elapsed,
    )
    model = None
    if trainer.status == "diverged":
        run["model"] = None
    elif trainer.iteration > 0:
        model = trainer.model()
        run["model"] = model
        run["name"], run["dropped"] = add_model(state, model)
    # with the kept model's weights, diagnose sees dead layers directly (never a diverged run's weights)
    weights = {"params": model.params, "X": trainer.X} if model is not None else {}
    run["warnings"] = diagnose(trainer.history, trainer.Y, trainer.config.learning_rate, **weights)
    if trainer.status in ("ready", "running"):
        run["status"] = "stopped"
        run["message"] = run["message"] or "stopped before the first iteration"


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 60:
        return f"{s:.0f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def progress_text(p) -> str:
    rate = p.done / p.elapsed if p.elapsed > 0 else float("nan")
    left = (p.iterations - p.done) / rate if rate and math.isfinite(rate) else float("nan")
    rate_text = f"{rate:,.0f} it/s" if math.isfinite(rate) else "… it/s"
    return f"Iteration {p.done:,} of {p.iterations:,} · {rate_text} · about {fmt_seconds(left)} left"


def latest_accuracies(accuracy_history) -> tuple:
    train = test = None
    for _i, a, b in accuracy_history:
        train = a if a is not None else train
        test = b if b is not None else test
    return train, test


def _pct(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def draw_progress_frame(trainer: Trainer, p, frame: int) -> None:
    """The short live view: a progress bar with speed and time left."""
    st.progress(p.done / p.iterations, text=progress_text(p))


def draw_training_frame(trainer: Trainer, p, frame: int) -> None:
    """The full live view: progress, cost, accuracies and the two growing curves."""
    st.progress(p.done / p.iterations, text=progress_text(p))
    train_acc, test_acc = latest_accuracies(trainer.accuracy_history)
    cost = trainer.history[-1][1] if trainer.history else None
    with st.container(horizontal=True, gap="medium"):
        st.metric("Cost", "–" if cost is None else f"{cost:.4f}", width="content")
        st.metric("Train accuracy", _pct(train_acc), width="content")
        st.metric("Test accuracy", _pct(test_acc), width="content")
    draw_curves(trainer.history, trainer.accuracy_history, p.iterations, key=f"train_live_{frame}")


def draw_curves(history, accuracy_history, iterations: int, key: str) -> None:
    left, right = st.columns(2)
    with left:
        st.plotly_chart(plots.cost_figure(history, iterations), key=f"{key}_cost", config={"displayModeBar": False})
    with right:
        st.plotly_chart(
            plots.accuracy_figure(accuracy_history, iterations), key=f"{key}_acc", config={"displayModeBar": False}
        )


NO_HIDDEN_LAYER = (
    "**No hidden layer**: [12288, 1] is logistic regression, the course's first model (one sigmoid unit "
    "on the 12288 pixel values). Enter hidden layer sizes, such as `7` or `20, 7, 5`, for a deep network."
)


def draw_layers_note(config: TrainConfig) -> None:
    """Say so when the layers have no hidden layer (an empty "Hidden layer sizes" field)."""
    if len(config.layers) == 2:
        st.info(NO_HIDDEN_LAYER, icon=":material/info:")


def draw_run_status(run: dict | None) -> None:
    """One line on how the last run ended."""
    if not run:
        return
    draw_layers_note(run["config"])
    status, model = run["status"], run.get("model")
    if status == "diverged":
        message = run["message"][:1].upper() + run["message"][1:]
        st.warning(f"**Training diverged: no model kept.** {message}", icon=":material/warning:")
    elif status == "stopped" and model is not None:
        st.warning(
            f"**Stopped** after {model.iterations_done:,} of {model.config.iterations:,} iterations: the "
            f"partial model is kept (train accuracy {model.train_accuracy:.2f}, test {model.test_accuracy:.2f}).",
            icon=":material/stop_circle:",
        )
    elif status == "stopped":
        st.warning("**Stopped** before the first iteration: no model kept.", icon=":material/stop_circle:")
    elif status == "finished" and model is not None:
        st.success(
            f"**Finished** {model.iterations_done:,} iterations in {model.train_seconds:.1f} s: train "
            f"accuracy {model.train_accuracy:.2f}, test accuracy {model.test_accuracy:.2f}.",
            icon=":material/check_circle:",
        )
    if run.get("dropped"):
        names = ", ".join(f"**{n}**" for n in run["dropped"])
        st.info(
            f"To keep this session's models under {fmt_bytes(MAX_SESSION_BYTES)} of weights (and at most "
            f"{MAX_MODELS} models), the oldest were dropped: {names}.",
            icon=":material/delete_sweep:",
        )
    if status != "diverged":
        for warning in run.get("warnings", []):
            st.warning(warning[:1].upper() + warning[1:], icon=":material/lightbulb:")


def draw_run_result(run: dict) -> None:
    """After a run: how it ended, the final accuracies, the whole curve and the download button."""
    draw_run_status(run)
    model = run.get("model")
    with st.container(horizontal=True, gap="medium"):
        if model is not None:
            st.metric("Train accuracy", f"{model.train_accuracy:.2f}", width="content")
            st.metric("Test accuracy", f"{model.test_accuracy:.2f}", width="content")
        st.metric("Iterations", f"{run['done']:,} / {run['config'].iterations:,}", width="content")
        final_cost = run["history"][-1][1] if run["history"] else None
        if final_cost is not None and math.isfinite(final_cost):
            st.metric("Final cost", f"{final_cost:.4f}", width="content")
    draw_curves(run["history"], run["accuracy_history"], run["config"].iterations, key="train_result")
    if model is not None:
        stem = preset_name(model.config)
        st.download_button(
            "Download the model (.npz)",
            data=lambda: model_to_bytes(model),
            file_name=f"catdnn-{stem}-{model.iterations_done}it.npz",
            mime="application/octet-stream",
            key="train_download",
            on_click="ignore",
            help="Load it later on the Predict page, or with `python -m catdnn predict --model FILE`",
        )


# --------------------------------------------------------------------------- the Train form
LEARNING_RATES = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
PRESET_CHOICES = ["two-layer", "deep", "custom"]
FORM_KEYS = {"hidden": "train_hidden", "lr": "train_lr", "iterations": "train_iters", "init": "train_init",
             "seed": "train_seed"}


def _preset_values(name: str) -> dict:
    cfg = PRESETS[name]
    return {
        "hidden": ", ".join(str(n) for n in cfg.hidden),
        "lr": cfg.learning_rate,
        "iterations": cfg.iterations,
        "init": cfg.init,
        "seed": cfg.seed,
    }


def init_train_form() -> None:
    """Give the form's widgets their values: the last submitted ones, else the deep preset's."""
    saved = app_state()[SETTINGS] or {"preset": "deep", **_preset_values("deep")}
    for field, key in FORM_KEYS.items():
        if key not in st.session_state:
            st.session_state[key] = saved[field]
    if "train_preset" not in st.session_state:
        st.session_state["train_preset"] = saved["preset"]


def apply_preset() -> None:
    """on_change of the preset control: fill the form with the preset's settings."""
    name = st.session_state.get("train_preset")
    if name in PRESETS:
        for field, value in _preset_values(name).items():
            st.session_state[FORM_KEYS[field]] = value


def config_from_form() -> TrainConfig:
    """The submitted settings as a validated TrainConfig; raises ConfigError with a clear message."""
    s = st.session_state
    hidden = parse_layers(s[FORM_KEYS["hidden"]])
    config = TrainConfig(
        layers=(N_X, *hidden, 1),
        learning_rate=float(s[FORM_KEYS["lr"]]),
        iterations=int(s[FORM_KEYS["iterations"]]),
        init=s[FORM_KEYS["init"]],
        seed=int(s[FORM_KEYS["seed"]]),
    ).validate()
    app_state()[SETTINGS] = {"preset": preset_name(config), **{f: s[k] for f, k in FORM_KEYS.items()}}
    return config


def train_form_ui(disabled_preset: bool = False):
    """The preset control and the settings form; returns True when Train was pressed."""
    init_train_form()
    preset_slot = st.container()
    with st.form("train_form", border=True):
        st.text_input(
            "Hidden layer sizes",
            key=FORM_KEYS["hidden"],
            placeholder="e.g. 20, 7, 5",
            help="Comma-separated sizes of the hidden layers. The input (12288) and output (1) layers are added.",
        )
        left, right = st.columns(2)
        with left:
            st.select_slider(
                "Learning rate (log scale)",
                options=LEARNING_RATES,
                key=FORM_KEYS["lr"],
                format_func=lambda v: f"{v:g}",
            )
            st.selectbox(
                "Weight init", list(INITS), key=FORM_KEYS["init"], format_func=lambda k: f"{k}: {INIT_DESCRIPTIONS[k]}"
            )
        with right:
            st.slider("Iterations", min_value=100, max_value=10_000, step=100, key=FORM_KEYS["iterations"])
            st.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key=FORM_KEYS["seed"])
        submitted = st.form_submit_button("Train", type="primary", key="train_submit", icon=":material/play_arrow:")
    if submitted:  # show which preset the submitted settings are (or "custom")
        try:
            st.session_state["train_preset"] = preset_name(
                TrainConfig(layers=(N_X, *parse_layers(st.session_state[FORM_KEYS["hidden"]]), 1),
                            init=st.session_state[FORM_KEYS["init"]])
            )
        except CatdnnError:
            st.session_state["train_preset"] = "custom"
    with preset_slot:
        st.segmented_control(
            "Preset",
            PRESET_CHOICES,
            key="train_preset",
            on_change=apply_preset,
            disabled=disabled_preset or submitted,
            help="two-layer: [12288, 7, 1] with small init; deep: [12288, 20, 7, 5, 1] with xavier init "
            "(the course's two networks). Choosing one fills the form; custom keeps your settings.",
        )
    return submitted


# --------------------------------------------------------------------------- images
def enlarge(image, scale: int = 2) -> Image.Image:
    """A 64×64 image shown ``scale`` times larger with visible pixels (what the network sees)."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def draw_image_grid(items, width: int = 128) -> None:
    """A wrapping grid of ``(image, caption markdown)`` pairs."""
    with st.container(horizontal=True, gap="small"):
        for image, caption in items:
            with st.container(width=width + 8, gap=None):
                st.image(enlarge(image, max(1, width // 64)), width=width)
                st.caption(caption)


# --------------------------------------------------------------------------- confusion matrix
ROW_LABEL_WIDTH = 100


def confusion_ui(counts: dict, key: str) -> str:
    """The confusion matrix as four buttons (rows: true class, columns: predicted); clicking a cell
    picks it. Returns the chosen cell ("TP", "FP", "FN", "TN") or "errors" (FP and FN)."""
    state_key = f"{key}_cell"
    st.session_state.setdefault(state_key, "errors")

    def choose(cell):
        st.session_state[state_key] = cell  # a callback, before the script runs

    chosen = st.session_state[state_key]
    icon = {"TP": ":material/check:", "TN": ":material/check:", "FP": ":material/close:", "FN": ":material/close:"}
    with st.container(horizontal=True, gap="small", wrap=False):
        st.markdown(" ", width=ROW_LABEL_WIDTH)
        st.markdown("**predicted cat**", width="stretch")
        st.markdown("**predicted non-cat**", width="stretch")
    for row, cells in (("**true cat**", ("TP", "FN")), ("**true non-cat**", ("FP", "TN"))):
        with st.container(horizontal=True, gap="small", vertical_alignment="center", wrap=False):
            st.markdown(row, width=ROW_LABEL_WIDTH)
            for cell in cells:
                st.button(
                    f"{icon[cell]} {counts[cell]} {cell}",
                    key=f"{key}_cell_{cell}",
                    on_click=choose,
                    args=(cell,),
                    type="primary" if chosen == cell else "secondary",
                    width="stretch",
                    help=f"{counts[cell]} {CELL_DESCRIPTIONS[cell]}: click to show them",
                )
    n_err = counts["FP"] + counts["FN"]
    st.button(
        f"Show all {n_err} mistakes (FP + FN)",
        key=f"{key}_cell_errors",
        on_click=choose,
        args=("errors",),
        type="primary" if chosen == "errors" else "secondary",
    )
    return chosen


# --------------------------------------------------------------------------- compare runs
def run_label(name: str, model: Model) -> str:
    """A session model's name with the settings the name leaves out (learning rate, init, seed)."""
    c = model.config
    return f"{name} · α {c.learning_rate:g}, {c.init}, seed {c.seed}"


def draw_compare_runs(key: str) -> None:
    """The cost curves of every model in the session on one chart (their stored histories only)."""
    ms = models()
    if len(ms) < 2:
        st.caption("Train another run (other settings) and the cost curves of this session's runs are drawn "
                   "here, one over the other.")
        return
    runs = [(run_label(name, m), m.history) for name, m in ms.items()]
    st.plotly_chart(plots.compare_costs_figure(runs), key=key, config={"displayModeBar": False})
    st.caption(f"The session keeps at most {MAX_MODELS} models and {fmt_bytes(MAX_SESSION_BYTES)} of weights; "
               "beyond that the oldest are dropped.")


# --------------------------------------------------------------------------- inside the network
def example_picker_ui(ds: Dataset, model: Model, key: str):
    """Choose one image of the test or training set by number, or a random mistake of the model.

    Returns ``(split, split name, index)``.
    """
    use_train = st.toggle("Pick from the training set instead of the test set", key=f"{key}_train_set")
    split, split_name = (ds.train, "training") if use_train else (ds.test, "test")
    index_key = f"{key}_index"
    st.session_state[index_key] = min(int(st.session_state.get(index_key, 0)), split.m - 1)  # after a split change

    def _random_mistake():
        wrong = evaluate.select(model.predict_proba(split.X), split.labels)
        pool = wrong if wrong.size else np.arange(split.m)
        st.session_state[index_key] = int(np.random.default_rng().choice(pool))

    with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
        st.number_input(f"Image number (0 – {split.m - 1})", min_value=0, max_value=split.m - 1, step=1,
                        key=index_key, width=220)
        st.button("Show a random mistake", key=f"{key}_random_mistake", on_click=_random_mistake,
                  icon=":material/shuffle:", help=f"A {split_name} image this model gets wrong")
    return split, split_name, int(st.session_state[index_key])


def draw_dead_units(dead: list, m: int) -> None:
    """A table of the dead ReLU units per hidden layer (masks from ``catdnn.inspect.dead_units`` on ``m``
    training images), and a warning when a whole layer is dead."""
    if not dead:
        st.info("This network has no hidden layer, so no ReLU unit to die.")
        return
    st.markdown(f"| layer | units | dead: 0 for all {m} training images |\n|---|---|---|\n" + "\n".join(
        f"| {l} | {d.size} | {int(d.sum())} ({d.mean():.0%}) |" for l, d in enumerate(dead, start=1)))
    st.caption("A unit whose Z ≤ 0 for every training image outputs 0 and gets a zero gradient (ReLU′ = 0 there), "
               "so gradient descent never brings it back. Too large a learning rate kills units in one step.")
    all_dead = [l for l, d in enumerate(dead, start=1) if d.all()]
    if all_dead:
        st.warning(f"**Every unit of layer {all_dead[0]} is dead**: the layers above see only zeros, so the network "
                   "gives every image the same P(cat). This is what the **Train** page's “network stopped "
                   "learning” warning means.", icon=":material/warning:")


def draw_gradient_check(difference: float, kinks: int) -> None:
    """The gradient check's relative difference and the course's reading of it."""
    verdict, text = gradient_check_verdict(difference)
    st.metric("Relative difference ‖g − g_approx‖ / (‖g‖ + ‖g_approx‖)", f"{difference:.2e}", width="content")
    (st.success if verdict == "great" else st.warning)(
        f"**{verdict.capitalize()}**: {text}. The course's reading: below 1e-7 great, around 1e-5 double-check, "
        "above 1e-3 a bug.")
    if kinks:
        st.caption(f"{kinks} pre-activations lie within 1e-5 of the ReLU kink, where the numerical slope itself is "
                   "unreliable.")
