"""The Train page's settings form: the course's five settings, the second course's techniques in an
expander, the presets, and the page's link (the settings in the URL, :mod:`catdnn.share`).

Only the Train page uses it; it lives here because the form and its link outgrow a flat page.
"""

from __future__ import annotations

import streamlit as st

from catdnn.arch import parse_arch
from catdnn.config import (
    MAX_BATCH_SIZE,
    MAX_DECAY,
    MAX_ITERATIONS,
    MAX_L2,
    MAX_SEED,
    MAX_SHIFT,
    PRESETS,
    TrainConfig,
    parse_layers,
    preset_name,
)
from catdnn.data import N_X
from catdnn.errors import ConfigError
from catdnn.network import INIT_DESCRIPTIONS, INITS
from catdnn.optim import OPTIMIZER_DESCRIPTIONS, OPTIMIZERS, SCHEDULE_DESCRIPTIONS, SCHEDULES
from catdnn.share import config_from_query, config_to_query, parse_keep_prob, setting_text

from .state import session

LEARNING_RATES = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
#: The iterations slider: from, to, step (the cnn preset's 350 is 50 epochs of 7 mini-batches).
ITERATIONS = (50, 10_000, 50)
TECHNIQUES_LABEL = "Second course: regularisation, optimisers, mini-batches, augmentation"
TECHNIQUE_KEYS = ("train_l2", "train_keep_prob", "train_batch_size", "train_optimizer", "train_beta", "train_beta1",
                  "train_beta2", "train_epsilon", "train_schedule", "train_decay", "train_decay_every", "train_flip",
                  "train_shift", "train_tta")
#: A convolutional net typed in the architecture field trains in the cnn preset's arithmetic.
CNN_DTYPE = PRESETS["cnn"].dtype
LINK_KEY = "train_link_applied"  # the link parameters the form last took or wrote
WARNINGS_KEY = "train_link_warnings"


def form_values(config: TrainConfig) -> dict:
    """The form's widget values (by key) that show ``config``."""
    return {
        "train_hidden": ", ".join(str(n) for n in config.hidden), "train_arch": config.arch,
        "train_lr": config.learning_rate,
        "train_iters": config.iterations, "train_init": config.init, "train_seed": config.seed,
        "train_l2": float(config.l2), "train_keep_prob": setting_text(config.keep_prob),
        "train_batch_size": int(config.batch_size), "train_optimizer": config.optimizer,
        "train_beta": float(config.beta), "train_beta1": float(config.beta1), "train_beta2": float(config.beta2),
        "train_epsilon": float(config.epsilon), "train_schedule": config.schedule, "train_decay": float(config.decay),
        "train_decay_every": int(config.decay_every), "train_flip": bool(config.flip), "train_shift": int(config.shift),
        "train_tta": bool(config.tta),
    }


def apply_preset() -> None:
    """on_change of the preset control: fill the form with the preset's settings, every technique off
    ("custom" keeps them)."""
    name = st.session_state["train_preset"]
    if name in PRESETS:
        st.session_state.update(form_values(PRESETS[name]))


def _fits_the_form(config: TrainConfig, default: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """A link's settings that the form's widgets can show (the iterations slider has steps)."""
    low, high, step = ITERATIONS
    if low <= config.iterations <= high and config.iterations % step == 0:
        return config, []
    return TrainConfig.from_dict({**config.to_dict(), "iterations": default.iterations}), [
        f"the link's iterations='{config.iterations}' cannot be used: the form takes {low:,} to {high:,} iterations "
        f"in steps of {step} (the command line takes up to {MAX_ITERATIONS:,}). Kept iterations={default.iterations}."]


def link_settings_ui() -> None:
    """Fill the form from the page's link when it holds settings not yet taken (opening a shared link);
    never trains. When the link is empty and the session has a last run, write that run's settings."""
    query = st.query_params.to_dict()
    if not query:
        run = session().run
        if run is not None:
            write_link(run.config)
        return
    if query == st.session_state.get(LINK_KEY):
        return
    default = PRESETS["deep"]
    config, warnings = config_from_query(query, base=default)
    config, more = _fits_the_form(config, default)
    st.session_state.update({**form_values(config), "train_preset": preset_name(config)})
    st.session_state[LINK_KEY] = query
    st.session_state[WARNINGS_KEY] = warnings + more


def write_link(config: TrainConfig) -> None:
    """Put ``config`` in the page's URL (a link that reproduces it)."""
    query = config_to_query(config)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)
    st.session_state[LINK_KEY] = query


def draw_link_warnings() -> None:
    """The link's refused settings, one warning each, until the next Train."""
    for text in st.session_state.get(WARNINGS_KEY, []):
        st.warning(f"**A setting in this page's link was not used:** {text}", icon=":material/link_off:")


def _techniques_ui(open_: bool) -> dict:
    """The second course's techniques, each off by default; returns their raw values by TrainConfig field."""
    with st.expander(TECHNIQUES_LABEL, expanded=open_, icon=":material/school:"):
        st.caption("Each is off by default (the course's runs). Which solver trains the run, and why, is said "
                   "when it starts.")
        c = st.columns(2)
        l2 = c[0].number_input("L2 regularisation λ (0: off)", min_value=0.0, max_value=MAX_L2, step=0.1,
                               format="%g", key="train_l2", help="The cost gains λ/(2m)·Σ‖W‖²; each dW gains λ/m·W")
        keep = c[1].text_input("Dropout keep probability (1: off)", key="train_keep_prob",
                               help="One for every hidden layer (e.g. 0.8), or one per hidden layer (e.g. 0.9, 0.8, "
                               "1). Inverted dropout, training only; never used at prediction.")
        c = st.columns(2)
        batch = c[0].number_input("Mini-batch size (0: all 209 images)", min_value=0, max_value=MAX_BATCH_SIZE,
                                  step=1, key="train_batch_size",
                                  help="Examples per iteration, reshuffled every epoch from the run's seed")
        optimizer = c[1].selectbox("Optimizer", list(OPTIMIZERS), key="train_optimizer",
                                   format_func=lambda k: f"{k}: {OPTIMIZER_DESCRIPTIONS[k]}")
        c = st.columns(4)
        beta = c[0].number_input("Momentum β", min_value=0.0, max_value=1.0, step=0.01, format="%g", key="train_beta")
        beta1 = c[1].number_input("Adam β1", min_value=0.0, max_value=1.0, step=0.01, format="%g", key="train_beta1")
        beta2 = c[2].number_input("Adam β2", min_value=0.0, max_value=1.0, step=0.001, format="%g",
                                  key="train_beta2")
        epsilon = c[3].number_input("Adam ε", min_value=0.0, max_value=1.0, step=1e-8, format="%g",
                                    key="train_epsilon")
        c = st.columns(3)
        schedule = c[0].selectbox("Learning-rate schedule", list(SCHEDULES), key="train_schedule",
                                  format_func=lambda k: f"{k}: {SCHEDULE_DESCRIPTIONS[k]}")
        decay = c[1].number_input("Decay rate d", min_value=0.0, max_value=MAX_DECAY, step=0.1, format="%g",
                                  key="train_decay")
        decay_every = c[2].number_input("Epochs per step k (step schedule)", min_value=1, max_value=MAX_ITERATIONS,
                                        step=1, key="train_decay_every")
        c = st.columns(3, vertical_alignment="bottom")
        flip = c[0].checkbox("Flip training images", key="train_flip",
                             help="Mirror each training image left-right with probability 1/2, every iteration")
        shift = c[1].number_input("Shift by up to (px, 0: off)", min_value=0, max_value=MAX_SHIFT, step=1,
                                  key="train_shift")
        tta = c[2].checkbox("Average with the mirror", key="train_tta",
                            help="Test-time augmentation: P(cat) is the mean for the image and its mirror image")
    return dict(l2=l2, keep_prob=keep, batch_size=batch, optimizer=optimizer, beta=beta, beta1=beta1, beta2=beta2,
                epsilon=epsilon, schedule=schedule, decay=decay, decay_every=decay_every, flip=flip, shift=shift,
                tta=tta)


def _no_effect(t: dict) -> str:
    """A setting changed from its default that this run would ignore ("" if none), as the CLI refuses."""
    default = TrainConfig()
    for field, label, needs in (("beta", "Momentum β", "momentum"), ("beta1", "Adam β1", "adam"),
                                ("beta2", "Adam β2", "adam"), ("epsilon", "Adam ε", "adam")):
        if t[field] != getattr(default, field) and t["optimizer"] != needs:
            return f"{label} applies to the optimizer {needs} (this run uses {t['optimizer']})"
    if t["schedule"] != "constant" and not t["decay"]:
        return f"the schedule {t['schedule']} needs a decay rate d above 0"
    return ""


def build_config(values: dict, techniques: dict) -> TrainConfig:
    """The submitted form as a validated TrainConfig; :class:`ConfigError` with the engine's message."""
    why = _no_effect(techniques)
    if why:
        raise ConfigError(why)
    t = {**techniques, "keep_prob": parse_keep_prob(techniques["keep_prob"])}
    for k in ("batch_size", "decay_every", "shift"):
        t[k] = int(t[k])
    network = {"layers": (N_X, *parse_layers(values["hidden"]), 1)}
    if str(values.get("arch", "")).strip():  # the architecture field wins over the hidden layers
        arch = parse_arch(values["arch"])
        network = {"arch": arch.text, "dtype": CNN_DTYPE} if arch.is_cnn else {"layers": arch.mlp_layers()}
    return TrainConfig(learning_rate=float(values["lr"]), iterations=int(values["iterations"]), init=values["init"],
                       seed=int(values["seed"]), **network, **t).validate()


def train_form_ui() -> TrainConfig | None:
    """The preset control and the settings form. Returns the settings when Train is pressed and they are
    possible (and puts them in the page's link); else None (impossible settings are explained under the form)."""
    # widget state is dropped while another page is open: start from the last run's settings
    last = session().run
    start = last.config if last is not None else PRESETS["deep"]
    for key, value in {**form_values(start), "train_preset": preset_name(start)}.items():
        st.session_state.setdefault(key, value)
    link_settings_ui()
    rates = sorted({*LEARNING_RATES, float(st.session_state["train_lr"])})  # a link may hold any valid rate
    preset_slot = st.container()  # drawn after the form, which may change the preset shown
    with st.form("train_form", border=True):
        left, right = st.columns(2)
        hidden = left.text_input("Hidden layer sizes", key="train_hidden", placeholder="e.g. 20, 7, 5",
                                 help="Comma-separated sizes of the hidden layers. The input (12288) and output (1) "
                                 "layers are added. Not used when the architecture field is filled in.")
        arch = right.text_input("Architecture (empty: the hidden layers)", key="train_arch",
                                placeholder="e.g. in32,conv16,conv32,conv64,dense64",
                                help="One spec for both kinds of network. inN: the image averaged down to N×N px; "
                                "convN: 3×3 convolution with N filters, ReLU and 2×2 max pooling; denseN: N units. "
                                "With conv steps it is a convolutional net (trained in float32); dense20,dense7,dense5 "
                                "is the deep MLP.")
        left, right = st.columns(2)
        learning_rate = left.select_slider("Learning rate (log scale)", options=rates, key="train_lr",
                                           format_func=lambda v: f"{v:g}")
        init = left.selectbox("Weight init", list(INITS), key="train_init",
                              format_func=lambda k: f"{k}: {INIT_DESCRIPTIONS[k]}")
        iterations = right.slider("Iterations", min_value=ITERATIONS[0], max_value=ITERATIONS[1], step=ITERATIONS[2],
                                  key="train_iters")
        seed = right.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key="train_seed")
        off = form_values(TrainConfig())  # open when the form shows some technique on (a last run, a link)
        techniques = _techniques_ui(open_=any(st.session_state.get(k) != v for k, v in off.items()
                                              if k in TECHNIQUE_KEYS))
        submitted = st.form_submit_button("Train", type="primary", key="train_submit", icon=":material/play_arrow:")
    config = None
    shown = {"hidden": hidden, "arch": arch, "lr": learning_rate, "iterations": iterations, "init": init, "seed": seed}
    if submitted:
        st.session_state[WARNINGS_KEY] = []
        try:
            config = build_config(shown, techniques)
        except ConfigError as exc:
            st.error(f"**Cannot train with these settings:** {exc}", icon=":material/block:")
        st.session_state["train_preset"] = preset_name(config) if config else "custom"  # what was submitted
        if config is not None:
            write_link(config)
    try:  # what the form shows, for the other pages (the Runs page's seed spread)
        session().form = config or build_config(shown, techniques)
    except ConfigError:
        pass
    draw_link_warnings()
    preset_slot.segmented_control(
        "Preset", [*PRESETS, "custom"], key="train_preset", on_change=apply_preset, disabled=submitted,
        help="two-layer: [12288, 7, 1] with small init; deep: [12288, 20, 7, 5, 1] with xavier init "
        "(the course's two networks; choosing one turns every technique off); cnn: a small convolutional net "
        f"({PRESETS['cnn'].arch}) with Adam, mini-batches, flips and shifts. Custom keeps your settings.",
    )
    return config
