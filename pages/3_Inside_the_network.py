"""Inside the network: what the first layer looks for, one image layer by layer, dead units, a gradient check."""

import weakref

import numpy as np
import streamlit as st

from catdnn import evaluate, probe
from catdnn.errors import CatdnnError
from catdnn.network import THRESHOLD, gradient_check, param_count
from ui import page_setup
from ui.dataset import dataset_ui
from ui.figures import LAYER_STATS_VIEWS, activation_figure, layer_stats_figure
from ui.widgets import draw_image_grid, enlarge, require_model_ui


def example_picker_ui(ds, model, key: str):
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
    """A table of the dead ReLU units per hidden layer (``probe.dead_units`` on ``m`` training images),
    and a warning when a whole layer is dead."""
    if not dead:
        st.info("This network has no hidden layer, so no ReLU unit to die.")
        return
    st.markdown(f"| layer | units | dead: 0 for all {m} training images |\n|---|---|---|\n" + "\n".join(
        f"| {l} | {d.size} | {int(d.sum())} ({d.mean():.0%}) |" for l, d in enumerate(dead, start=1)))
    st.caption("A unit whose Z ≤ 0 for every training image outputs 0 and gets a zero gradient (ReLU′ = 0 there). "
               "In layer 1, plain gradient descent never brings it back: its inputs, the images, never change. A dead "
               "unit of a deeper layer can come back as the layers below it change what it receives (so can any "
               "unit under momentum, L2, or flipped and shifted images). Too large a learning rate kills units in "
               "one step.")
    all_dead = [l for l, d in enumerate(dead, start=1) if d.all()]
    if all_dead:
        st.warning(f"**Every unit of layer {all_dead[0]} is dead**: the layers above see only zeros, so the network "
                   "gives every image the same P(cat). This is what the **Train** page's “network stopped "
                   "learning” warning means.", icon=":material/warning:")


def draw_gradient_check(difference: float, kinks: int) -> None:
    """The gradient check's relative difference and the course's reading of it."""
    verdict, text = probe.gradient_check_verdict(difference)
    st.metric("Relative difference ‖g − g_approx‖ / (‖g‖ + ‖g_approx‖)", f"{difference:.2e}", width="content")
    (st.success if verdict == "great" else st.warning)(
        f"**{verdict.capitalize()}**: {text}. The course's reading: below 1e-7 great, around 1e-5 double-check, "
        "above 1e-3 a bug.")
    if kinks:
        st.caption(f"{kinks} pre-activations lie within 1e-5 of the ReLU kink, where the numerical slope itself is "
                   "unreliable.")


page_setup("Inside the network")
st.title("Inside the network")
ds = dataset_ui()
model = require_model_ui(key="inside", ds=ds)

if model.is_cnn:  # a convolutional net: its filters and feature maps; the MLP's views below do not apply
    arch = model.arch
    st.header("What the first convolution looks for")
    W1 = model.params[0][0]  # (C_1, 9·3)
    st.markdown(f"Row *k* of $W^{{[1]}}$ {W1.shape} is filter *k*: 3×3 pixels × 3 colours, slid over the "
                f"{arch.input_px}×{arch.input_px} input image ({model.network}). Each filter's output is large where "
                "the image looks like it: edges, colour blobs.")
    st.caption("Mid-grey is 0; each filter is scaled on its own (its largest |w| is pure black or white).")
    draw_image_grid([(enlarge(img, 21), f"filter {k + 1}")
                     for k, img in enumerate(probe.filter_images(model.params, arch, 1))], width=64)
    st.header("Feature maps of one image")
    split, split_name, i = example_picker_ui(ds, model, key="inside")
    layer = st.segmented_control("Conv layer", list(range(1, len(arch.convs) + 1)), default=1,
                                 key="inside_conv_layer", format_func=lambda l: f"conv {l} ({arch.convs[l - 1]})") or 1
    x = split.X[:, [i]]  # (12288, 1)
    maps = probe.feature_map_images(model.params, arch, x, layer, bn=model.bn)  # (C_l, H_l, W_l)
    p = float(model.predict_proba(x)[0])
    left, right = st.columns([1, 3])
    with left:
        st.image(enlarge(split.images[i], 2), width=128)
        label = evaluate.verdict(p)
        st.markdown(f"{split_name.capitalize()} image **#{i}**, a **{ds.classes[split.labels[i]]}**: P(cat) = "
                    f"**{p:.4f}**, verdict **{label}** (cat when P(cat) > {THRESHOLD}).")
    with right:
        st.caption(f"The {maps.shape[0]} maps out of conv layer {layer} for this image, "
                   f"{maps.shape[1]}×{maps.shape[2]} px each (after the ReLU, before the pooling): white where the "
                   "filter matches, black where it does not (each map scaled on its own).")
        draw_image_grid([(enlarge(m, max(1, 64 // m.shape[0])), f"map {k + 1}") for k, m in enumerate(maps)], width=64)
    st.info("The per-unit activations, dead units, per-layer training statistics and the gradient check on this "
            "page are for MLPs (the course's networks). The convolution and pooling layers' gradients are checked "
            "by central differences in the tests (tests/test_conv.py, relative error below 1e-7).",
            icon=":material/info:")
    st.stop()

layers, params, L = model.layers, model.params, len(model.params)
W1 = params[0][0]  # (n_1, 12288)
dead = probe.dead_units(params, ds.train.X, bn=model.bn)  # per hidden layer, (n_l,) bool

st.header("What the first layer looks for")
change = st.toggle("Show what training changed: W[1] minus its random start", key="inside_minus_init",
                   help="The weights before training are the same random draw (init and seed) as this run's")
W = W1 - probe.initial_first_layer(layers, model.config.init, model.config.seed) if change else W1
n1 = W.shape[0]
if n1 <= 24:
    units, which = probe.choose_units(W, n1, "first"), f"all {n1} units"
else:
    left, right = st.columns(2)
    by = left.radio("Units", ["norm", "first"], key="inside_units_by", horizontal=True,
                    format_func={"norm": "largest ‖w‖ first", "first": "in order"}.get)
    n = right.slider("How many", min_value=4, max_value=min(n1, 96), value=24, step=4, key="inside_units_n")
    units = probe.choose_units(W, n, by)
    which = (f"the {len(units)} of {n1} units with the largest norm ‖w‖" if by == "norm"
             else f"units 1–{len(units)} of {n1}")
st.markdown(f"Row *k* of $W^{{[1]}}$ {W1.shape} holds one weight per input pixel and colour: reshaped to "
            f"64×64×3 it is the picture unit *k* compares the image with. Showing {which}"
            + (", minus the random weights they started from." if change else "."))
st.caption("Mid-grey is 0. A brighter red, green or blue area means the unit's Z grows when the image has more of "
           "that colour there; darker means it shrinks. Each unit is scaled on its own (its largest |w| is pure "
           "black or white): compare patterns, not brightness between units."
           + ("" if change else " Noise? Training moves each weight only a little from its random start: switch "
              "on the toggle above to see what it added."))
norms = probe.unit_norms(W)
draw_image_grid([(img, f"unit {u + 1} · ‖w‖ {norms[u]:.2f}") for u, img in zip(units, probe.weight_images(W, units))])

st.header("Follow one image through the network")
split, split_name, i = example_picker_ui(ds, model, key="inside")
acts = probe.layer_activations(params, split.X[:, [i]], bn=model.bn)  # [A[1], …, A[L]], A[l] of shape (n_l, 1)
p = float(acts[-1][0, 0])
left, right = st.columns([1, 3])
with left:
    st.image(enlarge(split.images[i], 2), width=128)
    st.markdown(f"{split_name.capitalize()} image **#{i}**, a **{ds.classes[split.labels[i]]}**.  \n"
                f"$A^{{[0]}} = x$ is ({layers[0]}, 1): the image as one column.")
with right:
    st.caption("Bars: each unit's activation. Grey ○: 0 for this image. Red ×: dead, 0 for every training image.")
    for l, a in enumerate(acts[:-1], start=1):
        st.markdown(f"**Layer {l}**: $A^{{[{l}]}} = \\mathrm{{ReLU}}(Z^{{[{l}]}})$, "
                    f"{int((a == 0).sum())} of {a.shape[0]} units are 0 for this image")
        st.plotly_chart(activation_figure(a, dead[l - 1]), key=f"inside_act_{l}", config={"displayModeBar": False})
        st.caption(probe.shape_line(layers, l))
    st.markdown(f"**Layer {L}** (output): $A^{{[{L}]}} = \\sigma(Z^{{[{L}]}})$ = P(cat) = **{p:.4f}**")
    st.caption(probe.shape_line(layers, L))
    st.progress(p, text=f"P(cat) = {p:.2f}")
    label = evaluate.verdict(p)
    right_answer = label == ("cat" if split.labels[i] == 1 else "non-cat")
    st.markdown(f"Verdict: **{label}** (cat when P(cat) > {THRESHOLD}), {'right' if right_answer else '**wrong**'}.")

st.header("Dead units across the training set")
draw_dead_units(dead, ds.train.m)

st.header("Gradients and activations during training")
if not model.stats:
    st.info("**No statistics were recorded for this model**: a model loaded from a file (or from the run history) "
            "keeps its weights and curves, not what its layers did while it trained. Train a run on the **Train** "
            "page to see them here.", icon=":material/info:")
else:
    view = st.segmented_control("Show", list(LAYER_STATS_VIEWS), key="inside_stats_view", default="grad_norms",
                                format_func={"grad_norms": "gradient norms", "mean_activations": "mean activations",
                                             "zero_fractions": "zero ReLUs"}.get) or "grad_norms"
    st.plotly_chart(layer_stats_figure(model.stats, view, model.config.iterations), key="inside_stats",
                    config={"displayModeBar": False})
    first = model.stats[0]
    lo, hi = (int(np.argmin(first.grad_norms)), int(np.argmax(first.grad_norms)))
    st.caption(f"Recorded {len(model.stats)} times during the run, on the whole training set without dropout, at the "
               "parameters before that iteration's update. Vanishing gradients: every ‖dW‖ sits decades low and "
               "stays there, so nothing learns (×0.01, the two-layer net's init, does this to the deep net); "
               "exploding: the norms climb by decades. A hidden layer whose fraction of zero ReLUs reaches 1 is dead. "
               f"This run's first record (iteration {first.iteration:,}): ‖dW‖ from {first.grad_norms[lo]:.3g} in "
               f"layer {lo + 1} to {first.grad_norms[hi]:.3g} in layer {hi + 1}.")

st.header("Gradient check")
small, X_small, Y_small, small_layers = probe.small_network(params, ds.train.X, ds.train.Y)
st.markdown(
    "Checks that backpropagation's $dW$, $db$ equal the slopes of the cost measured numerically, "
    "$(J(\\theta + \\varepsilon) - J(\\theta - \\varepsilon)) / 2\\varepsilon$, parameter by parameter. That takes "
    f"two forward passes per parameter, so it runs on a small copy of this model: layers {small_layers}, the same "
    f"depth with its own weights on {small_layers[0]} evenly spaced inputs of 12288 and the first units of each "
    f"layer (rescaled so that Z keeps its size), on {X_small.shape[1]} training images: "
    f"{param_count(small_layers):,} parameters.")
if st.button("Run the gradient check", key="inside_gradcheck", icon=":material/calculate:"):
    try:
        st.session_state["inside_gradcheck_result"] = {  # a weak reference: a dropped model is freed
            "model": weakref.ref(model), "difference": gradient_check(small, X_small, Y_small),
            "kinks": probe.kink_count(small, X_small)}
    except CatdnnError as exc:
        st.error(f"**The gradient check failed:** {exc}", icon=":material/block:")
result = st.session_state.get("inside_gradcheck_result")
if result and result["model"]() is model:
    draw_gradient_check(result["difference"], result["kinks"])
