"""Random search (catdnn.search): draws reproducible by seed and inside their ranges, log-uniform where
the course says so, the zoom, and scoring by cross-validation on the training images only, through the
sweep runner, on the engine and on the command line."""

from __future__ import annotations

import concurrent.futures as cf
import math
from dataclasses import replace

import numpy as np
import pytest

from catdnn.config import PRESETS
from catdnn.errors import ConfigError
from catdnn.search import Choice, configure, parse_range, random_search, sample, score, zoom
from catdnn.train import fit
from catdnn.validation import cross_validate
from tests.test_cli import run

RANGES = [parse_range("lr", "1e-4:1e-1"), parse_range("width", "4:64"), parse_range("beta", "0.9:0.999"),
          parse_range("l2", "0:2"), Choice("optimizer", ("gd", "momentum", "rmsprop"))]


def test_the_same_seed_draws_the_same_settings_inside_the_ranges():
    a, b = sample(RANGES, 300, seed=7), sample(RANGES, 300, seed=7)
    assert a == b
    assert sample(RANGES, 300, seed=8) != a
    for s in a:
        assert 1e-4 <= s["lr"] <= 1e-1 and 0.9 <= s["beta"] <= 0.999 and 0 <= s["l2"] <= 2
        assert len(s["width"]) == 1 and all(isinstance(w, int) and 4 <= w <= 64 for w in s["width"])
        assert s["optimizer"] in ("gd", "momentum", "rmsprop")
    assert {w for s in a for w in s["width"]} >= {4, 64}  # both ends reachable
    assert {s["optimizer"] for s in a} == {"gd", "momentum", "rmsprop"}
    # the order the ranges are given in does not change the draws
    assert sample(list(reversed(RANGES)), 300, seed=7) == a


def test_the_learning_rate_and_one_minus_beta_are_drawn_log_uniformly():
    draws = sample(RANGES, 4000, seed=0)
    lr = np.log10([s["lr"] for s in draws])
    assert np.median(lr) == pytest.approx(-2.5, abs=0.05)  # uniform in [1e-4, 1e-1] would put it near 10^-1.3
    assert np.mean(lr < -3) == pytest.approx(1 / 3, abs=0.03)  # each decade gets a third of the draws
    one_minus_beta = np.log10([1 - s["beta"] for s in draws])
    assert np.median(one_minus_beta) == pytest.approx(-2.0, abs=0.05)  # β ≈ 0.99: 0.9–0.99 as often as 0.99–0.999
    l2 = [s["l2"] for s in draws]
    assert np.median(l2) == pytest.approx(1.0, abs=0.06)  # the others uniformly
    widths = [s["width"][0] for s in draws]
    assert np.median(widths) == pytest.approx(34, abs=2)


def test_depth_draws_one_width_per_hidden_layer_and_configure_builds_the_net():
    ranges = [parse_range("depth", "1:3"), parse_range("width", "4:8")]
    for s in sample(ranges, 50, seed=1):
        assert len(s["width"]) == s["depth"]
        cfg = configure(PRESETS["deep"], s)
        assert cfg.layers == (12288, *s["width"], 1)
    # without a depth range, one width per hidden layer of the base (the deep net's three)
    s = sample([parse_range("width", "4:8")], 1, seed=1, depth=3)[0]
    assert len(s["width"]) == 3 and configure(PRESETS["deep"], s).hidden == s["width"]


@pytest.mark.parametrize("name, text, words", [
    ("lr", "1e-1:1e-4", "LOW below HIGH"),
    ("lr", "0.01", "LOW:HIGH"),
    ("lr", "0:0.1", "above 0"),
    ("beta", "0.9:1", "below 1"),
    ("width", "0:8", "whole numbers from 1"),
    ("width", "2.5:8", "whole numbers from 1"),
    ("momentum", "0:1", "cannot vary"),
])
def test_bad_ranges_are_refused_with_a_clear_message(name, text, words):
    with pytest.raises(ConfigError, match=words):
        parse_range(name, text)


def test_zoom_narrows_each_range_around_the_best_settings():
    best = [{"lr": 1e-3, "width": (20,), "beta": 0.99, "l2": 0.5, "optimizer": "momentum"},
            {"lr": 3e-3, "width": (30,), "beta": 0.995, "l2": 0.7, "optimizer": "rmsprop"}]
    new = {r.name: r for r in zoom(RANGES, best)}
    old = {r.name: r for r in RANGES}
    for name in ("lr", "width", "beta", "l2"):
        r, o = new[name], old[name]
        assert o.low <= r.low and r.high <= o.high and (r.low, r.high) != (o.low, o.high)  # inside, narrower
        values = [v for s in best for v in (s[name] if isinstance(s[name], tuple) else (s[name],))]
        assert r.low <= min(values) and max(values) <= r.high  # around the best
    # in the range's own scale: lr's decades, 1-β's decades
    assert math.log10(new["lr"].low) == pytest.approx(-3 - 0.3) and math.log10(new["lr"].high) == pytest.approx(
        math.log10(3e-3) + 0.3)
    assert math.log10(1 - new["beta"].high) == pytest.approx(math.log10(0.005) - 0.2)
    assert (new["width"].low, new["width"].high) == (14, 36)
    assert new["optimizer"].values == ("momentum", "rmsprop")
    # a zoomed range draws only inside itself
    assert all(new["lr"].low <= s["lr"] <= new["lr"].high for s in sample(list(new.values()), 200, seed=0))


def test_scores_are_cross_validation_on_the_training_images_and_never_read_the_test_set(poisoned):
    """Through the sweep runner (an executor in this process, so the poisoned test split is the runs' too):
    each score equals validation.cross_validate's of the same config on the same folds."""
    base = replace(PRESETS["two-layer"], iterations=40)
    configs = [replace(base, learning_rate=lr) for lr in (0.005, 0.02)]
    runs = []
    with cf.ThreadPoolExecutor(2) as ex:
        cvs = score(configs, poisoned, k=3, seed=4, metric="balanced_accuracy", executor=ex,
                    on_run=lambda fold, res, s: runs.append((fold, res.status, s)))
    assert sorted((f, st) for f, st, _ in runs) == [(f, "finished") for f in range(3) for _ in range(2)]
    for cfg, cv in zip(configs, cvs):
        assert cv.folds == 3 and cv.completed(40) == 3 and cv.metric == "balanced_accuracy"

        def train_fold(X, Y, Xv, cfg=cfg):
            return {40: fit(cfg, X=X, Y=Y).predict_proba(Xv)}

        ref = cross_validate(train_fold, poisoned.train.X, poisoned.train.Y, k=3, seed=4, metric="balanced_accuracy")
        np.testing.assert_allclose(cv.scores[40], ref.scores[40], atol=1e-12)


def test_a_random_search_with_zoom_on_the_runner(poisoned):
    base = replace(PRESETS["two-layer"], iterations=20)
    ranges = [parse_range("lr", "1e-3:1e-1"), parse_range("width", "2:9")]
    with cf.ThreadPoolExecutor(2) as ex:
        rounds = random_search(base, ranges, 3, poisoned, seed=5, k=2, zoom_k=2, executor=ex)
    assert len(rounds) == 2 and [len(r.scored) for r in rounds] == [3, 3]
    first, second = rounds
    assert [s.setting for s in sorted(first.scored, key=lambda s: s.config.learning_rate)] == sorted(
        sample(ranges, 3, seed=5), key=lambda s: s["lr"])
    ranks = [s.cv.rank(s.checkpoint) for s in first.scored]
    assert ranks == sorted(ranks, reverse=True)  # best first
    best = first.scored[:2]
    for r in second.ranges:  # the second round's ranges surround the two best of the first
        values = [v for s in best for v in np.atleast_1d(s.setting[r.name])]
        assert r.low <= min(values) and max(values) <= r.high
    assert all(s.cv.completed(s.checkpoint) == 2 for rnd in rounds for s in rnd.scored)


def test_cli_random_search_prints_validation_scores(data_dir):
    args = ("sweep", "--random", "2", "--preset", "two-layer", "--iterations", "20", "--lr", "1e-3:1e-1", "--width",
            "3:8", "--folds", "2", "--seed", "3", "--workers", "1", "--data-dir", data_dir)
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Round 1, best first (validation auc" in out
    rows = [line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.")]
    assert all("(2 folds)" in row and "lr=" in row for row in rows)
    assert len(rows) == 2 and all("width=" in row for row in rows)
    assert "Best by validation" in out
    assert "test" not in out  # no test accuracy anywhere in the search's results
    assert "the test images are never read" in proc.stderr
    assert run(*args).stdout == out  # the same seed, the same settings and scores


@pytest.mark.parametrize("args, words", [
    (("--width", "4:64"), "--width applies to a random search"),
    (("--lr", "1e-4:1e-1"), "--lr 1e-4:1e-1 applies to a random search"),
    (("--random", "2", "--lr", "0.01,0.02"), "with --random, --lr is a range"),
    (("--random", "2"), "needs at least one range"),
    (("--random", "2", "--lr", "1e-1:1e-4"), "LOW below HIGH"),
    (("--random", "2", "--lr", "1e-3:1e-1", "--seeds", "1-2"), "one seed"),
    (("--random", "2", "--lr", "1e-3:1e-1", "--zoom", "3"), "zoom around 1 to 2"),
])
def test_cli_random_search_usage_errors(args, words, data_dir):
    proc = run("sweep", *args, "--data-dir", data_dir, "--iterations", "5")
    assert proc.returncode == 2 and words in proc.stderr
