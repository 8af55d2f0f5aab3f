"""Peak memory of a ``deep`` training run (2500 iterations, with the test set), per solver.

    python bench/bench_memory.py

Each measurement runs in a fresh Python process, so the figures do not mix: the peak resident set
(``ru_maxrss``) of the whole process (interpreter, NumPy, h5py, the dataset and the training), the
resident set just before training starts, and the peak of the training's own NumPy allocations
(``tracemalloc``, which NumPy reports its array buffers to). Target: whole-process peak < 300 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys

from _common import ROOT, machine, table

CHILD = r"""
import json, resource, sys, tracemalloc
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from _common import load_data
from catdnn.config import PRESETS
from catdnn.train import Trainer
ds = load_data()
_ = ds.train.X, ds.test.X  # the float64 arrays (25 MB) are built on first use: count them as data
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
trainer = Trainer(PRESETS["deep"], ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, solver={solver!r})
for _ in trainer.run():
    pass
model = trainer.model()
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps(dict(solver=trainer.solver_name, before_kb=before, peak_kb=resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss, traced=peak, cost=model.history[-1][1], test=model.test_accuracy)))
"""


def main():
    print(f"machine: {machine()}\n")
    rows, ok = [], True
    for solver in ("auto", "direct", "gram"):
        code = CHILD.format(root=str(ROOT), bench=str(ROOT / "bench"), solver=solver)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        peak_mb = r["peak_kb"] / 1024
        ok &= peak_mb < 300
        rows.append([solver, r["solver"], f"{r['before_kb'] / 1024:.1f}", f"{peak_mb:.1f}",
                     f"{r['traced'] / 2**20:.1f}", f"{r['cost']:.6f}", f"{r['test']:.2f}"])
    print(table(["solver asked", "solver used", "RSS before training MB", "peak RSS MB",
                 "training's peak NumPy allocations MB (tracemalloc)", "final cost", "test acc"], rows))
    print(f"\ntarget: peak RSS of a deep run < 300 MB: {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
