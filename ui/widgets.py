"""Widgets more than one page uses: the image grid, and the model picker with its one-click offer."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from catdnn import probe
from catdnn.config import PRESETS
from catdnn.data import Dataset
from catdnn.model import Model

from .dataset import dataset_ui
from .state import model_label, session, shown_name
from .training import draw_progress_frame, draw_run_status, train_live


# --------------------------------------------------------------------------- images
def enlarge(image, scale: int = 2) -> Image.Image:
    """A 64×64 image shown ``scale`` times larger with visible pixels (what the network sees)."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


#: The saliency picture's contrast: the least salient half of the pixels shows the photo alone, the top 1 %
#: the full colour (a network's gradient is spread over the whole image: scaled by its maximum, most of it is faint).
SALIENCY_PERCENTILES = (50, 99)


def saliency_picture(image, heat: np.ndarray) -> np.ndarray:
    """The 64×64 image with its saliency map (:func:`catdnn.probe.saliency_map`) on top, made visible: the
    map averaged over each pixel's 3×3 neighbourhood (spots, not single pixels) and stretched between the
    :data:`SALIENCY_PERCENTILES`. Returns an ndarray of shape (64, 64, 3), uint8."""
    rows, cols = heat.shape
    padded = np.pad(np.asarray(heat, dtype=np.float64), 1, mode="edge")
    smooth = sum(padded[i:i + rows, j:j + cols] for i in range(3) for j in range(3)) / 9.0
    low, high = np.percentile(smooth, SALIENCY_PERCENTILES)
    shown = np.clip((smooth - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(smooth)
    return probe.saliency_overlay(np.asarray(image), shown, strength=0.9)


def draw_image_grid(items, width: int = 128) -> None:
    """A wrapping grid of ``(image, caption markdown)`` pairs."""
    with st.container(horizontal=True, gap="small"):
        for image, caption in items:
            with st.container(width=width + 8, gap=None):
                st.image(enlarge(image, max(1, width // 64)), width=width)
                st.caption(caption)


# --------------------------------------------------------------------------- the session's models
def model_picker_ui(key: str) -> Model | None:
    """The current model, with a selector when the session holds more than one."""
    state = session()
    if len(state.models) > 1:
        names = list(reversed(state.models))
        st.session_state[key] = state.current if state.current in state.models else names[0]

        def _pick():
            state.current = st.session_state[key]

        st.selectbox("Model", names, key=key, on_change=_pick, help="Models trained in this session, newest first")
    model = state.current_model
    if model is not None and len(state.models) == 1:
        st.caption(f"Model: {model_label(model)}")
    return model


def model_or_offer_ui(key: str, ds: Dataset | None = None) -> Model | None:
    """The current model; without one, say so and offer to train the deep preset in one click.

    ``ds``: the dataset, when the page has loaded it already (else it is loaded on the click).
    """
    model = model_picker_ui(key=f"{key}_model")
    if model is not None:
        if ds is not None and model.dataset != ds.name:
            st.info(f"This model was trained on *{shown_name(model.dataset)}*; this page measures it on the "
                    f"sidebar's dataset, *{shown_name(ds.name)}*.", icon=":material/dataset:")
        return model
    st.info(
        "**No model yet.** Train one on the **Train** page (sidebar), or train the course's deep "
        "network here with one click (a few seconds)."
    )
    if st.button("Train the deep preset now", key=f"{key}_train_deep", type="primary"):
        run = train_live(PRESETS["deep"], ds if ds is not None else dataset_ui(), draw_progress_frame)
        if run.status == "finished":
            st.rerun()  # redraw the page with the new model (and without this offer)
        draw_run_status(run)
    return None


def require_model_ui(key: str, ds: Dataset | None = None) -> Model:
    """The current model; without one, the one-click offer of :func:`model_or_offer_ui`, then the page
    stops here (for pages that show nothing without a model)."""
    model = model_or_offer_ui(key, ds)
    if model is None:
        st.stop()
    return model
