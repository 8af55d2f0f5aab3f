"""Train: choose the settings, watch the cost fall live, stop whenever, keep the model."""

import math

import streamlit as st

from catdnn import evaluate
from catdnn.config import PRESETS, preset_name
from catdnn.figures import MIXED_COSTS, cost_axis
from catdnn.labels import compare as compare_labels
from catdnn.model_io import model_to_bytes
from ui import identity, page_setup
from ui.dataset import dataset_ui
from ui.figures import compare_costs_figure
from ui.state import Run, fmt_bytes, session, shown_name
from ui.train_form import train_form_ui
from ui.training import (
    draw_curves,
    draw_layers_note,
    draw_run_status,
    draw_solver,
    draw_test_set_note,
    draw_training_frame,
    run_dataset_ui,
    train_live,
)


def test_scores(run: Run, trained_on) -> tuple:
    """The run's model's P(cat) on the test images of the dataset it trained on, and their metrics: computed
    once per run and dataset (every settings change reruns the page; a CNN's predictions take a moment)."""
    if trained_on is None or run.model is None:
        return None, {}
    if trained_on.name not in run.test_scores:
        proba = run.model.predict_proba(trained_on.test.X)
        run.test_scores[trained_on.name] = (proba, evaluate.metrics(proba, trained_on.test.labels))
    return run.test_scores[trained_on.name]


def draw_run_result(run: Run, ds) -> None:
    """After a run: how it ended, the final accuracies on the dataset it trained on, the whole curve and the
    download button."""
    if run.dataset != ds.name:  # first: what follows is about the run's dataset, not the sidebar's
        st.info(f"The sidebar's dataset is now *{shown_name(ds.name)}*; this run trained on "
                f"*{shown_name(run.dataset)}*, and every figure below is measured on it. Press **Train** to train "
                f"on *{shown_name(ds.name)}*.", icon=":material/dataset:")
    draw_run_status(run)
    trained_on = run_dataset_ui(run, ds)
    if trained_on is not None:
        draw_solver(run.config, trained_on)
    model = run.model
    with st.container(horizontal=True, gap="medium"):
        if model is not None:
            st.metric("Train accuracy", f"{model.train_accuracy:.2f}", width="content")
            st.metric("Test accuracy", f"{model.test_accuracy:.2f}", width="content")
            proba, scores = test_scores(run, trained_on)
            for name, label in (("balanced_accuracy", "Test balanced accuracy"), ("auc", "Test AUC")):
                st.metric(label, "–" if scores.get(name) is None else f"{scores[name]:.2f}", width="content",
                          help="Balanced accuracy: the mean of the recall of cats and of non-cats (always "
                          "“non-cat” scores 0.5). AUC: how often a cat gets a higher P(cat) than a non-cat.")
        st.metric("Iterations", f"{run.iterations_done:,} / {run.config.iterations:,}", width="content")
        final_cost = run.history[-1][1] if run.history else None
        if final_cost is not None and math.isfinite(final_cost):
            st.metric("Final cost", f"{final_cost:.4f}", width="content")
    if model is not None and trained_on is not None:
        if caveat := evaluate.auc_caveat(proba):
            st.caption(f"Test AUC: {caveat}")
        draw_test_set_note(trained_on, model.test_accuracy)
    draw_curves(run.history, run.accuracy_history, run.config.iterations, key="train_result", config=run.config)
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
    models = list(state.models.items())
    common, differ = compare_labels([m for _, m in models], numbered=False)  # each named by what sets it apart
    runs = [(f"{name} · {d}", m.history) for (name, m), d in zip(models, differ)]
    ytitle = cost_axis([m.config for _, m in models], mixed=MIXED_COSTS)  # never claims what no run did
    st.plotly_chart(compare_costs_figure(runs, title=f"Cost of each run<br><sup>{common}</sup>", ytitle=ytitle),
                    key=key, config={"displayModeBar": False})
    st.caption(f"The session keeps at most {state.max_models} models and {fmt_bytes(state.max_bytes)} of weights; "
               "beyond that the oldest are dropped.")


page_setup("Train")
st.title("Train")
ds = dataset_ui()
st.caption(
    f"By default, the course's full-batch gradient descent, here on the {ds.train.m:,} training images of "
    f"*{ds.name}*; the test accuracy is measured on its {ds.test.m:,} test images as training goes. The course's "
    "numbers: two-layer 0.72, deep 0.80 (test). "
    f"The **cnn** preset is a small convolutional net ({PRESETS['cnn'].arch}, Adam on mini-batches, flips and "
    "shifts); the architecture field takes such a spec for either kind of network. "
    "The page's address always holds the settings below, trained or not: share it and the form opens filled "
    "in, ready for **Train**." + identity.share_note()
)
config = train_form_ui(ds.train.m)
if config is not None:
    draw_layers_note(config)
    draw_solver(config, ds)
    st.button("Stop", key="train_stop", icon=":material/stop_circle:", help="Stop now and keep the partial model")
    train_live(config, ds, draw_training_frame)
    st.rerun()  # done: redraw the page from the saved run (no Stop button, preset control enabled)

run = session().run
if run is None:
    st.info("Pick a preset (or your own settings) and press **Train**.", icon=":material/arrow_upward:")
elif run.status == "refused":  # the session's limits (class and public mode): nothing trained
    draw_run_status(run)
elif run.status == "running":
    # The stopped run is still saving its model on another thread (session() waited for it).
    st.warning("The last run is still finishing; reload the page in a moment, or press **Train** again.")
else:
    st.subheader(f"Last run · on *{shown_name(run.dataset)}*")
    draw_run_result(run, ds)

if session().models:  # the chart is only built while the expander is open (on_change="rerun" tracks it)
    compare = st.expander(f"Compare runs ({len(session().models)} in this session)", key="train_compare_expander",
                          icon=":material/stacked_line_chart:", on_change="rerun")
    if compare.open:
        with compare:
            draw_compare_runs(key="train_compare")
