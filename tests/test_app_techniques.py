"""The Train page's second-course techniques, the solver it names, and the page's link (its settings in
the URL): AppTest, trained on the worker pool like the real page."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from catdnn import PRESETS, TrainConfig
from catdnn.data import N_X
from catdnn.share import config_to_query
from tests.app_support import TRAIN, app, assert_clean, session_of

TECHNIQUE_KEYS = {
    "number_input": ["train_l2", "train_batch_size", "train_beta", "train_beta1", "train_beta2", "train_epsilon",
                     "train_decay", "train_decay_every", "train_shift"],
    "text_input": ["train_keep_prob"],
    "selectbox": ["train_optimizer", "train_schedule"],
    "checkbox": ["train_flip", "train_tta", "train_batch_norm"],
}


def widget(at, kind: str, key: str):
    return getattr(at, kind)(key=key)


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def train(at, iterations: int = 100):
    at.slider(key="train_iters").set_value(iterations)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    return session_of(at).run


def test_every_technique_has_a_control_and_each_is_off_by_default(data_dir):
    at = app(TRAIN).run()
    assert_clean(at)
    expander = [e for e in at.expander if e.label.startswith("Second course")]
    assert len(expander) == 1 and "regularisation, optimisers, mini-batches, augmentation" in expander[0].label
    for kind, keys in TECHNIQUE_KEYS.items():
        for key in keys:
            assert widget(at, kind, key) is not None
    run = train(at)
    assert run.status == "finished"
    assert run.config == TrainConfig(iterations=100)  # the deep preset, no technique: the course's run
    assert run.config.techniques() == []
    assert "Gram solver" in captions(at)


def test_a_run_with_techniques_trains_with_them_and_names_the_solver(data_dir):
    at = app(TRAIN).run()
    at.text_input(key="train_hidden").set_value("7")
    at.number_input(key="train_l2").set_value(0.5)
    at.text_input(key="train_keep_prob").set_value("0.8")
    at.number_input(key="train_batch_size").set_value(64)
    at.selectbox(key="train_optimizer").set_value("adam")
    at.selectbox(key="train_schedule").set_value("inverse-time")
    at.number_input(key="train_decay").set_value(0.1)
    at.checkbox(key="train_flip").check()
    run = train(at)
    assert run.status == "finished" and run.model is not None
    cfg = run.config
    assert (cfg.l2, cfg.keep_prob, cfg.batch_size, cfg.optimizer, cfg.schedule, cfg.decay, cfg.flip) == (
        0.5, 0.8, 64, "adam", "inverse-time", 0.1, True)
    text = captions(at)
    assert "Direct solver" in text and "Adam" in text  # Adam leaves the span of the inputs: no Gram solver
    assert session_of(at).current_model.config == cfg
    # the page's link now reproduces the run
    assert at.query_params == config_to_query(cfg)
    # the cost chart's axis says what is plotted: one mini-batch's cost, flipped images, units dropped, L2 penalty
    (chart,) = [c for c in at.get("plotly_chart") if "train_result_cost" in c.proto.id]
    layout = json.loads(chart.proto.spec)["layout"]
    # too long for the axis of a small chart: said under the chart's title, and the axis points to it
    assert layout["yaxis"]["title"]["text"] == "cost (as said above)"
    assert ("<sup>cost: cross-entropy on one mini-batch of 64 images, flipped or shifted, with hidden units "
            "dropped + L2 penalty (λ = 0.5)</sup>") in layout["title"]["text"]


def test_rmsprop_from_the_form_trains_with_its_beta2_and_epsilon(data_dir):
    at = app(TRAIN).run()
    assert "rmsprop: RMSprop (β2, ε)" in at.selectbox(key="train_optimizer").options
    assert at.number_input(key="train_beta2").label == "RMSprop, Adam β2"  # the optimisers it applies to
    at.text_input(key="train_hidden").set_value("7")
    at.selectbox(key="train_optimizer").set_value("rmsprop")
    at.number_input(key="train_beta2").set_value(0.9)
    at.number_input(key="train_epsilon").set_value(1e-6)
    at.select_slider(key="train_lr").set_value(0.001)
    run = train(at, iterations=50)
    assert run.status == "finished"
    assert (run.config.optimizer, run.config.beta2, run.config.epsilon) == ("rmsprop", 0.9, 1e-6)
    assert "Direct solver" in captions(at) and "RMSprop" in captions(at)
    assert at.query_params == config_to_query(run.config)


def test_momentum_and_mini_batches_keep_the_gram_solver_and_say_why(data_dir):
    at = app(TRAIN).run()
    at.selectbox(key="train_optimizer").set_value("momentum")
    at.number_input(key="train_batch_size").set_value(32)
    run = train(at)
    assert run.config.optimizer == "momentum" and run.config.batch_size == 32
    assert "Gram solver: with momentum and mini-batches, W1 stays" in captions(at)


def test_the_batch_norm_checkbox_trains_with_batch_norm(data_dir):
    at = app(TRAIN).run()
    assert at.checkbox(key="train_batch_norm").value is False
    at.text_input(key="train_hidden").set_value("7, 5")
    at.checkbox(key="train_batch_norm").check()
    run = train(at, iterations=50)
    assert run.status == "finished" and run.config.batch_norm and "batch norm" in run.config.techniques()
    model = session_of(at).current_model
    assert model.config.batch_norm and model.bn is not None and len(model.bn.params) == 2
    assert "Gram solver: with gradient descent and batch norm, W1 stays" in captions(at)
    assert at.query_params["batch-norm"] == "1"
    other = opened_with(dict(at.query_params))  # the link ticks the box again
    assert other.checkbox(key="train_batch_norm").value is True


@pytest.mark.parametrize("setup, message", [
    ({"train_decay": 0.5}, "needs a schedule that decays"),
    ({"train_beta": 0.5}, "Momentum β applies to the optimizer momentum"),
    ({"train_beta2": 0.9}, "RMSprop, Adam β2 applies to the optimizer rmsprop or adam"),
    ({"train_schedule": "step"}, "needs a decay rate"),
    ({"train_keep_prob": "0.9, 0.8"}, "keep_prob lists 2 keep probabilities but the network has 3 hidden layers"),
    ({"train_keep_prob": "most"}, "is not a number"),
    ({"train_shift": 3, "train_hidden": ""}, None),  # possible: shifts on logistic regression
])
def test_impossible_combinations_get_the_engines_message(data_dir, setup, message):
    at = app(TRAIN).run()
    for key, value in setup.items():
        kind = {str: "text_input" if key != "train_schedule" else "selectbox"}.get(type(value), "number_input")
        widget(at, kind, key).set_value(value)
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    if message is None:
        assert session_of(at).run.status == "finished" and not at.error
        return
    assert len(at.error) == 1 and message in at.error[0].value and "Cannot train" in at.error[0].value
    assert session_of(at).run is None and at.query_params == {}


def test_choosing_a_preset_turns_every_technique_off(data_dir):
    at = app(TRAIN).run()  # each change is a request of its own, as in the browser (the form is plain widgets)
    at.selectbox(key="train_optimizer").set_value("adam").run()
    at.checkbox(key="train_tta").check().run()
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    assert at.selectbox(key="train_optimizer").value == "gd" and at.checkbox(key="train_tta").value is False
    assert at.text_input(key="train_hidden").value == "7"


# --------------------------------------------------------------------------- the page's link
LINKED = TrainConfig(layers=(N_X, 9, 1), learning_rate=0.003, iterations=200, init="he", seed=5, l2=0.2,
                     batch_size=50, optimizer="momentum", beta=0.8, flip=True)


def opened_with(query: dict):
    at = app(TRAIN)
    at.query_params.update(query)
    return at.run()


def test_a_link_fills_the_form_and_does_not_train(data_dir):
    at = opened_with(config_to_query(LINKED))
    assert_clean(at)
    assert session_of(at).run is None and not at.warning  # nothing trained, nothing refused
    assert at.text_input(key="train_hidden").value == "9"
    assert at.select_slider(key="train_lr").value == 0.003  # not one of the slider's stops: added to them
    assert at.slider(key="train_iters").value == 200 and at.selectbox(key="train_init").value == "he"
    assert at.number_input(key="train_seed").value == 5
    assert at.number_input(key="train_l2").value == 0.2 and at.number_input(key="train_batch_size").value == 50
    assert at.selectbox(key="train_optimizer").value == "momentum" and at.number_input(key="train_beta").value == 0.8
    assert at.checkbox(key="train_flip").value is True and at.checkbox(key="train_tta").value is False
    assert at.segmented_control(key="train_preset").value == "custom"
    at.button(key="train_submit").click().run()  # Train reproduces the linked run
    assert_clean(at)
    run = session_of(at).run
    assert run.status == "finished" and run.config == LINKED and run.model.iterations_done == 200
    assert at.query_params == config_to_query(LINKED)


def test_a_preset_link(data_dir):
    at = opened_with(config_to_query(PRESETS["two-layer"]))
    assert at.segmented_control(key="train_preset").value == "two-layer"
    assert at.text_input(key="train_hidden").value == "7" and at.selectbox(key="train_init").value == "small"


@pytest.mark.parametrize("name, value, field, shown", [
    ("lr", "fast", "train_lr", 0.0075),
    ("iterations", "175", "train_iters", 2500),  # valid for the engine, not a stop of the form's slider
    ("iterations", "-5", "train_iters", 2500),
    ("hidden", "20,,5", "train_hidden", "20, 7, 5"),
    ("seed", "99999999999", "train_seed", 1),
])
def test_a_bad_link_value_is_named_and_keeps_the_default(data_dir, name, value, field, shown):
    at = opened_with({name: value, "init": "he"})
    assert_clean(at)
    assert len(at.warning) == 1
    text = at.warning[0].value
    assert f"{name}='{value}'" in text and "Kept" in text and "not used" in text
    kinds = {"train_lr": "select_slider", "train_iters": "slider", "train_hidden": "text_input"}
    kind = kinds.get(field, "number_input")
    assert widget(at, kind, field).value == shown
    assert at.selectbox(key="train_init").value == "he"  # the link's good values are used
    assert session_of(at).run is None
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()  # Train: the warning has been read, the link is the run's
    assert not [w for w in at.warning if "not used" in w.value]
    assert at.query_params["init"] == "he" and at.query_params["iterations"] == "100"


def test_the_link_holds_what_the_form_shows_without_train(data_dir):
    """Issue 15: the link followed the last trained run. Pick deep, move the learning rate: the page's
    link says deep with that rate at once, with nothing trained, and opening it shows that form."""
    at = app(TRAIN).run()
    at.segmented_control(key="train_preset").set_value("cnn").run()
    assert at.query_params == config_to_query(PRESETS["cnn"])
    at.segmented_control(key="train_preset").set_value("deep").run()
    at.select_slider(key="train_lr").set_value(0.01).run()
    assert_clean(at)
    shown = replace(PRESETS["deep"], learning_rate=0.01)
    assert at.query_params == config_to_query(shown) and session_of(at).run is None
    other = opened_with(dict(at.query_params))  # the link, opened in a new session
    assert other.select_slider(key="train_lr").value == 0.01
    assert other.text_input(key="train_hidden").value == "20, 7, 5"
    at.text_input(key="train_hidden").set_value("20, seven").run()  # impossible: the link holds no settings
    assert at.query_params == {} and "Cannot train" in at.error[0].value


def test_a_preset_is_shown_only_while_every_setting_is_its_own(data_dir):
    """Issue 15: deep stayed chosen at learning rate 0.01, and a second click on the chosen preset left
    no preset chosen."""
    at = app(TRAIN).run()
    preset = lambda: at.segmented_control(key="train_preset").value  # noqa: E731
    assert preset() == "deep"
    at.select_slider(key="train_lr").set_value(0.01).run()
    assert preset() == "custom"
    at.select_slider(key="train_lr").set_value(0.0075).run()
    assert preset() == "deep"
    at.segmented_control(key="train_preset").set_value(None).run()  # a second click on the chosen preset
    assert preset() == "deep"
    at.segmented_control(key="train_preset").set_value("custom").run()  # the settings are still deep's
    assert preset() == "deep"
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    at.checkbox(key="train_tta").check().run()  # a technique on: no longer the preset
    assert preset() == "custom"
    at.segmented_control(key="train_preset").set_value(None).run()
    assert preset() == "custom" and at.checkbox(key="train_tta").value is True  # nothing changed, nothing lost
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    assert preset() == "two-layer" and at.checkbox(key="train_tta").value is False


def test_a_request_sent_before_the_last_answer_does_not_undo_a_change(data_dir):
    """Two quick changes in a real browser: the second request leaves before the first one's answer, so it
    still carries the preset shown before (deep) and the address before. It must not be taken for a click
    on deep, which would undo the first change (seen in Chromium: the iterations went back to 2500)."""
    at = app(TRAIN).run()
    before = dict(at.query_params)
    at.select_slider(key="train_lr").set_value(0.01).run()
    assert at.segmented_control(key="train_preset").value == "custom"
    at.query_params.clear()
    at.query_params.update(before)  # the page's address when the request left
    at.segmented_control(key="train_preset").set_value("deep")  # the control as that page still showed it
    at.number_input(key="train_seed").set_value(2).run()  # the second change
    assert_clean(at)
    assert at.select_slider(key="train_lr").value == 0.01 and at.number_input(key="train_seed").value == 2
    assert at.segmented_control(key="train_preset").value == "custom"
    at.segmented_control(key="train_preset").set_value("deep").run()  # a click from the page as it is now
    assert at.select_slider(key="train_lr").value == 0.0075 and at.number_input(key="train_seed").value == 1


@pytest.mark.parametrize("second", ["seed", "train"])
def test_a_stale_preset_with_the_new_address_does_not_undo_a_change(data_dir, second):
    """The same race when the first answer's address had already reached the page but the control had not yet
    redrawn (a loaded server, a busy browser): the second request carries the new link and the old "deep".
    A request that changes another setting too, or presses Train, is not a click on the preset: a person
    changes one widget per request."""
    at = app(TRAIN).run()
    at.select_slider(key="train_lr").set_value(0.01).run()
    assert at.segmented_control(key="train_preset").value == "custom"
    at.segmented_control(key="train_preset").set_value("deep")  # the control as the page still showed it
    if second == "seed":
        at.number_input(key="train_seed").set_value(2).run()
        assert at.number_input(key="train_seed").value == 2
    else:
        at.button(key="train_submit").click().run(timeout=120)
        assert session_of(at).run.config.learning_rate == 0.01  # it trained what the form showed
    assert_clean(at)
    assert at.select_slider(key="train_lr").value == 0.01
    assert at.segmented_control(key="train_preset").value == "custom"


def test_the_live_view_shows_the_epoch_and_the_rate_when_they_matter():
    from catdnn.train import Progress
    from ui.training import progress_text

    p = Progress(iteration=41, iterations=100, cost=None, train_accuracy=None, test_accuracy=None, elapsed=1.0,
                 epoch=6, learning_rate=0.00125)
    plain = progress_text(p, TrainConfig())
    assert "epoch" not in plain and "α" not in plain
    text = progress_text(p, TrainConfig(batch_size=32, schedule="inverse-time", decay=1.0))
    assert "epoch 7" in text and "α 0.00125" in text


def test_a_run_records_the_statistics_of_its_layers(data_dir):
    at = app(TRAIN).run()
    run = train(at, iterations=200)
    stats = run.model.stats
    assert 20 <= len(stats) <= 30 and stats[0].iteration == 0 and stats[-1].iteration == 199
    assert len(stats[0].grad_norms) == 4 and len(stats[0].zero_fractions) == 3


def test_the_result_scores_the_test_images_once_not_on_every_settings_change(data_dir):
    """Every settings change reruns the page: the last run's test predictions are kept on the run, not made
    again (a CNN's take a moment, and a class shares one server)."""
    at = app(TRAIN).run()
    run = train(at, iterations=50)
    calls = []
    predict = run.model.predict_proba
    run.model.predict_proba = lambda X: calls.append(X.shape) or predict(X)
    at.number_input(key="train_seed").set_value(3).run()
    at.number_input(key="train_seed").set_value(4).run()
    assert_clean(at)
    assert calls == [] and at.metric[2].label == "Test balanced accuracy"
