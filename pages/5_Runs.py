"""Runs: the runs of the run history this session may see (the engine decides: ui.history.whose_runs): compare,
reload, delete, export; grid sweeps, random search scored by cross-validation, and the spread over seeds."""

import streamlit as st

from catdnn.errors import CatdnnError
from catdnn.labels import compare
from catdnn.sweep import seed_configs
from ui import page_setup
from ui.board import has_board
from ui.dataset import dataset_ui
from ui.history import (
    SETTINGS,
    accuracy_by_setting_figure,
    cost_curves_figure,
    delete_runs,
    draw_history_error,
    draw_search,
    draw_spread,
    history_ui,
    one_seed_note,
    run_search_ui,
    run_sweep_ui,
    search_form_ui,
    spread_base_ui,
    sweep_form_ui,
    table_rows,
    whose_runs,
)
from ui.state import model_label, session

page_setup("Runs")
st.title("Runs")
history = history_ui()
if history is None:
    st.stop()
st.caption(whose_runs(history))
runs_tab, sweep_tab, search_tab, spread_tab = st.tabs(["Runs", "Grid sweep", "Random search", "Seed spread"])

with sweep_tab:  # drawn first so that the Runs tab lists what a sweep just added
    st.markdown("Train every combination of the values below, all cores at once (or on a Dask cluster). "
                "Each run is kept as it finishes: stopping the page keeps those already done.")
    request = sweep_form_ui("runs_sweep")
    if request is not None:
        configs, label, address = request
        results = run_sweep_ui(configs, dataset_ui().source, label, address)
        if results:
            st.success(f"{len(results)} of {len(configs)} runs done and kept in the history.",
                       icon=":material/check_circle:")
            st.plotly_chart(cost_curves_figure(results, "Cost of the sweep's runs"), key="runs_sweep_chart")

with search_tab:
    st.markdown("Settings drawn at random in the ranges below (the learning rate and 1 − β on a log scale, as the "
                "course teaches), each scored by k-fold cross-validation on the **training images only**: the test "
                "images are never read. A zoom draws a second round in ranges narrowed around the best. The fold "
                "runs are not kept in the history.")
    search = search_form_ui("runs_search")
    if search is not None:
        rounds = run_search_ui(search, dataset_ui())
        if rounds:
            draw_search(rounds, search["metric"])

with spread_tab:
    st.markdown("The same settings trained once per seed, with the mean ± standard deviation of the accuracies.")
    try:
        base = spread_base_ui(history.runs(), "runs_spread_base")
    except CatdnnError as exc:
        draw_history_error(exc)
        base = session().form_config
    with st.form("runs_spread_form"):
        n_seeds = st.number_input("Seeds (1 to N)", 2, 50, 5, key="runs_spread_n")
        address = st.text_input("Dask scheduler (optional)", "", key="runs_spread_scheduler",
                                placeholder="tcp://127.0.0.1:8786")
        go = st.form_submit_button("Train over the seeds", key="runs_spread_run", type="primary")
    if go:
        ds = dataset_ui()
        results = run_sweep_ui(seed_configs(base, range(1, int(n_seeds) + 1)), ds.source,
                               f"seed spread 1-{int(n_seeds)}", address)
        draw_spread(results, ds.name)
    else:
        st.caption(one_seed_note(base, dataset_ui().name))

with runs_tab:
    try:  # a history damaged past its first page fails here, not on opening: a message, never a traceback
        runs = history.runs()
        if not runs:
            st.info("**No runs yet.** Train one on the **Train** page, run a sweep here, or train from the command "
                    "line (`python -m catdnn train`): every run lands here.", icon=":material/history:")
            st.stop()
        by_id = {r.id: r for r in runs}
        st.dataframe(table_rows(runs), key="runs_table", hide_index=True, height=min(400, 38 + 35 * len(runs)))
        st.download_button("Download the table (CSV)", history.csv_text(runs), file_name="catdnn-runs.csv",
                           mime="text/csv", key="runs_csv", icon=":material/download:")
        labels = dict(zip(by_id, compare(runs)[1]))  # the architecture, and what sets each run apart
        chosen = st.multiselect("Runs to compare", list(by_id), default=list(by_id)[:5], key="runs_chosen",
                                format_func=labels.get, help="newest first; click the table's headers to sort it")
        left, right = st.columns(2)
        if chosen:
            left.plotly_chart(cost_curves_figure(history.runs(curves=True, ids=chosen)), key="runs_cost_chart")
        else:
            left.caption("Choose runs above to see their cost curves.")
        setting = right.selectbox("Accuracy against", list(SETTINGS), format_func=SETTINGS.get, key="runs_setting")
        right.plotly_chart(accuracy_by_setting_figure(runs, setting), key="runs_setting_chart")

        with_model = [i for i in chosen if by_id[i].has_model]
        pick = st.selectbox("Use a chosen run's model on the other pages", with_model, key="runs_reload_id",
                            format_func=labels.get, placeholder="choose runs above (diverged runs keep no model)")

        def reload(run_id):  # a callback: runs before the script, so the sidebar already names the model
            try:
                st.session_state["runs_reloaded"] = session().keep(history.model(run_id))[0]
            except CatdnnError as exc:
                st.session_state["runs_reload_error"] = str(exc)

        st.button("Use this model", key="runs_reload", disabled=pick is None, icon=":material/upload:",
                  on_click=reload, args=(pick,))
        if "runs_reload_error" in st.session_state:
            draw_history_error(st.session_state.pop("runs_reload_error"))
        if "runs_reloaded" in st.session_state:
            st.success(f"**{st.session_state.pop('runs_reloaded')}** is now the current model of this session.",
                       icon=":material/check_circle:")

        if "runs_delete_error" in st.session_state:
            draw_history_error(st.session_state.pop("runs_delete_error"))
        with st.container(horizontal=True, vertical_alignment="center"):
            board = " (and take them off the class board where they are on it)" if has_board(history.identity) else ""
            sure = st.checkbox(f"I want to delete the chosen runs{board}", key="runs_delete_confirm")
            st.button(f"Delete {len(chosen)} run{'s' if len(chosen) != 1 else ''}", key="runs_delete",
                      on_click=delete_runs, args=(history, list(chosen), "runs_chosen", "runs_delete_error"),
                      disabled=not (sure and chosen), icon=":material/delete:")
    except CatdnnError as exc:
        draw_history_error(exc)
    current = session().current_model
    st.caption(f"This session's current model: {model_label(current)}" if current else "")
