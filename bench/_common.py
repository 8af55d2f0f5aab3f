"""Shared helpers for the benchmark scripts: imports, the dataset, timing, the machine, tables.

Every script runs as ``python bench/NAME.py`` from anywhere: the project root is put on sys.path.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def load_data():
    """The real dataset: $CATDNN_DATA_DIR, else data/, else ../shared/data (never downloads)."""
    from catdnn.data import load_dataset

    candidates = [os.environ.get("CATDNN_DATA_DIR"), str(ROOT / "data"), str(ROOT.parent / "shared" / "data")]
    for folder in candidates:
        if folder and (Path(folder) / "train_catvnoncat.h5").is_file():
            os.environ.setdefault("CATDNN_DATA_DIR", folder)  # the app, if started, reads it there too
            return load_dataset(folder, download=False)
    sys.exit("bench: the dataset is not in $CATDNN_DATA_DIR, data/ or ../shared/data; "
             "run `python -m catdnn download` first")


_limits = None


def set_threads(n):
    """Limit BLAS (and PyTorch's intra-op pool, if loaded) to ``n`` threads; None leaves them be."""
    global _limits
    if n is None:
        return
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(limits=int(n))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


def median(xs) -> float:
    return float(statistics.median(xs))


def timed(fn, *args, **kwargs):
    """``(seconds, result)`` of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def machine() -> str:
    """One line describing the machine, Python, NumPy and the BLAS kernel in use."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "BLAS unknown (pip install threadpoolctl to see it)"
    try:
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if libs:
            i = libs[0]
            blas = (f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, "
                    f"{i.get('num_threads')} threads")
    except ImportError:
        pass
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                      "OPENBLAS_NUM_THREADS") if k in os.environ}
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    return (f"{cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}, NumPy {np.__version__}, "
            f"{blas}{'; ' + str(env) if env else ''}; {load}")


def table(headers, rows) -> str:
    """A GitHub-flavoured markdown table (printable as is, pasteable into bench/README.md)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    def line(r):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)
