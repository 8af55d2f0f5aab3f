"""The speed anchor for catdnn's NumPy CNN (issues 11, 18): the same network in PyTorch on the CPU, float32,
timed per epoch side by side in one process (issue 18's target: NumPy at most 1.0× PyTorch's time per epoch).

The same network: the ``cnn`` preset's ``in32,conv16,conv32,conv64,dense64`` (3×3 convolutions with
same padding, 2×2 max pooling, ReLU, a dense head, one sigmoid output), Adam, batches of 32, the
same 32 px inputs with the same flips and ±4 px shifts (drawn once per batch by catdnn.augment:
PyTorch is given the augmented images, catdnn's training step ``CnnSolver.step`` the batch's index
and draw, so its time includes gathering and augmenting the batch, as in a real run). PyTorch starts
from catdnn's initial weights, and the script first checks that both give the same P(cat) (float32
rounding apart).

PyTorch is a benchmark-only dependency (``pip install -r requirements-bench.txt``), never a test or
runtime one; without it the script says so and exits.

    python bench/bench_cnn_torch.py [--epochs 8] [--threads 2] [--arch in32,conv16,conv32,conv64,dense64]
                                    [--ref PATH]

``--ref PATH`` also times the NumPy CNN of another checkout of catdnn (e.g. ``git worktree add
/tmp/before 306fcda``, the code before issue 18) in the same process, on the same batches from the
same weights, interleaved with the others: a before/after comparison in one run.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import sys
import time
from dataclasses import replace

import numpy as np
from _common import load_data, machine, set_threads, table

from catdnn import augment, cnn, conv_layers, solvers
from catdnn.config import PRESETS
from catdnn.network import cost_from_logits
from catdnn.optim import MiniBatches, seeded_generators

try:
    import torch
except ImportError:
    torch = None


def torch_net(arch, params):
    """The same network in PyTorch (NCHW inside), with catdnn's weights copied in."""
    layers = []
    c_prev = arch.source[2]
    for c in arch.convs:
        layers += [torch.nn.Conv2d(c_prev, c, 3, padding=1), torch.nn.MaxPool2d(2), torch.nn.ReLU()]
        c_prev = c
    convs = torch.nn.Sequential(*layers)
    dims = arch.dense_layers
    dense = []
    for j, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        dense.append(torch.nn.Linear(a, b))
        if j < len(dims) - 2:
            dense.append(torch.nn.ReLU())
    head = torch.nn.Sequential(*dense)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs, self.head = convs, head

        def forward(self, x):  # x: (m, C, H, W)
            f = self.convs(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # catdnn's (row, col, channel) order
            return self.head(f)[:, 0]  # logits (m,)

    net = Net()
    with torch.no_grad():
        n_conv = len(arch.convs)
        conv_mods = [m for m in convs if isinstance(m, torch.nn.Conv2d)]
        for mod, (W, b) in zip(conv_mods, params[:n_conv]):
            # catdnn: W (C_out, 9·C_in) ordered (kernel row, kernel col, channel) -> (C_out, C_in, 3, 3)
            mod.weight.copy_(torch.from_numpy(W.reshape(W.shape[0], 3, 3, -1).transpose(0, 3, 1, 2).copy()))
            mod.bias.copy_(torch.from_numpy(b[:, 0].copy()))
        lin_mods = [m for m in head if isinstance(m, torch.nn.Linear)]
        for mod, (W, b) in zip(lin_mods, params[n_conv:]):
            mod.weight.copy_(torch.from_numpy(W.copy()))
            mod.bias.copy_(torch.from_numpy(b[:, 0].copy()))
    return net


def batches_of_an_epoch(Xin, Y, arch, cfg, rngs, batches):
    """The epoch's batches, drawn once for every implementation: [(index, draw, X cols (n, k), Y (1, k))],
    the columns augmented as drawn (PyTorch's input; catdnn's solver augments from the index and draw)."""
    out = []
    for _ in range(batches.per_epoch):
        index, _ = batches.next()
        Xb, Yb = Xin[:, index], Y[:, index]
        d = augment.draw(rngs["augment"], Xb.shape[1], cfg.flip, cfg.shift)
        out.append((index, d, augment.apply(Xb, d, arch.image_shape), Yb))
    return out


def numpy_epoch(solver, data, Batch):
    """One epoch of catdnn's training step (:class:`catdnn.solvers.CnnSolver`, as the training loop
    takes it: the batch's images gathered and augmented, forward, backward, the optimiser's update)."""
    for index, d, _Xb, _Yb in data:
        solver.step(False, Batch(index, d))


def other_solvers(path):
    """``catdnn.solvers`` of the checkout at ``path``, imported beside this one's (its modules keep
    their own globals; ``sys.modules`` is given back this checkout's ``catdnn`` afterwards)."""
    mine = {k: v for k, v in sys.modules.items() if k == "catdnn" or k.startswith("catdnn.")}
    for k in mine:
        del sys.modules[k]
    sys.path.insert(0, str(path))
    try:
        module = importlib.import_module("catdnn.solvers")
    finally:
        sys.path.pop(0)
        for k in [k for k in sys.modules if k == "catdnn" or k.startswith("catdnn.")]:
            del sys.modules[k]
        sys.modules.update(mine)
    if not module.__file__.startswith(str(path)):
        sys.exit(f"bench_cnn_torch: --ref {path} has no catdnn package")
    return module


def torch_epoch(net, opt, data, arch):
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _index, _d, Xb, Yb in data:
        x = torch.from_numpy(conv_layers.to_maps(Xb, arch.image_shape)).permute(0, 3, 1, 2)  # NHWC -> NCHW (a view)
        y = torch.from_numpy(Yb[0])
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=8, help="timed epochs per implementation (interleaved)")
    ap.add_argument("--threads", type=int, default=2, help="BLAS and PyTorch threads (default 2)")
    ap.add_argument("--arch", default=PRESETS["cnn"].arch)
    ap.add_argument("--batch-size", type=int, default=PRESETS["cnn"].batch_size)
    ap.add_argument("--ref", default=None, help="also time the NumPy CNN of the catdnn checkout at this path")
    args = ap.parse_args()
    if torch is None:
        sys.exit("bench_cnn_torch: PyTorch is not installed (pip install -r requirements-bench.txt); skipped")
    set_threads(args.threads)
    torch.set_num_threads(args.threads)
    ds = load_data()
    cfg = replace(PRESETS["cnn"], arch=args.arch, batch_size=args.batch_size).validate()
    arch = cfg.parsed_arch()
    Xin = conv_layers.downsample(ds.train.X, arch.factor, arch.source, np.float32)
    Y = ds.train.Y.astype(np.float32)
    params = cnn.init_cnn(arch, cfg.init, cfg.seed, np.float32)
    net = torch_net(arch, params)

    # the same network: the same P(cat) and cost from the same weights
    Xt = cnn.to_input(arch, ds.test.X, np.float32)
    p_np = cnn.forward_maps(params, arch, Xt)[0][0]
    with torch.no_grad():
        z_t = net(torch.from_numpy(Xt).permute(0, 3, 1, 2)).numpy()
    p_t = 1 / (1 + np.exp(-z_t))
    diff = float(np.max(np.abs(p_np - p_t)))
    train_maps = conv_layers.to_maps(Xin, arch.image_shape)
    cost_np = cost_from_logits(cnn.forward_maps(params, arch, train_maps)[1].dense[-1][1], Y)

    rngs = seeded_generators(cfg.seed)
    batches = MiniBatches(Xin.shape[1], cfg.batch_size, rngs["batches"])
    solver = solvers.CnnSolver(copy.deepcopy(params), ds.train.X, ds.train.Y, cfg.learning_rate, config=cfg)
    t_opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.epsilon)
    names = ["numpy", "torch"]
    if args.ref:
        ref = other_solvers(args.ref)
        ref_solver = ref.CnnSolver(copy.deepcopy(params), ds.train.X, ds.train.Y, cfg.learning_rate, config=cfg)
        names.insert(1, "ref")
    times = {name: [] for name in names}
    cpu = {name: [] for name in names}  # CPU time of the process: with 1 thread, the work done, which a busy
    # neighbour disturbs far less than the wall clock
    for e in range(args.epochs + 1):  # the first epoch of each warms up and is not counted
        data = batches_of_an_epoch(Xin, Y, arch, cfg, rngs, batches)
        order = names[e % len(names):] + names[:e % len(names)]  # each goes first in turn
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "numpy":
                numpy_epoch(solver, data, solvers.Batch)
            elif name == "ref":
                numpy_epoch(ref_solver, data, ref.Batch)
            else:
                torch_epoch(net, t_opt, data, arch)
            if e:
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    with torch.no_grad():
        z_t = net(torch.from_numpy(conv_layers.to_maps(Xin, arch.image_shape)).permute(0, 3, 1, 2)).numpy()
    def logits(params):
        return cnn.forward_maps(params, arch, conv_layers.to_maps(Xin, arch.image_shape))[1].dense[-1][1][0]

    z_np = logits(solver.params())
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio = med["numpy"] / med["torch"]
    ratio_cpu = med_cpu["numpy"] / med_cpu["torch"]
    print(f"machine: {machine()}")
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; BLAS threads {args.threads}")
    print(f"network: {arch.text} ({arch.param_count():,} parameters), float32, Adam lr {cfg.learning_rate:g}, "
          f"batches of {cfg.batch_size} ({batches.per_epoch} per epoch of {Xin.shape[1]} images), flips and "
          f"±{cfg.shift} px shifts drawn once for all (catdnn's time includes applying them); "
          f"median of {args.epochs} epochs, interleaved")
    print(f"same network check: max |P_numpy - P_torch| on the 50 test images from the same weights = {diff:.1e} "
          f"(training cost {cost_np:.6f}); after {args.epochs + 1} epochs each, training-set logits "
          f"correlate at r = {np.corrcoef(z_np, z_t)[0, 1]:.4f}\n")
    label = {"numpy": "catdnn NumPy (cnn.py, im2col)", "ref": f"catdnn NumPy at {args.ref}",
             "torch": f"PyTorch {torch.__version__} CPU"}
    rows = [[label[name], f"{med[name] * 1000:.0f}", " ".join(f"{t * 1000:.0f}" for t in times[name]),
             f"{med[name] / med['torch']:.2f}×", f"{med_cpu[name] * 1000:.0f}",
             f"{med_cpu[name] / med_cpu['torch']:.2f}×"] for name in names]
    print(table(["implementation", "ms / epoch (median)", "all epochs (ms)", "× PyTorch", "CPU ms / epoch",
                 "CPU × PyTorch"], rows))
    if args.ref:
        after = statistics.median(a / b for a, b in zip(times["numpy"], times["ref"]))
        after_cpu = statistics.median(a / b for a, b in zip(cpu["numpy"], cpu["ref"]))
        print(f"\nthis checkout vs {args.ref}: {after:.2f}× the time per epoch, {after_cpu:.2f}× the CPU time "
              "(medians of the epochs' ratios); "
              f"max |logit difference| after the run {np.max(np.abs(z_np - logits(ref_solver.params()))):.1e}")
    spread = max(max(v) / min(v) for v in times.values())
    verdict = "MET" if ratio <= 1.0 else "MISSED"
    if spread > 3:  # an epoch took over 3× another of the same code: other jobs took the cores
        verdict += f" (unreliable: the slowest epoch of one implementation took {spread:.0f}× its fastest)"
    print(f"target (issue 18): NumPy ≤ 1.0× PyTorch per epoch: {ratio:.2f}× {verdict}"
          + (f"; in CPU time {ratio_cpu:.2f}× {'MET' if ratio_cpu <= 1.0 else 'MISSED'}" if args.threads == 1 else ""))


if __name__ == "__main__":
    main()
