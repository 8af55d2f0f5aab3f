"""Inside the network: what the first layer looks for, one image layer by layer, dead units, a gradient check."""

import weakref

import streamlit as st

import ui
from catdnn import evaluate, inspect, plots
from catdnn.errors import CatdnnError
from catdnn.network import THRESHOLD, gradient_check

st.title("Inside the network")
ds = ui.dataset_ui()
model = ui.model_or_offer_ui(key="inside", dataset_loader=lambda: ds)
if model is None:
    st.stop()
layers, params, L = model.layers, model.params, len(model.params)
W1 = params[0][0]  # (n_1, 12288)
dead = inspect.dead_units(params, ds.train.X)  # per hidden layer, (n_l,) bool

st.header("What the first layer looks for")
change = st.toggle("Show what training changed: W[1] minus its random start", key="inside_minus_init",
                   help="The weights before training are the same random draw (init and seed) as this run's")
W = W1 - inspect.initial_first_layer(layers, model.config.init, model.config.seed) if change else W1
n1 = W.shape[0]
if n1 <= 24:
    units, which = inspect.choose_units(W, n1, "first"), f"all {n1} units"
else:
    left, right = st.columns(2)
    by = left.radio("Units", ["norm", "first"], key="inside_units_by", horizontal=True,
                    format_func={"norm": "largest ‖w‖ first", "first": "in order"}.get)
    n = right.slider("How many", min_value=4, max_value=min(n1, 96), value=24, step=4, key="inside_units_n")
    units = inspect.choose_units(W, n, by)
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
norms = inspect.unit_norms(W)
ui.draw_image_grid([(img, f"unit {u + 1} · ‖w‖ {norms[u]:.2f}")
                    for u, img in zip(units, inspect.weight_images(W, units))], width=128)

st.header("Follow one image through the network")
split, split_name, i = ui.example_picker_ui(ds, model, key="inside")
acts = inspect.layer_activations(params, split.X[:, [i]])  # [A[1], …, A[L]], A[l] of shape (n_l, 1)
p = float(acts[-1][0, 0])
left, right = st.columns([1, 3])
with left:
    st.image(ui.enlarge(split.images[i], 2), width=128)
    st.markdown(f"{split_name.capitalize()} image **#{i}**, a **{ds.classes[split.labels[i]]}**.  \n"
                f"$A^{{[0]}} = x$ is ({layers[0]}, 1): the image as one column.")
with right:
    st.caption("Bars: each unit's activation. Grey ○: 0 for this image. Red ×: dead, 0 for every training image.")
    for l, a in enumerate(acts[:-1], start=1):
        st.markdown(f"**Layer {l}**: $A^{{[{l}]}} = \\mathrm{{ReLU}}(Z^{{[{l}]}})$, "
                    f"{int((a == 0).sum())} of {a.shape[0]} units are 0 for this image")
        st.plotly_chart(plots.activation_figure(a, dead[l - 1]), key=f"inside_act_{l}",
                        config={"displayModeBar": False})
        st.caption(inspect.shape_line(layers, l))
    st.markdown(f"**Layer {L}** (output): $A^{{[{L}]}} = \\sigma(Z^{{[{L}]}})$ = P(cat) = **{p:.4f}**")
    st.caption(inspect.shape_line(layers, L))
    st.progress(p, text=f"P(cat) = {p:.2f}")
    label = evaluate.verdict(p)
    right_answer = label == ("cat" if split.labels[i] == 1 else "non-cat")
    st.markdown(f"Verdict: **{label}** (cat when P(cat) > {THRESHOLD}), "
                f"{'right' if right_answer else '**wrong**'}.")

st.header("Dead units across the training set")
ui.draw_dead_units(dead, ds.train.m)

st.header("Gradient check")
small, X_small, Y_small, small_layers = inspect.small_network(params, ds.train.X, ds.train.Y)
st.markdown(
    "Checks that backpropagation's $dW$, $db$ equal the slopes of the cost measured numerically, "
    "$(J(\\theta + \\varepsilon) - J(\\theta - \\varepsilon)) / 2\\varepsilon$, parameter by parameter. That takes "
    f"two forward passes per parameter, so it runs on a small copy of this model: layers {small_layers}, the same "
    f"depth with its own weights on {small_layers[0]} evenly spaced inputs of 12288 and the first units of each "
    f"layer (rescaled so that Z keeps its size), on {X_small.shape[1]} training images: "
    f"{inspect.param_count(small):,} parameters.")
if st.button("Run the gradient check", key="inside_gradcheck", icon=":material/calculate:"):
    try:
        st.session_state["inside_gradcheck_result"] = {  # a weak reference: a dropped model is freed
            "model": weakref.ref(model), "difference": gradient_check(small, X_small, Y_small),
            "kinks": inspect.kink_count(small, X_small)}
    except CatdnnError as exc:
        st.error(f"**The gradient check failed:** {exc}", icon=":material/block:")
result = st.session_state.get("inside_gradcheck_result")
if result and result["model"]() is model:
    ui.draw_gradient_check(result["difference"], result["kinks"])
