"""Predict: upload photos (or take one) and see what the network sees and says."""

import numpy as np
import streamlit as st

from catdnn import evaluate, probe
from catdnn.data import EXPECTED
from catdnn.errors import CatdnnError, ImageError
from catdnn.images import image_to_input, prepare_image, preview_image
from catdnn.model_io import load_model
from catdnn.network import THRESHOLD
from ui import page_setup
from ui.state import model_label
from ui.widgets import enlarge, model_or_offer_ui, saliency_picture

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
HONEST_NOTE = (
    f"The course's networks learn from only **{EXPECTED['train']} small photos** (64×64 pixels); its deep network "
    f"gets 80 % of the {EXPECTED['test']} test photos right. Everyday photos differ (framing, light, other animals, "
    "people), so it is **often wrong on them**: read its verdict as a demonstration, not a fact."
)

page_setup("Predict")
st.title("Predict")
st.info(HONEST_NOTE, icon=":material/info:")

source = st.radio(
    "Model", ["session", "file"], horizontal=True, key="predict_source",
    format_func={"session": "Trained in this session", "file": "A model file (.npz)"}.get,
)
model = None
if source == "file":
    upload = st.file_uploader("Model file", type=["npz"], key="predict_model_file",
                              help="A file saved with the Train page's download button or `python -m catdnn train`")
    if upload is None:
        st.caption("Upload a model file to use it.")
    else:
        try:
            model = load_model(upload.getvalue(), name=upload.name)
            st.caption(f"Model: {model_label(model)}")
        except CatdnnError as exc:
            st.error(str(exc), icon=":material/block:")
else:
    model = model_or_offer_ui(key="predict")

st.subheader("Your photos")
files = st.file_uploader(
    "Photos (JPEG, PNG, WebP, BMP, GIF)", type=IMAGE_TYPES, accept_multiple_files=True, key="predict_files"
)
use_camera = st.toggle("Use the camera", key="predict_use_camera")
show_saliency = st.toggle("Show what the network looks at (saliency map)", value=True, key="predict_saliency",
                          help="The gradient of P(cat) with respect to each input pixel: where a small change of the "
                          "image would change P(cat) the most")
shot = st.camera_input("Take a photo", key="predict_camera") if use_camera else None
inputs = [*(files or []), *([shot] if shot is not None else [])]

if inputs and model is None:
    st.warning("Choose or train a model above to get verdicts.", icon=":material/arrow_upward:")
for f in inputs if model is not None else []:
    name = f.name if f is not shot else "camera photo"
    with st.container(border=True):
        st.markdown(f"**{name}**")
        try:
            data = f.getvalue()
            preview, (width, height) = preview_image(data, name)  # decoded at reduced scale, not full size
            small = prepare_image(data, name)
        except ImageError as exc:
            st.error(str(exc), icon=":material/block:")
            continue
        x = image_to_input(small)  # (12288, 1)
        p = float(model.predict_proba(x)[0])
        label = evaluate.verdict(p)
        c1, c2, c3, c4 = st.columns([3, 2, 2, 3], vertical_alignment="top")  # the two 64×64 pictures level
        c1.image(preview, caption=f"original, {width}×{height}")
        c2.image(enlarge(small, 2), caption="what the network sees (64×64)", width=128)
        if show_saliency:
            heat = probe.saliency_map(probe.saliency(model.params, x, tta=model.config.tta, arch=model.arch))
            c3.image(enlarge(saliency_picture(np.asarray(small), heat), 2), width=128,
                     caption="where it looks: bright = the pixels that move P(cat) most")
        with c4:
            st.markdown(f"### {':material/pets: cat' if label == 'cat' else ':material/block: not a cat'}")
            st.progress(p, text=f"P(cat) = {p:.2f}")
            st.caption(f"Verdict: {label} (cat when P(cat) > {THRESHOLD})")
