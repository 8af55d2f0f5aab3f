"""Misclassified: the images the current model gets wrong, worst first, and the confusion matrix."""

import streamlit as st

from catdnn import evaluate
from catdnn.network import THRESHOLD, predicted
from ui import page_setup
from ui.dataset import dataset_ui
from ui.widgets import draw_image_grid, require_model_ui

ROW_LABEL_WIDTH = 100
CELL_ICONS = {"TP": ":material/check:", "TN": ":material/check:", "FP": ":material/close:", "FN": ":material/close:"}


def confusion_ui(counts: dict, key: str) -> str:
    """The confusion matrix as four buttons (rows: true class, columns: predicted); clicking a cell
    picks it. Returns the chosen cell ("TP", "FP", "FN", "TN") or "errors" (FP and FN)."""
    state_key = f"{key}_cell"
    st.session_state.setdefault(state_key, "errors")

    def choose(cell):
        st.session_state[state_key] = cell  # a callback, before the script runs

    chosen = st.session_state[state_key]
    with st.container(horizontal=True, gap="small", wrap=False):
        st.markdown(" ", width=ROW_LABEL_WIDTH)
        st.markdown("**predicted cat**", width="stretch")
        st.markdown("**predicted non-cat**", width="stretch")
    for row, cells in (("**true cat**", ("TP", "FN")), ("**true non-cat**", ("FP", "TN"))):
        with st.container(horizontal=True, gap="small", vertical_alignment="center", wrap=False):
            st.markdown(row, width=ROW_LABEL_WIDTH)
            for cell in cells:
                st.button(
                    f"{CELL_ICONS[cell]} {counts[cell]} {cell}", key=f"{key}_cell_{cell}", on_click=choose,
                    args=(cell,), type="primary" if chosen == cell else "secondary", width="stretch",
                    help=f"{counts[cell]} {evaluate.CELL_DESCRIPTIONS[cell]}: click to show them",
                )
    st.button(
        f"Show all {counts['FP'] + counts['FN']} mistakes (FP + FN)", key=f"{key}_cell_errors", on_click=choose,
        args=("errors",), type="primary" if chosen == "errors" else "secondary",
    )
    return chosen


page_setup("Misclassified")
st.title("Misclassified")
ds = dataset_ui()
model = require_model_ui(key="mis", ds=ds)

use_train = st.toggle("Show the training set instead of the test set", key="mis_train_set")
split, split_name = (ds.train, "training") if use_train else (ds.test, "test")
threshold = st.slider(
    "Threshold: the verdict is “cat” when P(cat) is above",
    min_value=0.0, max_value=1.0, value=THRESHOLD, step=0.01, key="mis_threshold",
)
proba = model.predict_proba(split.X)
labels = split.labels
counts = evaluate.confusion(proba, labels, threshold)
scores = {k: "–" if v is None else f"{v:.2f}" for k, v in evaluate.metrics(proba, labels, threshold).items()}
st.markdown(f"**{split_name.capitalize()} set, {split.m} images:** accuracy {scores['accuracy']}, balanced accuracy "
            f"{scores['balanced_accuracy']} at threshold {threshold:.2f}; AUC {scores['auc']} (any threshold). "
            "Click a cell to show its images.")
if caveat := evaluate.auc_caveat(proba):
    st.caption(f"AUC: {caveat}")
cell = confusion_ui(counts, key="mis")

which = evaluate.ERRORS if cell == "errors" else (cell,)
idx = evaluate.select(proba, labels, threshold, which)
title = "Mistakes" if cell == "errors" else evaluate.CELL_DESCRIPTIONS[cell].capitalize()
order_note = "most confidently wrong first" if set(which) <= set(evaluate.ERRORS) else "closest calls first"
st.subheader(f"{title}: {len(idx)} image{'s' if len(idx) != 1 else ''}")
if len(idx) == 0:
    st.success("None at this threshold.")
else:
    st.caption(f"Sorted by the probability given to the wrong class, {order_note}.")
    yhat = predicted(proba, threshold)
    draw_image_grid([
        (split.images[i], f"true **{ds.classes[labels[i]]}** · said **{ds.classes[yhat[i]]}**  \n"
                          f"P(cat) = {proba[i]:.2f} · #{i}")
        for i in idx
    ])
