"""The Lessons page's parts: train a lesson on the sweep runner, keep its outcome in the session, draw it.

A lesson's runs go through :func:`ui.history.run_sweep_ui` (the Runs page's progress bar of finished /
total runs; every run kept in the run history as it finishes). The outcome, computed by
:func:`catdnn.lessons.summarise`, is kept in this session's ``st.session_state`` (without the models),
so a lesson's charts stay while another one trains.
"""

from __future__ import annotations

import math
import os
import re
import time

import streamlit as st

from catdnn.data import Dataset
from catdnn.figures import cost_axis
from catdnn.labels import compare
from catdnn.lessons import Lesson, LessonOutcome, estimate_seconds, summarise

from .figures import RUN_COLORS, TEST_COLOR, TRAIN_COLOR, compare_costs_figure
from .history import run_sweep_ui

KEY = "catdnn_lessons"  # this page's one entry in st.session_state: {lesson key: LessonOutcome}


@st.cache_resource
def timings() -> dict:
    """This server's last measured click of each lesson: {lesson key: (seconds, load average then)}. One for all
    sessions: how long a lesson takes here is a fact of the server, not of a user."""
    return {}


def load_now() -> tuple[float, int]:
    """The 1-minute load average and the cores (the load average is 0 where the system has none)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return load, os.cpu_count() or 1


def button_label(lesson: Lesson) -> str:
    """The lesson's button, with how long a click takes now (:func:`catdnn.lessons.estimate_seconds`: this server's
    last measured click, or the idle figure, scaled by the load)."""
    load, cores = load_now()
    measured = timings().get(lesson.key)
    seconds = estimate_seconds(lesson, load, cores, measured)
    why = (f"; took {measured[0]:.0f} s here last time" if measured else
           f"; the server is busy, load {load:.0f} on {cores} cores" if load > cores else "")
    return f"Train the {len(lesson.runs)} runs (about {seconds:.0f} s{why})"


def outcomes() -> dict:
    """This session's trained lessons, by lesson key."""
    return st.session_state.setdefault(KEY, {})


def run_lesson_ui(lesson: Lesson, ds: Dataset) -> LessonOutcome | None:
    """Train the lesson's runs (progress bar; each kept in the history) and keep its outcome in the session."""
    # the models stay for summarise() (weight norms): a lesson's few runs are small, fixed networks
    start, load = time.perf_counter(), load_now()[0]
    results = run_sweep_ui(lesson.configs(), ds.source, f"lesson: {lesson.title}", source="lesson",
                           options=lesson.trainer_options(), keep_models=True,
                           expected=lesson.explained + ("stopped",))  # a lesson by rate shows where runs diverge
    if not results:
        return None
    outcome = outcomes()[lesson.key] = summarise(lesson, results, ds)
    outcome.wall = time.perf_counter() - start
    if outcome.complete:  # a stopped click is not how long the lesson takes
        timings()[lesson.key] = (outcome.wall, load)
    return outcome


def accuracy_bars_figure(runs, *, title: str = "Train and test accuracy of each run", height: int = 320) -> dict:
    """Grouped bars of each run's final train and test accuracy (``runs``: :class:`RunSummary` list)."""
    names = [r.name for r in runs]
    data = []
    for attr, label, color in (("train_accuracy", "train", TRAIN_COLOR), ("test_accuracy", "test", TEST_COLOR)):
        ys = [getattr(r, attr) for r in runs]
        data.append({"type": "bar", "name": label, "x": names, "y": ys, "marker": {"color": color},
                     "text": [f"{y:.3f}" if y is not None else "" for y in ys], "textposition": "outside",
                     "hovertemplate": f"%{{x}}<br>{label} %{{y:.3f}}<extra></extra>"})
    layout = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}}, "height": height,
        "barmode": "group", "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "yaxis": {"range": [0, 1.12], "title": {"text": "accuracy"}, "tickformat": ".0%"},
        "xaxis": {"type": "category", "automargin": True},
        "legend": {"orientation": "h", "y": 1.0, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    }
    return {"data": data, "layout": layout}


def rate_styles(runs) -> list:
    """Each run's (colour, dash) on a lesson by rate: one colour per learning rate, dotted without batch norm and
    solid with it, so a rate's two runs read as a pair."""
    rates = sorted({r.config.learning_rate for r in runs})
    return [(RUN_COLORS[rates.index(r.config.learning_rate) % len(RUN_COLORS)],
             "solid" if r.config.batch_norm else "dot") for r in runs]


def final_cost_by_rate_figure(runs, learn_below: float | None = None, *, height: int = 360) -> dict:
    """Each run's last recorded cost against its learning rate (log axes), one line without batch norm and one
    with; a diverged run's point is a cross at its last finite cost; a dashed line where a run "learns"."""
    data = []
    for normed, name, dash in ((False, "without batch norm", "dot"), (True, "with batch norm", "solid")):
        group = sorted((r for r in runs if r.config.batch_norm == normed and r.final_cost is not None),
                       key=lambda r: r.config.learning_rate)
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": name,
            "x": [r.config.learning_rate for r in group], "y": [r.final_cost for r in group],
            "line": {"color": "#1f77b4" if normed else "#7f7f7f", "dash": dash, "width": 2},
            "marker": {"size": 9, "symbol": ["x" if r.status == "diverged" else "circle" for r in group]},
            "text": [r.status for r in group],
            "hovertemplate": f"{name}<br>rate %{{x:g}}<br>last cost %{{y:.4g}} (%{{text}})<extra></extra>"})
    layout = {
        "title": {"text": "Last cost against learning rate<br><sup>a cross: the run diverged</sup>", "x": 0,
                  "xanchor": "left", "font": {"size": 15}},
        "height": height, "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
        "xaxis": {"type": "log", "title": {"text": "learning rate (log scale)"}, "automargin": True},
        "yaxis": {"type": "log", "title": {"text": "last recorded cost (log scale)"}, "automargin": True,
                  "exponentformat": "power"},
        "legend": {"orientation": "h", "y": 1.0, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    }
    if learn_below is not None:
        layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": learn_below,
                             "y1": learn_below, "line": {"dash": "dash", "color": "#d62728", "width": 1}}]
        layout["annotations"] = [{"xref": "paper", "x": 0, "xanchor": "left", "y": math.log10(learn_below),
                                  "yanchor": "bottom", "text": f"learns below {learn_below:.3f}",
                                  "showarrow": False, "font": {"size": 11, "color": "#d62728"}}]
    return {"data": data, "layout": layout}


def _words(text: str) -> set:
    return {w for w in re.split(r"[\s,()]+", text.lower()) if w}


def legend_names(runs, differ) -> list[str]:
    """Each run's legend entry: its name, then the parts of what sets it apart (``differ``, one label per run
    from :func:`catdnn.labels.compare`, parts joined by " · ") that the name does not already say. A part is
    said when its first or last word is a word of the name ("small init" by "×0.01 (small)", "lr 0.0001" by
    "Adam, rate 0.0001"), so no entry says a thing twice."""
    names = []
    for run, label in zip(runs, differ):
        said = _words(run.name)
        parts = [p for p in (label or "").split(" · ")
                 if p and not ({p.split()[0].lower(), p.split()[-1].lower()} & said)]
        names.append(f"{run.name} ({' · '.join(parts)})" if parts else run.name)
    return names


def draw_outcome(outcome: LessonOutcome) -> None:
    """The runs' cost curves overlaid (and their accuracies when that is the lesson's point), then the
    sentences that say what they show (and what each curve measures, when the runs minimise different costs)."""
    key = outcome.lesson.key
    common, differ = compare(outcome.runs, architecture=False)  # the settings shared, and what sets each apart
    curves = [(name, r.history) for r, name in zip(outcome.runs, legend_names(outcome.runs, differ)) if r.history]
    by_rate = outcome.lesson.by_rate
    styles = rate_styles([r for r in outcome.runs if r.history]) if by_rate else None
    chart = compare_costs_figure(curves, title=f"Cost of each run<br><sup>{common}</sup>",
                                  ytitle=cost_axis(r.config for r in outcome.runs), styles=styles, log=by_rate)
    if outcome.lesson.accuracy:
        left, right = st.columns(2)
        left.plotly_chart(chart, key=f"lesson_{key}_cost")
        right.plotly_chart(accuracy_bars_figure(outcome.runs), key=f"lesson_{key}_accuracy")
    elif by_rate:
        left, right = st.columns(2)
        left.plotly_chart(chart, key=f"lesson_{key}_cost")
        right.plotly_chart(final_cost_by_rate_figure(outcome.runs, outcome.learn_below), key=f"lesson_{key}_rates")
    else:
        st.plotly_chart(chart, key=f"lesson_{key}_cost")
    seconds = sum(r.elapsed for r in outcome.runs)
    st.caption(" · ".join(
        f"{r.name}: train {r.train_accuracy:.3f}, test {r.test_accuracy:.3f}" if r.test_accuracy is not None
        else f"{r.name}: {r.status}" for r in outcome.runs)
        + (f" · took {outcome.wall:.1f} s" if outcome.wall is not None else "")
        + f" · {seconds:.1f} s of training in all (the runs' times added up), on {outcome.dataset or 'the dataset'}")
    body = " ".join(outcome.sentences)
    if outcome.complete:
        st.info(body, icon=":material/school:")
    else:
        st.warning(body, icon=":material/warning:")
