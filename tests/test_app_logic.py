"""The dashboard's pure helpers: catdnn.evaluate (confusion matrix, ranking) and ui.figures (Plotly figures
as plain dicts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catdnn import evaluate
from ui import figures

ROOT = Path(__file__).resolve().parent.parent

P = np.array([0.9, 0.2, 0.6, 0.4, 0.9, 0.05, 0.5])
Y = np.array([1, 1, 0, 0, 0, 1, 1])


def test_cells_and_confusion_follow_the_threshold_rule():
    # predicted cat when P(cat) > threshold, as catdnn.network.predict does (0.5 is not a cat)
    assert list(evaluate.cells(P, Y)) == ["TP", "FN", "FP", "TN", "FP", "FN", "FN"]
    assert evaluate.confusion(P, Y) == {"TP": 1, "FP": 2, "FN": 3, "TN": 1}
    assert evaluate.confusion(P, Y, threshold=0.0) == {"TP": 4, "FP": 3, "FN": 0, "TN": 0}
    assert evaluate.confusion(P, Y, threshold=1.0) == {"TP": 0, "FP": 0, "FN": 4, "TN": 3}
    assert list(evaluate.predicted(P)) == [1, 0, 1, 0, 1, 0, 0]


def test_scores():
    s = evaluate.scores({"TP": 1, "FP": 2, "FN": 3, "TN": 1})
    assert s["accuracy"] == pytest.approx(2 / 7)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 4)
    empty = evaluate.scores({"TP": 0, "FP": 0, "FN": 0, "TN": 0})
    assert empty == {"accuracy": None, "precision": None, "recall": None}


def test_mistakes_are_sorted_most_confidently_wrong_first():
    idx = evaluate.select(P, Y)  # FP at 4 (0.9) and 2 (0.6); FN at 5 (0.05), 1 (0.2), 6 (0.5)
    assert list(idx) == [5, 4, 1, 2, 6]
    assert list(evaluate.wrong_confidence(P, Y)[idx]) == sorted(evaluate.wrong_confidence(P, Y)[idx], reverse=True)
    assert list(evaluate.select(P, Y, which=("TP", "TN"))) == [3, 0]  # closest call first
    assert list(evaluate.select(P, Y, threshold=0.0, which=("FN",))) == []
    assert list(evaluate.select([0.7, 0.7, 0.7], [0, 0, 0])) == [0, 1, 2]  # ties keep the dataset order


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        evaluate.cells(P, Y[:3])


def test_dataset_facts(dataset):
    assert evaluate.class_counts(dataset.train.labels, dataset.classes) == {"non-cat": 137, "cat": 72}
    assert evaluate.class_counts(dataset.test.labels, dataset.classes) == {"non-cat": 17, "cat": 33}
    assert evaluate.constant_accuracy(dataset.test.labels, answer=1) == pytest.approx(0.66)


def test_cost_figure():
    fig = figures.cost_figure([(0, 0.69), (100, 0.5), (200, float("nan")), (300, 0.3)], iterations=2500)
    trace = fig["data"][0]
    assert trace["x"] == [0, 100, 300] and trace["y"] == [0.69, 0.5, 0.3]  # non-finite points left out
    assert fig["layout"]["xaxis"]["range"] == [0, 2499]  # a live curve grows into a fixed axis
    json.dumps(fig)  # plain data, cheap to send several times a second
    assert figures.cost_figure([])["data"][0]["x"] == []


def test_accuracy_figure():
    fig = figures.accuracy_figure([(0, 0.6, None), (10, 0.7, 0.5), (20, None, 0.6)], iterations=100)
    train, test = fig["data"]
    assert (train["name"], train["x"], train["y"]) == ("train", [0, 10], [0.6, 0.7])
    assert (test["name"], test["x"], test["y"]) == ("test", [10, 20], [0.5, 0.6])
    assert fig["layout"]["yaxis"]["range"][0] == 0
    json.dumps(fig)


def test_class_counts_figure():
    fig = figures.class_counts_figure({"train": {"non-cat": 137, "cat": 72}, "test": {"non-cat": 17, "cat": 33}})
    assert [t["name"] for t in fig["data"]] == ["non-cat", "cat"]
    assert fig["data"][1]["y"] == [72, 33]
    # issue 15: the label "17" was drawn turned sideways inside its bar; every label is level, above its bar
    assert all(t["textangle"] == 0 and t["textposition"] == "outside" for t in fig["data"])


def test_the_saliency_picture_shows_spots_not_a_faint_veil(dataset):
    """Issue 15: on Predict the saliency spots were faint (scaled by the largest gradient, about 0.2 % of the
    pixels were drawn in the heat colour). Now a few percent are, in spots, and the least salient half of
    the picture is the photo alone."""
    from dataclasses import replace

    from skimage import data as skdata

    from catdnn import PRESETS, fit, probe
    from catdnn.images import image_to_input, prepare_image
    from ui.widgets import saliency_picture

    model = fit(replace(PRESETS["deep"], iterations=300), dataset)
    small = np.asarray(prepare_image((Path(skdata.data_dir) / "chelsea.png").read_bytes(), "chelsea.png"))
    heat = probe.saliency_map(probe.saliency(model.params, image_to_input(small), arch=model.arch))
    picture = saliency_picture(small, heat).astype(int)
    red, blue = picture[..., 0], picture[..., 2]
    hot = (red >= 200) & (red - blue >= 120)  # drawn in the heat colour (red to yellow, no blue)
    assert 0.02 <= hot.mean() <= 0.2, hot.mean()
    plain = probe.saliency_overlay(small, np.zeros_like(heat)).astype(int)  # the dimmed photo, no heat
    assert (picture == plain).all(axis=2).mean() >= 0.45


def test_the_engine_helpers_import_neither_streamlit_nor_plotly():
    code = "import sys, catdnn.evaluate; print(sorted({'streamlit', 'plotly'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_log_axes_label_what_was_tried_and_powers_of_ten_only():
    """Log axes drew unexplained minor labels ("2 5 0.001 2 5 0.01", "2, 100µ, 5") beside captions that
    write 1e-4: the learning-rate axis is labelled at the rates tried, the gradient norms at powers of ten."""
    from dataclasses import replace

    from catdnn import PRESETS
    from catdnn.history import RunRecord
    from catdnn.probe import LayerStats
    from ui.history import accuracy_by_setting_figure

    runs = [RunRecord(id=i, created="", source="cli", status="finished", message="",
                      config=replace(PRESETS["deep"], learning_rate=lr), seed=1, iterations_done=10,
                      train_accuracy=0.9, test_accuracy=0.7, elapsed=1.0, solver="gram")
            for i, lr in enumerate((0.0075, 0.002, 0.0075), 1)]
    xaxis = accuracy_by_setting_figure(runs, "learning_rate")["layout"]["xaxis"]
    assert (xaxis["type"], xaxis["tickvals"], xaxis["ticktext"]) == ("log", [0.002, 0.0075], ["0.002", "0.0075"])
    stats = [LayerStats(i, (1e-4 * (i + 1), 2e-5), (0.5, 0.4), (0.1,)) for i in range(3)]
    yaxis = figures.layer_stats_figure(stats, "grad_norms", 3)["layout"]["yaxis"]
    assert (yaxis["type"], yaxis["dtick"], yaxis["exponentformat"]) == ("log", 1, "e")


def test_the_runs_pages_cost_chart_says_what_its_curves_measure():
    """The Runs page drew every run's curve against a bare "cost", a batch-norm or L2 run's included."""
    from dataclasses import replace

    from catdnn import PRESETS
    from catdnn.history import RunRecord
    from ui.history import cost_curves_figure

    def run(i, config):
        return RunRecord(id=i, created="", source="cli", status="finished", message="", config=config, seed=1,
                         iterations_done=2, train_accuracy=0.9, test_accuracy=0.7, elapsed=1.0, solver="gram",
                         history=[(0, 0.7), (1, 0.6)])

    plain = cost_curves_figure([run(1, PRESETS["deep"]), run(2, replace(PRESETS["deep"], seed=2))])
    assert plain["layout"]["yaxis"]["title"]["text"] == "cross-entropy cost"
    l2 = cost_curves_figure([run(1, replace(PRESETS["deep"], l2=0.7)),
                             run(2, replace(PRESETS["deep"], l2=0.7, seed=2))])
    assert l2["layout"]["yaxis"]["title"]["text"] == "cost: cross-entropy + L2 penalty (λ = 0.7)"
    mixed = cost_curves_figure([run(1, PRESETS["deep"]), run(2, replace(PRESETS["deep"], batch_norm=True))])
    assert mixed["layout"]["yaxis"]["title"]["text"].startswith("cost each run minimises")
    # the same words wherever curves of different costs share an axis (the Train page's compare chart too),
    # and none that claims what no run did (it once said "with its L2 penalty, units dropped" for any mix)
    from catdnn.figures import MIXED_COSTS

    assert mixed["layout"]["yaxis"]["title"]["text"] == MIXED_COSTS
    assert "L2" not in MIXED_COSTS and "dropped" not in MIXED_COSTS
    assert "MIXED_COSTS" in (ROOT / "pages" / "1_Train.py").read_text()
