"""Class board: the class's submitted runs, ranked by a validation score on held-out training images while the
class works, and by test accuracy once the teacher reveals it. A student submits one of their own runs here."""

import streamlit as st

from catdnn.errors import CatdnnError
from ui import page_setup
from ui.board import class_board, draw_board, draw_class_mode_note, submit_ui, withdraw_ui
from ui.dataset import dataset_ui
from ui.history import history_ui
from ui.identity import current

page_setup("Class board")
st.title("Class board")
who = current()
if who.role not in ("student", "teacher"):
    draw_class_mode_note("class board")
    st.stop()
ds = dataset_ui()
if who.role == "student":
    st.subheader("Submit a run")
    history = history_ui()
    if history is not None:
        submit_ui(who, history, ds)
st.subheader(f"The board: runs on {ds.name}")
try:
    standings = class_board().standings(who, dataset=ds)
except CatdnnError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
draw_board(standings, who)
if who.role == "student":
    withdraw_ui(who, standings)
