"""The Step page (AppTest): one iteration in three clicks, forward, backward, update, each showing every layer's
equations and numbers, the engine's own (catdnn.stepper, itself checked against catdnn.network in
tests/test_stepper.py); a few images of the two-layer net; the session's current model; a CNN refused."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from catdnn import PRESETS
from catdnn.cnn import init_cnn
from catdnn.model import Model
from catdnn.network import BatchNorm, compute_cost, forward, init_params
from catdnn.stepper import PHASES, Stepper, first_examples
from tests.app_support import STEP, app, assert_clean

BUTTONS = [f"step_{phase}" for phase in PHASES]


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def latex(at) -> str:
    return "\n".join(e.value for e in at.latex)


def enabled(at) -> list:
    return [key for key in BUTTONS if not at.button(key=key).disabled]


def table_of(record) -> str:
    """The rows of the norm table the page draws for a forward ``record`` (layer, ‖Z‖, ‖A‖), the engine's norms."""
    return "\n".join(f"| {ls.layer} | " + " | ".join(f"{a.norm:.4g}" for a in ls.arrays) + " |" for ls in record.layers)


def test_three_clicks_take_one_iteration_of_the_deep_net_with_the_engines_numbers(dataset):
    """The defaults are the course's deep net from seed 1 on all 209 images at α 0.0075: forward shows the
    course's first cost 0.771749, backward the gradients, update the step and the cost after, lower."""
    engine = Stepper(PRESETS["deep"], dataset.train.X, dataset.train.Y)
    at = app(STEP).run()
    assert_clean(at)
    assert at.title[0].value == "Step"
    assert enabled(at) == ["step_forward"] and metrics(at) == {}
    assert any("Layers [12288, 20, 7, 5, 1]" in m.value and "seed 1" in m.value and "first 209 training images"
               in m.value for m in at.markdown)

    at.button(key="step_forward").click().run()
    assert_clean(at)
    fwd = engine.forward()
    assert enabled(at) == ["step_backward"]
    assert metrics(at)["Cost before the update"] == f"{fwd.cost:.6f}" == "0.771749"
    assert metrics(at)["Cost after the update"] == "—"
    shown = latex(at)
    assert r"\underset{(20,\,209)}{Z^{[1]}} &= \underset{(20,\,12288)}{W^{[1]}}" in shown
    for ls in fwd.layers:
        for array in ls.arrays:
            assert array.latex() in shown
    assert any(table_of(fwd) in m.value for m in at.markdown)
    assert at.subheader[0].value == "1 · Forward propagation, iteration 1"

    at.button(key="step_backward").click().run()
    assert_clean(at)
    bwd = engine.backward()
    assert enabled(at) == ["step_update"]
    shown = latex(at)
    assert r"dZ^{[4]}} &= A^{[4]} - Y" in shown and r"\mathrm{ReLU}'(Z^{[1]})" in shown
    for ls in bwd.layers:
        for array in ls.arrays:
            assert array.latex() in shown
    assert at.subheader[0].value == "2 · Backward propagation, iteration 1"

    at.button(key="step_update").click().run()
    assert_clean(at)
    upd = engine.update()
    assert enabled(at) == ["step_forward"]
    assert metrics(at)["Cost after the update"] == f"{upd.cost:.6f}" == "0.697991"
    assert upd.cost < fwd.cost
    assert metrics(at)["Iterations done"] == "1"
    shown = latex(at)
    assert r"W^{[1]} &:= W^{[1]} - 0.0075\, dW^{[1]}" in shown
    for ls in upd.layers:
        assert ls.arrays[0].latex() in shown  # ΔW: the update's size
    assert at.subheader[0].value == "3 · Update, iteration 1"

    at.button(key="step_forward").click().run()  # the next iteration starts where the last one ended
    assert metrics(at)["Cost before the update"] == f"{engine.forward().cost:.6f}" == "0.697991"
    assert at.subheader[0].value == "1 · Forward propagation, iteration 2"


def test_a_few_images_of_the_two_layer_net_and_start_over(dataset):
    at = app(STEP).run()
    at.button(key="step_forward").click().run()
    at.radio(key="step_network").set_value("two-layer")
    at.number_input(key="step_images").set_value(5)
    at.number_input(key="step_seed").set_value(3)
    at.button(key="step_reset").click().run()
    assert_clean(at)
    assert enabled(at) == ["step_forward"] and metrics(at) == {}  # started over
    assert any("Layers [12288, 7, 1]" in m.value and "seed 3" in m.value and "first 5 training images" in m.value
               for m in at.markdown)
    at.button(key="step_forward").click().run()
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 5)
    AL, _cache = forward(init_params(PRESETS["two-layer"].layers, "small", 3), X)
    assert metrics(at)["Cost before the update"] == f"{compute_cost(AL, Y):.6f}"
    assert r"\underset{(7,\,5)}{Z^{[1]}}" in latex(at) and r"\underset{(1,\,5)}{A^{[2]}}" in latex(at)


def test_it_steps_from_the_current_model_and_says_so(dataset):
    config = PRESETS["two-layer"]
    model = Model(init_params(config.layers, config.init, 7), config)
    at = app(STEP, model).run()
    at.radio(key="step_network").set_value("current model")
    at.number_input(key="step_images").set_value(20)
    at.button(key="step_reset").click().run()
    assert_clean(at)
    assert any("starting from the current model's weights" in m.value for m in at.markdown)
    at.button(key="step_forward").click().run()
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 20)
    assert metrics(at)["Cost before the update"] == f"{compute_cost(forward(model.params, X)[0], Y):.6f}"
    at.button(key="step_backward").click().run()
    at.button(key="step_update").click().run()
    assert_clean(at)
    assert np.array_equal(model.params[0][0], init_params(config.layers, config.init, 7)[0][0])  # untouched


def test_a_convolutional_current_model_is_refused_with_the_reason(data_dir):
    config = PRESETS["cnn"]
    model = Model(init_cnn(config.parsed_arch(), "he", 1), config)
    at = app(STEP, model).run()
    at.radio(key="step_network").set_value("current model")
    at.button(key="step_reset").click().run()
    assert_clean(at)
    assert any("convolutional net" in e.value and "two-layer or deep preset" in e.value for e in at.error)
    assert "step_forward" not in [b.key for b in at.button]


def test_a_batch_norm_preset_shows_the_normalisation_with_the_engines_numbers(dataset):
    """Issue 17 items 1 and 4: the Batch norm box steps the deep net with batch norm: forward shows μ, σ², Z_norm,
    γ, β and Z̃ of every hidden layer, backward dZ̃, dγ and dβ, update γ and β moving; every array is the engine's
    (catdnn.stepper on the same settings, checked against catdnn.network in tests/test_stepper.py)."""
    at = app(STEP).run()
    at.number_input(key="step_images").set_value(12)
    at.checkbox(key="step_bn").check()
    at.button(key="step_reset").click().run()
    assert_clean(at)
    assert any("Layers [12288, 20, 7, 5, 1], with batch norm," in m.value for m in at.markdown)
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 12)
    engine = Stepper(replace(PRESETS["deep"], batch_norm=True), X, Y)
    forward_symbols = [r"\mu", r"{\sigma^2}", r"Z_{\mathrm{norm}}", r"\gamma", r"\beta", r"\tilde{Z}"]
    for phase, symbols in (("forward", forward_symbols),
                           ("backward", [r"d\tilde{Z}", r"d\gamma", r"d\beta"]),
                           ("update", [r"\Delta\gamma", r"\Delta\beta", r"\gamma", r"\beta"])):
        at.button(key=f"step_{phase}").click().run()
        assert_clean(at)
        record = getattr(engine, phase)()
        shown = latex(at)
        for ls in record.layers:
            for array in ls.arrays:
                assert array.latex() in shown
        hidden = {a.symbol for ls in record.layers if ls.layer < 4 for a in ls.arrays}
        assert set(symbols) <= hidden
        assert any("With batch norm" in c.value for c in at.caption)
        if phase == "forward":
            assert metrics(at)["Cost before the update"] == f"{record.cost:.6f}"
            assert r"\sqrt{{\sigma^2}^{[1]} + 1\mathrm{e}{-8}}" in shown
    assert metrics(at)["Cost after the update"] == f"{record.cost:.6f}"


def test_it_steps_a_batch_norm_current_model_with_its_own_gamma_and_beta(dataset):
    config = replace(PRESETS["two-layer"], batch_norm=True)
    bn = BatchNorm.init(config.layers)
    bn.params = [(np.full_like(g, 1.5), np.full_like(b, 0.25)) for g, b in bn.params]
    model = Model(init_params(config.layers, config.init, 7), config, bn=bn)
    at = app(STEP, model).run()
    at.radio(key="step_network").set_value("current model")
    at.number_input(key="step_images").set_value(20)
    at.button(key="step_reset").click().run()
    assert_clean(at)
    at.button(key="step_forward").click().run()
    assert_clean(at)
    X, Y = first_examples(dataset.train.X, dataset.train.Y, 20)
    AL, _cache = forward(model.params, X, bn=bn)  # the batch's own μ and σ², the model's γ = 1.5, β = 0.25
    assert metrics(at)["Cost before the update"] == f"{compute_cost(AL, Y):.6f}"
    assert r"\gamma^{[1]}} = \begin{bmatrix}1.5 \\ 1.5 \\ 1.5 \\ \vdots\end{bmatrix}" in latex(at)
    for phase in ("backward", "update"):
        at.button(key=f"step_{phase}").click().run()
    assert_clean(at)
    assert np.array_equal(model.bn.params[0][0], np.full((7, 1), 1.5))  # the model's own γ untouched


def test_a_batch_norm_net_on_one_image_is_refused_with_the_reason(data_dir):
    at = app(STEP).run()
    at.number_input(key="step_images").set_value(1)
    at.checkbox(key="step_bn").check()
    at.button(key="step_reset").click().run()
    assert_clean(at)
    assert any("one image has no variance" in e.value and "take 2 or more" in e.value for e in at.error)
    assert not any("training set is 1 example" in e.value for e in at.error)  # the learner chose 1 of 209 images


def test_counts_are_singular_or_plural_as_the_numbers_are(data_dir):
    """Learner review of issue 17: "(1 cats, 4 non-cats)"."""
    at = app(STEP).run()
    for m in (1, 2, 5):
        at.number_input(key="step_images").set_value(m)
        at.button(key="step_reset").click().run()
        assert_clean(at)
        (line,) = [x.value for x in at.markdown if x.value.startswith("Layers")]
        cats, others = (int(n) for n in re.search(r"\((\d+) cats?, (\d+) non-cats?\)", line).groups())
        assert f"({cats} cat{'' if cats == 1 else 's'}, {others} non-cat{'' if others == 1 else 's'})" in line
        assert ("on the first training image (" if m == 1 else f"on the first {m} training images (") in line


def test_a_current_model_says_its_own_batch_norm_setting_applies_not_the_box(dataset):
    """Learner review of issue 17: with the box unticked, the current model (with batch norm) said "with batch norm"
    and nothing about the box."""
    config = replace(PRESETS["two-layer"], batch_norm=True)
    model = Model(init_params(config.layers, config.init, 7), config, bn=BatchNorm.init(config.layers))
    at = app(STEP, model).run()
    at.radio(key="step_network").set_value("current model")
    at.number_input(key="step_images").set_value(20)
    at.button(key="step_reset").click().run()
    assert_clean(at)
    (line,) = [x.value for x in at.markdown if x.value.startswith("Layers")]
    assert "with batch norm" in line and "has batch norm of its own" in line and "unticked" in line
    assert "applies to the presets only" in line


def test_a_step_that_raises_the_cost_says_it_overshot(data_dir):
    """Learner review of issue 17: at α = 100 the cost jumped from 0.772 to 14.03 with no word."""
    at = app(STEP).run()
    at.number_input(key="step_lr").set_value(100.0)
    at.button(key="step_reset").click().run()
    for phase in PHASES:
        at.button(key=f"step_{phase}").click().run()
    assert_clean(at)
    before, after = (float(metrics(at)[k]) for k in ("Cost before the update", "Cost after the update"))
    assert after > before
    (warning,) = [w.value for w in at.warning]
    assert f"from {before:.6f} to {after:.6f}" in warning and "overshot" in warning
    # at the course's α the cost falls, and nothing is said
    at.number_input(key="step_lr").set_value(0.0075)
    at.button(key="step_reset").click().run()
    for phase in PHASES:
        at.button(key=f"step_{phase}").click().run()
    assert float(metrics(at)["Cost after the update"]) < float(metrics(at)["Cost before the update"])
    assert not at.warning
