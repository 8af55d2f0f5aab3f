"""Train: choose the settings, watch the cost fall live, stop whenever, keep the model."""

import streamlit as st

import ui
from catdnn.errors import ConfigError

st.title("Train")
st.caption(
    "Full-batch gradient descent on the 209 training images; the test accuracy is measured on the "
    "50 test images as training goes. The course's numbers: two-layer 0.72, deep 0.80 (test)."
)
ds = ui.dataset_ui()
submitted = ui.train_form_ui()

if submitted:
    try:
        config = ui.config_from_form()
    except ConfigError as exc:
        st.error(f"**Cannot train with these settings:** {exc}", icon=":material/block:")
    else:
        ui.draw_layers_note(config)
        st.button("Stop", key="train_stop", icon=":material/stop_circle:", help="Stop now and keep the partial model")
        ui.train_live(config, ds, ui.draw_training_frame)
        st.rerun()  # done: redraw the page from the saved run (no Stop button, preset control enabled)

run = ui.app_state()[ui.RUN]
if run is None:
    st.info("Pick a preset (or your own settings) and press **Train**.", icon=":material/arrow_upward:")
elif run["status"] == "running":
    # The stopped run is still saving its model on another thread (app_state() waited for it).
    st.warning("The last run is still finishing; reload the page in a moment, or press **Train** again.")
else:
    st.subheader("Last run")
    ui.draw_run_result(run)

if ui.models():  # the chart is only built while the expander is open (on_change="rerun" tracks it)
    compare = st.expander(f"Compare runs ({len(ui.models())} in this session)", key="train_compare_expander",
                          icon=":material/stacked_line_chart:", on_change="rerun")
    if compare.open:
        with compare:
            ui.draw_compare_runs(key="train_compare")
