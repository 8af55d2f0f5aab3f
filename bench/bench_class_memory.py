"""A long class: 20 sessions × 5 runs each on the Train page, then every session closes. Reports the
server's memory (this process plays it: the pages run under Streamlit's AppTest, one AppTest per
browser session) as the class goes, and after the sessions are gone.

    python bench/bench_class_memory.py [--sessions 20] [--runs 5] [--iterations 300] [--hidden "20, 7, 5"]

Each run trains the deep preset's layers for ``--iterations`` with its own seed, as a student
pressing Train would. Memory must stay bounded by the per-session budget (at most
catdnn.model.MAX_KEPT_MODELS models and MAX_KEPT_BYTES of weights per session), and closing the
sessions must give it back. Peak = VmHWM, now = VmRSS (Linux /proc); the worker processes that
train are reported apart (they hold no session's models).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import time
import weakref
from pathlib import Path

from _common import ROOT, machine

from catdnn.model import MAX_KEPT_BYTES, MAX_KEPT_MODELS

TRAIN_PAGE = str(ROOT / "pages" / "1_Train.py")


def mem_mb(field: str, pid="self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_pids() -> list[int]:
    try:
        from catdnn import workers
    except ImportError:
        return []
    pool = workers._shared
    return pool.pids if pool is not None else []


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--hidden", default="20, 7, 5")
    args = ap.parse_args(argv)
    from streamlit.testing.v1 import AppTest

    from ui.state import session

    print(f"machine: {machine()}")
    print(f"{args.sessions} sessions × {args.runs} runs of hidden layers [{args.hidden}], {args.iterations} "
          f"iterations each; per-session budget: {MAX_KEPT_MODELS} models, {MAX_KEPT_BYTES / 2**20:.0f} MiB\n")
    start = mem_mb("VmRSS")
    sessions, rows, t0 = [], [], time.perf_counter()
    for s in range(args.sessions):
        at = AppTest.from_file(TRAIN_PAGE, default_timeout=300)
        at.run()
        for r in range(args.runs):
            at.text_input(key="train_hidden").set_value(args.hidden)
            at.slider(key="train_iters").set_value(args.iterations)
            at.number_input(key="train_seed").set_value(1 + s * args.runs + r)
            at.button(key="train_submit").click().run()
            assert len(at.exception) == 0, [e.value for e in at.exception]
            assert session(at.session_state).run.status == "finished", session(at.session_state).run
        sessions.append(at)
        kept = sum(m.nbytes for m in session(at.session_state).models.values())
        rows.append((s + 1, mem_mb("VmRSS"), mem_mb("VmHWM"), kept / 2**20))
        print(f"after session {s + 1:2d}: server now {rows[-1][1]:.0f} MB, peak {rows[-1][2]:.0f} MB "
              f"(this session keeps {rows[-1][3]:.1f} MiB of weights)", flush=True)
    during = mem_mb("VmRSS")
    peak = mem_mb("VmHWM")
    models = sum(len(session(at.session_state).models) for at in sessions)
    weights = sum(m.nbytes for at in sessions for m in session(at.session_state).models.values()) / 2**20
    alive = [weakref.ref(m) for at in sessions for m in session(at.session_state).models.values()]
    del at  # the loop's last session too
    sessions.clear()  # every browser tab closes: Streamlit drops the session's state
    gc.collect()
    time.sleep(0.5)
    after = mem_mb("VmRSS")
    still = sum(r() is not None for r in alive)
    # glibc keeps freed memory in its heap for reuse rather than returning it at once; malloc_trim
    # hands the free pages back, which shows what the freed sessions really held
    libc = ctypes.util.find_library("c")
    trimmed = None
    if libc and hasattr(ctypes.CDLL(libc), "malloc_trim"):
        ctypes.CDLL(libc).malloc_trim(0)
        trimmed = mem_mb("VmRSS")
    print(f"\n| server (this process) | MB |\n|---|---|\n| before the class | {start:.0f} |\n"
          f"| with {args.sessions} sessions open ({models} models, {weights:.0f} MiB of weights) | {during:.0f} |\n"
          f"| peak | {peak:.0f} |\n| after every session closed | {after:.0f} |"
          + (f"\n| ... and free heap pages returned (malloc_trim) | {trimmed:.0f} |" if trimmed else ""))
    print(f"\nmodels of closed sessions still in memory: {still} of {len(alive)}")
    pids = worker_pids()
    if pids:
        print("\nworker processes (train, keep no session's models): "
              + ", ".join(f"now {mem_mb('VmRSS', p):.0f} MB / peak {mem_mb('VmHWM', p):.0f} MB" for p in pids))
    print(f"\n{args.sessions * args.runs} runs in {time.perf_counter() - t0:.0f} s; memory given back on close: "
          f"{during - (trimmed or after):.0f} of {during - start:.0f} MB the class added")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
