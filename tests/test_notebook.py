"""catdnn in a notebook (issue 15 §5): fit() by a preset's name with a progress bar, a Model that shows a
short summary when displayed, and its cost curve as the same Plotly figure the app draws."""

from __future__ import annotations

import io
import sys
import types

import pytest

from catdnn import PRESETS, ConfigError, Progress, fit
from catdnn.figures import plotly_figure
from catdnn.notebook import ProgressBar
from ui import figures as app_figures


@pytest.fixture(scope="module")
def drawn():
    """fit("deep") on the course's dataset (found as load_dataset finds it), 60 iterations, bar on a stream."""
    stream = io.StringIO()
    model = fit("deep", iterations=60, progress=stream)
    return model, stream.getvalue()


def test_fit_by_a_presets_name_trains_it_on_the_course_dataset(drawn):
    model, _ = drawn
    deep = PRESETS["deep"]
    assert (model.layers, model.config.init, model.config.learning_rate) == (deep.layers, deep.init, deep.learning_rate)
    assert model.iterations_done == model.config.iterations == 60  # the setting given by name replaced the preset's
    assert model.history[0] == (0, pytest.approx(0.771749, abs=5e-7))  # the course's first cost: its dataset
    assert fit(PRESETS["deep"], iterations=5, progress=False).history[0] == model.history[0]


def test_fit_draws_a_progress_bar_that_redraws_in_place(drawn):
    model, out = drawn
    assert out.startswith("\r") and out.endswith("\n") and out.count("\n") == 1  # one line, redrawn with \r
    last = out.rstrip("\n").rsplit("\r", 1)[-1].rstrip()
    assert last.startswith("deep [" + "#" * 30 + "] 60/60")
    assert f"cost {model.history[-1][1]:.4f}" in last  # the cost of the last iteration


def test_fit_is_quiet_in_a_script_unless_asked(capsys):
    fit("two-layer", iterations=3)  # progress=None: a bar only when a person watches (a notebook, a prompt)
    assert capsys.readouterr().err == ""
    fit("two-layer", iterations=3, progress=True)
    assert "two-layer [" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="progress must be"):
        fit("two-layer", iterations=3, progress="yes")


def test_an_unknown_preset_is_refused_naming_the_presets():
    with pytest.raises(ConfigError, match="no-such-preset") as err:
        fit("no-such-preset")
    assert all(name in str(err.value) for name in PRESETS)


def _events(n, costs=None):
    return [Progress(i, n, (costs or {}).get(i), None, None, 0.01 * i) for i in range(n)]


def test_the_bar_is_throttled_by_time_not_by_iterations():
    now = [0.0]
    stream = io.StringIO()
    bar = ProgressBar("deep", stream, min_interval=0.2, clock=lambda: now[0])
    for p, t in zip(_events(6, {0: 0.7, 3: 0.5}), (0.0, 0.05, 0.1, 0.25, 0.3, 0.31)):
        now[0] = t
        bar(p)
    draws = stream.getvalue().split("\r")[1:]
    assert [d.split("] ")[1].split()[0] for d in draws] == ["1/6", "4/6", "6/6"]  # t=0, t=0.25, and the last
    assert "cost 0.5000" in draws[-1]  # the last cost known, though the last iteration computed none
    bar.close()
    assert stream.getvalue().count("\n") == 1


def test_in_a_jupyter_kernel_the_bar_is_one_display_that_updates(monkeypatch):
    # IPython is not a dependency: this stands in for a kernel's, with IPython's own names and signatures
    # (get_ipython().kernel, display(obj, raw=True, display_id=True) -> handle, handle.update(obj, raw=True))
    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj, raw))

    def display(obj, raw=False, display_id=None):
        shown.append(("display", obj, raw))
        return Handle() if display_id else None

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())
    ipython.display = types.ModuleType("IPython.display")
    ipython.display.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython.display)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    fit("two-layer", iterations=4)  # progress=None: a kernel is someone watching
    assert [kind for kind, _, _ in shown][:1] == ["display"] and all(k == "update" for k, _, _ in shown[1:])
    assert all(raw for _, _, raw in shown)
    assert "] 4/4" in shown[-1][1]["text/plain"] and "<progress value='4' max='4'" in shown[-1][1]["text/html"]
    assert err.getvalue() == ""  # nothing on stderr: the display is the bar


def test_a_model_shows_a_short_summary(drawn):
    model, _ = drawn
    for shown in (repr(model), model._repr_html_()):
        assert model.network in shown
        assert f"train {model.train_accuracy:.3f}" in shown and f"test {model.test_accuracy:.3f}" in shown
        assert "60" in shown and "xavier" in shown
    assert len(repr(model)) < 300  # a summary, not the weights
    assert "<table>" in model._repr_html_()


def test_the_cost_figure_is_the_models_history_drawn_by_the_apps_builder(drawn):
    model, _ = drawn
    fig = model.cost_figure()
    assert list(fig.data[0].x) == [i for i, _ in model.history]
    assert list(fig.data[0].y) == [c for _, c in model.history]
    app = plotly_figure(app_figures.cost_figure(model.history, model.config.iterations))  # what the Train page draws
    assert fig.to_dict() == app.to_dict()
    assert model.cost_figure(title="deep, 60 iterations").layout.title.text == "deep, 60 iterations"


def test_a_cost_axis_says_what_the_curve_measures():
    """The Train page's cost chart said "cross-entropy cost" for every run: a CNN's curve is one augmented
    mini-batch's cost (it zig-zags), an L2 run's holds its penalty (issue 20 item 7, on the Train page)."""
    from dataclasses import replace

    from catdnn import PRESETS
    from catdnn.figures import cost_axis

    assert cost_axis([PRESETS["deep"]]) == "cross-entropy cost"
    assert cost_axis([PRESETS["cnn"]]) == "cost: cross-entropy on one mini-batch of 32 images, flipped or shifted"
    assert cost_axis([replace(PRESETS["deep"], l2=0.7)]) == "cost: cross-entropy + L2 penalty (λ = 0.7)"
    assert cost_axis([PRESETS["deep"], PRESETS["cnn"]], mixed="mixed") == "mixed"
