"""TrainConfig validation, presets, and the training loop: events, stop/resume, divergence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from catdnn import PRESETS, ConfigError, TrainConfig, Trainer, fit
from catdnn.config import MAX_PARAM_BYTES, parse_layers


def _toy(n_x=12, m=30, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n_x, m)
    Y = (X[:3].sum(axis=0, keepdims=True) > 1.5).astype(float)
    return X, Y


def test_presets_are_the_course_networks():
    assert PRESETS["two-layer"] == TrainConfig(layers=(12288, 7, 1), init="small")
    deep = PRESETS["deep"]
    assert deep.layers == (12288, 20, 7, 5, 1) and deep.init == "xavier"
    assert (deep.learning_rate, deep.iterations, deep.seed) == (0.0075, 2500, 1)
    assert TrainConfig.preset("deep", iterations=10, seed=None).iterations == 10


def test_a_model_is_named_by_a_preset_only_when_every_setting_but_the_seed_is_the_presets():
    """A deep net trained for 1000 iterations was called "deep" in the sidebar and on every page."""
    from catdnn import preset_name

    assert [preset_name(p) for p in PRESETS.values()] == list(PRESETS)
    assert preset_name(replace(PRESETS["deep"], seed=4)) == "deep"
    for change in ({"iterations": 1000}, {"learning_rate": 0.01}, {"l2": 0.7}, {"init": "he"}):
        assert preset_name(replace(PRESETS["deep"], **change)) == "custom", change
    assert preset_name(replace(PRESETS["cnn"], iterations=50)) == "custom"


@pytest.mark.parametrize(
    "text, expected", [("12288,20,7,5,1", (12288, 20, 7, 5, 1)), (" 20 , 7 ", (20, 7)), ("", ()), ("5;3", (5, 3))]
)
def test_parse_layers(text, expected):
    assert parse_layers(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [("20,,7", "empty entry"), ("20,x", "'x'.*not a whole number"), ("20,-3", "at least 1"),
     ("0", "at least 1"), ("2.5", "not a whole number")],
)
def test_parse_layers_refuses(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_layers(text)


def test_parse_layers_keeps_messages_short():
    with pytest.raises(ConfigError) as err:
        parse_layers("20, " + "9" * 5000 + "x")
    assert len(str(err.value)) < 200 and "..." in str(err.value)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(layers=()), "too short"),
        (dict(layers=(12288,)), "too short"),
        (dict(layers=(100, 1)), "first layer size must be the number of inputs, 12288"),
        (dict(layers=(12288, 7, 2)), "last layer size must be 1"),
        (dict(layers=(12288, 0, 1)), "at least 1"),
        (dict(layers=(12288, -4, 1)), "at least 1"),
        (dict(layers=(12288, "7", 1)), "not a whole number"),
        (dict(layers=(12288, 7.5, 1)), "not a whole number"),
        (dict(layers=(12288, 60000, 1)), "MiB"),
        (dict(learning_rate=0), "learning rate"),
        (dict(learning_rate=-0.1), "learning rate"),
        (dict(learning_rate=float("nan")), "learning rate"),
        (dict(learning_rate=1e9), "learning rate"),
        (dict(learning_rate="fast"), "not a number"),
        (dict(iterations=0), "iterations"),
        (dict(iterations=10**9), "iterations"),
        (dict(iterations=2.5), "iterations"),
        (dict(seed=-1), "seed"),
        (dict(seed=2**40), "seed"),
        (dict(init="zeros"), "unknown init"),
        # the techniques beyond the course
        (dict(l2=-0.1), r"L2 regularisation λ \(l2\) must be a number from 0"),
        (dict(l2=float("inf")), "l2"),
        (dict(l2="much"), "l2.*must be a number"),
        (dict(keep_prob=0.0), "keep probability.*above 0"),
        (dict(keep_prob=1.2), "keep probability.*at most 1"),
        (dict(keep_prob=(0.5, 0.5)), "lists 2 keep probabilities but the network has 3 hidden layers"),
        (dict(layers=(12288, 1), keep_prob=0.5), "dropout needs a hidden layer"),
        (dict(batch_size=-1), "batch size"),
        (dict(batch_size=2.5), "batch size"),
        (dict(optimizer="sgd"), "unknown optimizer 'sgd': choose one of gd, momentum, rmsprop, adam"),
        (dict(beta=1.0), "momentum's β.*below 1"),
        (dict(beta1=-0.1), "β1"),
        (dict(beta2=1.5), "β2"),
        (dict(epsilon=0.0), "ε.*above 0"),
        (dict(schedule="cosine"), "unknown learning-rate schedule"),
        (dict(decay=-1.0), "decay rate"),
        (dict(decay=0.1), "needs a schedule that decays"),
        (dict(schedule="step", decay=0.1, decay_every=0), "decay_every"),
        (dict(schedule="inverse-time", decay=0.1, decay_every=5), "only to the 'step' schedule"),
        (dict(flip="yes"), "flip must be true or false"),
        (dict(tta=1), "tta must be true or false"),
        (dict(shift=-1), "shift"),
        (dict(shift=40), "shift.*from 0 to 16"),
    ],
)
def test_config_validation(changes, message):
    with pytest.raises(ConfigError, match=message):
        replace(PRESETS["deep"], **changes).validate()


def test_techniques_are_off_by_default_and_presets_are_the_course():
    for preset in (PRESETS["two-layer"], PRESETS["deep"]):  # the course's; "cnn" is a convolutional net
        assert preset.techniques() == []
        assert (preset.l2, preset.keep_prob, preset.batch_size, preset.optimizer, preset.schedule,
                preset.flip, preset.shift, preset.tta) == (0.0, 1.0, 0, "gd", "constant", False, 0, False)
    cfg = TrainConfig(l2=0.7, keep_prob=[0.8, 0.9, 1.0], batch_size=64, optimizer="adam", flip=True)
    assert cfg.keep_prob == (0.8, 0.9, 1.0) and cfg.keep_probs() == (0.8, 0.9, 1.0) and cfg.dropout
    assert TrainConfig(keep_prob=0.5).keep_probs() == (0.5, 0.5, 0.5)
    assert cfg.techniques() == ["L2 λ=0.7", "dropout keep=0.8,0.9,1", "mini-batches of 64",
                                "Adam β1=0.9 β2=0.999 ε=1e-08", "flips"]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict({**cfg.to_dict(), "from_the_future": 1}) == cfg


def test_memory_limit_is_estimated_from_parameter_bytes():
    n = MAX_PARAM_BYTES // 8 // 12289  # the widest single hidden layer that fits
    TrainConfig(layers=(12288, n, 1)).validate()
    with pytest.raises(ConfigError, match="need .* MiB"):
        TrainConfig(layers=(12288, n + 10, 1)).validate()


def test_trainer_refuses_before_any_work():
    X, Y = _toy()
    with pytest.raises(ConfigError):
        Trainer(TrainConfig(layers=(12, 0, 1)), X, Y)
    with pytest.raises(ConfigError, match=r"Y \(1, m\)"):
        Trainer(TrainConfig(layers=(12, 3, 1)), X, Y[:, :5])


def test_a_stopped_runs_accuracy_curve_ends_at_the_models_accuracies():
    X, Y = _toy()
    trainer = Trainer(TrainConfig(layers=(12, 5, 1), learning_rate=0.5, iterations=50, seed=3), X, Y,
                      X[:, :10], Y[:, :10], accuracy_every=4)
    for event in trainer.run():
        if event.iteration == 9:
            break
    model = trainer.model()
    assert model.status == "stopped" and [i for i, _, _ in trainer.accuracy_history] == [0, 4, 8, 10]
    assert trainer.accuracy_history[-1][1:] == (model.train_accuracy, model.test_accuracy)


def test_events_history_and_accuracies():
    X, Y = _toy()
    cfg = TrainConfig(layers=(12, 5, 3, 1), learning_rate=0.5, iterations=50, init="he", seed=3)
    trainer = Trainer(cfg, X, Y, X[:, :10], Y[:, :10], cost_every=10, accuracy_every=25)
    events = list(trainer.run())
    assert [e.iteration for e in events] == list(range(50))
    assert [i for i, _ in trainer.history] == [0, 10, 20, 30, 40, 49]
    assert [e.cost is not None for e in events].count(True) == 6
    # each point is measured before its iteration's update, and one more after the last update: the curve
    # ends at the accuracies the model reports (it used to end one update earlier, at other numbers)
    assert [i for i, _, _ in trainer.accuracy_history] == [0, 25, 49, 50]
    assert trainer.status == "finished" and trainer.iterations_done == 50
    costs = [c for _, c in trainer.history]
    assert costs[-1] < costs[0]
    model = trainer.model()
    assert model.iterations_done == 50 and model.status == "finished"
    assert trainer.accuracy_history[-1][1:] == (model.train_accuracy, model.test_accuracy)
    assert 0 <= model.train_accuracy <= 1 and 0 <= model.test_accuracy <= 1
    assert events[-1].elapsed > 0


def test_stop_keeps_the_partial_model_and_resume_matches_an_uninterrupted_run():
    X, Y = _toy()
    cfg = TrainConfig(layers=(12, 4, 1), learning_rate=0.3, iterations=40, init="xavier", seed=1)
    full = fit(cfg, X=X, Y=Y, cost_every=1)

    trainer = Trainer(cfg, X, Y, cost_every=1)
    run = trainer.run()
    for event in run:
        if event.iteration == 14:
            break
    run.close()
    assert trainer.status == "stopped" and trainer.iterations_done == 15
    partial = trainer.model()
    assert partial.status == "stopped" and partial.iterations_done == 15
    assert len(partial.history) == 15
    # the partial model is the state after 15 updates of the same run
    fifteen = fit(replace(cfg, iterations=15), X=X, Y=Y)
    for (W, b), (W2, b2) in zip(partial.params, fifteen.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    # continuing reaches the same end as one uninterrupted run
    list(trainer.run())
    assert trainer.status == "finished"
    np.testing.assert_allclose(trainer.model().params[0][0], full.params[0][0], rtol=0, atol=0)
    assert [c for _, c in trainer.history] == [c for _, c in full.history]


def test_divergence_stops_with_a_clear_message_and_keeps_the_history():
    X, Y = _toy()
    X = X * 1e200  # huge inputs: the first update overflows the weights, the next output is inf/NaN
    cfg = TrainConfig(layers=(12, 1), learning_rate=1.0, iterations=500, init="he", seed=1)
    trainer = Trainer(cfg, X, Y, cost_every=1)
    events = list(trainer.run())
    assert trainer.status == "diverged"
    assert len(events) < 500
    assert "diverged" in trainer.message and "smaller learning rate" in trainer.message
    assert len(trainer.history) == len(events) >= 1
    assert all(np.isfinite(c) for _, c in trainer.history)
    with pytest.raises(ConfigError, match="diverged"):
        trainer.model()
    with pytest.raises(ConfigError, match="smaller learning rate"):
        fit(cfg, X=X, Y=Y)


@pytest.mark.parametrize("preset", ["deep", "cnn"])
@pytest.mark.parametrize("name, label", [("beta", "momentum's β"), ("beta1", "Adam's β1"),
                                        ("beta2", "RMSprop's and Adam's β2")])
def test_betas_are_from_0_to_below_1_for_every_network(preset, name, label):
    # the same rule and message for an MLP and a CNN: β = 0 is a valid (memoryless) average, β = 1 never moves
    replace(PRESETS[preset], **{name: 0.0}).validate()
    replace(PRESETS[preset], **{name: 0.999}).validate()
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError) as err:
            replace(PRESETS[preset], **{name: bad}).validate()
        assert str(err.value) == f"{label} ({name}) must be a number at least 0 and below 1, not {bad!r}"


def test_a_cnn_with_beta_0_trains_in_the_one_loop(dataset):
    cfg = replace(PRESETS["cnn"], arch="in16,conv4,dense4", iterations=3, beta1=0.0, beta2=0.0)
    model = fit(cfg, dataset, cost_every=1)
    assert model.status == "finished" and all(np.isfinite(c) for _, c in model.history)


def test_the_divergence_rule_is_the_loops_for_every_network(dataset, monkeypatch):
    # one rule, one constant, kept with the loop: lowering it stops an MLP and a CNN alike
    from catdnn import train

    monkeypatch.setattr(train, "EXPLODE_FACTOR", 1e-3)
    small_cnn = replace(PRESETS["cnn"], arch="in16,conv4,dense4", iterations=3)
    for config in (replace(PRESETS["deep"], iterations=3), small_cnn):
        t = Trainer(config, dataset.train.X, dataset.train.Y, cost_every=1)
        list(t.run())
        assert t.status == "diverged" and "the cost exploded" in t.message, config
