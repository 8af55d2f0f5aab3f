"""Item 3: impossible training settings are refused before any work starts, with a message to act
on; a diverging run stops with a message suggesting a smaller rate and keeps its history."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from catdnn.config import MAX_PARAM_BYTES, TrainConfig, parse_layers
from catdnn.errors import ConfigError
from catdnn.train import Trainer, fit

N = 12288

BAD_CONFIGS = {
    "layers empty": dict(layers=()),
    "layers input only": dict(layers=(N,)),
    "layers as text": dict(layers="12288,7,1"),
    "layers float": dict(layers=(N, 7.0, 1)),
    "layers NaN": dict(layers=(N, float("nan"), 1)),
    "layers negative": dict(layers=(N, -7, 1)),
    "layers zero": dict(layers=(N, 0, 1)),
    "layers bool": dict(layers=(N, True, 1)),
    "layers nested": dict(layers=((N,), 7, 1)),
    "wrong input size": dict(layers=(4096, 7, 1)),
    "two outputs": dict(layers=(N, 7, 2)),
    "hidden layer 10**6": dict(layers=(N, 10**6, 1)),
    "hidden layer 2**100": dict(layers=(N, 2**100, 1)),
    "over the memory limit": dict(layers=(N, 6000, 6000, 1)),
    "60 hidden layers": dict(layers=(N,) + (2,) * 60 + (1,)),
    "lr text": dict(learning_rate="0.1"),
    "lr None": dict(learning_rate=None),
    "lr NaN": dict(learning_rate=float("nan")),
    "lr inf": dict(learning_rate=float("inf")),
    "lr negative": dict(learning_rate=-1.0),
    "lr zero": dict(learning_rate=0.0),
    "lr 1e6": dict(learning_rate=1e6),
    "lr complex": dict(learning_rate=1j),
    "lr bool": dict(learning_rate=True),
    "iterations 0": dict(iterations=0),
    "iterations negative": dict(iterations=-5),
    "iterations fractional": dict(iterations=10.5),
    "iterations 10**12": dict(iterations=10**12),
    "iterations text": dict(iterations="100"),
    "iterations None": dict(iterations=None),
    "seed negative": dict(seed=-1),
    "seed 2**32": dict(seed=2**32),
    "seed fractional": dict(seed=1.5),
    "seed text": dict(seed="1"),
    "init unknown": dict(init="zeros"),
    "init None": dict(init=None),
    "l2 negative": dict(l2=-1.0),
    "l2 NaN": dict(l2=float("nan")),
    "l2 text": dict(l2="0.7"),
    "keep_prob zero": dict(keep_prob=0.0),
    "keep_prob NaN": dict(keep_prob=float("nan")),
    "keep_prob above 1": dict(keep_prob=1.01),
    "keep_prob text": dict(keep_prob="0.8"),
    "keep_prob wrong length": dict(keep_prob=(0.5,)),
    "keep_prob nested": dict(keep_prob=((0.5,),)),
    "batch_size negative": dict(batch_size=-8),
    "batch_size huge": dict(batch_size=10**12),
    "batch_size float": dict(batch_size=64.0),
    "optimizer unknown": dict(optimizer="nadam"),  # (rmsprop is one now)
    "optimizer None": dict(optimizer=None),
    "beta 1": dict(beta=1.0),
    "beta negative": dict(beta=-0.5),
    "beta1 NaN": dict(beta1=float("nan")),
    "beta2 1": dict(beta2=1.0),
    "epsilon 0": dict(epsilon=0.0),
    "epsilon inf": dict(epsilon=float("inf")),
    "schedule unknown": dict(schedule="cosine"),
    "decay negative": dict(decay=-0.1),
    "decay without a schedule": dict(decay=0.5),
    "decay_every 0": dict(schedule="step", decay=0.5, decay_every=0),
    "flip text": dict(flip="true"),
    "shift negative": dict(shift=-2),
    "shift too large": dict(shift=64),
    "tta None": dict(tta=None),
}


@pytest.mark.parametrize("desc", list(BAD_CONFIGS))
def test_bad_settings_are_refused_before_any_work(desc, monkeypatch):
    import catdnn.train as train

    def no_work(*a, **k):
        raise AssertionError("weights were allocated before the settings were checked")

    monkeypatch.setattr(train, "init_params", no_work)
    with pytest.raises(ConfigError) as info:
        cfg = TrainConfig(**BAD_CONFIGS[desc])
        Trainer(cfg, np.zeros((N, 2)), np.zeros((1, 2)))
    assert str(info.value) and "Traceback" not in str(info.value)


def test_memory_estimate_names_the_limit():
    with pytest.raises(ConfigError, match="MiB") as info:
        TrainConfig(layers=(N, 6000, 6000, 1)).validate()
    assert f"{MAX_PARAM_BYTES / 2**20:,.0f} MiB" in str(info.value)
    TrainConfig(layers=(N, 5000, 1)).validate()  # ~470 MiB of weights: allowed


@pytest.mark.parametrize("text", ["12288,,1", "12288,-1,1", "12288,0,1", "a,b", "12288,7.5,1", "1e3,1",
                                  "0x10,1", "nan", "12288,7,1,,", "12288 7 1"])
def test_parse_layers_refuses(text):
    with pytest.raises(ConfigError):
        parse_layers(text)


@pytest.mark.parametrize("layers", [None, 5])
def test_non_iterable_layers_give_config_error(layers):
    with pytest.raises(ConfigError):
        TrainConfig(layers=layers).validate()


@pytest.mark.parametrize("init", [["he"], {}])
def test_unhashable_init_gives_config_error(init):
    with pytest.raises(ConfigError):
        TrainConfig(init=init).validate()


# --------------------------------------------------------------------------- divergence
def _exploding_data():
    """Inputs so large that the first forward pass overflows: the loop's divergence path, whatever the solver."""
    rng = np.random.RandomState(0)
    return rng.rand(N, 20) * 1e200, (rng.rand(1, 20) > 0.5).astype(float)


def test_diverging_run_stops_with_a_message_and_keeps_its_history():
    X, Y = _exploding_data()
    cfg = TrainConfig(layers=(N, 20, 7, 5, 1), init="he", learning_rate=100.0, iterations=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow is the point of this test
        trainer = Trainer(cfg, X, Y, cost_every=1)
        events = list(trainer.run())
    assert trainer.status == "diverged"
    assert "smaller learning rate" in trainer.message and "10" in trainer.message
    assert trainer.iterations_done < 200 and len(events) == trainer.iterations_done
    assert trainer.history and all(math.isfinite(c) for _, c in trainer.history)  # kept, and clean
    with pytest.raises(ConfigError, match="smaller learning rate"):
        trainer.model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ConfigError, match="smaller learning rate"):
            fit(cfg, X=X, Y=Y)


def test_too_large_rate_on_the_real_data_is_reported(dataset):
    cfg = TrainConfig.preset("deep", learning_rate=100.0, iterations=300)
    trainer = Trainer(cfg, dataset.train.X, dataset.train.Y, cost_every=10)
    for _ in trainer.run():
        pass
    assert trainer.status == "diverged", (trainer.status, trainer.history)
    assert "the cost exploded" in trainer.message and "Try a smaller learning rate (e.g. 10)" in trainer.message
    *before, (i, exploded) = trainer.history  # the history up to the explosion, and the explosion itself
    assert before and all(c < 10 for _, c in before)
    assert exploded > 10 * max(before[0][1], 1) and f"at iteration {i}" in trainer.message
