"""The run history in the app: the session's connection, the hook that keeps each run, the Runs page's
parts (table, sweep form, seed spread) and their figures (pure functions returning plain dicts).

Each session has one connection to the history (:func:`session_history`), held against its
:class:`~ui.state.SessionState` object (a weak reference: it closes with the session), never in a
module global shared by users. :func:`record_run` runs in the training loop's ``finally`` block, so
it makes no Streamlit call.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace

import streamlit as st

from catdnn.board import delete_runs as board_delete_runs
from catdnn.classroom import PUBLIC_LIMITS, Identity, Limits
from catdnn.config import PRESETS, TrainConfig
from catdnn.data import COURSE_NAME, Dataset
from catdnn.errors import CatdnnError, ConfigError
from catdnn.figures import MIXED_COSTS, cost_axis
from catdnn.history import History, HistoryError, RunRecord, csv_cell, default_path
from catdnn.labels import compare, config_label, run_label
from catdnn.network import INITS
from catdnn.optim import HYPERPARAMETERS, OPTIMIZERS, hyperparameter_label
from catdnn.search import MAX_SETTINGS, parse_ranges, random_search, setting_text
from catdnn.sweep import (
    SweepResult,
    allowed_schedulers,
    check_scheduler,
    curve_options,
    dask_client,
    dask_executor,
    grid,
    parse_networks,
    parse_seeds,
    spread,
    sweep,
)
from catdnn.validation import SELECTION_METRICS
from catdnn.workers import shared_pool

from . import identity
from .board import class_board, has_board
from .state import SessionState, session

_connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # SessionState -> History
_connections_lock = threading.Lock()
#: How a run ended that the history keeps (crashed and failed runs have nothing to keep).
KEPT = ("finished", "stopped", "diverged")
#: The table's columns, in order (the rest of a run's settings are in the CSV).
COLUMNS = ("id", "created", "source", "status", "test_accuracy", "train_accuracy", "architecture", "learning_rate",
           "init", "seed", "iterations", "iterations_done", "optimizer", "l2", "keep_prob", "batch_size", "dataset",
           "seconds", "solver", "sweep")
#: The settings the accuracy scatter can be drawn against.
SETTINGS = {"learning_rate": "learning rate", "architecture": "architecture", "init": "init", "seed": "seed",
            "iterations": "iterations", "optimizer": "optimizer", "l2": "L2 λ", "keep_prob": "keep probability",
            "batch_size": "batch size"}
ONE_SEED = ("The course's **0.80** test accuracy is **one seed's** (seed 1): the same settings with other seeds "
            "land elsewhere, and their spread is the honest error bar on any single run.")
#: Said under settings that are not the course's deep run on its data (the course's 0.80 is not theirs).
ANY_SEED = ("A single run's test accuracy is **one seed's**: the same settings with other seeds land elsewhere, and "
            "their spread is the honest error bar on any single run.")


def is_course_deep_run(config: TrainConfig, dataset: str) -> bool:
    """Whether ``config`` is the course's deep run (any seed) on the course's data: the run whose test accuracy
    the course publishes as 0.80."""
    return dataset == COURSE_NAME and replace(config, seed=PRESETS["deep"].seed) == PRESETS["deep"]


def one_seed_note(config: TrainConfig, dataset: str) -> str:
    """Before a spread: what a single run's accuracy is, naming the course's 0.80 only under its settings."""
    return ONE_SEED if is_course_deep_run(config, dataset) else ANY_SEED


def spread_note(results, dataset: str) -> str:
    """After a spread: its test accuracy, against the course's 0.80 only when the spread's settings are the
    course's deep run on its data (with seed 1's own result when it ran), else against nothing but itself."""
    s = spread(results)
    ours = (f"over these {s.n} seeds the same settings score **{s.test_mean:.3f} ± {s.test_std:.3f}** on the test set "
            f"({s.test_min:.2f} to {s.test_max:.2f}), the honest error bar on any single run of them.")
    if not results or not is_course_deep_run(results[0].config, dataset):
        return ours[0].upper() + ours[1:]
    seed1 = next((r.test_accuracy for r in results if r.config.seed == 1 and r.test_accuracy is not None), None)
    here = f" (here seed 1 scores {seed1:.2f})" if seed1 is not None else ""
    return f"The course's **0.80** test accuracy is **one seed's**, seed 1's{here}: {ours}"


def session_identity(state: SessionState) -> Identity:
    """Who ``state``'s session is to the stores: the identity ``page_setup`` resolved (:func:`ui.identity.current`),
    read from the session object itself so that the training loop's ``finally`` (no Streamlit call) can use it."""
    return state.identity if state.identity is not None else Identity("owner", owner=state.owner)


def session_history(state: SessionState | None = None) -> History:
    """This session's connection to the run history (opened on first use; reopened if CATDNN_HOME moved or the
    session became someone else), as this session's identity (:func:`session_identity`): the engine lists, opens
    and deletes only what that identity may (local mode: every run but other sessions' uploads; a student or a
    visitor: their own; the teacher: their class's)."""
    state = session() if state is None else state
    who = session_identity(state)
    with _connections_lock:
        h = _connections.get(state)
        if h is None or h.path != default_path() or h.identity != who:
            if h is not None:
                h.close()
            h = _connections[state] = History(viewer=who)
        return h


def delete_runs(history: History, ids, choice_key: str, error_key: str) -> None:
    """A delete button's callback (run before the script, so the page's choice can start afresh): the runs ``ids``
    and their entries on the class board, as the engine allows this session (:func:`catdnn.board.delete_runs`),
    then a toast; the choice widget ``choice_key`` is emptied. An error is kept in ``st.session_state[error_key]``
    for the page to draw."""
    try:
        board = class_board() if has_board(history.identity) else None
        n, withdrawn = board_delete_runs(history, ids, board)
    except CatdnnError as exc:
        st.session_state[error_key] = str(exc)
        return
    st.session_state.pop(choice_key, None)
    off = f", and took {withdrawn} off the class board" if withdrawn else ""
    st.toast(f"Deleted {n} run{'s' if n != 1 else ''}{off}.")


def whose_runs(history: History) -> str:
    """The Runs page's line on where runs are kept and who sees them, for the history's identity. A student or a
    visitor is never shown the server's folders."""
    who = history.identity
    if who.role in ("student", "visitor"):
        return ("Your finished, stopped and diverged runs (Train page, sweeps) are kept on the server and survive a "
                "restart. They are yours alone: nobody else sees, reloads or deletes them"
                + (", but your teacher, who sees the whole class's." if who.role == "student" else ".")
                + " Your link's key is the way back to them: bookmark it.")
    if who.role == "teacher":
        return (f"Your class's runs and this machine's are kept in `{history.path}`: you see, reload and delete all "
                "of them (another class's are not yours); each student sees only their own.")
    return (f"Every finished, stopped or diverged run (Train page, command line, sweeps) is kept in `{history.path}` "
            "and survives a restart; `CATDNN_HOME` moves it. Runs on photos you uploaded are shown to this tab only.")


def record_run(state: SessionState, run, solver: str = "", dataset: Dataset | None = None) -> None:
    """Keep a finished, stopped or diverged run of the app in the history. No Streamlit call: it runs in
    the training loop's ``finally``. A history that cannot be written adds a warning to the run.

    ``dataset`` is the :class:`~catdnn.data.Dataset` the run trained on, not its folder: it knows its display
    name and whether it was uploaded (the run is then this session's) even if its folder was removed since."""
    if run.status not in KEPT:
        return
    try:
        session_history(state).add(
            run.config, status=run.status, message=run.message, history=run.history,
            accuracy_history=run.accuracy_history, iterations_done=run.iterations_done, elapsed=run.elapsed,
            solver=solver, source="app", dataset=dataset, model=run.model)
    except CatdnnError as exc:
        run.warnings.append(f"this run is not kept in the run history: {exc}")


def history_ui() -> History | None:
    """This session's history, or None after drawing why it cannot be used."""
    try:
        return session_history()
    except HistoryError as exc:
        st.error(f"**The run history cannot be opened.** {_sentence(exc)}", icon=":material/error:")
        return None


def draw_history_error(exc) -> None:
    """A run history that fails while the page reads it (a file damaged past its first page, a model that
    cannot be read): one clear message, never a traceback."""
    st.error(f"**The run history could not be read.** {_sentence(exc)}", icon=":material/error:")


def _sentence(exc) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- the table
def table_rows(runs) -> list[dict]:
    """The table's rows: :data:`COLUMNS` of each run's :meth:`RunRecord.row`, each cell as the CSV has it
    (:func:`catdnn.history.csv_cell`): the table's own toolbar downloads it as CSV too."""
    rows = []
    for r in runs:
        row = r.row()
        rows.append({k: csv_cell(row[k]) for k in COLUMNS})
    return rows


def setting_value(r: RunRecord, setting: str):
    row = r.row()
    return row[setting] if setting in row else getattr(r.config, setting)


# --------------------------------------------------------------------------- figures
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def _layout(title: str, xtitle: str, ytitle: str, height: int = 440, **x) -> dict:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height, "margin": {"l": 10, "r": 10, "t": 40, "b": 40},
        "xaxis": {"automargin": True, "title": {"text": xtitle}, **x},
        "yaxis": {"automargin": True, "title": {"text": ytitle}},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},  # below: room for the curves
    }


def cost_curves_figure(runs, title: str = "Cost of the chosen runs") -> dict:
    """One cost curve per run (list of :class:`RunRecord` or :class:`SweepResult` with curves), overlaid."""
    data = []
    runs = list(runs)
    common, names = compare(runs)
    for k, (r, name) in enumerate(zip(runs, names)):
        pts = [(i, c) for i, c in r.history if c is not None]
        data.append({"type": "scatter", "mode": "lines" if len(pts) > 1 else "markers", "name": name,
                     "x": [p[0] for p in pts], "y": [p[1] for p in pts],
                     "line": {"color": PALETTE[k % len(PALETTE)], "width": 2},
                     "hovertemplate": "iteration %{x}<br>cost %{y:.4f}<extra>" + name + "</extra>"})
    ytitle = cost_axis([r.config for r in runs], mixed=MIXED_COSTS)
    return {"data": data, "layout": _layout(f"{title}: {common}" if common else title, "iteration", ytitle)}


def accuracy_by_setting_figure(runs, setting: str) -> dict:
    """Test (and train) accuracy of every run with accuracies against one of its settings."""
    pts = [(setting_value(r, setting), r.train_accuracy, r.test_accuracy, r.id) for r in runs
           if r.test_accuracy is not None]
    categorical = any(isinstance(p[0], str) for p in pts)
    x = [str(p[0]) if categorical else p[0] for p in pts]
    data = [
        {"type": "scatter", "mode": "markers", "name": "test", "x": x, "y": [p[2] for p in pts],
         "text": [f"run {p[3]}" for p in pts], "marker": {"color": "#ff7f0e", "size": 9},
         "hovertemplate": "%{text}<br>%{x}: test %{y:.3f}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "name": "train", "x": x, "y": [p[1] for p in pts],
         "text": [f"run {p[3]}" for p in pts], "marker": {"color": "#1f77b4", "size": 6, "symbol": "circle-open"},
         "hovertemplate": "%{text}<br>%{x}: train %{y:.3f}<extra></extra>"},
    ]
    axis = {"type": "category"} if categorical else {}
    if setting == "learning_rate" and not categorical:  # a tick at each rate tried, written as typed (no "2 5")
        rates = sorted({float(v) for v in x})
        axis = {"type": "log", "tickvals": rates, "ticktext": [f"{v:g}" for v in rates]}
    return {"data": data, "layout": _layout(f"Accuracy against {SETTINGS.get(setting, setting)}",
                                            SETTINGS.get(setting, setting), "accuracy", **axis)}


def spread_figure(results) -> dict:
    """Train and test accuracy of each seed's run."""
    rs = sorted((r for r in results if r.test_accuracy is not None), key=lambda r: r.config.seed)
    seeds = [str(r.config.seed) for r in rs]
    data = [{"type": "bar", "name": "test", "x": seeds, "y": [r.test_accuracy for r in rs],
             "marker": {"color": "#ff7f0e"}},
            {"type": "bar", "name": "train", "x": seeds, "y": [r.train_accuracy for r in rs],
             "marker": {"color": "#1f77b4"}}]
    layout = _layout("Accuracy of each seed", "seed", "accuracy", height=300, type="category")
    layout.update(barmode="group", yaxis={"range": [0, 1], "title": {"text": "accuracy"}})
    return {"data": data, "layout": layout}


# --------------------------------------------------------------------------- running sweeps
def training_rights() -> tuple[str, Limits | None]:
    """Whose trainings this session's are on the server's pool, and their limits
    (:meth:`catdnn.workers.TrainingPool.submit`): in local mode ``("", None)``, the machine's user, as before
    the modes existed; in class mode the student's owner and the class's limits (the teacher view sets them;
    the teacher has none); in public mode the visitor's owner and :data:`catdnn.classroom.PUBLIC_LIMITS`.

    In class mode the class's pause (the teacher view's, kept in the class store) is the pool's too: a server
    restarted while its class was paused starts paused."""
    if identity.mode() == "local":
        return "", None
    who = identity.current()
    if who.role not in ("student", "visitor"):
        return who.owner, None
    if who.role == "visitor":
        return who.owner, PUBLIC_LIMITS
    info = identity.class_store().get_class(who.class_code)
    pool = shared_pool()
    if info.paused != pool.paused:
        pool.pause() if info.paused else pool.resume()
    return who.owner, info.limits


def executor_ui(address: str):
    """``(executor, client, where)`` for a sweep: this server's shared worker pool (the one the Train page
    trains on, so all the app's training together uses one process per core), or the Dask scheduler at
    ``address`` (on this machine or allowed by CATDNN_SCHEDULERS). Raises :class:`CatdnnError`."""
    if not address.strip():
        pool = shared_pool()
        return pool, None, f"{pool.where}, shared with every user"
    if training_rights()[1] is not None:  # a student's or visitor's runs stay within their limits, on the server's pool
        raise CatdnnError("your sweeps run on this server's own workers, within the limits set here: leave the "
                          "Dask scheduler field empty")
    address = check_scheduler(address, allowed=allowed_schedulers())
    client = dask_client(address)
    return dask_executor(client), client, f"the Dask cluster at {address}"


def run_sweep_ui(configs: list[TrainConfig], data_dir, label: str, address: str = "", source: str = "sweep",
                 options: dict | None = None, keep_models: bool = False,
                 expected: tuple = ("finished", "stopped")) -> list:
    """Run ``configs`` with a progress bar of finished / total runs; every run is kept in the history as it
    finishes (a Stop click keeps those). ``options``: the Trainer's (default :func:`catdnn.sweep.curve_options`);
    a run that ends with a status outside ``expected`` gets a warning. Returns the results, or [] after drawing
    an error.

    The results hold no model unless ``keep_models`` (each is in the history, and a sweep of big networks
    would otherwise hold them all in the server's memory until it ends): only their settings, accuracies
    and curves."""
    history = history_ui()
    try:
        executor, client, where = executor_ui(address)
    except CatdnnError as exc:
        st.error(_sentence(exc), icon=":material/error:")
        return []
    bar = st.progress(0.0, text=f"0 of {len(configs)} runs finished · on {where}")

    def idle(done: int, total: int) -> None:  # a Streamlit call: where a Stop click ends the sweep
        bar.progress(done / total, text=f"{done} of {total} runs finished · on {where}")

    results: list[SweepResult] = []
    try:
        owner, limits = training_rights()
        for res in sweep(configs, executor, data_dir=data_dir, history=history, source=source, label=label,
                         idle=idle, owner=owner, limits=limits, **(options or curve_options(configs[0]))):
            if not keep_models:
                res.model = None
            results.append(res)
    except CatdnnError as exc:
        st.error(str(exc), icon=":material/error:")
    finally:
        if client is not None:
            client.close()
    failed = [r for r in results if r.status not in expected]
    for r in failed[:5]:
        st.warning(f"Run {r.index + 1} ({run_label_of(r.config)}) {r.status}: {r.message}", icon=":material/warning:")
    return sorted(results, key=lambda r: r.index)


def run_label_of(c: TrainConfig) -> str:
    """A config's label (:func:`catdnn.labels.run_label`)."""
    return run_label(c)


def sweep_form_ui(key: str) -> tuple[list[TrainConfig], str, str] | None:
    """The grid sweep form; on submit, ``(configs, label, scheduler address)`` (None before, or after drawing
    what is wrong with the values). Networks are hidden layer sizes, architectures (CNNs included), or both."""
    with st.form(key=f"{key}_form"):
        c1, c2, c3 = st.columns(3)
        lrs = c1.text_input("Learning rates", "0.0075, 0.01", key=f"{key}_lr", help="comma-separated")
        hidden = c2.text_input("Hidden layers", "20,7,5; 7", key=f"{key}_hidden",
                               help='MLPs: ";" between networks, e.g. "20,7,5; 7"')
        arch = c3.text_input("Architectures", "", key=f"{key}_arch", placeholder="e.g. in32,conv16,dense64",
                             help='Any network, convolutional nets included: ";" between specs, e.g. '
                                  '"in32,conv16,dense64; in32,conv16,conv32,dense64". inN: the image averaged down '
                                  "to N×N px; convN: 3×3 convolution with N filters, ReLU and 2×2 max pooling; "
                                  "denseN: N units. Swept besides the hidden layers (empty those to sweep only these).")
        c4, c5, c6 = st.columns(3)
        seeds = c4.text_input("Seeds", "1-3", key=f"{key}_seeds", help="e.g. 1-3 or 1,5,9")
        inits = c5.multiselect("Init", list(INITS), ["xavier"], key=f"{key}_init")
        iterations = c6.number_input("Iterations", 1, 100_000, 1000, step=100, key=f"{key}_iterations")
        address = st.text_input("Dask scheduler (optional)", "", key=f"{key}_scheduler",
                                placeholder="tcp://127.0.0.1:8786",
                                help="empty: this server's cores; else a Dask cluster on this machine, or one allowed "
                                     "by CATDNN_SCHEDULERS")
        if not st.form_submit_button("Run the sweep", key=f"{key}_run", type="primary"):
            return None
    try:
        lr_values = [float(x) for x in lrs.replace(";", ",").split(",") if x.strip()]
        base = TrainConfig(iterations=int(iterations))
        nets = parse_networks(hidden, base) + parse_networks(arch, base) or parse_networks("20,7,5", base)
        configs = grid(base, network=nets, init=inits or None, learning_rate=lr_values or None,
                       seed=list(parse_seeds(seeds)))
        for c in configs:
            c.validate()
    except ConfigError as exc:  # before ValueError, of which it is a kind
        st.error(_sentence(exc), icon=":material/error:")
        return None
    except ValueError:
        st.error(f"The learning rates {lrs!r} are not numbers such as 0.0075, 0.01.", icon=":material/error:")
        return None
    networks = " · ".join(x for x in (f"hidden {hidden}" if hidden.strip() else "",
                                      f"arch {arch}" if arch.strip() else "") if x)
    label = f"sweep: lr {lrs} · {networks or 'hidden 20,7,5'} · init {','.join(inits) or 'xavier'} · seeds {seeds}"
    return configs, label, address


FORM = "form"  # the seed spread's choice of the Train form's settings (else a run's id)


def spread_base_ui(runs, key: str) -> TrainConfig:
    """Which settings the seed spread trains: the Train form's current settings, or any run's of ``runs`` (the
    table's); says which, in full, before anything runs. Returns them."""
    state = session()
    by_id = {r.id: r for r in runs}
    options = [FORM, *by_id]
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)  # the run chosen before was deleted: back to the form
    labels = dict(zip(by_id, compare(runs)[1])) if runs else {}
    choice = st.selectbox("Settings to spread", options, key=key,
                          format_func=lambda o: "The Train form's current settings" if o == FORM else labels[o],
                          help="The Train page's form as it shows them now (trained or not), or any run in the "
                               "table (its settings, on this session's dataset); only the seed changes.")
    config = state.form_config if choice == FORM else by_id[choice].config
    where = "the Train form's" if choice == FORM else f"run #{choice}'s"
    st.markdown(f"Spreads {where} settings: **{config_label(config)}**.")
    return config


def draw_spread(results, dataset: str) -> None:
    """The mean ± std of the accuracies over the seeds, each seed's bars, and what a single run's accuracy is
    (:func:`spread_note`; ``dataset`` is the name of the dataset the runs trained on)."""
    s = spread(results)
    if s is None:
        st.warning("No run of the spread finished: nothing to summarise.", icon=":material/warning:")
        return
    with st.container(horizontal=True, gap="medium"):
        st.metric("Test accuracy", f"{s.test_mean:.3f} ± {s.test_std:.3f}", width="content")
        st.metric("Train accuracy", f"{s.train_mean:.3f} ± {s.train_std:.3f}", width="content")
        st.metric("Test, worst to best", f"{s.test_min:.2f} – {s.test_max:.2f}", width="content")
    settings = config_label(results[0].config) if results else ""
    st.caption(f"Mean ± sample standard deviation over {s.n} seeds of {settings}.")
    st.info(spread_note(results, dataset), icon=":material/casino:")
    st.plotly_chart(spread_figure(results), key="runs_spread_chart", config={"displayModeBar": False})


# --------------------------------------------------------------------------- random search
#: The search form's network, iterations and learning rates: the course's deep net, long enough to learn. Measured
#: (seed 0, 6 settings, 3 folds): validation AUCs 0.545 to 0.626 ± 0.056, a zoom round's best 0.637 ± 0.065; 46 s a
#: round at load average 14 on 2 cores. The old defaults (hidden 7, 300 iterations, rates 1e-4 to 1e-1) scored 0.443
#: to 0.589, half below 0.5; rates above 3e-2 leave the deep net at 0.496 (it dies).
SEARCH_HIDDEN, SEARCH_ITERATIONS, SEARCH_LR = "20,7,5", 1500, "1e-3:3e-2"
#: The search form's range fields: (setting, label, default text, help).
SEARCH_FIELDS = (
    ("lr", "Learning rate", SEARCH_LR, "drawn log-uniformly: each decade as often"),
    ("width", "Hidden layer widths", "", "each hidden layer's width, drawn uniformly, e.g. 4:64"),
    ("depth", "Hidden layers", "", "how many, drawn uniformly, e.g. 1:3 (empty: the network's)"),
    ("l2", "L2 λ", "", "drawn uniformly, e.g. 0:2"),
    ("keep-prob", "Keep probability", "", "dropout, drawn uniformly, e.g. 0.6:1"),
    *((h.name, f"{hyperparameter_label(h.name)[:1].upper()}{hyperparameter_label(h.name)[1:]}", "",
       ("1-" + h.symbol if h.scale == "1-log" else h.symbol) + " drawn log-uniformly, e.g. "
       + ("0.9:0.999" if h.scale == "1-log" else "1e-9:1e-6")) for h in HYPERPARAMETERS.values()),
)


#: The search's settings as the form names them (the page's words; the CLI keeps its flags' names).
SEARCH_LABELS = {name: label for name, label, _default, _help in SEARCH_FIELDS} | {"optimizer": "Optimizer",
                                                                                   "init": "Init"}
#: The scores as the page names them.
METRIC_LABELS = {"auc": "AUC", "balanced_accuracy": "balanced accuracy"}
#: What guessing scores on either metric: an AUC or a balanced accuracy of 0.5.
CHANCE = 0.5


def _best(rnd):
    """A round's best setting that finished on every fold (None: none did)."""
    return next((s for s in rnd.scored if s.cv.completed(s.checkpoint)), None)


def _against_chance(best, metric: str) -> tuple[str, bool]:
    """The best setting's score against guessing's, in fold standard deviations, and whether it learns."""
    m, sd = best.score, best.cv.std(best.checkpoint)
    said = (f"The best setting's validation {METRIC_LABELS.get(metric, metric)} is {m:.3f} ± {sd:.3f} (± the "
            f"standard deviation over the folds)")
    margin, guess = m - CHANCE, f"{CHANCE:g}, what guessing scores"
    if margin <= 0:
        return said + f": not above {guess}", False
    if sd == 0:
        return said + f": {margin:.3f} above {guess}, on every fold alike", True
    if margin <= sd:
        return said + f": within one standard deviation of {guess}, so the folds cannot tell it from guessing", False
    verdict = "weak evidence that it learns" if margin <= 2 * sd else "it learns something every fold sees"
    return said + f": {margin / sd:.1f} standard deviations above {guess}: {verdict}", True


def search_verdict(rounds, metric: str) -> str:
    """What the search found, computed from its scores: the best setting against guessing (0.5) in fold standard
    deviations, how many settings' ± reach 0.5, and the zoomed round's best against the first round's."""
    bests = [_best(rnd) for rnd in rounds]
    if bests[0] is None:
        return "No setting finished on every fold: there is no score to read."
    top = max((b for b in bests if b is not None), key=lambda b: b.score)
    scored = [s for rnd in rounds for s in rnd.scored if s.cv.completed(s.checkpoint)]
    reach = sum(1 for s in scored if s.score - s.cv.std(s.checkpoint) <= CHANCE)
    first, learns = _against_chance(top, metric)
    text = first + (f"; {reach} of the {len(scored)} settings scored reach {CHANCE:g} within their ±." if reach
                    else f"; no setting's ± reaches {CHANCE:g}.")
    if not learns:
        text += " These settings do not learn here: try more iterations, other ranges or another network."
    if len(bests) > 1 and bests[1] is not None:
        (m1, s1), (m2, s2) = ((b.score, b.cv.std(b.checkpoint)) for b in bests[:2])
        gap = m2 - m1
        text += f" The zoomed round's best scores {m2:.3f} ± {s2:.3f} against the first round's {m1:.3f} ± {s1:.3f}: "
        if abs(gap) <= max(s1, s2):
            text += "a difference within one fold standard deviation, so the zoom gains nothing measurable."
        else:
            text += f"{abs(gap):.3f} {'higher' if gap > 0 else 'lower'}, more than one fold standard deviation."
    return text


def search_form_ui(key: str) -> dict | None:
    """The random search form; on submit, the :func:`catdnn.search.random_search` arguments (``base``,
    ``ranges``, ``n``, ``k``, ``metric``, ``zoom_k``, ``seed``) and ``address`` (None before, or after
    drawing what is wrong with the values)."""
    with st.form(key=f"{key}_form"):
        c = st.columns(3)
        hidden = c[0].text_input("Network (hidden layers)", SEARCH_HIDDEN, key=f"{key}_hidden",
                                 help="the network whose settings are drawn, e.g. 7 (the two-layer net) or 20,7,5")
        iterations = c[1].number_input("Iterations", 1, 100_000, SEARCH_ITERATIONS, step=100, key=f"{key}_iterations")
        optimizers = c[2].multiselect("Optimizers", list(OPTIMIZERS), ["gd"], key=f"{key}_optimizer",
                                      help="drawn uniformly among those chosen")
        texts = {}
        cols = st.columns(3)
        for i, (name, label, default, help_) in enumerate(SEARCH_FIELDS):
            texts[name] = cols[i % 3].text_input(f"{label} (LOW:HIGH)", default, key=f"{key}_{name}", help=help_,
                                                 placeholder="not varied")
        c = st.columns(5)
        n = c[0].number_input("Settings a round", 1, MAX_SETTINGS, 6, key=f"{key}_n")
        k = c[1].number_input("Folds", 2, 10, 3, key=f"{key}_folds", help="k-fold CV on the training images")
        metric = c[2].selectbox("Score", SELECTION_METRICS, SELECTION_METRICS.index("auc"), key=f"{key}_metric",
                                format_func=lambda m: METRIC_LABELS.get(m, m))
        zoom_k = c[3].number_input("Zoom around the best", 0, MAX_SETTINGS, 0, key=f"{key}_zoom",
                                   help="0: one round; K: a second round in ranges narrowed around the K best")
        seed = c[4].number_input("Seed", 0, 2**32 - 1, 0, key=f"{key}_seed", help="the same seed, the same draws")
        address = st.text_input("Dask scheduler (optional)", "", key=f"{key}_scheduler",
                                placeholder="tcp://127.0.0.1:8786")
        if not st.form_submit_button("Run the search", key=f"{key}_run", type="primary"):
            return None
    try:
        base = TrainConfig(iterations=int(iterations), **parse_networks(hidden or "none")[0]).validate()
        ranges = parse_ranges(texts, {"optimizer": optimizers if len(optimizers) > 1 else ()}, SEARCH_LABELS)
        if len(optimizers) == 1:
            base = replace(base, optimizer=optimizers[0]).validate()
        if zoom_k > n:
            raise ConfigError(f"zoom around at most the {int(n)} settings of a round, not {int(zoom_k)}")
    except ConfigError as exc:
        st.error(_sentence(exc), icon=":material/error:")
        return None
    return {"base": base, "ranges": ranges, "n": int(n), "k": int(k), "metric": metric, "zoom_k": int(zoom_k),
            "seed": int(seed), "address": address}


def run_search_ui(request: dict, dataset) -> list:
    """Run the search of :func:`search_form_ui` on ``dataset``'s training images, with a progress bar of the
    fold runs; returns its rounds ([] after drawing an error)."""
    try:
        executor, client, where = executor_ui(request["address"])
    except CatdnnError as exc:
        st.error(_sentence(exc), icon=":material/error:")
        return []
    total = request["n"] * request["k"] * (2 if request["zoom_k"] else 1)
    bar = st.progress(0.0, text=f"0 of {total} fold runs finished · on {where}")
    done = [0]

    def on_run(fold, res, score) -> None:  # a Streamlit call: where a Stop click ends the search
        done[0] += 1
        bar.progress(min(done[0] / total, 1.0), text=f"{done[0]} of {total} fold runs finished · on {where}")

    base = request["base"]
    try:
        owner, limits = training_rights()
        return random_search(base, request["ranges"], request["n"], dataset, seed=request["seed"], k=request["k"],
                             metric=request["metric"], zoom_k=request["zoom_k"], executor=executor, on_run=on_run,
                             owner=owner, limits=limits, **curve_options(base))
    except CatdnnError as exc:
        st.error(_sentence(exc), icon=":material/error:")
        return []
    finally:
        if client is not None:
            client.close()


def search_figure(rounds, name: str, metric: str) -> dict:
    """Validation score (mean ± std over the folds) of every setting against setting ``name``: the learning
    rate and ε on a log axis, a β as 1 − β on a log axis (as the course draws them), the rest linear."""
    scales = {r.name: getattr(r, "scale", "choice") for rnd in rounds for r in rnd.ranges}
    score = METRIC_LABELS.get(metric, metric)
    scale = scales.get(name, "uniform")
    data = []
    for number, rnd in enumerate(rounds):
        pts = []
        for s in rnd.scored:
            if not s.cv.completed(s.checkpoint) or name not in s.setting:
                continue
            values = s.setting[name] if isinstance(s.setting[name], tuple) else (s.setting[name],)
            for v in values:
                x = 1.0 - v if scale == "1-log" else v
                pts.append((x, s.score, s.cv.std(s.checkpoint), setting_text(s.setting, SEARCH_LABELS)))
        data.append({"type": "scatter", "mode": "markers", "name": f"round {number + 1}",
                     "x": [p[0] for p in pts], "y": [p[1] for p in pts], "text": [p[3] for p in pts],
                     "error_y": {"type": "data", "array": [p[2] for p in pts], "visible": True},
                     "marker": {"color": PALETTE[number % len(PALETTE)], "size": 9},
                     "hovertemplate": "%{text}<br>" + score + " %{y:.3f}<extra></extra>"})
    label = SEARCH_LABELS.get(name, name)
    title = f"1 − {label}" if scale == "1-log" else label
    axis = ({"type": "log", "dtick": 1, "exponentformat": "e"} if scale in ("log", "1-log")  # powers of ten only
            else {"type": "category"} if scale == "choice" else {})
    chance = " (0.5: no better than chance)" if metric in ("auc", "balanced_accuracy") else ""
    return {"data": data, "layout": _layout(f"Validation {score} against {title}", title + (" (log scale)" if axis.get(
        "type") == "log" else ""), f"validation {score}, mean ± std over the folds{chance}", height=360, **axis)}


def draw_search(rounds, metric: str) -> None:
    """Each round's ranges and settings, best first, and the score against each setting drawn."""
    for number, rnd in enumerate(rounds):
        st.markdown(f"**Round {number + 1}** ({'ranges' if not number else 'zoomed around the best'}): "
                    + " · ".join(r.text(SEARCH_LABELS.get(r.name, r.name)) for r in rnd.ranges))
        st.dataframe([{"rank": i, f"validation {METRIC_LABELS.get(metric, metric)}": s.describe(),
                       "setting": setting_text(s.setting, SEARCH_LABELS)}
                      for i, s in enumerate(rnd.scored, start=1)], hide_index=True, key=f"runs_search_table_{number}")
    st.info(search_verdict(rounds, metric), icon=":material/query_stats:")
    names = list(dict.fromkeys(r.name for rnd in rounds for r in rnd.ranges))
    cols = st.columns(2)
    for i, name in enumerate(names):
        cols[i % 2].plotly_chart(search_figure(rounds, name, metric), key=f"runs_search_chart_{name}")
