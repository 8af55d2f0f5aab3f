"""A run's settings as link parameters and back (catdnn.share): the round trip, and one clear message per
refused parameter, which keeps its default."""

from __future__ import annotations

import pytest

from catdnn import PRESETS, TrainConfig
from catdnn.data import N_X
from catdnn.errors import ConfigError
from catdnn.share import CORE, PARAMS, config_from_query, config_to_query, parse_keep_prob

EVERY_TECHNIQUE = TrainConfig(
    layers=(N_X, 20, 7, 1), learning_rate=0.0123456789, iterations=1234, init="he", seed=42, l2=0.7,
    keep_prob=(0.9, 0.8), batch_size=64, optimizer="momentum", beta=0.95, schedule="step", decay=0.3,
    decay_every=4, flip=True, shift=2, tta=True, batch_norm=True,
)


@pytest.mark.parametrize("config", [PRESETS["deep"], PRESETS["two-layer"], EVERY_TECHNIQUE,
                                    TrainConfig(layers=(N_X, 1)),
                                    TrainConfig(optimizer="adam", beta1=0.8, beta2=0.99, epsilon=1e-7),
                                    TrainConfig(optimizer="rmsprop", beta2=0.95, epsilon=1e-6)])
def test_round_trip(config):
    query = config_to_query(config)
    assert all(isinstance(v, str) for v in query.values())
    back, warnings = config_from_query(query)
    assert warnings == [] and back == config


def test_a_link_holds_the_course_settings_and_only_the_techniques_that_are_on():
    query = config_to_query(PRESETS["two-layer"])
    assert query == {"hidden": "7", "lr": "0.0075", "iterations": "2500", "init": "small", "seed": "1"}
    assert set(config_to_query(EVERY_TECHNIQUE)) == set(PARAMS) - {"beta1", "beta2", "epsilon", "arch", "dtype"}  # MLP
    assert set(CORE) <= set(query)


def test_missing_parameters_keep_the_base():
    config, warnings = config_from_query({"lr": "0.02"}, base=PRESETS["two-layer"])
    assert warnings == [] and config.learning_rate == 0.02 and config.layers == (N_X, 7, 1)


BAD = {
    "lr": ("abc", "not a number"),
    "iterations": ("0", "iterations must be a whole number from 1"),
    "seed": ("1.5", "not a whole number"),
    "hidden": ("20,seven", "'seven'"),
    "init": ("zeros", "unknown init 'zeros'"),
    "keep-prob": ("1.5", "keep probability"),
    "optimizer": ("sgd", "unknown optimizer 'sgd'"),
    "beta": ("1", "momentum's β"),
    "flip": ("maybe", "1 or 0"),
    "shift": ("99", "shift must be a whole number of pixels from 0 to 16"),
    "decay": ("0.5", "needs a schedule that decays"),
    "l2": ("nan", "not a finite number"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_value_is_named_and_keeps_the_default(name):
    value, why = BAD[name]
    default = PRESETS["deep"]
    config, warnings = config_from_query({name: value, "seed": "7"} if name != "seed" else {name: value})
    assert len(warnings) == 1
    assert f"{name}={value!r}" in warnings[0] and why in warnings[0] and "Kept" in warnings[0]
    field = PARAMS[name]
    assert getattr(config, field) == getattr(default, field)
    if name != "seed":
        assert config.seed == 7  # the other parameters are used


def test_a_combination_is_checked_in_order():
    """keep-prob is checked against the link's own hidden layers; a decay after its schedule is fine."""
    config, warnings = config_from_query({"hidden": "7", "keep-prob": "0.9,0.8", "schedule": "step", "decay": "0.5"})
    assert config.layers == (N_X, 7, 1) and config.decay == 0.5 and config.schedule == "step"
    assert len(warnings) == 1 and "keep-prob='0.9,0.8'" in warnings[0] and "1 hidden layer" in warnings[0]


def test_unknown_parameters_are_named_and_long_values_cut_short():
    config, warnings = config_from_query({"lr": "x" * 500, "colour": "red"})
    assert config == PRESETS["deep"] and len(warnings) == 2
    assert "'colour'" in warnings[0] and "not a setting" in warnings[0]
    assert len(warnings[1]) < 200 and "..." in warnings[1]


def test_a_list_value_takes_the_last():
    config, warnings = config_from_query({"seed": ["3", "4"]})
    assert warnings == [] and config.seed == 4


def test_parse_keep_prob():
    assert parse_keep_prob("0.8") == 0.8 and parse_keep_prob("0.9, 0.8") == (0.9, 0.8)
    with pytest.raises(ConfigError, match="not a number"):
        parse_keep_prob("high")


@pytest.mark.parametrize("name", ["seed", "iterations", "batch-size", "shift", "hidden"])
def test_a_number_of_thousands_of_digits_is_a_warning_not_a_crash(name):
    """int() refuses text of over 4300 digits with a ValueError: a crafted link must still get a warning."""
    config, warnings = config_from_query({name: "9" * 5000})
    assert len(warnings) == 1 and f"{name}=" in warnings[0] and "Kept" in warnings[0]
    assert getattr(config, PARAMS[name]) == getattr(PRESETS["deep"], PARAMS[name])
