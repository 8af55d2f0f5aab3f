"""The time per epoch of each technique beyond the course, next to plain gradient descent.

    python bench/bench_techniques.py [--epochs 400] [--direct-epochs 40] [--repeats 3] [--threads 1]
                                     [--preset deep] [--only SUBSTRING,...]

One epoch is one pass over the 209 training images: one iteration with full batches, ⌈209/b⌉ with
mini-batches of b. Each technique is timed on the solver "auto" picks for it (the Gram solver
where it stays exact, else the direct one, with the reason) and on the direct solver, and compared
with plain gradient descent on the same solver. Setup (building the Gram matrix, the first
weights) is timed apart. The cost and the train and test accuracies are measured once per epoch
(as a learning curve needs; this is where mirror averaging, a prediction-time technique, costs);
one-time work done during the run (the test set's cross-Gram, the mirror images' for mirror
averaging) is spread over the epochs, so runs on "auto" are long (400 epochs) and runs on the
direct solver, 20 times slower per epoch, shorter (40).
Runs are interleaved round-robin within each repeat, so a noisy neighbour slows them alike; the
table gives medians.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from _common import load_data, machine, median, set_threads, table

from catdnn.config import PRESETS
from catdnn.train import Trainer

TECHNIQUES = {
    "plain gradient descent": {},
    "L2 (λ = 0.7)": dict(l2=0.7),
    "dropout (keep 0.8)": dict(keep_prob=0.8),
    "mini-batches of 64": dict(batch_size=64),
    "mini-batches of 16": dict(batch_size=16),
    "momentum (β = 0.9)": dict(optimizer="momentum"),
    "Adam": dict(optimizer="adam", learning_rate=0.001),
    "lr decay (inverse-time)": dict(schedule="inverse-time", decay=0.01),
    "flips": dict(flip=True),
    "shifts (±4 px)": dict(shift=4),
    "mirror averaging at prediction": dict(tta=True),
    "batch norm": dict(batch_norm=True),
    "L2 + dropout + momentum + batches 64 + flips": dict(l2=0.7, keep_prob=0.8, optimizer="momentum",
                                                        batch_size=64, flip=True),
}


def per_epoch(config, ds, solver, epochs):
    """(setup seconds, seconds per epoch, solver name, reason) of one run of ``epochs`` epochs."""
    t0 = time.perf_counter()
    probe = Trainer(replace(config, iterations=1), ds.train.X, ds.train.Y, solver=solver)
    per = probe._batches.per_epoch
    cfg = replace(config, iterations=epochs * per)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, cost_every=per, accuracy_every=per,
                      solver=solver)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in trainer.run():
        pass
    seconds = time.perf_counter() - t0
    return setup, seconds / epochs, trainer.solver_name, trainer.solver_reason


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=400, help="epochs of each run on the solver auto picks")
    ap.add_argument("--direct-epochs", type=int, default=40, help="epochs of each run on the direct solver")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1, as the app's workers use)")
    ap.add_argument("--preset", default="deep", choices=list(PRESETS))
    ap.add_argument("--only", help="comma-separated substrings of technique names to run (plain is always run)")
    args = ap.parse_args(argv)
    ds = load_data()
    set_threads(args.threads)
    base = PRESETS[args.preset]
    names = list(TECHNIQUES)
    if args.only:
        keys = args.only.split(",")
        names = [n for n in names if n == "plain gradient descent" or any(k in n for k in keys)]
    print(f"machine: {machine()}")
    print(f"preset {args.preset} {list(base.layers)}, {args.epochs} epochs (direct: {args.direct_epochs}) "
          f"of m = {ds.train.m}, "
          f"median of {args.repeats} repeats, runs interleaved; cost and accuracies once per epoch\n")
    times = {(n, s): [] for n in names for s in ("auto", "direct")}
    setups, solver_of, reasons = {}, {}, {}
    for _ in range(args.repeats):
        for name in names:
            cfg = replace(base, **TECHNIQUES[name])
            for solver in ("auto", "direct"):
                epochs = args.epochs if solver == "auto" else args.direct_epochs
                setup, t, used, reason = per_epoch(cfg, ds, solver, epochs)
                times[(name, solver)].append(t)
                if solver == "auto":
                    setups.setdefault(name, []).append(setup)
                    solver_of[name], reasons[name] = used, reason
    plain = {s: median(times[("plain gradient descent", s)]) for s in ("auto", "direct")}
    rows = []
    for name in names:
        auto, direct = median(times[(name, "auto")]), median(times[(name, "direct")])
        rows.append([name, solver_of[name], f"{auto * 1e3:.2f}", f"{auto / plain['auto']:.2f}×",
                     f"{direct * 1e3:.1f}", f"{direct / plain['direct']:.2f}×", f"{median(setups[name]):.3f}"])
    print(table(["technique", "auto solver", "ms/epoch (auto)", "× plain (auto)", "ms/epoch (direct)",
                 "× plain (direct)", "setup s (auto)"], rows))
    print("\nwhy each solver:")
    for name in names:
        print(f"- {name}: {reasons[name]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
