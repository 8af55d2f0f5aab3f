"""The ``cnn`` preset's whole run (issue 18): this checkout against another, with 1 and 2 BLAS threads.

Each run is a fresh process that loads the dataset and runs ``fit`` on the preset (350 iterations,
the final accuracies with mirror averaging), as ``python -m catdnn train --preset cnn`` does. The
runs alternate between the checkouts and the thread counts (interleaved, each order in turn), so a
busy neighbour slows both alike; the table gives the median, the ratio of the medians and the
median of the paired ratios, the process's CPU time (user + system; with 1 BLAS thread the time the
run computed, which a busy neighbour disturbs far less than the wall clock), the accuracies (which
must agree) and the peak memory of a run.

    python bench/bench_cnn_run.py [--ref /tmp/speed-base] [--repeats 3] [--threads 1,2] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from _common import ROOT, load_data, machine, table

RUN = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from threadpoolctl import threadpool_limits
threadpool_limits(int(sys.argv[2]))
from dataclasses import replace
import catdnn
assert catdnn.__file__.startswith(sys.argv[1]), catdnn.__file__
from catdnn.data import load_dataset
ds = load_dataset(sys.argv[4], download=False)
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
model = catdnn.fit(replace(catdnn.PRESETS["cnn"], seed=int(sys.argv[3])), ds)
t, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps([t, model.train_accuracy, model.test_accuracy, model.history[-1][1], rss, cpu]))
"""


def one_run(path, threads, seed, data_dir):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", RUN, str(path), str(threads), str(seed), data_dir],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", help="another checkout of catdnn (e.g. the commit before issue 18)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    load_data()  # finds the dataset and sets CATDNN_DATA_DIR
    data_dir = os.environ["CATDNN_DATA_DIR"]
    trees = [("after", ROOT)] + ([("before", os.path.abspath(args.ref))] if args.ref else [])
    threads = [int(t) for t in args.threads.split(",")]
    cells = [(name, path, t) for t in threads for name, path in trees]
    res = {(name, t): [] for name, _, t in cells}
    print(f"machine at the start: {machine()}")
    for r in range(args.repeats):
        order = cells[r % len(cells):] + cells[:r % len(cells)]
        for name, path, t in order:
            res[(name, t)].append(one_run(path, t, args.seed, data_dir))
    rows = []
    for t in threads:
        for name, _ in trees:
            runs = res[(name, t)]
            secs = [x[0] for x in runs]
            cpu = [x[5] for x in runs]
            row = [name, t, f"{statistics.median(secs):.2f}", " ".join(f"{s:.2f}" for s in secs),
                   f"{statistics.median(cpu):.2f}",
                   f"{runs[0][1]:.4f} / {runs[0][2]:.4f}", f"{runs[0][3]:.6f}", f"{max(x[4] for x in runs):.0f}"]
            if args.ref and name == "after":
                before = [x[0] for x in res[("before", t)]]
                before_cpu = [x[5] for x in res[("before", t)]]
                row.append(f"{statistics.median(secs) / statistics.median(before):.2f}× "
                           f"(paired {statistics.median(a / b for a, b in zip(secs, before)):.2f}×; CPU "
                           f"{statistics.median(cpu) / statistics.median(before_cpu):.2f}×)")
            else:
                row.append("")
            rows.append(row)
    print(f"\ncnn preset, seed {args.seed}, fit() in a fresh process per run, {args.repeats} runs each, interleaved\n")
    print(table(["code", "BLAS threads", "median s", "all runs (s)", "median CPU s", "train / test acc", "last cost",
                 "peak RSS MB", "after / before"], rows))
    best = statistics.median(x[0] for x in res[("after", 1)]) if 1 in threads else None
    if best is not None:
        print(f"\ntarget (issue 18): the preset's whole run ≤ 3 s on one core: {best:.2f} s "
              f"{'MET' if best <= 3 else 'MISSED'}")
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    main()
