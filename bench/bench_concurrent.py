"""Four users press Train at the same moment: the deep preset four times at once, as threads of one
process (how the dashboard trained before catdnn.workers) and as jobs on the worker pool (now).

    python bench/bench_concurrent.py [--users 4] [--repeats 3] [--preset deep]

For each way, a lone run is timed first, then ``--users`` runs started together (each one's time
from its start to its model). The target: every one of the concurrent runs takes at most 2.5× a
lone run of the same way, measured in this same script. Also printed: the peak memory (VmHWM) of
this process, which plays the server, and of the pool's workers.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from _common import load_data, machine, median

from catdnn.config import PRESETS
from catdnn.train import Trainer
from catdnn.workers import TrainingPool


def vm_hwm_mb(pid="self") -> float:
    """Peak resident memory of a process, in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def thread_run(config, ds):
    trainer = Trainer(config, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y)
    for _ in trainer.run():
        pass
    return trainer.model().test_accuracy


def pool_run(pool, config, ds):
    out = pool.submit(config, ds.source).wait()
    return out.model.test_accuracy


def together(fn, users):
    """Start ``users`` calls of ``fn`` at once on threads; return each one's seconds and result."""
    times, results = [None] * users, [None] * users
    go = threading.Barrier(users)

    def one(k):
        go.wait()
        t0 = time.perf_counter()
        results[k] = fn()
        times[k] = time.perf_counter() - t0

    threads = [threading.Thread(target=one, args=(k,)) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="deep")
    args = ap.parse_args(argv)
    from catdnn.threads import limit_blas_threads

    limit_blas_threads()  # as the dashboard does: one BLAS thread per process
    ds = load_data()
    config = PRESETS[args.preset]
    pool = TrainingPool()
    pool_run(pool, config, ds)  # warm the workers (start-up and dataset load are once per server)
    print(f"machine: {machine()}")
    print(f"{args.users} users start the {args.preset} preset together; {pool.processes} pool workers; "
          f"median of {args.repeats} repeats\n")
    ways = {"threads of one process (before)": lambda: thread_run(config, ds),
            "worker pool (catdnn.workers)": lambda: pool_run(pool, config, ds)}
    print("| way | lone run s | concurrent runs s (slowest first) | slowest / lone | target ≤ 2.5× |")
    print("|---|---|---|---|---|")
    worst_pool = None
    for name, fn in ways.items():
        lone, each = [], []
        for _ in range(args.repeats):
            lone.append(together(fn, 1)[0][0])
            times, results = together(fn, args.users)
            assert len(set(results)) == 1, results  # every run gives the same model
            each.append(sorted(times, reverse=True))
        lone_s = median(lone)
        slowest = [median([e[k] for e in each]) for k in range(args.users)]
        ratio = slowest[0] / lone_s
        if "pool" in name:
            worst_pool = ratio
        print(f"| {name} | {lone_s:.2f} | {', '.join(f'{t:.2f}' for t in slowest)} | {ratio:.2f}× | "
              f"{'met' if ratio <= 2.5 else 'missed'} |")
    workers = pool.pids
    print(f"\npeak memory: this process (the server) {vm_hwm_mb():.0f} MB; workers "
          + ", ".join(f"{vm_hwm_mb(pid):.0f} MB" for pid in workers))
    print(f"target: with the pool, each concurrent run ≤ 2.5× a lone run: {worst_pool:.2f}× "
          f"{'MET' if worst_pool <= 2.5 else 'MISSED'}")
    pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
