"""Two concurrent trainings with 1 vs 2 (vs all) BLAS threads: prints wall times.

    python bench/blas_threads.py [--iterations 2500] [--solver auto|direct]

Scenarios, each for BLAS limits 1, 2, ...:
  alone    one training in one process
  threads  two trainings in two threads of one process (how Streamlit runs two sessions)
  procs    two trainings in two processes at once (two CLI runs)
The figure that matters for the dashboard is `threads`: the time until both runs are done.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def train_once(iterations: int, solver: str) -> float:
    from catdnn import TrainConfig, Trainer, load_dataset

    ds = load_dataset()
    cfg = TrainConfig.preset("deep", iterations=iterations)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, ds.train.X, ds.train.Y, cost_every=100, solver=solver)
    for _ in trainer.run():
        pass
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2500)
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    from catdnn.threads import blas_thread_count, limit_blas_threads

    if args.child:
        limit_blas_threads(args.child)
        print(f"{train_once(args.iterations, args.solver):.3f}")
        return
    from catdnn import load_dataset

    load_dataset()  # warm the file cache
    cores = os.cpu_count() or 1
    print(f"{cores} cores, deep net [12288, 20, 7, 5, 1], {args.iterations} iterations, solver {args.solver}")
    for n in sorted({1, 2, cores}):
        limit_blas_threads(n)
        assert blas_thread_count() == n
        alone = train_once(args.iterations, args.solver)
        times = []
        t0 = time.perf_counter()
        ts = [threading.Thread(target=lambda out=times: out.append(train_once(args.iterations, args.solver)))
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        both_threads = time.perf_counter() - t0
        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--iterations", str(args.iterations), "--solver", args.solver,
               "--child", str(n)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [float(p.communicate()[0]) for p in procs]
        both_procs = time.perf_counter() - t0
        print(f"BLAS threads {n}: alone {alone:6.2f} s | two threads: each {min(times):6.2f}-{max(times):6.2f} s, "
              f"both done {both_threads:6.2f} s | two processes: each {min(outs):6.2f}-{max(outs):6.2f} s, "
              f"both done {both_procs:6.2f} s")


if __name__ == "__main__":
    main()
