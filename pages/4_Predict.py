"""Predict: upload photos (or take one) and see what the network sees and says."""

import hashlib

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from catdnn import evaluate, probe
from catdnn.data import EXPECTED
from catdnn.errors import CatdnnError, ImageError
from catdnn.images import image_to_input, prepare_and_preview
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
#: Most photos judged at once, and most bytes they may hold in all. Streamlit keeps every uploaded file in
#: the server's memory until the browser drops it (20 files of 20 MB added 387 MB), so the ones beyond
#: are dropped from the server's memory too, and the page says which.
MAX_PHOTOS = 10
MAX_PHOTO_BYTES = 50 * 1024**2
#: This session's decoded photos, by the SHA-256 of their bytes: each upload is decoded once, not on every rerun.
DECODED_KEY = "predict_decoded"
#: The uploaded model file's (SHA-256, name) and the model read from it (or the refusal's message).
MODEL_KEY = "predict_model_loaded"


def within_limits(files):
    """The files judged (the first ones, within MAX_PHOTOS and MAX_PHOTO_BYTES) and the files dropped."""
    kept, total = [], 0
    for f in files:
        if len(kept) == MAX_PHOTOS or total + f.size > MAX_PHOTO_BYTES:
            break
        kept.append(f)
        total += f.size
    return kept, files[len(kept):]


def release(files) -> None:
    """Drop uploads from Streamlit's store of this session's files (as st.chat_input does for its own)."""
    ctx = get_script_run_ctx()
    for f in files if ctx is not None else []:
        ctx.uploaded_file_mgr.remove_file(ctx.session_id, f.file_id)


def decoded(data: bytes, name: str):
    """``(preview, (width, height), small)`` of a photo's bytes, or the ImageError's message: decoded once per
    content in this session (the cache keeps only the photos shown now)."""
    cache = st.session_state.setdefault(DECODED_KEY, {})
    key = hashlib.sha256(data).hexdigest()
    if key not in cache:
        try:
            small, preview, size = prepare_and_preview(data, name)  # one decode, at reduced scale
            cache[key] = (preview, size, small)
        except ImageError as exc:
            cache[key] = str(exc)  # the message, not the exception (its traceback would keep the bytes)
    return key, cache[key]


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
        data = upload.getvalue()
        key = (hashlib.sha256(data).hexdigest(), upload.name)
        if st.session_state.get(MODEL_KEY, (None,))[0] != key:  # read and checked once per file, not per rerun
            try:
                st.session_state[MODEL_KEY] = (key, load_model(data, name=upload.name))
            except CatdnnError as exc:
                st.session_state[MODEL_KEY] = (key, str(exc))
        model = st.session_state[MODEL_KEY][1]
        if isinstance(model, str):
            st.error(model, icon=":material/block:")
            model = None
        else:
            st.caption(f"Model: {model_label(model)}")
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
inputs, dropped = within_limits([*([shot] if shot is not None else []), *(files or [])])
if dropped:
    release(dropped)
    st.warning(f"At most {MAX_PHOTOS} photos ({MAX_PHOTO_BYTES // 2**20} MB in all) are judged at once, so "
               f"{len(dropped)} were dropped: {', '.join(f.name for f in dropped[:5])}"
               f"{' …' if len(dropped) > 5 else ''}. Remove some photos to judge others.",
               icon=":material/warning:")

if inputs and model is None:
    st.warning("Choose or train a model above to get verdicts.", icon=":material/arrow_upward:")
shown = set()
for f in inputs if model is not None else []:
    name = f.name if f is not shot else "camera photo"
    with st.container(border=True):
        st.markdown(f"**{name}**")
        key, result = decoded(f.getvalue(), name)
        shown.add(key)
        if isinstance(result, str):
            st.error(result, icon=":material/block:")
            continue
        preview, (width, height), small = result
        x = image_to_input(small)  # (12288, 1)
        p = float(model.predict_proba(x)[0])
        label = evaluate.verdict(p)
        c1, c2, c3, c4 = st.columns([3, 2, 2, 3], vertical_alignment="top")  # the two 64×64 pictures level
        c1.image(preview, caption=f"original, {width}×{height}")
        c2.image(enlarge(small, 2), caption="what the network sees (64×64)", width=128)
        if show_saliency:
            heat = probe.saliency_map(probe.saliency(model.params, x, tta=model.config.tta, arch=model.arch,
                                                        bn=model.bn))
            c3.image(enlarge(saliency_picture(np.asarray(small), heat), 2), width=128,
                     caption="where it looks: bright = the pixels that move P(cat) most")
        with c4:
            st.markdown(f"### {':material/pets: cat' if label == 'cat' else ':material/block: not a cat'}")
            st.progress(p, text=f"P(cat) = {p:.2f}")
            st.caption(f"Verdict: {label} (cat when P(cat) > {THRESHOLD})")
if model is not None:  # forget the photos no longer shown
    st.session_state[DECODED_KEY] = {k: v for k, v in st.session_state.get(DECODED_KEY, {}).items() if k in shown}
