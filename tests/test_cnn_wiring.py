"""The convolutional net through the one training loop: TrainConfig.arch, Trainer / fit, the worker
pool, Model, the CLI (train --preset cnn / --arch, predict) and the saliency map."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from catdnn import PRESETS, ConfigError, TrainConfig, Trainer, cnn, fit, load_dataset, probe
from catdnn.arch import parse_arch
from catdnn.model_io import load_model, model_to_bytes
from catdnn.share import config_from_query, config_to_query
from catdnn.workers import TrainingPool

ROOT = Path(__file__).resolve().parent.parent
SMALL = replace(PRESETS["cnn"], arch="in16,conv4,conv8,dense8", iterations=14)  # 2 epochs, about a second


@pytest.fixture(scope="module")
def ds(data_dir):
    return load_dataset(data_dir)


# --------------------------------------------------------------------------- settings
def test_the_cnn_preset_validates():
    preset = PRESETS["cnn"].validate(m=209)
    assert preset.is_cnn and preset.arch == "in32,conv16,conv32,conv64,dense64" and preset.dtype == "float32"
    assert preset.layers == parse_arch(preset.arch).dense_layers  # a CNN's layers are its dense head
    assert preset.param_count() == parse_arch(preset.arch).param_count()
    assert not PRESETS["deep"].is_cnn and PRESETS["deep"].dtype == "float64"
    # the spec is stored in its canonical form
    assert TrainConfig(arch=" IN32, Conv16 ,conv32,conv64,dense64").arch == preset.arch


@pytest.mark.parametrize("changes, message", [
    ({"arch": "in32,conv16,dense8,conv4"}, "after a dense layer"),
    ({"arch": "dense20,dense7"}, "no conv step"),
    ({"shift": 9, "arch": "in16,conv4"}, "shift"),  # at most half the 16 px input
    ({"keep_prob": 0.8}, "dropout"),
    ({"dtype": "float16"}, "dtype"),
    ({"learning_rate": -1.0}, "learning"),
])
def test_impossible_cnn_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        replace(PRESETS["cnn"], **changes).validate()


def test_an_mlp_is_float64_only():
    with pytest.raises(ConfigError, match="convolutional nets only"):
        replace(PRESETS["deep"], dtype="float32").validate()


def test_a_link_reproduces_a_cnn_run():
    config, warnings = config_from_query(config_to_query(SMALL))
    assert warnings == [] and config == SMALL


# --------------------------------------------------------------------------- the one training loop
def test_the_trainer_runs_a_cnn_with_the_same_events_stop_and_continue(ds):
    tr = Trainer(SMALL, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, cost_every=1, accuracy_every=7,
                 stats_every=1)
    assert tr.solver_name == "cnn" and "convolutional" in tr.solver_reason
    events = tr.run()
    first = [next(events) for _ in range(5)]
    events.close()
    assert [p.iteration for p in first] == [0, 1, 2, 3, 4] and first[0].iterations == SMALL.iterations
    assert tr.status == "stopped" and tr.iterations_done == 5 and len(tr.history) == 5
    partial = tr.model()
    assert partial.status == "stopped" and partial.is_cnn and partial.iterations_done == 5
    rest = list(tr.run())  # continues where it stopped
    assert [p.iteration for p in rest] == list(range(5, SMALL.iterations))
    assert tr.status == "finished" and tr.iterations_done == SMALL.iterations
    assert [i for i, _ in tr.history] == list(range(SMALL.iterations))
    # measured before iterations 0, 7 and 13's updates, and after the 5th (the stop) and the last
    assert [i for i, *_ in tr.accuracy_history] == [0, 5, 7, 13, 14] and tr.stats == []  # no MLP statistics
    # the same run uninterrupted gives the same costs
    whole = fit(SMALL, ds, cost_every=1)
    np.testing.assert_allclose([c for _, c in whole.history], [c for _, c in tr.history], rtol=1e-6)
    model = tr.model()
    assert model.params[0][0].dtype == np.float32 and model.param_count == SMALL.param_count()
    np.testing.assert_array_equal(model.predict_proba(ds.test.X),
                                  cnn.predict_proba(model.params, model.arch, ds.test.X, tta=True))
    assert model.test_accuracy == float(np.mean((model.predict_proba(ds.test.X) > 0.5) == ds.test.labels))
    assert SMALL.arch in model.summary()


def test_fit_with_a_cnn_raises_on_divergence(ds):
    with pytest.raises(ConfigError, match="diverged"):
        fit(replace(SMALL, learning_rate=100.0, optimizer="gd", iterations=30), ds, cost_every=1)


def test_a_cnn_model_file_round_trips(ds):
    model = fit(SMALL, ds)
    again = load_model(model_to_bytes(model), name="cnn.npz")
    assert again.config == model.config and again.history == model.history
    np.testing.assert_array_equal(again.predict_proba(ds.test.X), model.predict_proba(ds.test.X))


def test_the_worker_pool_trains_a_cnn(data_dir):
    pool = TrainingPool(processes=1)
    try:
        job = pool.submit(SMALL, data_dir, cost_every=1, accuracy_every=7)
        out = job.wait(timeout=120)
    finally:
        pool.close()
    assert out is not None and out.status == "finished", out and out.message
    assert out.solver_name == "cnn" and out.iterations_done == SMALL.iterations
    assert out.model.is_cnn and out.model.config == SMALL and len(out.history) == SMALL.iterations


# --------------------------------------------------------------------------- what the network looks at
def test_the_cnn_saliency_is_the_gradient_of_p_cat(ds):
    arch = parse_arch("in16,conv3,conv4,dense5")
    params = cnn.init_cnn(arch, "he", 4, np.float64)
    x = ds.test.X[:, [3]]
    g = probe.saliency(params, x, arch=arch)

    def p(xx):
        return cnn.predict_proba(params, arch, xx)[0]

    top = np.argsort(-np.abs(g))[:5]
    eps = 1e-5
    for i in top:
        d = np.zeros_like(x)
        d[i] = eps
        assert abs((p(x + d) - p(x - d)) / (2 * eps) - g[i]) < 1e-6 * max(1.0, abs(g[i]))
    with_tta = probe.saliency(params, x, tta=True, arch=arch)
    assert with_tta.shape == (12288,) and not np.allclose(with_tta, g)


def test_filter_and_feature_map_images(ds):
    model = fit(SMALL, ds)
    f = probe.filter_images(model.params, model.arch, 1)
    assert f.shape == (4, 3, 3, 3) and f.dtype == np.uint8
    maps = probe.feature_map_images(model.params, model.arch, ds.test.X[:, [0]], 2)
    assert maps.shape == (8, 8, 8) and maps.dtype == np.uint8  # conv 2 on 16 px pooled once: 8×8


# --------------------------------------------------------------------------- the CLI
def run(*args, **env):
    return subprocess.run([sys.executable, "-m", "catdnn", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def test_cli_trains_the_cnn_preset_and_predicts_with_its_file(data_dir, tmp_path):
    path = tmp_path / "cnn.npz"
    proc = run("train", "--preset", "cnn", "--iterations", "14", "--print-every", "7", "--data-dir", data_dir,
               "--save", str(path), "--no-record")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [f"Cost after iteration {i}" for i in (0, 7, 13)]
    assert lines[-4].startswith("Balanced accuracy: train ") and lines[-3].startswith("AUC: train ")
    assert lines[-2].startswith("Train accuracy: ") and lines[-1].startswith("Test accuracy: ")
    assert "in32,conv16,conv32,conv64,dense64" in proc.stderr and "solver: cnn" in proc.stderr
    model = load_model(path)
    assert model.is_cnn and model.iterations_done == 14 and model.config.shift == 4
    skdata = pytest.importorskip("skimage.data")
    photo = os.path.join(skdata.data_dir, "chelsea.png")
    pred = run("predict", "--model", str(path), photo)
    assert pred.returncode == 0, pred.stderr
    assert pred.stdout.startswith(photo + ": ") and "p=" in pred.stdout


def test_cli_arch_gives_either_kind_of_network(data_dir, tmp_path):
    path = tmp_path / "m.npz"
    proc = run("train", "--arch", "in16,conv4,dense8", "--iterations", "7", "--data-dir", data_dir,
               "--save", str(path), "--no-record")
    assert proc.returncode == 0, proc.stderr
    model = load_model(path)
    assert model.config.arch == "in16,conv4,dense8" and model.config.optimizer == "adam"  # the cnn preset's
    proc = run("train", "--arch", "dense7", "--iterations", "5", "--data-dir", data_dir, "--save", str(path),
               "--no-record")
    assert proc.returncode == 0, proc.stderr
    model = load_model(path)
    assert not model.is_cnn and model.layers == (12288, 7, 1) and "[12288, 7, 1]" in proc.stderr


@pytest.mark.parametrize("args, words", [
    (("--arch", "conv16,convx"), "whole number"),
    (("--arch", "dense7", "--layers", "12288,7,1"), "not both"),
    (("--preset", "cnn", "--keep-prob", "0.5"), "dropout"),
    (("--preset", "cnn", "--shift", "17"), "shift"),
    (("--arch", "conv" + "9" * 5000), "too large"),  # int() alone would refuse over 4300 digits
    (("--arch", "in32,conv16,dense" + "1" * 4400), "too large"),
])
def test_cli_refuses_impossible_cnn_settings_as_usage_errors(args, words, data_dir):
    proc = run("train", *args, "--data-dir", data_dir, "--no-record")
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


def test_cli_refuses_a_cnn_whose_step_needs_too_much_memory_in_one_line(data_dir):
    proc = run("train", "--arch", "in64,conv256,conv256,dense1", "--batch-size", "0", "--data-dir", data_dir,
               "--no-record")
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr
    assert "GiB for one training step on 209 images" in proc.stderr and "limit is 2 GiB" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "GiB" in line]) == 1
