"""The course's published results, end to end through the CLI on the real dataset files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

COURSE = {
    # preset: (lines that must appear in the output)
    "deep": [
        "Cost after iteration 0: 0.771749",
        "Cost after iteration 2400: 0.092878",
        "Train accuracy: 0.985646",
        "Test accuracy: 0.800000",
    ],
    "two-layer": [
        "Cost after iteration 0: 0.693050",
        "Cost after iteration 2400: 0.048555",
        "Train accuracy: 1.000000",
        "Test accuracy: 0.720000",
    ],
}


#: Every technique beyond the course named on the command line, switched off.
TECHNIQUES_OFF = ["--l2", "0", "--keep-prob", "1", "--batch-size", "0", "--optimizer", "gd", "--schedule", "constant",
                  "--shift", "0"]


@pytest.mark.slow
@pytest.mark.parametrize("off", [False, True], ids=["preset", "techniques-off"])
@pytest.mark.parametrize("preset", list(COURSE))
def test_cli_train_reproduces_the_course(preset, off, data_dir, tmp_path):
    model = tmp_path / f"{preset}.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "catdnn", "train", "--preset", preset, "--data-dir", str(data_dir),
         "--save", str(model), *(TECHNIQUES_OFF if off else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for expected in COURSE[preset]:
        assert expected in lines, f"{expected!r} not in output:\n{proc.stdout}"
    costs = [line for line in lines if line.startswith("Cost after iteration ")]
    # every 100 iterations, plus the last one (2499) as the course prints it
    assert [int(c.split()[3].rstrip(":")) for c in costs] == list(range(0, 2500, 100)) + [2499]
    assert "Traceback" not in proc.stderr

    # the saved model predicts the same accuracies as printed
    from catdnn import accuracy, load_dataset, load_model

    m = load_model(model)
    ds = load_dataset(data_dir)
    train_line = [line for line in lines if line.startswith("Train accuracy")][0]
    assert f"{accuracy(m.params, ds.train.X, ds.train.Y):.6f}" == train_line.split()[-1]
    assert m.iterations_done == 2500 and m.status == "finished"


def test_fit_matches_the_cli_numbers_for_a_short_run(dataset):
    """The library's fit() and the first reported costs agree with the course's curve."""
    from dataclasses import replace

    from catdnn import PRESETS, fit

    model = fit(replace(PRESETS["deep"], iterations=101), dataset)
    assert [i for i, _ in model.history] == [0, 100]
    assert f"{model.history[0][1]:.6f}" == "0.771749"
    assert f"{model.history[1][1]:.6f}" == "0.672053"  # the course's "Cost after iteration 100"
