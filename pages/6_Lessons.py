"""Lessons: the second course's questions in one click each (init, optimizers, regularisation, batch norm): a few runs
on all cores, their curves overlaid, and sentences computed from what the runs produced."""

import streamlit as st

from catdnn.lessons import LESSONS
from ui import page_setup
from ui.dataset import dataset_ui
from ui.lessons import button_label, draw_outcome, outcomes, run_lesson_ui

page_setup("Lessons")
st.title("Lessons")
st.caption("One click per lesson: it trains a few runs side by side on this server's cores, overlays their "
           "curves and says what they show. Its sentences are computed from the numbers these runs produce, not "
           "written in advance. Every run is kept in the run history (**Runs** page).")

for tab, lesson in zip(st.tabs([lesson.title for lesson in LESSONS.values()]), LESSONS.values()):
    with tab:
        st.markdown(f"**{lesson.question}**")
        st.caption(f"{len(lesson.runs)} runs of {lesson.iterations:,} iterations on layers "
                   f"{list(lesson.base.layers)}: " + "; ".join(lesson.names) + ".")
        if st.button(button_label(lesson), key=f"lesson_{lesson.key}_run", type="primary",
                     icon=":material/play_arrow:"):
            run_lesson_ui(lesson, dataset_ui())
        outcome = outcomes().get(lesson.key)
        if outcome is not None:
            draw_outcome(outcome)
