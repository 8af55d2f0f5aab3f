"""The training curves as Plotly figures, built as plain dicts: the dashboard draws these, and so does a notebook.

A figure is ``{"data": [...], "layout": {...}}``: no Plotly import here, cheap to rebuild several times
a second during live training, easy to check in tests. ``st.plotly_chart`` takes the dict as it is;
:func:`plotly_figure` turns it into a ``plotly.graph_objects.Figure`` for a notebook
(:meth:`catdnn.model.Model.cost_figure`). The dashboard's other figures are in ``ui/figures.py``,
which builds on the helpers here.
"""

from __future__ import annotations

import math

COST_COLOR = "#d62728"
TRAIN_COLOR = "#1f77b4"
TEST_COLOR = "#ff7f0e"


def layout(title: str, xaxis: dict, yaxis: dict, height: int) -> dict:
    """The layout every figure of the project shares: a left-aligned title, a legend above, zoom kept."""
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "xaxis": {"automargin": True, **xaxis},
        "yaxis": {"automargin": True, **yaxis},
        "legend": {"orientation": "h", "y": 1.0, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        "uirevision": "keep",  # keep zoom across redraws
    }


def line(pts, name: str, color: str, hover: str) -> dict:
    """A line trace through ``pts`` (a list of (x, y)); a lone point is drawn as a marker."""
    return {
        "type": "scatter",
        "mode": "lines" if len(pts) > 1 else "markers",
        "x": [p[0] for p in pts],
        "y": [p[1] for p in pts],
        "name": name,
        "line": {"color": color, "width": 2},
        "marker": {"color": color},
        "hovertemplate": hover,
    }


def iteration_axis(iterations: int | None) -> dict:
    """An "iteration" x axis, fixed to the planned run so that a live curve grows into it."""
    axis = {"title": {"text": "iteration"}}
    if iterations:
        axis["range"] = [0, max(int(iterations) - 1, 1)]
    return axis


def finite_costs(history) -> list:
    """``[(iteration, cost)]`` without the costs that are None, NaN or infinite (a diverged run's last)."""
    return [(int(i), float(c)) for i, c in history if c is not None and math.isfinite(c)]


#: The longest y-axis title a small chart shows whole (300 px high); a longer one goes under the chart's title.
AXIS_TITLE_CHARS = 32


def cost_meaning(config) -> str:
    """What a run's recorded cost measures (``config``: a TrainConfig): the cross-entropy, on one mini-batch, of
    augmented images, measured with units dropped, plus the L2 penalty, as the run's settings have it."""
    ways = []  # how it is measured, each a phrase
    if config.batch_size:  # each point is one mini-batch's, not the whole training set's: it zig-zags
        ways.append(f"on one mini-batch of {config.batch_size} images")
    if config.flip or config.shift:
        ways.append("flipped or shifted" if config.batch_size else "on images flipped or shifted")
    if config.dropout:
        ways.append("with hidden units dropped")
    if getattr(config, "batch_norm", False):
        ways.append("with each batch's own μ and σ² (batch norm)")
    text = "cross-entropy" + (" " + ", ".join(ways) if ways else "")
    return text + (f" + L2 penalty (λ = {config.l2:g})" if config.l2 else "")


#: The axis of curves that measure different costs (say an L2 run beside a plain one), where no note says more.
MIXED_COSTS = "cost each run minimises (not the same quantity for every run: see each run's settings)"


def cost_axis(configs, mixed: str = "cost each run minimises (see below)") -> str:
    """A cost chart's axis title for these runs: "cross-entropy cost" when every curve is that, what they all
    measure when it is the same, else ``mixed``."""
    meanings = {cost_meaning(c) for c in configs}
    if len(meanings) != 1:
        return mixed
    (meaning,) = meanings
    return "cross-entropy cost" if meaning == "cross-entropy" else f"cost: {meaning}"


def cost_figure(history, iterations: int | None = None, *, title: str = "Cost", height: int = 300,
                ytitle: str = "cross-entropy cost") -> dict:
    """The cost curve.

    Parameters
    ----------
    history : list of (iteration, cost)
    iterations : int, optional
        Total planned iterations: fixes the x axis so that a live curve grows into it.
    ytitle : str
        What the curve measures (:func:`cost_axis` of the run's config: with L2 or dropout, not the plain
        cross-entropy).
    """
    xaxis = iteration_axis(iterations)
    moved = len(ytitle) > AXIS_TITLE_CHARS  # too long for the axis beside a small chart: said under the title
    if moved:
        title, ytitle = f"{title}<br><sup>{ytitle}</sup>", "cost (as said above)"
    figure = {
        "data": [line(finite_costs(history), "cost", COST_COLOR, "iteration %{x}<br>cost %{y:.4f}<extra></extra>")],
        "layout": layout(title, xaxis, {"title": {"text": ytitle}, "rangemode": "tozero"}, height),
    }
    if moved:  # room for the second line of the title
        figure["layout"]["margin"]["t"] = 64
    return figure


def accuracy_figure(
    accuracy_history, iterations: int | None = None, *, title: str = "Accuracy", height: int = 300
) -> dict:
    """Train and test accuracy as training goes.

    Parameters
    ----------
    accuracy_history : list of (iteration, train_accuracy, test_accuracy)
        Either accuracy may be ``None`` (not measured at that iteration).
    """
    traces = []
    for col, name, color in ((1, "train", TRAIN_COLOR), (2, "test", TEST_COLOR)):
        pts = [(int(row[0]), float(row[col])) for row in accuracy_history if row[col] is not None]
        traces.append(line(pts, name, color, f"{name} %{{y:.3f}} at iteration %{{x}}<extra></extra>"))
    xaxis = iteration_axis(iterations)
    yaxis = {"title": {"text": "accuracy"}, "range": [0, 1.02], "tickformat": ".0%"}
    return {"data": traces, "layout": layout(title, xaxis, yaxis, height)}


def plotly_figure(figure: dict):
    """``figure`` (a dict of this module) as a ``plotly.graph_objects.Figure``, which a notebook draws.

    Plotly is imported here, on first use: the engine itself runs without it.
    """
    import plotly.graph_objects as go

    return go.Figure(figure)
