"""Train: choose the settings, watch the cost fall live, stop whenever, keep the model."""

import math

import streamlit as st

from catdnn.config import MAX_SEED, PRESETS, TrainConfig, parse_layers, preset_name
from catdnn.data import N_X
from catdnn.errors import ConfigError
from catdnn.model_io import model_to_bytes
from catdnn.network import INIT_DESCRIPTIONS, INITS
from ui import page_setup
from ui.dataset import dataset_ui
from ui.figures import compare_costs_figure
from ui.state import Run, fmt_bytes, session
from ui.training import draw_curves, draw_layers_note, draw_run_status, draw_training_frame, train_live

LEARNING_RATES = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]


def form_values(config: TrainConfig) -> dict:
    """The form's widget values (by key) that show ``config``."""
    return {"train_hidden": ", ".join(str(n) for n in config.hidden), "train_lr": config.learning_rate,
            "train_iters": config.iterations, "train_init": config.init, "train_seed": config.seed}


def apply_preset() -> None:
    """on_change of the preset control: fill the form with the preset's settings ("custom" keeps them)."""
    name = st.session_state["train_preset"]
    if name in PRESETS:
        st.session_state.update(form_values(PRESETS[name]))


def train_form_ui() -> TrainConfig | None:
    """The preset control and the settings form. Returns the settings when Train is pressed and they are
    possible; else None (impossible settings are explained under the form)."""
    # widget state is dropped while another page is open: start from the last run's settings
    last = session().run
    start = last.config if last is not None else PRESETS["deep"]
    for key, value in {**form_values(start), "train_preset": preset_name(start)}.items():
        st.session_state.setdefault(key, value)
    preset_slot = st.container()  # drawn after the form, which may change the preset shown
    with st.form("train_form", border=True):
        hidden = st.text_input("Hidden layer sizes", key="train_hidden", placeholder="e.g. 20, 7, 5",
                               help="Comma-separated sizes of the hidden layers. The input (12288) and output (1) "
                               "layers are added.")
        left, right = st.columns(2)
        learning_rate = left.select_slider("Learning rate (log scale)", options=LEARNING_RATES, key="train_lr",
                                           format_func=lambda v: f"{v:g}")
        init = left.selectbox("Weight init", list(INITS), key="train_init",
                              format_func=lambda k: f"{k}: {INIT_DESCRIPTIONS[k]}")
        iterations = right.slider("Iterations", min_value=100, max_value=10_000, step=100, key="train_iters")
        seed = right.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key="train_seed")
        submitted = st.form_submit_button("Train", type="primary", key="train_submit", icon=":material/play_arrow:")
    config = None
    if submitted:
        try:
            config = TrainConfig(layers=(N_X, *parse_layers(hidden), 1), learning_rate=float(learning_rate),
                                 iterations=int(iterations), init=init, seed=int(seed)).validate()
        except ConfigError as exc:
            st.error(f"**Cannot train with these settings:** {exc}", icon=":material/block:")
        st.session_state["train_preset"] = preset_name(config) if config else "custom"  # what was submitted
    preset_slot.segmented_control(
        "Preset", ["two-layer", "deep", "custom"], key="train_preset", on_change=apply_preset, disabled=submitted,
        help="two-layer: [12288, 7, 1] with small init; deep: [12288, 20, 7, 5, 1] with xavier init "
        "(the course's two networks). Choosing one fills the form; custom keeps your settings.",
    )
    return config


def draw_run_result(run: Run) -> None:
    """After a run: how it ended, the final accuracies, the whole curve and the download button."""
    draw_run_status(run)
    model = run.model
    with st.container(horizontal=True, gap="medium"):
        if model is not None:
            st.metric("Train accuracy", f"{model.train_accuracy:.2f}", width="content")
            st.metric("Test accuracy", f"{model.test_accuracy:.2f}", width="content")
        st.metric("Iterations", f"{run.iterations_done:,} / {run.config.iterations:,}", width="content")
        final_cost = run.history[-1][1] if run.history else None
        if final_cost is not None and math.isfinite(final_cost):
            st.metric("Final cost", f"{final_cost:.4f}", width="content")
    draw_curves(run.history, run.accuracy_history, run.config.iterations, key="train_result")
    if model is not None:
        st.download_button(
            "Download the model (.npz)", data=lambda: model_to_bytes(model), on_click="ignore",
            file_name=f"catdnn-{preset_name(model.config)}-{model.iterations_done}it.npz",
            mime="application/octet-stream", key="train_download",
            help="Load it later on the Predict page, or with `python -m catdnn predict --model FILE`",
        )


def draw_compare_runs(key: str) -> None:
    """The cost curves of every model in the session on one chart (their stored histories only)."""
    state = session()
    if len(state.models) < 2:
        st.caption("Train another run (other settings) and the cost curves of this session's runs are drawn "
                   "here, one over the other.")
        return
    runs = [(f"{name} · α {m.config.learning_rate:g}, {m.config.init}, seed {m.config.seed}", m.history)
            for name, m in state.models.items()]
    st.plotly_chart(compare_costs_figure(runs), key=key, config={"displayModeBar": False})
    st.caption(f"The session keeps at most {state.max_models} models and {fmt_bytes(state.max_bytes)} of weights; "
               "beyond that the oldest are dropped.")


page_setup("Train")
st.title("Train")
st.caption(
    "Full-batch gradient descent on the 209 training images; the test accuracy is measured on the "
    "50 test images as training goes. The course's numbers: two-layer 0.72, deep 0.80 (test)."
)
ds = dataset_ui()
config = train_form_ui()
if config is not None:
    draw_layers_note(config)
    st.button("Stop", key="train_stop", icon=":material/stop_circle:", help="Stop now and keep the partial model")
    train_live(config, ds, draw_training_frame)
    st.rerun()  # done: redraw the page from the saved run (no Stop button, preset control enabled)

run = session().run
if run is None:
    st.info("Pick a preset (or your own settings) and press **Train**.", icon=":material/arrow_upward:")
elif run.status == "running":
    # The stopped run is still saving its model on another thread (session() waited for it).
    st.warning("The last run is still finishing; reload the page in a moment, or press **Train** again.")
else:
    st.subheader("Last run")
    draw_run_result(run)

if session().models:  # the chart is only built while the expander is open (on_change="rerun" tracks it)
    compare = st.expander(f"Compare runs ({len(session().models)} in this session)", key="train_compare_expander",
                          icon=":material/stacked_line_chart:", on_change="rerun")
    if compare.open:
        with compare:
            draw_compare_runs(key="train_compare")
