"""The command line: output format, exit codes (0 ok, 1 user error, 2 usage), no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=300, **env):
    proc = subprocess.run(
        [sys.executable, "-m", "catdnn", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, data_dir):
    path = tmp_path_factory.mktemp("model") / "deep.npz"
    proc = run("train", "--preset", "deep", "--iterations", "300", "--data-dir", data_dir, "--save", path)
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def photos():
    skdata = pytest.importorskip("skimage.data")
    folder = skdata.data_dir
    return {name: os.path.join(folder, name) for name in ("chelsea.png", "coffee.png", "astronaut.png")}


def test_train_flags_override_the_preset(data_dir):
    proc = run("train", "--preset", "two-layer", "--layers", "12288,4,1", "--iterations", "21",
               "--print-every", "10", "--lr", "0.01", "--init", "he", "--seed", "3", "--data-dir", data_dir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [f"Cost after iteration {i}" for i in (0, 10, 20)]
    assert lines[-2].startswith("Train accuracy: ") and lines[-1].startswith("Test accuracy: ")
    assert len(lines[-1].split()[-1].split(".")[1]) == 6
    assert "[12288, 4, 1] init=he lr=0.01" in proc.stderr


def test_train_technique_flags_reach_the_config_and_the_model_file(data_dir, tmp_path):
    from catdnn import load_model

    path = tmp_path / "t.npz"
    proc = run("train", "--preset", "two-layer", "--iterations", "120", "--print-every", "50", "--l2", "0.7",
               "--keep-prob", "0.8", "--batch-size", "64", "--optimizer", "momentum", "--beta", "0.8",
               "--decay", "0.5", "--decay-every", "2", "--flip", "--tta", "--data-dir", data_dir, "--save", path)
    assert proc.returncode == 0, proc.stderr
    assert "L2 λ=0.7, dropout keep=0.8, mini-batches of 64, momentum β=0.8, lr decay step d=0.5 every 2 epochs, " \
           "flips, mirror averaging at prediction" in proc.stderr
    assert "Gram solver: " in proc.stderr and "solver: gram" in proc.stderr
    cfg = load_model(path).config
    assert (cfg.l2, cfg.keep_prob, cfg.batch_size, cfg.optimizer, cfg.beta, cfg.schedule, cfg.decay,
            cfg.decay_every, cfg.flip, cfg.tta) == (0.7, 0.8, 64, "momentum", 0.8, "step", 0.5, 2, True, True)


def test_train_with_adam_and_shifts_says_why_it_runs_direct(data_dir):
    proc = run("train", "--preset", "two-layer", "--iterations", "3", "--optimizer", "adam", "--lr", "0.001",
               "--beta1", "0.8", "--shift", "2", "--keep-prob", "0.9", "--data-dir", data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "direct solver: Adam" in proc.stderr and "solver: direct" in proc.stderr
    assert "Adam β1=0.8 β2=0.999 ε=1e-08, shifts ±2 px" in proc.stderr


def test_train_with_rmsprop_on_the_cli_and_its_link_round_trip(data_dir, tmp_path):
    from catdnn.model_io import load_model
    from catdnn.share import config_from_query, config_to_query

    path = tmp_path / "rms.npz"
    proc = run("train", "--preset", "two-layer", "--iterations", "3", "--optimizer", "rmsprop", "--lr", "0.001",
               "--beta2", "0.9", "--epsilon", "1e-6", "--data-dir", data_dir, "--save", path)
    assert proc.returncode == 0, proc.stderr
    assert "direct solver: RMSprop" in proc.stderr and "RMSprop β2=0.9 ε=1e-06" in proc.stderr
    cfg = load_model(path).config
    assert (cfg.optimizer, cfg.beta2, cfg.epsilon, cfg.learning_rate) == ("rmsprop", 0.9, 1e-6, 0.001)
    query = config_to_query(cfg)
    assert (query["optimizer"], query["beta2"], query["epsilon"]) == ("rmsprop", "0.9", "1e-06")
    assert config_from_query(query) == (cfg, [])


def test_predict_prints_one_line_per_image(model_file, photos):
    proc = run("predict", "--model", model_file, photos["chelsea.png"], photos["coffee.png"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, [photos["chelsea.png"], photos["coffee.png"]]):
        assert line.startswith(f"{path}: ")
        verdict = line[len(path) + 2:]
        label, p = verdict.split(" (p=")
        assert label in ("cat", "non-cat")
        p = float(p.rstrip(")"))
        assert 0 <= p <= 1 and (label == "cat") == (p > 0.5)
        assert len(verdict.split("p=")[1].rstrip(")").split(".")[1]) == 4


def test_predict_goes_on_after_a_bad_image(model_file, photos, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    missing = tmp_path / "missing.png"
    proc = run("predict", "--model", model_file, bad, photos["astronaut.png"], missing)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith(photos["astronaut.png"] + ": ")
    errors = proc.stderr.splitlines()
    assert errors[0].startswith(f"error: {bad}: ") and errors[1].startswith(f"error: {missing}: ")


def test_predict_with_a_bad_model(tmp_path, photos):
    fake = tmp_path / "model.npz"
    fake.write_text("nope")
    proc = run("predict", "--model", fake, photos["chelsea.png"])
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {fake}: ")


@pytest.mark.parametrize(
    "args",
    [(), ("fly",), ("train", "--preset", "huge"), ("train", "--layers", "20,x,1"), ("train", "--lr", "fast"),
     ("train", "--iterations", "many"), ("predict",), ("predict", "--model", "m.npz"),
     ("train", "--optimizer", "sgd"), ("train", "--keep-prob", "most"), ("train", "--l2", "x"),
     ("train", "--schedule", "cosine"), ("train", "--batch-size", "1.5"), ("train", "--shift", "two")],
)
def test_usage_errors_exit_2(args):
    proc = run(*args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--layers", "100,7,1"), "first layer size must be the number of inputs, 12288"),
        (("--layers", "12288,7,3"), "last layer size must be 1"),
        (("--lr", "-1"), "learning rate"),
        (("--iterations", "0"), "iterations"),
        (("--seed", "-5"), "seed"),
        (("--print-every", "0"), "print-every"),
        (("--save", "/no/such/folder/m.npz"), "the folder /no/such/folder does not exist"),
        (("--save", "/tmp"), "is a folder"),
        (("--l2", "-1"), "L2"),
        (("--keep-prob", "0"), "keep probability"),
        (("--keep-prob", "0.5,0.5"), "one per hidden layer"),
        (("--batch-size", "-5"), "batch size"),
        (("--beta", "0.5"), "--beta applies to --optimizer momentum"),
        (("--optimizer", "momentum", "--beta", "1"), "β"),
        (("--optimizer", "adam", "--beta2", "2"), "β2"),
        (("--epsilon", "1e-7"), "--epsilon applies to --optimizer rmsprop or adam (this run uses gd)"),
        (("--optimizer", "rmsprop", "--beta1", "0.8"), "--beta1 applies to --optimizer adam (this run uses rmsprop)"),
        (("--schedule", "step"), "needs a decay rate"),
        (("--decay-every", "10"), "--decay-every applies to the step schedule"),
        (("--decay", "0.1", "--decay-every", "0"), "decay_every"),
        (("--shift", "99"), "shift"),
    ],
)
def test_impossible_settings_are_usage_errors_before_any_work(args, message, tmp_path):
    # an empty data folder: the settings must be refused before the dataset is even looked for
    proc = run("train", *args, "--data-dir", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: ") and "train: error: " in proc.stderr and message in proc.stderr
    assert "dataset not found" not in proc.stderr


def test_missing_dataset_exit_1(tmp_path):
    proc = run("train", "--iterations", "1", "--data-dir", tmp_path)
    assert proc.returncode == 1 and "dataset not found" in proc.stderr


def test_info(data_dir):
    proc = run("info", "--data-dir", data_dir)
    assert proc.returncode == 0
    assert "train: 209 images, 72 cat, 137 non-cat" in proc.stdout
    assert "test: 50 images, 33 cat, 17 non-cat" in proc.stdout


def test_train_warns_about_a_dead_network(data_dir):
    proc = run("train", "--lr", "1", "--iterations", "300", "--print-every", "50", "--data-dir", data_dir)
    assert proc.returncode == 0
    assert "warning: the network stopped learning: all 7 ReLU units of layer 2 output 0" in proc.stderr
    assert "Cost after iteration 299: 0.643974" in proc.stdout


def test_train_warns_about_a_dead_network_from_few_costs(data_dir):
    # only three costs are printed, too few to see a flat curve: the weights tell
    proc = run("train", "--preset", "two-layer", "--lr", "0.5", "--iterations", "200", "--data-dir", data_dir)
    assert proc.returncode == 0
    assert "all 7 ReLU units of layer 1 output 0 for every training image" in proc.stderr


@pytest.mark.parametrize("threshold", ["-1", "2", "nan", "inf", "half"])
def test_predict_refuses_an_impossible_threshold(threshold, tmp_path):
    proc = run("predict", "--model", tmp_path / "m.npz", "--threshold", threshold, tmp_path / "x.png")
    assert proc.returncode == 2 and "--threshold" in proc.stderr


def test_predict_with_a_folder_or_a_device_as_model(tmp_path, photos):
    proc = run("predict", "--model", tmp_path, photos["chelsea.png"])
    assert proc.returncode == 1 and "is a folder" in proc.stderr
    proc = run("predict", "--model", "/dev/null", photos["chelsea.png"])
    assert proc.returncode == 1 and "not a regular file" in proc.stderr


def test_save_replaces_a_model_whole(model_file, data_dir, tmp_path):
    target = tmp_path / "m.npz"
    target.write_bytes(model_file.read_bytes())
    proc = run("train", "--preset", "two-layer", "--iterations", "5", "--data-dir", data_dir, "--save", target)
    assert proc.returncode == 0, proc.stderr
    from catdnn import load_model

    assert load_model(target).layers == (12288, 7, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind


def test_stdout_on_a_full_disk_is_an_error_not_a_traceback(model_file, photos):
    if not os.path.exists("/dev/full"):
        pytest.skip("this system has no /dev/full to simulate a full disk")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "catdnn", "predict", "--model", str(model_file),
                               photos["chelsea.png"]], cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "No space left on device" in proc.stderr


def test_ctrl_c_saves_the_partial_model_and_exits_130(data_dir, tmp_path):
    import signal

    from catdnn import load_model

    path = tmp_path / "partial.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "catdnn", "train", "--preset", "two-layer", "--iterations", "1000000",
         "--print-every", "1000", "--data-dir", str(data_dir), "--save", str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()  # training has started once the first cost is printed
        assert first.startswith("Cost after iteration 0: "), first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: stopped after" in err and "(partial)" in err
    model = load_model(path)
    assert model.status == "stopped" and 0 < model.iterations_done < 1_000_000
    assert out.splitlines()[-1].startswith("Test accuracy: ")
