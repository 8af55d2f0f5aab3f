"""Training speed: the course's textbook NumPy code vs the engine's direct and default paths (and
PyTorch CPU float64 when ``torch`` is importable), both presets, 2500 iterations, side by side.

    python bench/bench_train.py [--repeats 3] [--iterations 2500] [--presets deep,two-layer]
                                [--only textbook,direct,default,torch,ref] [--ref PATH]

``--ref PATH`` also times the default path of another checkout of catdnn (e.g. ``git worktree add
/tmp/before HEAD~5``), in a subprocess per run, interleaved with the others: the same machine and
the same run, for a before/after comparison of a change.

Implementations run round-robin within each repeat (so a noisy neighbour slows all of them alike);
the table gives the median time and the speed-up over the textbook baseline, plus the cost at
iteration 2400 and the final accuracies, which must agree across implementations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from _common import load_data, machine, median, set_threads, table, timed

from catdnn.config import PRESETS
from catdnn.network import init_params
from catdnn.train import Trainer


# --------------------------------------------------------------------------- the textbook baseline
# The deeplearning.ai exercise's code as students write it: dict parameters, caches, the sigmoid
# backward through dA[L], dA[0] computed, the cost at every iteration, new arrays for everything.
def tb_initialize(layer_dims, init):
    np.random.seed(1)  # the course seeds the global generator
    parameters = {}
    for l in range(1, len(layer_dims)):
        scale = 0.01 if init == "small" else 1 / np.sqrt(layer_dims[l - 1])
        parameters["W" + str(l)] = np.random.randn(layer_dims[l], layer_dims[l - 1]) * scale
        parameters["b" + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def tb_linear_activation_forward(A_prev, W, b, activation):
    Z = np.dot(W, A_prev) + b
    A = 1 / (1 + np.exp(-Z)) if activation == "sigmoid" else np.maximum(0, Z)
    return A, ((A_prev, W, b), Z)


def tb_L_model_forward(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = tb_linear_activation_forward(A, parameters["W" + str(l)], parameters["b" + str(l)], "relu")
        caches.append(cache)
    AL, cache = tb_linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)], "sigmoid")
    caches.append(cache)
    return AL, caches


def tb_compute_cost(AL, Y):
    m = Y.shape[1]
    cost = (1.0 / m) * (-np.dot(Y, np.log(AL).T) - np.dot(1 - Y, np.log(1 - AL).T))
    return float(np.squeeze(cost))


def tb_linear_activation_backward(dA, cache, activation):
    (A_prev, W, b), Z = cache
    if activation == "relu":
        dZ = np.array(dA, copy=True)
        dZ[Z <= 0] = 0
    else:
        s = 1 / (1 + np.exp(-Z))
        dZ = dA * s * (1 - s)
    m = A_prev.shape[1]
    dW = 1.0 / m * np.dot(dZ, A_prev.T)
    db = 1.0 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def tb_L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = tb_linear_activation_backward(
        dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = tb_linear_activation_backward(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


def tb_update_parameters(parameters, grads, learning_rate):
    for l in range(len(parameters) // 2):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


def tb_predict_accuracy(X, Y, parameters):
    AL, _ = tb_L_model_forward(X, parameters)
    return float(np.mean((AL > 0.5) == Y))


def run_textbook(config, ds):
    parameters = tb_initialize(config.layers, config.init)
    costs = {}
    for i in range(config.iterations):
        AL, caches = tb_L_model_forward(ds.train.X, parameters)
        cost = tb_compute_cost(AL, ds.train.Y)
        grads = tb_L_model_backward(AL, ds.train.Y, caches)
        parameters = tb_update_parameters(parameters, grads, config.learning_rate)
        if i % 100 == 0 or i == config.iterations - 1:
            costs[i] = cost
    return costs, tb_predict_accuracy(ds.train.X, ds.train.Y, parameters), tb_predict_accuracy(
        ds.test.X, ds.test.Y, parameters)


# --------------------------------------------------------------------------- the engine
def run_engine(config, ds, solver):
    trainer = Trainer(config, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, solver=solver)
    for _ in trainer.run():
        pass
    model = trainer.model()
    return dict(model.history), model.train_accuracy, model.test_accuracy


# --------------------------------------------------------------------------- another checkout's default path
REF_SCRIPT = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import catdnn
assert catdnn.__file__.startswith(sys.argv[1]), catdnn.__file__
ds = catdnn.load_dataset(download=False)
config = catdnn.PRESETS[sys.argv[2]]
config = type(config)(**{**config.to_dict(), "iterations": int(sys.argv[3])})
t0 = time.perf_counter()
trainer = catdnn.Trainer(config, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, solver="auto")
for _ in trainer.run():
    pass
model = trainer.model()
t = time.perf_counter() - t0
print(json.dumps([t, model.history, model.train_accuracy, model.test_accuracy]))
"""


def make_ref_runner(path, preset_of, threads):
    """Time ``path``'s default path in a fresh process; returns ``(seconds, result)`` like ``timed``."""
    env = dict(os.environ)
    if threads:
        env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))

    def run_ref(config, ds):
        out = subprocess.run([sys.executable, "-c", REF_SCRIPT, str(path), preset_of(config), str(config.iterations)],
                             capture_output=True, text=True, env=env, check=True)
        t, history, tr, te = json.loads(out.stdout.strip().splitlines()[-1])
        return t, ({int(i): c for i, c in history}, tr, te)

    return run_ref


# --------------------------------------------------------------------------- PyTorch, if installed
def make_torch_runner():
    try:
        import torch
    except ImportError:
        return None, None

    def run_torch(config, ds):
        torch.manual_seed(0)
        layers = []
        dims = config.layers
        for l, (W, b) in enumerate(init_params(dims, config.init, config.seed)):
            lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
            with torch.no_grad():  # the course's initial weights, for the same curve
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(b[:, 0]))
            layers.append(lin)
            if l < len(dims) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers)
        X = torch.from_numpy(ds.train.X.T.copy())  # (m, n_x): PyTorch's convention
        Y = torch.from_numpy(ds.train.Y[0].astype(np.float64))
        loss_fn = torch.nn.BCEWithLogitsLoss()
        opt = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
        costs = {}
        for i in range(config.iterations):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X)[:, 0], Y)
            loss.backward()
            if i % 100 == 0 or i == config.iterations - 1:
                costs[i] = loss.item()
            opt.step()
        with torch.no_grad():
            acc = [float(((model(torch.from_numpy(s.X.T.copy()))[:, 0] > 0).numpy()
                          == (s.Y[0] == 1)).mean()) for s in (ds.train, ds.test)]
        return costs, acc[0], acc[1]

    return run_torch, lambda: f"PyTorch {torch.__version__} CPU float64 ({torch.get_num_threads()} threads)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=2500)
    ap.add_argument("--presets", default="deep,two-layer")
    ap.add_argument("--threads", type=int, help="limit BLAS threads (threadpoolctl); default: unchanged")
    ap.add_argument("--only", help="comma-separated subset of textbook,direct,default,torch,ref (the first is the "
                                   "speed-up's baseline)")
    ap.add_argument("--ref", help="another checkout of catdnn whose default path is timed alongside")
    args = ap.parse_args(argv)
    ds = load_data()
    run_torch, torch_name = make_torch_runner()
    set_threads(args.threads)
    if run_torch is not None:
        torch_name = torch_name()
    impls = [("textbook", "textbook NumPy (baseline)", run_textbook),
             ("direct", "catdnn direct path", lambda c, d: run_engine(c, d, "direct")),
             ("default", "catdnn default (auto)", lambda c, d: run_engine(c, d, "auto"))]
    if run_torch is not None:
        impls.append(("torch", torch_name, run_torch))
    ref_timed = {}
    if args.ref:
        preset_of = {PRESETS[p].layers: p for p in PRESETS}
        ref_timed["reference default"] = make_ref_runner(args.ref, lambda c: preset_of[c.layers], args.threads)
        impls.append(("ref", f"reference default ({args.ref})", None))
    if args.only:
        keep = args.only.split(",")
        impls = sorted((i for i in impls if i[0] in keep), key=lambda i: keep.index(i[0]))
    impls = [(name, fn) for _key, name, fn in impls]
    print(f"machine: {machine()}")
    print(f"{args.iterations} iterations, median of {args.repeats} repeats, implementations interleaved")
    if run_torch is None:
        print("(PyTorch not importable: its column is skipped)")

    for preset in args.presets.split(","):
        config = PRESETS[preset]
        config = type(config)(**{**config.to_dict(), "iterations": args.iterations})
        auto = Trainer(config, ds.train.X, ds.train.Y).solver_name
        times = {name: [] for name, _ in impls}
        results = {}
        for _ in range(args.repeats):
            for name, fn in impls:
                if fn is None:  # the reference checkout times itself, in its own process
                    t, results[name] = ref_timed["reference default"](config, ds)
                else:
                    t, results[name] = timed(fn, config, ds)
                times[name].append(t)
        base = median(times[impls[0][0]])
        last = args.iterations - 1
        probe = 2400 if args.iterations > 2400 else 0
        rows = []
        for name, _ in impls:
            costs, tr, te = results[name]
            t = median(times[name])
            label = name + (f" [{auto}]" if "auto" in name else "")
            rows.append([label, f"{t:.3f}", f"{base / t:.1f}×", f"{costs[probe]:.6f}", f"{costs[last]:.6f}",
                         f"{tr:.6f}", f"{te:.6f}", " ".join(f"{x:.3f}" for x in times[name])])
        print(f"\n### {preset} {list(config.layers)}\n")
        print(table(["implementation", "median s", "speed-up", f"cost@{probe}", f"cost@{last}", "train acc",
                     "test acc", "all runs (s)"], rows))
        ref = results[impls[0][0]][0]
        worst = max(abs(results[n][0][k] - ref[k]) / ref[k] for n, _ in impls for k in ref)
        print(f"\nlargest relative cost difference from the baseline at the reported iterations: {worst:.1e}")
        ref_name = next((n for n in times if n.startswith("reference default")), None)
        if ref_name and "catdnn default (auto)" in times:
            ratio = median(times["catdnn default (auto)"]) / median(times[ref_name])
            best = min(times["catdnn default (auto)"]) / min(times[ref_name])
            print(f"default path vs the reference checkout's: {ratio:.3f}× the time by medians, {best:.3f}× by "
                  f"the fastest run of each (on a loaded machine the fastest runs are the least disturbed)")
        if preset == "deep" and {"catdnn default (auto)", impls[0][0]} <= set(times) and "textbook" in impls[0][0]:
            fast = median(times["catdnn default (auto)"])
            for goal, issue in ((50, ""), (150, " (issue 18)")):
                print(f"target{issue}: default ≥ {goal}× the textbook baseline: {base / fast:.1f}× "
                      f"{'MET' if base / fast >= goal else 'MISSED'}")
            if torch_name in times:
                tt = median(times[torch_name])
                print(f"target: faster than PyTorch CPU float64: {tt / fast:.1f}× "
                      f"{'MET' if fast < tt else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
