"""An 8-run sweep on all cores (catdnn.sweep's process pool) against the same 8 runs one after another.

    python bench/bench_sweep.py [--runs 8] [--repeats 3] [--iterations 2500] [--workers N]

The runs are the deep preset over seeds 1..N. One after another is timed twice in this process:
with one BLAS thread (what each sweep worker uses) and with BLAS on every core (NumPy's default).
The sweep's time includes starting its pool and loading the dataset in each worker: what a user
waits for. Target (issue 10): the sweep at least 1.8× faster than one after another on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

from _common import load_data, machine, median

from catdnn.config import PRESETS
from catdnn.sweep import seed_configs, sweep
from catdnn.threads import blas_threads
from catdnn.train import Trainer

TARGET = 1.8


def one_after_another(configs, ds) -> float:
    t0 = time.perf_counter()
    for c in configs:
        trainer = Trainer(c, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, cost_every=max(1, c.iterations // 500))
        for _ in trainer.run():
            pass
        trainer.model()
    return time.perf_counter() - t0


def on_the_pool(configs, ds, workers) -> float:
    t0 = time.perf_counter()
    results = list(sweep(configs, data_dir=ds.source, workers=workers))
    assert all(r.status == "finished" for r in results), [r.message for r in results]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=2500)
    ap.add_argument("--workers", type=int, default=None, help="sweep processes (default: one per core)")
    args = ap.parse_args()
    ds = load_data()
    configs = seed_configs(replace(PRESETS["deep"], iterations=args.iterations), range(1, args.runs + 1))
    cores = os.cpu_count() or 1
    workers = args.workers or cores
    seq1, seqn, pool = [], [], []
    for _ in range(args.repeats):
        with blas_threads(1):
            seq1.append(one_after_another(configs, ds))
        with blas_threads(cores):
            seqn.append(one_after_another(configs, ds))
        pool.append(on_the_pool(configs, ds, workers))
    s1, sn, p = median(seq1), median(seqn), median(pool)
    print(f"machine: {machine()}; {cores} cores; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{args.runs} runs of the deep preset ({args.iterations} iterations, seeds 1-{args.runs}), "
          f"median of {args.repeats}\n")
    print("| way | seconds | speed-up vs one after another (1 BLAS thread) |")
    print("| --- | ---: | ---: |")
    print(f"| one after another, 1 BLAS thread | {s1:.2f} | 1.00× |")
    print(f"| one after another, {cores} BLAS threads | {sn:.2f} | {s1 / sn:.2f}× |")
    print(f"| catdnn.sweep, {workers} processes × 1 BLAS thread | {p:.2f} | {s1 / p:.2f}× |")
    best_seq = min(s1, sn)
    verdict = "met" if best_seq / p >= TARGET else "NOT met"
    print(f"\nsweep vs the faster one-after-another: {best_seq / p:.2f}× (target ≥ {TARGET}×: {verdict})")


if __name__ == "__main__":
    main()
