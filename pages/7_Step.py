"""Step: one iteration of gradient descent in three clicks (forward, backward, update), every layer's equations
with this iteration's numbers (batch norm's too, when the network has it), computed by the engine's own forward,
backward and update (catdnn.stepper)."""

from dataclasses import replace

import streamlit as st

from catdnn.config import PRESETS, TrainConfig
from catdnn.errors import ConfigError
from catdnn.stepper import MAX_WORK, PHASES, Stepper, first_examples
from ui import page_setup
from ui.dataset import dataset_ui
from ui.state import model_label, session

KEY = "step_state"  # this page's state in st.session_state: the Stepper, this iteration's records, the costs
CURRENT = "current model"
TITLES = {"forward": "Forward propagation", "backward": "Backward propagation", "update": "Update"}
EXPLAIN = {
    "forward": "Each layer multiplies its weights by the layer below's output (A[0] = X, one image per column) and "
               "applies its activation. The "
               "cost compares the output A[L], P(cat) for each image, with the labels Y.",
    "backward": "From the output down: how much the cost changes with each Z, W and b. dW and db are averages "
                "over the m images; dA carries the error down to the layer below (the output layer has none: the "
                "sigmoid and the cost together give dZ[L] = A[L] − Y).",
    "update": "Every weight moves against its gradient, α times dW. ΔW is what changed; the cost after is the "
              "cost at the new weights, measured with a new forward pass.",
}
#: What batch norm adds to each phase's explanation.
EXPLAIN_BN = {
    "forward": " With batch norm, each hidden layer normalises its Z over the m images (μ and σ² are each unit's "
               "mean and variance over this batch), then scales and shifts it by the learned γ and β: the ReLU "
               "receives Z̃.",
    "backward": " With batch norm, a hidden layer's error arrives as dZ̃; dγ and dβ are its gradients for γ and β, "
                "and dZ carries it back through the normalisation (every image's Z moved μ and σ², so dZ mixes "
                "the images). db is 0: subtracting μ cancels b.",
    "update": " With batch norm, γ and β move against dγ and dβ like W and b, and this batch's μ and σ² go into "
              "the running averages that prediction uses.",
}


def start(ds, network: str, m: int, lr: float, seed: int, bn: bool) -> None:
    """A new Stepper on the first ``m`` training images (or an error), kept in the session; ``bn``: a preset with
    batch norm (the current model keeps its own setting)."""
    model = session().current_model
    X, Y = first_examples(ds.train.X, ds.train.Y, m)
    try:
        if network == CURRENT:
            stepper = Stepper(replace(model.config, learning_rate=lr), X, Y, params=model.params, bn=model.bn)
            source = f"the current model's weights ({model_label(model)})"
            if bool(model.config.batch_norm) != bn:  # the box is for the presets: say which setting applies
                source += (f", which has {'' if model.config.batch_norm else 'no '}batch norm of its own (the Batch "
                           f"norm box, {'ticked' if bn else 'unticked'}, applies to the presets only)")
        else:
            stepper = Stepper(TrainConfig.preset(network, learning_rate=lr, seed=seed, batch_norm=bn), X, Y)
            source = f"the {network} preset's random weights ({PRESETS[network].init} init, seed {seed})"
    except ConfigError as exc:
        st.session_state[KEY] = {"error": str(exc)}
        return
    st.session_state[KEY] = {"stepper": stepper, "records": [], "costs": [], "source": source, "dataset": ds.name}


def count(n: int, word: str) -> str:
    """``"1 cat"``, ``"4 cats"``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def take(phase: str) -> None:
    """on_click of the three buttons: the next phase, if it is this one (a stale double click does nothing)."""
    state = st.session_state[KEY]
    stepper = state["stepper"]
    if stepper.next_phase != phase:
        return
    record = stepper.step()
    state["records"] = [record] if phase == "forward" else [*state["records"], record]
    if phase == "forward":
        state["costs"].append([record.cost, None])
    elif phase == "update":
        state["costs"][-1][1] = record.cost


def aligned(equation: str) -> str:
    """An equation of the engine's, aligned on its first ``=`` or ``:=`` (LaTeX's ``&``)."""
    sign = " := " if " := " in equation else " = "
    return equation.replace(sign, " &" + sign.strip() + " ", 1)


def draw_phase(record) -> None:
    """A phase's table of norms (one row per layer), then every layer's equations and numbers."""
    norms = {ls.layer: {a.symbol: a.norm for a in ls.arrays if a.layer is not None} for ls in record.layers}
    symbols = list(dict.fromkeys(s for l in sorted(norms) for s in norms[l]))  # layer 1's order, then any others
    rows = ["| layer | " + " | ".join(f"$\\lVert {s}^{{[l]}} \\rVert$" for s in symbols) + " |",
            "|---" * (len(symbols) + 1) + "|"]
    rows += [f"| {l} | " + " | ".join(f"{norms[l][s]:.4g}" if s in norms[l] else "—" for s in symbols) + " |"
             for l in sorted(norms)]
    st.markdown("\n".join(rows))
    for ls in record.layers:
        with st.container(border=True):
            st.markdown(f"**Layer {ls.layer}**" + (" (output)" if ls.layer == len(record.layers) else ""))
            st.latex(r"\begin{aligned}" + r" \\ ".join(aligned(eq) for eq in ls.equations) + r"\end{aligned}")
            for array in ls.arrays:
                st.latex(array.latex())


page_setup("Step")
st.title("Step")
st.caption("One iteration of gradient descent in three clicks: **forward**, **backward**, **update**. Each click "
           "shows the course's equations for every layer with this iteration's numbers: the shapes, the first "
           "entries of each matrix, its norm ‖·‖ (the square root of the sum of its squared entries), and the cost "
           "before and after. They are the engine's own numbers, the ones training computes.")
ds = dataset_ui()
model = session().current_model

with st.form("step_settings"):
    networks = ["two-layer", "deep"] + ([CURRENT] if model is not None else [])
    left, middle, right, far = st.columns([2, 1, 1, 1])
    network = left.radio("Network", networks, index=1, key="step_network", horizontal=True,
                         help="The course's two nets from their random start, or the session's current model")
    bn = left.checkbox("Batch norm", key="step_bn",
                       help="The preset with batch normalisation of its hidden layers (γ = 1, β = 0 at the start). "
                            "The current model steps with its own setting, and its own γ and β.")
    most = min(ds.train.m, MAX_WORK // PRESETS["deep"].param_count())  # all 209 of the course's
    m = middle.number_input(f"Images (1 – {ds.train.m})", min_value=1, max_value=ds.train.m, value=most,
                            step=1, key="step_images", help="The first training images: a few keep the numbers small")
    lr = right.number_input("Learning rate α", min_value=1e-6, max_value=100.0, value=0.0075, step=0.0025,
                            format="%g", key="step_lr")
    seed = far.number_input("Seed", min_value=0, max_value=2**32 - 1, value=1, step=1, key="step_seed",
                            help="Draws the presets' starting weights (1: the course's)")
    if st.form_submit_button("Start over with these settings", key="step_reset", icon=":material/restart_alt:") \
            or KEY not in st.session_state:
        start(ds, network, int(m), float(lr), int(seed), bool(bn))
    elif st.session_state[KEY].get("dataset", ds.name) != ds.name:
        start(ds, network, int(m), float(lr), int(seed), bool(bn))
        st.info("Started over: the sidebar's dataset changed.", icon=":material/dataset:")

state = st.session_state[KEY]
if "error" in state:
    why = str(state["error"])
    why = why[:1].upper() + why[1:] + ("" if why.endswith((".", "!", "?")) else ".")  # a clause, as a sentence
    st.error(f"**Cannot step through this network.** {why}", icon=":material/block:")
    st.stop()
stepper, records = state["stepper"], state["records"]
cats = int(stepper.Y.sum())
normed = stepper.bn is not None
st.markdown(f"Layers {list(stepper.config.layers)}" + (", with batch norm," if normed else "")
            + f" starting from {state['source']}, on the first "
            + ("training image" if stepper.m == 1 else f"{stepper.m} training images")
            + f" ({count(cats, 'cat')}, {count(stepper.m - cats, 'non-cat')}), "
            f"α = {stepper.config.learning_rate:g}.")

nxt = stepper.next_phase
with st.container(horizontal=True, vertical_alignment="center"):
    for i, phase in enumerate(PHASES, start=1):
        st.button(f"{i} · {phase.capitalize()}", key=f"step_{phase}", on_click=take, args=(phase,),
                  disabled=phase != nxt, type="primary" if phase == nxt else "secondary")
    doing = stepper.iteration + (0 if nxt == "forward" else 1)
    st.markdown(f"Iteration **{doing}** done: click **{nxt}** to start the next" if nxt == "forward" and doing
                else f"Iteration **{stepper.iteration + 1}**: next **{nxt}**")

if state["costs"]:
    before, after = state["costs"][-1]
    c1, c2, c3 = st.columns(3)
    c1.metric("Cost before the update", f"{before:.6f}")
    c2.metric("Cost after the update", "—" if after is None else f"{after:.6f}",
              delta=None if after is None else f"{after - before:+.6f}", delta_color="inverse")
    c3.metric("Iterations done", stepper.iteration)
    if after is not None and after > before:  # the update made the cost worse: say why, from the numbers
        st.warning(f"**The cost went up** after this update, from {before:.6f} to {after:.6f}: the step of α = "
                   f"{stepper.config.learning_rate:g} times the gradient overshot, past where the cost is lower along "
                   "that direction. A smaller α takes smaller steps.", icon=":material/trending_up:")

for k, record in enumerate(reversed(records)):
    title = f"{PHASES.index(record.phase) + 1} · {TITLES[record.phase]}, iteration {record.iteration + 1}"
    if k == 0:
        st.subheader(title)
        st.caption(EXPLAIN[record.phase] + (EXPLAIN_BN[record.phase] if normed else ""))
        draw_phase(record)
    else:
        with st.expander(title, key=f"step_earlier_{record.phase}"):
            draw_phase(record)

if len(state["costs"]) > 1:
    st.caption("Costs so far (before → after each iteration): " + "; ".join(
        f"{i}: {b:.6f} → {a:.6f}" for i, (b, a) in enumerate(state["costs"], start=1) if a is not None))
