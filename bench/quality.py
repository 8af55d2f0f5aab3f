"""Test accuracy beyond the course's 0.80, honestly (issue 11): settings chosen by stratified k-fold
CV on the 209 training images only, then test accuracy as mean ± std over seeds 1–5.

Three models:
* the course's deep MLP as published (the ``deep`` preset, no choice made);
* the best MLP: the deep net with L2 / flips + mirror averaging, and how many iterations, chosen by CV;
* the CNN (catdnn.cnn): learning rate, widths and epochs chosen by CV.

Selection uses AUC on the validation folds (balanced accuracy shown beside it); plain accuracy
cannot choose here (always non-cat scores 0.656). The test set is read only for the final table.
Each test image is worth 2 points of accuracy (50 images); test image 17 is an exact copy of a
training image.

    python bench/quality.py               # the full grid, writes the table into bench/README.md
    python bench/quality.py --quick       # a tiny grid to try the script (does not write)
    python bench/quality.py --no-write    # print only
"""

from __future__ import annotations

import argparse
import re
import resource
import time
import tracemalloc
from dataclasses import replace

import numpy as np
from _common import ROOT, load_data, machine, set_threads, table

from catdnn import cnn, validation
from catdnn.config import PRESETS, iterations_for
from catdnn.evaluate import metrics
from catdnn.network import predict_proba
from catdnn.train import Trainer, fit

SEEDS = (1, 2, 3, 4, 5)
K = 5
CV_SEED = 0  # the folds
METRIC = "auc"
README = ROOT / "bench" / "README.md"


# --------------------------------------------------------------------------- one fold's training, with checkpoints
def mlp_fold(config, checkpoints):
    """train_fold for cross_validate: the MLP Trainer, P(cat) on the fold's validation part at each
    iteration count in ``checkpoints``."""
    def train_fold(X_tr, Y_tr, X_val):
        t = Trainer(config, X_tr, Y_tr, cost_every=10**9)
        out = {}
        for e in t.run():
            if e.iterations_done in checkpoints:
                out[e.iterations_done] = predict_proba(t.params(), X_val, tta=config.tta, bn=t.batch_norm())
        return out
    return train_fold


def cnn_fold(config, checkpoints_epochs, m_train):
    """train_fold for cross_validate: the CNN, P(cat) on the validation part after each number of epochs."""
    def train_fold(X_tr, Y_tr, X_val):
        per_epoch = iterations_for(1, X_tr.shape[1], config.batch_size)
        cfg = replace(config, iterations=per_epoch * max(checkpoints_epochs))
        t = Trainer(cfg, X_tr, Y_tr, cost_every=10**9)
        arch = cfg.parsed_arch()
        out = {}
        for e in t.run():
            if e.iterations_done % per_epoch == 0 and e.iterations_done // per_epoch in checkpoints_epochs:
                out[e.iterations_done // per_epoch] = cnn.predict_proba(t.params(), arch, X_val, tta=cfg.tta)
        return out
    return train_fold


# --------------------------------------------------------------------------- final runs
def final_mlp(config, ds):
    out = []
    for seed in SEEDS:
        cfg = replace(config, seed=seed)
        t0 = time.perf_counter()
        t = Trainer(cfg, ds.train.X, ds.train.Y, cost_every=10**9)
        for _ in t.run():
            pass
        p = predict_proba(t.params(), ds.test.X, tta=cfg.tta, bn=t.batch_norm())
        out.append((metrics(p, ds.test.Y), time.perf_counter() - t0))
    return out


def final_cnn(config, ds):
    out = []
    for seed in SEEDS:
        t0 = time.perf_counter()
        model = fit(replace(config, seed=seed), X=ds.train.X, Y=ds.train.Y, cost_every=10**9)
        p = model.predict_proba(ds.test.X)
        out.append((metrics(p, ds.test.Y), time.perf_counter() - t0))
    return out


def cnn_peak_bytes(config, ds) -> int:
    """Peak bytes allocated (tracemalloc, which NumPy reports to) during one CNN run and its test prediction."""
    tracemalloc.start()
    model = fit(config, X=ds.train.X, Y=ds.train.Y, cost_every=10**9)
    model.predict_proba(ds.test.X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def cv_line(r, unit: str) -> str:
    """Each checkpoint's mean CV score, and how many folds failed there (diverged or NaN)."""
    def one(c):
        failed = f" ({r.failed(c)} of {r.folds} folds failed)" if r.failed(c) else ""
        return f"{c} {unit} {r.mean(c):.3f}{failed}"
    return ", ".join(one(c) for c in sorted(r.scores))


def summary(runs) -> dict:
    def ms(key):
        v = np.array([r[0][key] for r in runs], dtype=float)
        return v.mean(), v.std(ddof=1)
    secs = np.array([r[1] for r in runs])
    return {"acc": ms("accuracy"), "bal": ms("balanced_accuracy"), "auc": ms("auc"),
            "each": [r[0]["accuracy"] for r in runs], "secs": (secs.mean(), secs.max())}


def write_section(marker: str, text: str) -> None:
    """Put ``text`` between ``<!-- marker:begin -->`` and ``<!-- marker:end -->`` in bench/README.md
    (appended at the end the first time)."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    old = README.read_text()
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        new = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    README.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny grid, to try the script (implies --no-write)")
    ap.add_argument("--no-write", action="store_true", help="print the table without writing bench/README.md")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2: the machine's cores)")
    args = ap.parse_args()
    set_threads(args.threads)
    ds = load_data()
    X, Y = ds.train.X, ds.train.Y
    lines = [f"machine: {machine()}", f"BLAS threads: {args.threads}; CV: stratified {K}-fold (seed {CV_SEED}) "
             f"on the {X.shape[1]} training images, chosen by mean validation {METRIC} (a checkpoint where a fold "
             "failed ranks below any where none did); training seed 1 in CV"]
    t_all = time.perf_counter()

    # ---- MLP: the deep net, L2 and flips + mirror averaging, and the number of iterations
    deep = PRESETS["deep"]
    mlp_grid = {"deep": deep}
    for l2 in ((0.7,) if args.quick else (0.7, 3.0)):
        mlp_grid[f"deep, L2 λ={l2:g}"] = replace(deep, l2=l2)
    mlp_grid["deep, flips + mirror avg"] = replace(deep, flip=True, tta=True)
    if not args.quick:
        mlp_grid["deep, flips + mirror avg, L2 λ=0.7"] = replace(deep, flip=True, tta=True, l2=0.7)
    mlp_checks = (500, 1500, 2500) if args.quick else (500, 1000, 1500, 2000, 2500)
    mlp_results = []
    for name, cfg in mlp_grid.items():
        r = validation.cross_validate(mlp_fold(cfg, set(mlp_checks)), X, Y, k=K, seed=CV_SEED, metric=METRIC,
                                      name=name, checkpoints=mlp_checks)
        mlp_results.append((r, cfg))
        print(f"  CV {name}: {cv_line(r, 'it')}  ({r.seconds:.1f} s)", flush=True)
    best_mlp, best_it = validation.select([r for r, _ in mlp_results])
    best_mlp_cfg = next(c for r, c in mlp_results if r is best_mlp)
    best_mlp_cfg = replace(best_mlp_cfg, iterations=int(best_it))

    # ---- CNN: learning rate, widths, epochs
    widths = {"16/32/64, dense64": "in32,conv16,conv32,conv64,dense64"} if args.quick else {
        "8/16/32, dense32": "in32,conv8,conv16,conv32,dense32",
        "16/32/64, dense64": "in32,conv16,conv32,conv64,dense64",
    }
    rates = (0.002,) if args.quick else (0.001, 0.002, 0.004)
    epochs = (5, 10) if args.quick else (30, 50, 70, 90)
    cnn_results = []
    for wname, spec in widths.items():
        for lr in rates:
            cfg = replace(PRESETS["cnn"], arch=spec, learning_rate=lr).validate()
            r = validation.cross_validate(cnn_fold(cfg, set(epochs), X.shape[1]), X, Y, k=K, seed=CV_SEED,
                                          metric=METRIC, name=f"{wname}, lr {lr:g}", checkpoints=epochs)
            cnn_results.append((r, cfg))
            print(f"  CV CNN {r.name}: {cv_line(r, 'ep')}  ({r.seconds:.1f} s)", flush=True)
    best_cnn, best_ep = validation.select([r for r, _ in cnn_results])
    best_cnn_cfg = next(c for r, c in cnn_results if r is best_cnn)
    best_cnn_cfg = replace(best_cnn_cfg, iterations=iterations_for(best_ep, X.shape[1], best_cnn_cfg.batch_size))
    cv_seconds = time.perf_counter() - t_all

    # ---- the test set, once, for the three chosen models
    rows = []
    finals = [
        ("course deep MLP (preset, no choice)", "—", final_mlp(deep, ds), deep.iterations, "iterations"),
        (f"best MLP by CV: {best_mlp.name}", best_mlp.describe(best_it),
         final_mlp(best_mlp_cfg, ds), best_it, "iterations"),
        (f"CNN by CV: {best_cnn.name} ({best_cnn_cfg.arch}), flips, ±{best_cnn_cfg.shift} px, mirror avg",
         best_cnn.describe(best_ep), final_cnn(best_cnn_cfg, ds), best_ep, "epochs"),
    ]
    results = {}
    for name, cv, runs, length, unit in finals:
        s = summary(runs)
        results[name] = s
        rows.append([name, f"{length} {unit}", cv, f"{s['acc'][0]:.3f} ± {s['acc'][1]:.3f}",
                     " ".join(f"{a:.2f}" for a in s["each"]), f"{s['bal'][0]:.3f}", f"{s['auc'][0]:.3f}",
                     f"{s['secs'][0]:.1f} (max {s['secs'][1]:.1f})"])
    peak = cnn_peak_bytes(best_cnn_cfg, ds)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cnn = results[finals[2][0]]
    mlp = results[finals[1][0]]
    out = "\n".join(lines) + "\n\n" + table(
        ["model", "length", f"CV {METRIC} (mean ± std of the folds that completed)",
         "test accuracy, mean ± std (seeds 1–5)",
         "per seed", "test bal. acc.", "test AUC", "s per run"], rows)
    out += (f"\n\nstd is the sample std over the 5 seeds; every test image is 0.02 of accuracy. "
            f"CV and selection took {cv_seconds:.0f} s. CNN peak memory of one run: "
            f"{peak / 2**20:.0f} MiB allocated by NumPy (tracemalloc); the whole benchmark process "
            f"peaked at {rss:.0f} MiB RSS.\n")
    checks = [
        ("CNN mean test accuracy ≥ 0.88 (settings by CV only)", cnn["acc"][0] >= 0.88 - 1e-9,
         f"{cnn['acc'][0]:.3f}"),
        ("CNN each run ≤ 30 s on 2 cores", cnn["secs"][1] <= 30, f"max {cnn['secs'][1]:.1f} s"),
        ("CNN peak memory ≤ 1 GB", rss <= 1024, f"{rss:.0f} MiB RSS"),
        ("MLP mean test accuracy ≥ 0.80", mlp["acc"][0] >= 0.80 - 1e-9, f"{mlp['acc'][0]:.3f}"),
    ]
    out += "\n".join(f"target: {what}: {value} {'MET' if ok else 'MISSED'}" for what, ok, value in checks)
    print(out)
    if not (args.quick or args.no_write):
        write_section("quality", "### Quality (`quality.py`, issue 11)\n\n"
                      "Measured by `python bench/quality.py` (settings by CV on the training images only; "
                      "the test set read once at the end):\n\n```\n" + "\n".join(lines) + "\n```\n\n"
                      + out.split("\n\n", 1)[1])
        print(f"\nwritten to {README}")


if __name__ == "__main__":
    main()
