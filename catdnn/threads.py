"""How many threads BLAS (the matrix products under NumPy) may use.

NumPy's BLAS starts one thread per core for every large matrix product. When several trainings
run at once (the dashboard runs each browser session as a *thread of one process*), their BLAS
threads compete for the same cores and each run gets slower than if it had waited its turn.
Limiting BLAS to :data:`DEFAULT_BLAS_THREADS` per product avoids that oversubscription; see
``bench/blas_threads.py`` for the measurement behind the default (2 cores, loaded machine: two
concurrent course-deep-net trainings finished in 0.6 s with 1 BLAS thread vs 1.9 s with 2, and
with the plain direct solver in 4.0 s vs 77 s).

The limit is **process-wide** (BLAS has one thread pool per process, not per Python thread), so
it is set once when the process starts (:func:`limit_blas_threads`), never per training: a
per-session ``with blas_threads(...)`` would, on exit, restore the setting under every other
session's running training.

Uses ``threadpoolctl``; the environment variable ``CATDNN_BLAS_THREADS`` overrides the default.
"""

from __future__ import annotations

import contextlib
import os

ENV_VAR = "CATDNN_BLAS_THREADS"
#: BLAS threads per process by default: 1 (see the module docstring and bench/blas_threads.py).
DEFAULT_BLAS_THREADS = 1

_controller = None  # keeps the process-wide limit alive
_limit = None  # the limit set by limit_blas_threads, if any


def default_blas_threads() -> int:
    """``$CATDNN_BLAS_THREADS`` if it is a positive whole number, else :data:`DEFAULT_BLAS_THREADS`."""
    text = os.environ.get(ENV_VAR, "").strip()
    if text.isdigit() and int(text) >= 1:
        return min(int(text), os.cpu_count() or 1)
    return DEFAULT_BLAS_THREADS


def limit_blas_threads(n: int | None = None) -> int:
    """Limit BLAS to ``n`` threads (default :func:`default_blas_threads`) for the whole process.

    Call it once at start-up (the CLI's ``main``, the top of ``dashboard.py``). Returns the limit
    set. Does nothing (and returns ``n``) when threadpoolctl is not installed.
    """
    global _controller, _limit
    n = default_blas_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"BLAS threads must be at least 1, not {n}")
    if _limit == n:
        return n  # already set: cheap enough to call on every Streamlit rerun
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is in requirements.txt
        return n
    _controller = threadpool_limits(limits=n, user_api="blas")
    _limit = n
    _forget_calling_thread()
    return n


def _forget_calling_thread() -> None:
    """Newer threadpoolctl keeps the thread that set an OpenBLAS limit as its "controlling thread".
    In the dashboard that is a Streamlit script thread, which holds its session's state: keeping it
    would keep that session's models in memory after the session closed. The limit stays set."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # pragma: no cover - older threadpoolctl keeps no thread
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


@contextlib.contextmanager
def blas_threads(n: int):
    """Temporarily use ``n`` BLAS threads (for benchmarks and single-threaded scripts only).

    Process-wide like :func:`limit_blas_threads`: do not use it around one of several
    concurrent trainings.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


def blas_thread_count() -> int | None:
    """The largest BLAS thread count in effect now, or None when no BLAS library is found."""
    from threadpoolctl import threadpool_info

    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts) if counts else None
