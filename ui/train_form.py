"""The Train page's settings form: the course's five settings, the second course's techniques in an
expander, the presets, and the page's link (the settings in the URL, :mod:`catdnn.share`).

The link and the preset control always show what the settings are, trained or not: the settings are
plain widgets (each change reruns the page, which writes the link), disabled while a run trains.

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
)
from catdnn.data import N_X
from catdnn.errors import ConfigError
from catdnn.network import INIT_DESCRIPTIONS, INITS
from catdnn.optim import (
    HYPERPARAMETERS,
    OPTIMIZER_DESCRIPTIONS,
    OPTIMIZERS,
    SCHEDULE_DESCRIPTIONS,
    SCHEDULES,
    inapplicable,
    users,
)
from catdnn.share import config_from_query, config_to_query, parse_keep_prob, setting_text

from . import identity
from .state import session

LEARNING_RATES = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
#: The iterations slider: from, to, step (the cnn preset's 350 is 50 epochs of 7 mini-batches).
ITERATIONS = (50, 10_000, 50)
TECHNIQUES_LABEL = "Second course: regularisation, optimisers, mini-batches, augmentation"
TECHNIQUE_KEYS = ("train_l2", "train_keep_prob", "train_batch_size", "train_optimizer",
                  *(f"train_{name}" for name in HYPERPARAMETERS), "train_schedule", "train_decay", "train_decay_every",
                  "train_flip", "train_shift", "train_tta", "train_batch_norm")
#: A convolutional net typed in the architecture field trains in the cnn preset's arithmetic.
CNN_DTYPE = PRESETS["cnn"].dtype
LINK_KEY = "train_links_seen"  # [(link parameters, preset drawn with it)] the form took or wrote, last one last
LINKS_REMEMBERED = 50
WARNINGS_KEY = "train_link_warnings"
SAVED_KEY = "train_form_saved"  # the form's values when last drawn (widget state is dropped on another page)


def field_label(name: str) -> str:
    """An optimiser hyperparameter's field label: its users and symbol, e.g. "RMSprop, Adam β2"."""
    text = f"{', '.join(OPTIMIZERS[opt].label for opt in users(name))} {HYPERPARAMETERS[name].symbol}"
    return text[:1].upper() + text[1:]


def form_values(config: TrainConfig) -> dict:
    """The form's widget values (by key) that show ``config``."""
    return {
        "train_hidden": ", ".join(str(n) for n in config.hidden), "train_arch": config.arch,
        "train_lr": config.learning_rate,
        "train_iters": config.iterations, "train_init": config.init, "train_seed": config.seed,
        "train_l2": float(config.l2), "train_keep_prob": setting_text(config.keep_prob),
        "train_batch_size": int(config.batch_size), "train_optimizer": config.optimizer,
        **{f"train_{name}": float(getattr(config, name)) for name in HYPERPARAMETERS},
        "train_schedule": config.schedule, "train_decay": float(config.decay),
        "train_decay_every": int(config.decay_every), "train_flip": bool(config.flip), "train_shift": int(config.shift),
        "train_tta": bool(config.tta), "train_batch_norm": bool(config.batch_norm),
    }


#: The keys of the form's widgets (the preset control apart).
FORM_KEYS = tuple(form_values(TrainConfig()))


def shown_preset(config: TrainConfig | None) -> str:
    """The preset whose every setting ``config`` has, else "custom" (also for impossible settings)."""
    return next((name for name, preset in PRESETS.items() if preset == config), "custom")


def apply_preset() -> None:
    """on_change of the preset control: fill the form with the preset's settings, every technique off.

    "custom", or a second click on the chosen preset (which clears the control), changes no setting: the
    control then shows again what the settings are (:func:`shown_preset`)."""
    name = st.session_state["train_preset"]
    if name in PRESETS and _clicked(name) and not _other_changes():
        st.session_state.update(form_values(PRESETS[name]))


def _clicked(name: str) -> bool:
    """Whether the preset control's new value ``name`` is a click, not the value the page was showing.

    Changes in quick succession (a slider's arrow keys, a text field then a slider) send a request before
    the page has the previous one's answer: it still carries the preset the page showed, say deep, while
    the server now shows "custom", which looks like a click on deep and would undo the change. The page
    writes its link after drawing the control, and remembers which preset it drew with each link: a
    request whose address is a link drawn with ``name`` comes from a page that showed ``name``."""
    query = identity.settings_query()
    return not any(q == query and shown == name for q, shown in st.session_state.get(LINK_KEY, []))


def _other_changes() -> bool:
    """Whether the request that changed the preset control also changed another setting or pressed Train.

    A person changes one widget per request, so such a request left a page that had not yet redrawn the
    control after an earlier change (its address may already be the new link, so :func:`_clicked` cannot
    tell): its preset is stale, and taking it for a click would undo the earlier change. Compared with the
    form's values when it was last drawn (callbacks run after the request's values are in session state)."""
    drawn = st.session_state.get(SAVED_KEY) or {}
    return bool(st.session_state.get("train_submit")) or any(
        key in drawn and st.session_state.get(key) != drawn[key] for key in FORM_KEYS)


def _fits_the_form(config: TrainConfig, default: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """A link's settings that the form's widgets can show (the iterations slider has steps)."""
    low, high, step = ITERATIONS
    if low <= config.iterations <= high and config.iterations % step == 0:
        return config, []
    return TrainConfig.from_dict({**config.to_dict(), "iterations": default.iterations}), [
        f"the link's iterations='{config.iterations}' cannot be used: the form takes {low:,} to {high:,} iterations "
        f"in steps of {step} (the command line takes up to {MAX_ITERATIONS:,}). Kept iterations={default.iterations}."]


def link_settings_ui() -> None:
    """Fill the form from the page's link when it holds settings this session has neither taken nor written
    (opening a shared link); never trains. An empty link (a bare address, or back from another page)
    leaves the form as it is.

    Every link the page wrote is remembered: a rerun that still carries an older one of them (a rerun
    requested before the page wrote its last link) must not take the form back to it."""
    query = identity.settings_query()
    if not query or any(q == query for q, _shown in st.session_state.get(LINK_KEY, [])):
        return
    default = PRESETS["deep"]
    config, warnings = config_from_query(query, base=default)
    config, more = _fits_the_form(config, default)
    st.session_state.update(form_values(config))
    _remember(query)
    st.session_state[WARNINGS_KEY] = warnings + more


def _remember(query: dict, shown: str | None = None) -> None:
    seen = [(q, p) for q, p in st.session_state.get(LINK_KEY, []) if q != query]
    st.session_state[LINK_KEY] = [*seen, (query, shown)][-LINKS_REMEMBERED:]


def write_link(config: TrainConfig | None, shown: str | None = None) -> None:
    """Put ``config`` in the page's URL (a link that reproduces it); None (impossible settings): no settings.
    ``shown``: the preset the control was drawn with just before (see :func:`_clicked`). When that address
    also holds the person's key (class, public mode), draws the link to share: the settings without the key."""
    query = config_to_query(config) if config is not None else {}
    _remember(query, shown)  # first: writing it is a Streamlit call, where a rerun (a click) may interrupt this
    full = {**query, **identity.link_params()}  # a student's or visitor's key stays in their own address
    if st.query_params.to_dict() != full:
        st.query_params.from_dict(full)
    share = identity.share_link(query)  # that address is theirs alone: the settings to share, without the key
    if share:
        st.caption("Share these settings with this link: it holds the settings only, not your key.")
        st.code(share, language=None, wrap_lines=True)


def draw_link_warnings() -> None:
    """The link's refused settings, one warning each, until the next Train."""
    for text in st.session_state.get(WARNINGS_KEY, []):
        st.warning(f"**A setting in this page's link was not used:** {text}", icon=":material/link_off:")


def _techniques_ui(open_: bool, disabled: bool, m_train: int) -> None:
    """The second course's techniques, each off by default (their values are read from their keys);
    ``m_train``: the training images of the dataset the run will train on."""
    off = {"disabled": disabled}
    with st.expander(TECHNIQUES_LABEL, expanded=open_, icon=":material/school:"):
        st.caption("Each is off by default (the course's runs). Which solver trains the run, and why, is said "
                   "when it starts.")
        c = st.columns(2)
        c[0].number_input("L2 regularisation λ (0: off)", min_value=0.0, max_value=MAX_L2, step=0.1, format="%g",
                          key="train_l2", **off, help="The cost gains λ/(2m)·Σ‖W‖²; each dW gains λ/m·W")
        c[1].text_input("Dropout keep probability (1: off)", key="train_keep_prob", **off,
                        help="One for every hidden layer (e.g. 0.8), or one per hidden layer (e.g. 0.9, 0.8, "
                        "1). Inverted dropout, training only; never used at prediction.")
        c = st.columns(2)
        c[0].number_input(f"Mini-batch size (0: all {m_train:,} images)", min_value=0, max_value=MAX_BATCH_SIZE, step=1,
                          key="train_batch_size", **off,
                          help="Examples per iteration, reshuffled every epoch from the run's seed")
        c[1].selectbox("Optimizer", list(OPTIMIZERS), key="train_optimizer", **off,
                       format_func=lambda k: f"{k}: {OPTIMIZER_DESCRIPTIONS[k]}")
        c = st.columns(len(HYPERPARAMETERS))
        for col, h in zip(c, HYPERPARAMETERS.values()):
            col.number_input(field_label(h.name), min_value=h.low, max_value=h.high, step=h.step, format="%g",
                             key=f"train_{h.name}", help=h.help, **off)
        c = st.columns(3)
        c[0].selectbox("Learning-rate schedule", list(SCHEDULES), key="train_schedule", **off,
                       format_func=lambda k: f"{k}: {SCHEDULE_DESCRIPTIONS[k]}")
        c[1].number_input("Decay rate d", min_value=0.0, max_value=MAX_DECAY, step=0.1, format="%g",
                          key="train_decay", **off)
        c[2].number_input("Epochs per step k (step schedule)", min_value=1, max_value=MAX_ITERATIONS, step=1,
                          key="train_decay_every", **off)
        c = st.columns(3, vertical_alignment="bottom")
        c[0].checkbox("Flip training images", key="train_flip", **off,
                      help="Mirror each training image left-right with probability 1/2, every iteration")
        c[1].number_input("Shift by up to (px, 0: off)", min_value=0, max_value=MAX_SHIFT, step=1,
                          key="train_shift", **off)
        c[2].checkbox("Average with the mirror", key="train_tta", **off,
                      help="Test-time augmentation: P(cat) is the mean for the image and its mirror image")
        st.checkbox("Batch norm", key="train_batch_norm", **off,
                    help="Normalise every hidden layer's Z by the batch's mean and variance, then scale and shift "
                    "it by learned γ and β (Z̃ = γ·Z_norm + β); prediction uses running averages of the mean and "
                    "variance. A convolutional net's conv layers are normalised per channel.")


def _no_effect(t: dict) -> str:
    """A setting changed from its default that this run would ignore ("" if none), as the CLI refuses."""
    wrong = inapplicable(t["optimizer"], [h.name for h in HYPERPARAMETERS.values() if t[h.name] != h.default])
    if wrong:
        return (f"{field_label(wrong[0])} applies to the optimizer {' or '.join(wrong[1])} "
                f"(this run uses {t['optimizer']})")
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


def form_config(values=None) -> tuple[TrainConfig | None, str]:
    """The settings the form's widgets hold (``values`` by key; default: now, in session state), and why they
    cannot train ("" if they can): what the page's link and the preset control show."""
    v = st.session_state if values is None else values
    try:
        config = build_config({"hidden": v["train_hidden"], "arch": v["train_arch"], "lr": v["train_lr"],
                               "iterations": v["train_iters"], "init": v["train_init"], "seed": v["train_seed"]},
                              {key.removeprefix("train_"): v[key] for key in TECHNIQUE_KEYS})
    except ConfigError as exc:
        return None, str(exc)
    return config, ""


def saved_form_config() -> TrainConfig | None:
    """The settings the Train page's form showed when it was last drawn in this session (None before, or
    when they could not train): for another page that offers "the form's settings"."""
    values = st.session_state.get(SAVED_KEY)
    return None if values is None else form_config(values)[0]


def train_form_ui(m_train: int) -> TrainConfig | None:
    """The preset control and the settings (``m_train``: the training images of the dataset the run will
    train on). Returns the settings when Train is pressed and they are possible; else None (impossible
    settings are explained under the form as soon as they are entered).

    The settings are plain widgets, not an ``st.form``: each change reruns the page, so that the page's
    link and the preset control always show what the form holds. While a run trains they are disabled
    (a change would rerun the page and so stop the run)."""
    # widget state is dropped while another page is open: start from the form as it was last drawn
    last = session().run
    saved = st.session_state.get(SAVED_KEY) or form_values(last.config if last is not None else PRESETS["deep"])
    for key, value in saved.items():
        st.session_state.setdefault(key, value)
    link_settings_ui()
    preset_slot = st.container()  # drawn after the fields: it shows what the settings are after this run's changes
    box = st.container(border=True)
    fields = box.container()
    submitted = box.button("Train", type="primary", key="train_submit", icon=":material/play_arrow:")
    config, why = form_config()
    training = submitted and config is not None
    if training:  # the widgets are drawn disabled: Streamlit then drops a value that arrived with the click
        st.session_state.update({key: st.session_state[key] for key in FORM_KEYS})  # (set here, it is kept)
    with fields:
        _fields_ui(disabled=training, m_train=m_train)
    shown = shown_preset(config)
    st.session_state["train_preset"] = shown
    preset_slot.segmented_control(
        "Preset", [*PRESETS, "custom"], key="train_preset", on_change=apply_preset, disabled=training,
        help="two-layer: [12288, 7, 1] with small init; deep: [12288, 20, 7, 5, 1] with xavier init "
        "(the course's two networks; choosing one turns every technique off); cnn: a small convolutional net "
        f"({PRESETS['cnn'].arch}) with Adam, mini-batches, flips and shifts. A preset is shown as chosen only "
        "while every setting is the preset's; any other settings show as custom.",
    )
    write_link(config, shown)  # after the control (see _clicked): the link holds what the form shows
    if config is not None:  # what the form shows, for the other pages (the Runs page's seed spread)
        session().form = config
    st.session_state[SAVED_KEY] = {key: st.session_state[key] for key in FORM_KEYS}
    if why:
        st.error(f"**Cannot train with these settings:** {why}", icon=":material/block:")
    if submitted:
        st.session_state[WARNINGS_KEY] = []  # the link's warnings have been read
    draw_link_warnings()
    return config if training else None


def _fields_ui(disabled: bool, m_train: int) -> None:
    """The settings' widgets (their values are read from their keys by :func:`form_config`)."""
    rates = sorted({*LEARNING_RATES, float(st.session_state["train_lr"])})  # a link may hold any valid rate
    left, right = st.columns(2)
    left.text_input("Hidden layer sizes", key="train_hidden", placeholder="e.g. 20, 7, 5", disabled=disabled,
                    help="Comma-separated sizes of the hidden layers. The input (12288) and output (1) "
                    "layers are added. Not used when the architecture field is filled in.")
    right.text_input("Architecture (empty: the hidden layers)", key="train_arch", disabled=disabled,
                     placeholder="e.g. in32,conv16,conv32,conv64,dense64",
                     help="One spec for both kinds of network. inN: the image averaged down to N×N px; "
                     "convN: 3×3 convolution with N filters, ReLU and 2×2 max pooling; denseN: N units. "
                     "With conv steps it is a convolutional net (trained in float32); dense20,dense7,dense5 "
                     "is the deep MLP.")
    left, right = st.columns(2)
    left.select_slider("Learning rate (log scale)", options=rates, key="train_lr", disabled=disabled,
                       format_func=lambda v: f"{v:g}")
    left.selectbox("Weight init", list(INITS), key="train_init", disabled=disabled,
                   format_func=lambda k: f"{k}: {INIT_DESCRIPTIONS[k]}")
    right.slider("Iterations", min_value=ITERATIONS[0], max_value=ITERATIONS[1], step=ITERATIONS[2],
                 key="train_iters", disabled=disabled)
    right.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key="train_seed", disabled=disabled)
    off = form_values(TrainConfig())  # open when the form shows some technique on (a last run, a link)
    _techniques_ui(open_=any(st.session_state.get(k) != v for k, v in off.items() if k in TECHNIQUE_KEYS),
                   disabled=disabled, m_train=m_train)
