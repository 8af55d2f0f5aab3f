"""Figure builders for the dashboard: pure functions returning Plotly figures as plain dicts.

Plain dicts (``{"data": [...], "layout": {...}}``) keep this module free of Plotly and Streamlit
imports, make the figures cheap to rebuild several times a second during live training, and are
easy to check in tests. ``st.plotly_chart`` accepts them as they are.
"""

from __future__ import annotations

import math

# The training curves and the layout every figure shares are the engine's, so that a notebook draws
# what the app draws (catdnn.Model.cost_figure); the figures below are the dashboard's own.
from catdnn.figures import (  # noqa: F401 (cost_figure, accuracy_figure, colours: this module's API too)
    COST_COLOR,
    TEST_COLOR,
    TRAIN_COLOR,
    accuracy_figure,
    cost_axis,
    cost_figure,
)
from catdnn.figures import finite_costs as _finite_costs
from catdnn.figures import iteration_axis as _iteration_axis
from catdnn.figures import layout as _layout
from catdnn.figures import line as _line


def class_counts_figure(counts_by_split: dict, *, title: str = "Images per class", height: int = 260) -> dict:
    """Grouped bars: ``{"train": {"non-cat": 137, "cat": 72}, "test": {...}}``."""
    classes = []
    for counts in counts_by_split.values():
        for name in counts:
            if name not in classes:
                classes.append(name)
    colors = {0: "#7f7f7f", 1: "#2ca02c"}
    data = [
        {
            "type": "bar",
            "name": name,
            "x": list(counts_by_split),
            "y": [counts_by_split[s].get(name, 0) for s in counts_by_split],
            "text": [counts_by_split[s].get(name, 0) for s in counts_by_split],
            "textposition": "outside",  # above each bar, level ("auto" turned a label that did not fit sideways)
            "textangle": 0,
            "cliponaxis": False,
            "marker": {"color": colors.get(k, None)},
        }
        for k, name in enumerate(classes)
    ]
    layout = _layout(title, {}, {"title": {"text": "images"}}, height)
    layout["barmode"] = "group"
    return {"data": data, "layout": layout}


ACTIVE_COLOR = "#1f77b4"
ZERO_COLOR = "#9e9e9e"
DEAD_COLOR = "#d62728"
#: Colours of the runs in :func:`compare_costs_figure` (Plotly's default sequence).
RUN_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def activation_figure(a, dead_everywhere=None, *, title: str = "", height: int = 170) -> dict:
    """One layer's activations for one image: a bar per unit, zeros marked.

    Parameters
    ----------
    a : array-like of shape (n_l, 1) or (n_l,)
        ``A[l]`` for one image (ReLU outputs, ≥ 0).
    dead_everywhere : array-like of bool, shape (n_l,), optional
        Units that output 0 for every training image (dead ReLUs): marked apart from the units that
        are only 0 for this image.
    """
    values = [float(v) for v in (a.ravel() if hasattr(a, "ravel") else a)]
    n = len(values)
    units = list(range(1, n + 1))
    dead = [bool(d) for d in dead_everywhere] if dead_everywhere is not None else [False] * n
    zero = [u for u, v, d in zip(units, values, dead) if v == 0.0 and not d]
    gone = [u for u, d in zip(units, dead) if d]
    data = [
        {
            "type": "bar",
            "x": units,
            "y": values,
            "name": "A > 0",
            "marker": {"color": ACTIVE_COLOR},
            "hovertemplate": "unit %{x}: %{y:.4f}<extra></extra>",
        }
    ]
    for xs, name, color, symbol in (
        (zero, "0 for this image", ZERO_COLOR, "circle-open"),
        (gone, "dead: 0 for every training image", DEAD_COLOR, "x"),
    ):
        if xs:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": xs,
                    "y": [0.0] * len(xs),
                    "name": name,
                    "marker": {"color": color, "symbol": symbol, "size": 9 if n <= 64 else 5},
                    "hovertemplate": f"unit %{{x}}: 0 ({name})<extra></extra>",
                }
            )
    xaxis = {"title": {"text": "unit"}, "range": [0.4, n + 0.6], "showgrid": False}
    if n <= 30:
        xaxis["dtick"] = 1
    layout = _layout(title, xaxis, {"title": {"text": "A"}, "rangemode": "tozero"}, height)
    layout["bargap"] = 0.15 if n <= 64 else 0.0
    layout["showlegend"] = False  # one caption on the page explains the markers (a legend crowds a phone)
    if not title:
        layout["margin"]["t"] = 10
    return {"data": data, "layout": layout}


def compare_costs_figure(runs, *, title: str = "Cost of each run", height: int = 360,
                         ytitle: str = "cross-entropy cost", styles=None, log: bool = False) -> dict:
    """The cost curves of several runs on one chart.

    Parameters
    ----------
    runs : list of (label, history)
        ``history`` is a list of (iteration, cost), as kept with each model.
    ytitle : str
        What the curves measure (:func:`catdnn.figures.cost_axis`: with L2 or dropout, not the plain
        cross-entropy).
    styles : list of (color, dash), optional
        Each curve's colour and Plotly dash ("solid", "dot"); default the :data:`RUN_COLORS` in turn, solid.
    log : bool
        A log cost axis (costs from 1e-4 to a diverged run's 40 on one chart).
    """
    data = []
    for k, (label, history) in enumerate(runs):
        hover = f"{label}<br>iteration %{{x}}<br>cost %{{y:{'.4g' if log else '.4f'}}}<extra></extra>"
        color, dash = styles[k] if styles else (RUN_COLORS[k % len(RUN_COLORS)], "solid")
        trace = _line(_finite_costs(history), label, color, hover)
        trace["line"]["dash"] = dash
        data.append(trace)
    if log:  # one parenthesis: "cost (see below; log scale)", not "cost (see below) (log scale)"
        ytitle = ytitle[:-1] + "; log scale)" if ytitle.endswith(")") else ytitle + " (log scale)"
    yaxis = {"title": {"text": ytitle}, "rangemode": "tozero"}
    if log:
        yaxis = {"title": yaxis["title"], "type": "log", "exponentformat": "power"}
    layout = _layout(title, {"title": {"text": "iteration"}}, yaxis, height)
    # the labels are long: a legend under the chart, one run per line, reads on a phone too
    layout["legend"] = {"orientation": "v", "y": -0.2, "x": 0, "yanchor": "top", "font": {"size": 11}}
    layout["height"] = height + 22 * len(runs)
    return {"data": data, "layout": layout}


#: What :func:`layer_stats_figure` can draw: LayerStats field -> (title, y axis, log scale).
LAYER_STATS_VIEWS = {
    "grad_norms": ("Gradient norm ‖dW[l]‖ per layer", "‖dW‖ (log scale)", True),
    "mean_activations": ("Mean activation of each layer", "mean A[l]", False),
    "zero_fractions": ("Fraction of zero ReLU outputs per hidden layer", "fraction of A[l] = 0", False),
}


def layer_stats_figure(stats, field: str, iterations: int | None = None, *, height: int = 300) -> dict:
    """One line per layer over the iterations of a run, from its ``[catdnn.probe.LayerStats]``.

    ``field``: a key of :data:`LAYER_STATS_VIEWS` (gradient norms on a log axis: vanishing gradients
    sit decades below the others, exploding ones climb).
    """
    title, ytitle, log = LAYER_STATS_VIEWS[field]
    n = len(getattr(stats[0], field)) if stats else 0
    data = []
    for l in range(n):
        pts = [(s.iteration, getattr(s, field)[l]) for s in stats]
        if log:
            pts = [(i, v) for i, v in pts if v > 0 and math.isfinite(v)]
        name = f"layer {l + 1}" + (" (output)" if field != "zero_fractions" and l == n - 1 else "")
        data.append(_line(pts, name, RUN_COLORS[l % len(RUN_COLORS)],
                          f"{name}<br>iteration %{{x}}<br>%{{y:.4g}}<extra></extra>"))
    yaxis = {"title": {"text": ytitle}}
    if log:  # labels at powers of ten only, written as the captions write them (1e-4), no "2, 5" between
        yaxis.update(type="log", dtick=1, exponentformat="e")
    elif field == "zero_fractions":
        yaxis["range"] = [0, 1]
    return {"data": data, "layout": _layout(title, _iteration_axis(iterations), yaxis, height)}
