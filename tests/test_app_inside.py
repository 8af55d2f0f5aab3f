"""The "Inside the network" page and the Train page's "Compare runs" under Streamlit's AppTest.

Each page script runs on its own (as when opened first by URL), with trained models put into its
session where a test needs them (tests/app_support.py). The dataset comes from $CATDNN_DATA_DIR
(see conftest.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from catdnn import PRESETS, TrainConfig, fit
from catdnn.data import COURSE_NAME
from catdnn.model import Model
from catdnn.network import init_params
from tests.app_support import ENTRY, INSIDE, TRAIN, app, assert_clean, images, session_of

PAGE = INSIDE


def figure(at: AppTest, key: str) -> dict:
    """The plotly figure of the chart with this key, as the dict the page drew."""
    charts = [c for c in at.get("plotly_chart") if key in c.proto.id]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def shown_p_cat(at: AppTest) -> float:
    text = next(m.value for m in at.markdown if "P(cat) = **" in m.value)
    return float(re.search(r"P\(cat\) = \*\*([0-9.]+)\*\*", text).group(1))


@pytest.fixture(scope="module")
def deep_model(dataset):
    """The course's deep network after 300 iterations: some test images right, some wrong."""
    return fit(replace(PRESETS["deep"], iterations=300), dataset)


@pytest.fixture(scope="module")
def two_layer_model(dataset):
    return fit(replace(PRESETS["two-layer"], iterations=200), dataset)


# --------------------------------------------------------------------------- without a model
def test_inside_opened_first_by_url_offers_a_model(data_dir):
    at = app(PAGE).run()
    assert_clean(at)
    assert at.title[0].value == "Inside the network"
    assert any("No model yet" in i.value for i in at.info)
    assert at.button(key="inside_train_deep")
    assert images(at) == 0 and not at.get("plotly_chart")


def test_inside_trains_the_deep_preset_in_one_click(data_dir):
    at = app(PAGE).run()
    at.button(key="inside_train_deep").click().run()
    assert_clean(at)
    assert session_of(at).current_model.layers == (12288, 20, 7, 5, 1)
    assert not any("No model yet" in i.value for i in at.info)
    assert images(at) == 20 + 1  # the 20 first-layer units and the image followed through the network


def test_navigation_reaches_the_page(data_dir):
    at = app(ENTRY).run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.title[0].value == "Inside the network"


# --------------------------------------------------------------------------- with a model
def test_first_layer_shows_one_image_per_unit(data_dir, deep_model):
    at = app(PAGE, deep_model).run()
    assert_clean(at)
    assert images(at) == 20 + 1
    assert "Showing all 20 units" in at.markdown[0].value
    unit_captions = [c.value for c in at.caption if c.value.startswith("unit ")]
    assert len(unit_captions) == 20 and unit_captions[0].startswith("unit 1 · ‖w‖ ")
    assert any(c.value.startswith("Mid-grey is 0.") for c in at.caption)


def test_a_wide_first_layer_shows_the_largest_units_or_the_first(data_dir):
    params = init_params([12288, 60, 1], "xavier", seed=4)
    wide = Model(params=params, config=TrainConfig(layers=(12288, 60, 1)))
    norms = np.linalg.norm(params[0][0], axis=1)
    at = app(PAGE, wide).run()
    assert_clean(at)
    assert images(at) == 24 + 1  # 24 units by default
    assert "the 24 of 60 units with the largest norm ‖w‖" in at.markdown[0].value
    first = next(c.value for c in at.caption if c.value.startswith("unit "))
    assert first.startswith(f"unit {int(np.argmax(norms)) + 1} · ")
    at.slider(key="inside_units_n").set_value(8)
    at.radio(key="inside_units_by").set_value("first").run()
    assert_clean(at)
    assert images(at) == 8 + 1
    assert "units 1–8 of 60" in at.markdown[0].value
    assert [c.value.split(" ·")[0] for c in at.caption if c.value.startswith("unit ")] == [
        f"unit {k}" for k in range(1, 9)]


def test_what_training_changed_subtracts_the_random_start(data_dir, deep_model):
    untrained = Model(params=init_params([12288, 5, 1], "small", seed=7),
                      config=TrainConfig(layers=(12288, 5, 1), init="small", seed=7))
    at = app(PAGE, untrained).run()
    assert all(not c.value.endswith("‖w‖ 0.00") for c in at.caption if c.value.startswith("unit "))
    assert any("Noise?" in c.value for c in at.caption)
    at.toggle(key="inside_minus_init").set_value(True).run()
    assert_clean(at)
    assert "minus the random weights they started from" in at.markdown[0].value
    units = [c.value for c in at.caption if c.value.startswith("unit ")]
    assert len(units) == 5 and all(c.endswith("‖w‖ 0.00") for c in units)  # nothing trained: no change

    at = app(PAGE, deep_model)
    at.session_state["inside_minus_init"] = True
    at.run()
    assert_clean(at)
    assert images(at) == 20 + 1
    assert not any(c.value.endswith("‖w‖ 0.00") for c in at.caption if c.value.startswith("unit "))


def test_follow_one_image_shows_the_models_p_cat(dataset, deep_model):
    at = app(PAGE, deep_model).run()
    assert_clean(at)
    assert shown_p_cat(at) == pytest.approx(deep_model.predict_proba(dataset.test.X[:, [0]])[0], abs=5e-5)
    at.number_input(key="inside_index").set_value(7).run()
    assert_clean(at)
    p7 = deep_model.predict_proba(dataset.test.X[:, [7]])[0]
    assert shown_p_cat(at) == pytest.approx(p7, abs=5e-5)
    verdict = next(m.value for m in at.markdown if m.value.startswith("Verdict:"))
    assert ("**cat**" if p7 > 0.5 else "**non-cat**") in verdict
    # one bar chart per hidden layer, with the course's shapes
    assert len(at.get("plotly_chart")) == 3
    layer2 = "**Layer 2**: $A^{[2]} = \\mathrm{ReLU}(Z^{[2]})$, "
    assert any(m.value.startswith(layer2) and "of 7 units are 0" in m.value for m in at.markdown)
    assert figure(at, "inside_act_1")["data"][0]["x"] == list(range(1, 21))
    shapes = [c.value for c in at.caption if c.value.startswith("Z[")]
    assert shapes[0] == "Z[1] = W[1]·A[0] + b[1]: (20, 12288)·(12288, 1) + (20, 1) → A[1] is (20, 1)"
    assert shapes[-1].endswith("→ A[4] is (1, 1)")

    at.toggle(key="inside_train_set").set_value(True).run()  # the training set, same index
    assert_clean(at)
    assert shown_p_cat(at) == pytest.approx(deep_model.predict_proba(dataset.train.X[:, [7]])[0], abs=5e-5)
    at.number_input(key="inside_index").set_value(208).run()
    at.toggle(key="inside_train_set").set_value(False).run()  # back to 50 test images: the index is clamped
    assert_clean(at)
    assert at.number_input(key="inside_index").value == 49


def test_a_random_mistake_is_a_mistake(dataset, deep_model):
    p = deep_model.predict_proba(dataset.test.X)
    wrong = set(np.flatnonzero((p > 0.5) != (dataset.test.labels == 1)).tolist())
    assert wrong
    at = app(PAGE, deep_model).run()
    for _ in range(3):
        at.button(key="inside_random_mistake").click().run()
        assert_clean(at)
        assert at.number_input(key="inside_index").value in wrong
        assert any(m.value.startswith("Verdict:") and "**wrong**" in m.value for m in at.markdown)


def test_dead_units_are_counted_and_a_dead_layer_explained(dataset, deep_model):
    at = app(PAGE, deep_model).run()
    table = next(m.value for m in at.markdown if m.value.startswith("| layer |"))
    assert "0 for all 209 training images" in table and table.count("\n| ") == 3  # one row per hidden layer
    assert not any("Every unit of layer" in w.value for w in at.warning)

    dead = fit(replace(PRESETS["deep"], learning_rate=1.0, iterations=300), dataset)  # the ReLUs die
    at = app(PAGE, dead).run()
    assert_clean(at)
    assert any("Every unit of layer" in w.value and "stopped learning" in w.value for w in at.warning)


def test_the_gradient_check_button_shows_a_tiny_difference(data_dir, deep_model, two_layer_model):
    at = app(PAGE, deep_model, two_layer_model).run()
    assert not [m for m in at.metric if m.label.startswith("Relative difference")]
    at.button(key="inside_gradcheck").click().run()
    assert_clean(at)
    metric = next(m for m in at.metric if m.label.startswith("Relative difference"))
    assert 0 < float(metric.value) < 1e-7
    assert any(s.value.startswith("**Great**") for s in at.success)
    assert any("layers [32, 7, 1]" in m.value for m in at.markdown)  # the current model is the two-layer one

    picker = at.selectbox(key="inside_model")
    assert picker.value.startswith("#2 custom (7)")  # 200 and 300 iterations: neither is a preset
    deep = next(name for name in picker.options if name.startswith("#1 custom (20, 7, 5)"))
    picker.set_value(deep).run()  # another model: its own check, not run yet
    assert_clean(at)
    assert not [m for m in at.metric if m.label.startswith("Relative difference")]
    at.button(key="inside_gradcheck").click().run()
    assert float(next(m for m in at.metric if m.label.startswith("Relative difference")).value) < 1e-7
    assert any("layers [32, 8, 7, 5, 1]" in m.value for m in at.markdown)


# --------------------------------------------------------------------------- Train: compare runs
def open_compare(at: AppTest) -> AppTest:
    """Open the "Compare runs" expander (what a click on it does: its state, then a rerun)."""
    at.session_state["train_compare_expander"] = True
    return at.run()


def test_compare_runs_overlays_the_cost_of_two_models(data_dir, deep_model, two_layer_model):
    at = app(TRAIN, deep_model, two_layer_model).run()
    assert_clean(at)
    assert [e.label for e in at.expander if e.label.startswith("Compare runs")] == ["Compare runs (2 in this session)"]
    assert not at.get("plotly_chart")  # closed: nothing is built
    open_compare(at)
    assert_clean(at)
    fig = figure(at, "train_compare")
    names = [t["name"] for t in fig["data"]]
    assert len(names) == 2
    # each named, then told apart by what differs (the fixtures' short runs are no preset: "custom")
    assert names[0].startswith(f"#1 custom (20, 7, 5) on {COURSE_NAME}, test ")
    assert names[0].endswith(" · [12288,20,7,5,1] · xavier init · 300 iterations")
    assert names[1].startswith(f"#2 custom (7) on {COURSE_NAME}, test ")
    assert " · [12288,7,1] · small init · " in names[1]
    assert "lr 0.0075" in fig["layout"]["title"]["text"] and "seed 1" in fig["layout"]["title"]["text"]
    assert fig["data"][0]["y"] == pytest.approx([c for _, c in deep_model.history])


def test_compare_runs_with_one_model_invites_another_run(data_dir, deep_model):
    at = open_compare(app(TRAIN, deep_model))
    assert_clean(at)
    assert any("Train another run" in c.value for c in at.caption)
    assert not at.get("plotly_chart")  # nothing to compare yet
    at = app(TRAIN).run()  # no model: no section
    assert not [e for e in at.expander if e.label.startswith("Compare runs")]
    assert not any("Train another run" in c.value for c in at.caption)


# --------------------------------------------------------------------------- statistics during training
def test_the_statistics_of_the_run_show_each_layer(dataset):
    model = fit(replace(PRESETS["deep"], iterations=200), dataset, stats_every=20)
    at = app(PAGE, model).run()
    assert_clean(at)
    spec = figure(at, "inside_stats")
    assert [t["name"] for t in spec["data"]] == ["layer 1", "layer 2", "layer 3", "layer 4 (output)"]
    assert spec["layout"]["yaxis"]["type"] == "log"
    assert spec["data"][0]["x"] == [s.iteration for s in model.stats]
    assert spec["data"][0]["y"] == pytest.approx([s.grad_norms[0] for s in model.stats])
    at.segmented_control(key="inside_stats_view").set_value("zero_fractions").run()
    assert_clean(at)
    spec = figure(at, "inside_stats")
    assert len(spec["data"]) == 3 and spec["data"][2]["y"] == pytest.approx([s.zero_fractions[2] for s in model.stats])
    assert any("Vanishing gradients" in c.value for c in at.caption)


def test_a_model_without_statistics_says_so(data_dir, deep_model):
    from catdnn.model_io import load_model, model_to_bytes

    loaded = load_model(model_to_bytes(deep_model))  # a file keeps no statistics
    at = app(PAGE, loaded).run()
    assert_clean(at)
    assert any("No statistics were recorded for this model" in i.value for i in at.info)
    assert not [c for c in at.get("plotly_chart") if "inside_stats" in c.proto.id]


def test_small_init_on_the_deep_net_shows_vanishing_gradients(dataset):
    """×0.01 (the two-layer net's init) on the deep net: every layer's gradient is decades below xavier's, and
    stays there."""
    small, xavier = (fit(replace(PRESETS["deep"], init=init, iterations=50), dataset, stats_every=10)
                     for init in ("small", "xavier"))
    for layer in range(4):
        assert max(s.grad_norms[layer] for s in small.stats) < 1e-2 * xavier.stats[0].grad_norms[layer]


def test_the_gradient_caption_names_whose_init_x0_01_is_and_cites_this_runs_norms(dataset):
    """Learner review item 4 (issue 20 item 8): ×0.01 is the two-layer net's init, not the course's deep-net init;
    the caption's figures are this run's first record, not numbers written in advance."""
    model = fit(replace(PRESETS["deep"], init="small", iterations=20), dataset, stats_every=10)
    at = app(PAGE, model).run()
    assert_clean(at)
    (caption,) = [c.value for c in at.caption if "Vanishing gradients" in c.value]
    assert "the course's ×0.01" not in caption and "×0.01, the two-layer net's init" in caption
    g = model.stats[0].grad_norms
    lo, hi = int(np.argmin(g)), int(np.argmax(g))
    assert (f"first record (iteration {model.stats[0].iteration:,}): ‖dW‖ from {g[lo]:.3g} in layer {lo + 1} to "
            f"{g[hi]:.3g} in layer {hi + 1}") in caption
    assert hi == 1 and lo == 3 and g[hi] < 2e-4  # seed 1: 1.15e-4 in layer 2, 8.39e-5 in layer 4
