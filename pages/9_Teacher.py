"""Teacher: the class's link and QR code, who is online and training, the server's load, pause and resume for
everyone, per-student limits, the reveal of the test accuracies, and the class's runs (delete, export)."""

import streamlit as st

from catdnn.errors import CatdnnError
from catdnn.labels import run_label
from catdnn.serve import qr_svg
from catdnn.workers import shared_pool
from ui import page_setup
from ui.board import (
    DELETE_LIST,
    ONLINE_SECONDS,
    draw_class_mode_note,
    draw_server,
    job_rows,
    limits_form_ui,
    online_rows,
    server_resources,
    student_link,
)
from ui.history import delete_runs, history_ui
from ui.identity import class_store, current, mode

page_setup("Teacher")
st.title("Teacher")
who = current()
if mode() != "class":
    draw_class_mode_note("teacher view")
    st.stop()
if who.role != "teacher":
    st.error("**This page is the teacher's**: it opens with the teacher link that `catdnn serve` printed.",
             icon=":material/block:")
    st.stop()
store, pool = class_store(), shared_pool()
info = store.get_class(who.class_code)
if info.paused != pool.paused:  # the class's setting holds (a restarted server's pool has forgotten it)
    if info.paused:
        pool.pause()
    else:
        pool.resume()
members = store.members(info.code)
names = {m.owner: m.name for m in members}

link = student_link(info.code)
left, right = st.columns([3, 1])
left.markdown(f"**{info.name}**: {len(members)} student{'s' if len(members) != 1 else ''} joined. Students join "
              f"at this link (class code **{info.code}**), or with a phone's camera on the QR code:")
left.code(link, language=None)
try:
    right.image(qr_svg(link), caption="The students' link", width=200)
except CatdnnError as exc:
    right.caption(f"No QR code: {exc}.")

st.subheader("Now")
st.button("Refresh", key="teacher_refresh", icon=":material/refresh:", help="Read who is online and training again")
online, training = st.columns(2)
with online:
    here = store.members(info.code, seen_within=ONLINE_SECONDS)
    st.markdown(f"**Online** (seen in the last minute): {len(here)}")
    if here:
        st.dataframe(online_rows(here), key="teacher_online", hide_index=True)
with training:
    jobs = pool.jobs()
    st.markdown(f"**Training and queued**: {len(jobs)}" + (" · **paused**" if pool.paused else ""))
    if jobs:
        st.dataframe(job_rows(jobs, names), key="teacher_jobs", hide_index=True)
draw_server(server_resources(pool.pids))

st.subheader("Control")
paused = info.paused
if st.button("Resume training for everyone" if paused else "Pause training for everyone", key="teacher_pause",
             icon=":material/play_arrow:" if paused else ":material/pause:", type="primary"):
    if paused:
        pool.resume()
    else:
        pool.pause()
    store.update_class(info.code, paused=not paused)
    st.rerun()
joining = st.toggle("New students may join", value=info.joining, key="teacher_joining",
                    help="Off: the join link refuses new students (those who joined keep their links)")
if joining != info.joining:
    store.update_class(info.code, joining=joining)
    st.rerun()
if members:
    who_out = st.multiselect("Students to remove from the class", [m.owner for m in members],
                             format_func=names.get, key="teacher_remove_ids",
                             help="Their link stops working at once (their open tabs too) and their name is free "
                             "again; their runs stay until you delete them below")
    if st.button("Remove the chosen students", key="teacher_remove", disabled=not who_out,
                 icon=":material/person_remove:"):
        removed = sum(store.remove_member(info.code, owner) for owner in who_out)
        st.session_state.pop("teacher_remove_ids", None)
        st.toast(f"Removed {removed} student{'s' if removed != 1 else ''}.")
        st.rerun()
limits = limits_form_ui(info.limits)
if limits is not None:
    store.update_class(info.code, limits=limits)
    st.success("The new limits apply to every training started from now on.", icon=":material/check_circle:")
revealed = store.get_class(info.code).revealed
if st.button("Hide the test accuracies again" if revealed else "Reveal the test accuracies on the board",
             key="teacher_reveal", icon=":material/visibility_off:" if revealed else ":material/visibility:"):
    store.update_class(info.code, revealed=not revealed)
    st.rerun()
st.caption("The board shows the test accuracies and ranks by them." if revealed else
           "The board ranks by validation score; the test accuracies stay hidden until you reveal them.")

st.subheader("The class's runs")
history = history_ui()
if history is None:
    st.stop()
try:
    class_runs = dict(owners=list(names))
    st.download_button("Export the class's runs (CSV)", key="teacher_csv", on_click="ignore",
                       data=lambda: history.csv_text(history.runs(**class_runs), names=names),  # built when pressed
                       file_name=f"catdnn-{info.code}-runs.csv", mime="text/csv", icon=":material/download:")
    student = st.selectbox("Runs of", [None, *names], format_func=lambda o: "every student" if o is None else names[o],
                           key="teacher_delete_student")
    runs = history.runs(owners=list(names) if student is None else [student], limit=DELETE_LIST + 1)
    labels = {r.id: f"{names[r.owner]}: {run_label(r)}" for r in runs[:DELETE_LIST]}
    if len(runs) > DELETE_LIST:
        st.caption(f"The newest {DELETE_LIST} runs are listed: choose a student to see theirs.")
    chosen = st.multiselect("Runs to delete", list(labels), format_func=labels.get, key="teacher_delete_ids")
    if "teacher_delete_error" in st.session_state:
        st.error(st.session_state.pop("teacher_delete_error"), icon=":material/error:")
    sure = st.checkbox("I want to delete the chosen runs (and take them off the board)", key="teacher_delete_sure")
    st.button("Delete the chosen runs", key="teacher_delete", disabled=not (sure and chosen), icon=":material/delete:",
              on_click=delete_runs, args=(history, list(chosen), "teacher_delete_ids", "teacher_delete_error"))
except CatdnnError as exc:
    st.error(str(exc), icon=":material/error:")
