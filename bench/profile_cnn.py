"""Where a CNN preset run's time goes (issue 18 §1): the whole ``cnn`` preset run, timed per part.

Every part of the step is wrapped by a timer (inclusive time; "self" subtracts the timed parts it
calls), then the preset runs as the CLI runs it (``fit``, 350 iterations, the final accuracies with
mirror averaging). Prints the breakdown, the sizes of the BLAS calls of one step, and the load.

    python bench/profile_cnn.py [--threads 1] [--repeats 3] [--iterations 350] [--cprofile]

Each repeat is a fresh run; the table gives the median over repeats. The parts are timed in CPU time
of the process (``time.process_time``, with 1 BLAS thread the time this run computed), which other
jobs on a shared machine disturb far less than the wall clock; the whole run is given in both.
Timers cost about 1 µs a call (some 30 calls a step), well under 1 % of a step.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import statistics
import time
from dataclasses import replace

import numpy as np
from _common import load_data, machine, set_threads, table

from catdnn import augment, cnn, conv_layers, optim, solvers
from catdnn.config import PRESETS
from catdnn.train import fit

# (module, attribute, label): the parts of a step, wherever the callers look them up
PARTS = [
    (solvers.CnnSolver, "step", "whole step (CnnSolver.step)"),
    (augment, "apply", "augmentation (flips, shifts)"),  # before issue 18: on the batch's columns
    (augment, "apply_maps", "augmentation (flips, shifts)"),  # after: on its maps
    (solvers, "to_maps", "columns -> maps (to_maps)"),
    (cnn, "forward_maps", "forward"),
    (cnn, "conv_forward", "conv forward (im2col + GEMM + bias)"),
    (cnn, "conv_forward_blocks", "conv forward (im2col + GEMM + bias)"),  # after issue 18's second pass: layer 1
    (conv_layers, "im2col", "im2col (patch copy)"),
    (conv_layers, "im2col_blocks", "im2col (patch copy)"),
    (cnn, "pool_forward", "max pool forward"),
    (cnn, "relu", "ReLU (conv layers)"),
    (cnn, "dense_forward", "dense head forward"),
    (cnn, "backward", "backward"),
    (cnn, "dense_backward", "dense head backward"),
    (cnn, "relu_backward", "ReLU backward (conv layers)"),
    (cnn, "pool_backward", "max pool backward"),
    (cnn, "conv_backward", "conv backward (GEMMs + col2im)"),
    (cnn, "conv_backward_blocks", "conv backward (GEMMs + col2im)"),
    (cnn, "bias_grad", "bias gradients (db)"),
    (conv_layers, "col2im", "col2im (scatter-add; after: with dZ·W)"),
    (optim.Adam, "update", "Adam update"),
    (cnn, "predict_proba", "final accuracies (predict, TTA)"),
    (cnn, "predict_proba_maps", "final accuracies (predict, TTA)"),
]


def instrument():
    """Wrap every part by a timer; returns (totals dict label -> [seconds, calls], undo)."""
    totals, saved = {}, []
    predicting = [False]  # the parts called by the final predictions count as theirs only
    for owner, attr, label in PARTS:
        fn = getattr(owner, attr, None)
        if fn is None:  # a part of the code before or after issue 18 only
            continue
        saved.append((owner, attr, fn))
        totals.setdefault(label, [0.0, 0])

        def wrap(fn=fn, label=label):
            @functools.wraps(fn)
            def timed(*a, **k):
                if predicting[0]:
                    return fn(*a, **k)
                top = fn.__name__.startswith("predict_proba")
                predicting[0] = top
                t0 = time.process_time()
                try:
                    return fn(*a, **k)
                finally:
                    rec = totals[label]
                    rec[0] += time.process_time() - t0
                    rec[1] += 1
                    if top:
                        predicting[0] = False
            return timed

        setattr(owner, attr, wrap())

    def undo():
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)
    return totals, undo


def blas_calls(arch, batch):
    """The matrix products of one training step: [(what, shape A, shape B, GFLOP)]."""
    rows, side, c_prev = [], arch.input_px, arch.source[2]
    blocks = hasattr(conv_layers, "conv_forward_blocks")  # issue 18's second pass: layer 1 by 2×2 blocks
    for c in arch.convs:
        n, k = batch * side * side, 9 * c_prev
        if blocks and c_prev == arch.source[2]:
            nb, kb, cb = n // 4, 16 * c_prev, 4 * c
            rows.append((f"conv{c} forward  cols·Wb (2×2 blocks)", (nb, kb), (kb, cb), 2 * nb * kb * cb / 1e9))
            rows.append((f"conv{c} backward colsᵀ·dZb", (kb, nb), (nb, cb), 2 * nb * kb * cb / 1e9))
            side //= 2
            c_prev = c
            continue
        rows.append((f"conv{c} forward  cols·Wᵀ", (n, k), (k, c), 2 * n * k * c / 1e9))
        rows.append((f"conv{c} backward dZᵀ·cols", (c, n), (n, k), 2 * n * k * c / 1e9))
        if c_prev != arch.source[2]:  # one kernel offset at a time (conv_layers.col2im)
            rows.append((f"conv{c} backward dZ·W_k (×9)", (n, c), (c, c_prev), 2 * n * k * c / 1e9))
        side //= 2
        c_prev = c
    dims = arch.dense_layers
    for a, b in zip(dims[:-1], dims[1:]):
        rows.append((f"dense {a}->{b} forward/backward (×3)", (b, a), (a, batch), 3 * 2 * a * b * batch / 1e9))
    return rows


def blas_ms(calls, repeats: int = 30) -> list:
    """CPU ms of each product of :func:`blas_calls` alone (float32, the median of ``repeats``, after one
    call to warm up): what the step's matrix products cost at least, with nothing else around them."""
    rng = np.random.default_rng(0)
    out = []
    for what, a, b, _ in calls:
        A = rng.standard_normal(a).astype(np.float32)
        B = rng.standard_normal(b).astype(np.float32)
        times = 9 if "×9" in what else 3 if "×3" in what else 1
        A @ B
        ts = []
        for _ in range(repeats):
            c0 = time.process_time()
            for _ in range(times):
                A @ B
            ts.append(time.process_time() - c0)
        out.append(statistics.median(ts) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=PRESETS["cnn"].iterations)
    ap.add_argument("--cprofile", action="store_true", help="also print cProfile's top functions of one run")
    args = ap.parse_args()
    set_threads(args.threads)
    ds = load_data()
    cfg = replace(PRESETS["cnn"], iterations=args.iterations)
    fit(replace(cfg, iterations=7), ds)  # warm up
    runs, walls, cpus = [], [], []
    for _ in range(args.repeats):
        totals, undo = instrument()
        t0, c0 = time.perf_counter(), time.process_time()
        model = fit(cfg, ds)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        undo()
        runs.append(totals)
    wall = statistics.median(cpus)  # the parts' shares are of the run's CPU time
    labels = list(dict.fromkeys(label for _, _, label in PARTS if label in runs[0]))
    med = {label: statistics.median(r[label][0] for r in runs) for label in labels}
    calls = {label: runs[0][label][1] for label in labels}
    # self times: subtract the timed parts nested inside
    nested = {
        "whole step (CnnSolver.step)": ["augmentation (flips, shifts)", "columns -> maps (to_maps)", "forward",
                                        "backward", "Adam update"],
        "forward": ["conv forward (im2col + GEMM + bias)", "max pool forward", "ReLU (conv layers)",
                    "dense head forward"],
        "conv forward (im2col + GEMM + bias)": ["im2col (patch copy)"],
        "backward": ["dense head backward", "ReLU backward (conv layers)", "max pool backward",
                     "conv backward (GEMMs + col2im)", "bias gradients (db)"],
        "conv backward (GEMMs + col2im)": ["col2im (scatter-add; after: with dZ·W)"],
    }
    step_total = med["whole step (CnnSolver.step)"]
    rows = []
    for label in labels:
        own = med[label] - sum(med.get(c, 0.0) for c in nested.get(label, []))
        rows.append([label, calls[label], f"{med[label] * 1000:.0f}", f"{own * 1000:.0f}",
                     f"{own / wall * 100:.1f} %"])
    outside = wall - step_total - med["final accuracies (predict, TTA)"]
    rows.append(["the loop outside the step (batches, draws, cost)", "", f"{outside * 1000:.0f}",
                 f"{outside * 1000:.0f}", f"{outside / wall * 100:.1f} %"])
    print(f"machine: {machine()}")
    print(f"cnn preset ({cfg.arch}, {cfg.iterations} iterations, batches of {cfg.batch_size}, {cfg.dtype}), "
          f"BLAS threads {args.threads}, median of {args.repeats} runs: whole run {wall:.2f} s of CPU "
          f"({' '.join(f'{w:.2f}' for w in cpus)}), wall clock {' '.join(f'{w:.2f}' for w in walls)} s; "
          f"train {model.train_accuracy:.4f} test {model.test_accuracy:.4f}\n")
    print(table(["part", "calls / run", "inclusive CPU ms", "self CPU ms", "self % of run"], rows))
    arch = cfg.parsed_arch()
    print(f"\nBLAS calls of one training step (batch of {cfg.batch_size}):")
    calls = blas_calls(arch, cfg.batch_size)
    ms = blas_ms(calls)
    print(table(["product", "A", "B", "GFLOP", "CPU ms alone", "GFLOP/s"],
                [[w, f"{a[0]}×{a[1]}", f"{b[0]}×{b[1]}", f"{g:.4f}", f"{t:.2f}", f"{g / t * 1000:.0f}"]
                 for (w, a, b, g), t in zip(calls, ms)]))
    print(f"the products alone: {sum(ms):.1f} ms a step, {sum(ms) * cfg.iterations / 1000:.2f} s for the run's "
          f"{cfg.iterations} steps (the step took {step_total / cfg.iterations * 1000:.1f} ms of CPU in the run)")
    if args.cprofile:
        pr = cProfile.Profile()
        pr.enable()
        fit(cfg, ds)
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18)
        print(s.getvalue())


if __name__ == "__main__":
    main()
