"""Scaling: time per iteration against the number of training examples m (synthetic data, the
``deep`` preset's layers), for the direct path, the Gram path and the automatic choice.

    python bench/bench_scaling.py [--sizes 209,500,1000,2000,5000,10000,20000] [--iterations 2500]

For each m, both solvers are built and stepped side by side, round-robin (a noisy neighbour slows
them alike): setup (the Gram path builds XᵀX, n_x·m² flops; median of 3 where cheap) and the
steady-state step (median of many steps) separately; the time per iteration of a whole run of
``--iterations`` iterations is ``setup / iterations + step``. "auto" is the class
``choose_solver("auto", n_x, m, layers, iterations)`` returns, one of the two, so its time is that
path's measured time (a third instance of the same code would only measure noise). The target:
auto never more than 10 % slower than the better path.
Needs about 8·n_x·m bytes for X plus 8·m² for the Gram matrix (5.2 GB at m = 20 000).
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from _common import machine, median, set_threads, table

from catdnn.config import PRESETS
from catdnn.network import init_params
from catdnn.solvers import SOLVERS, choose_solver

N_X = 12288


def measure_all(classes, X, Y, layers, budget=2.0, min_rounds=3, max_rounds=200):
    """Setup and step times of several solver classes, measured round-robin (a noisy neighbour
    slows them all alike). Returns ``[(setup s, median step s, setups, steps)]`` per class."""
    solvers, setups = [], []
    for cls in classes:
        gc.collect()
        t0 = time.perf_counter()
        solvers.append(cls(init_params(layers, "xavier", 1), X, Y, 0.0075))
        setups.append([time.perf_counter() - t0])
    if max(setups[k][0] for k in range(len(classes))) < 2.0:  # cheap: repeat the setups, round-robin
        for _ in range(2):
            for k, cls in enumerate(classes):
                t0 = time.perf_counter()
                cls(init_params(layers, "xavier", 1), X, Y, 0.0075)
                setups[k].append(time.perf_counter() - t0)
    for s in solvers:
        s.step(False)  # warm-up
    steps = [[] for _ in classes]
    t_end = time.perf_counter() + budget
    while len(steps[0]) < max_rounds and (len(steps[0]) < min_rounds or time.perf_counter() < t_end):
        for k, s in enumerate(solvers):
            t0 = time.perf_counter()
            s.step(False)
            steps[k].append(time.perf_counter() - t0)
    return [(median(su), median(st), len(su), len(st)) for su, st in zip(setups, steps)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="209,500,1000,2000,5000,10000,20000")
    ap.add_argument("--iterations", type=int, default=2500, help="run length the setup is amortised over")
    ap.add_argument("--threads", type=int, help="limit BLAS threads (threadpoolctl); default: unchanged")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    layers = PRESETS["deep"].layers
    it = args.iterations
    print(f"machine: {machine()}")
    print(f"layers {list(layers)}, synthetic X of shape ({N_X}, m) in [0, 1) (F-ordered like the dataset's), "
          f"per-iteration time of a {it}-iteration run = setup / {it} + step\n")
    rows, worst = [], 0.0
    rng = np.random.default_rng(0)
    for m in [int(s) for s in args.sizes.split(",")]:
        X = rng.random((m, N_X)).T  # (n_x, m), F-contiguous like catdnn.data's
        Y = (rng.random((1, m)) < 0.35).astype(np.float64)
        X.setflags(write=False)
        auto_cls = choose_solver("auto", N_X, m, layers, it)
        res = dict(zip(("direct", "gram"), measure_all([SOLVERS["direct"], SOLVERS["gram"]], X, Y, layers)))
        res["auto"] = res[auto_cls.name]
        per = {k: (s / it + st) for k, (s, st, _, _) in res.items()}
        better = min(per["direct"], per["gram"])
        ratio = per["auto"] / better
        worst = max(worst, ratio)
        rows.append([
            m,
            f"{res['direct'][1] * 1e3:.3f}",
            f"{res['gram'][0]:.3f}", f"{res['gram'][1] * 1e3:.3f}",
            f"{per['direct'] * 1e3:.3f}", f"{per['gram'] * 1e3:.3f}",
            f"{per['direct'] / per['gram']:.2f}×",
            auto_cls.name, f"{per['auto'] * 1e3:.3f}", f"{ratio:.3f}",
            f"{res['direct'][3]}, {res['gram'][2]}",
        ])
        print(table(["m", "direct step ms", "gram setup s", "gram step ms", "direct ms/it", "gram ms/it",
                     "gram speed-up", "auto picks", "auto ms/it", "auto / better", "steps, setups"],
                    rows[-1:]).splitlines()[-1], flush=True)
        del X
        gc.collect()
    print()
    print(table(["m", "direct step ms", "gram setup s", "gram step ms", "direct ms/it", "gram ms/it",
                 "gram speed-up", "auto picks", "auto ms/it", "auto / better", "steps, setups"], rows))
    print(f"\ntarget: auto within 10 % of the better path at every m: worst auto / better = {worst:.3f} "
          f"{'MET' if worst <= 1.10 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
