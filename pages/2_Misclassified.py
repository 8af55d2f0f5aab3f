"""Misclassified: the images the current model gets wrong, worst first, and the confusion matrix."""

import streamlit as st

import ui
from catdnn import evaluate

st.title("Misclassified")
ds = ui.dataset_ui()
model = ui.model_or_offer_ui(key="mis", dataset_loader=lambda: ds)
if model is None:
    st.stop()

use_train = st.toggle("Show the training set instead of the test set", key="mis_train_set")
split, split_name = (ds.train, "training") if use_train else (ds.test, "test")
threshold = st.slider(
    "Threshold: the verdict is “cat” when P(cat) is above",
    min_value=0.0, max_value=1.0, value=0.5, step=0.01, key="mis_threshold",
)
proba = model.predict_proba(split.X)
labels = split.labels
counts = evaluate.confusion(proba, labels, threshold)
acc = evaluate.scores(counts)["accuracy"]
st.markdown(f"**{split_name.capitalize()} set, {split.m} images:** accuracy {acc:.2f} at threshold {threshold:.2f}. "
            "Click a cell to show its images.")
cell = ui.confusion_ui(counts, key="mis")

which = evaluate.ERRORS if cell == "errors" else (cell,)
idx = evaluate.select(proba, labels, threshold, which)
title = "Mistakes" if cell == "errors" else evaluate.CELL_DESCRIPTIONS[cell].capitalize()
order_note = "most confidently wrong first" if set(which) <= set(evaluate.ERRORS) else "closest calls first"
st.subheader(f"{title}: {len(idx)} image{'s' if len(idx) != 1 else ''}")
if len(idx) == 0:
    st.success("None at this threshold.")
else:
    st.caption(f"Sorted by the probability given to the wrong class, {order_note}.")
    yhat = evaluate.predicted(proba, threshold)
    ui.draw_image_grid(
        [
            (
                split.images[i],
                f"true **{ds.classes[labels[i]]}** · said **{ds.classes[yhat[i]]}**  \nP(cat) = {proba[i]:.2f} · #{i}",
            )
            for i in idx
        ]
    )
