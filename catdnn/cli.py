"""Command-line interface: ``python -m catdnn train|sweep|runs|datasets|predict|download|info|app|serve``.

Every run that ``train`` and ``sweep`` finish, stop or see diverge is kept in the run history
(:mod:`catdnn.history`; ``--no-record`` to skip); ``runs list|show|delete|export`` reads it.

Exit status: 0 success; 1 a problem with a file or a run (unreadable image or model, missing data,
diverged run); 2 a usage error (unknown command or flag, or a flag value that is impossible, such
as a negative learning rate: refused before any work starts); 130 interrupted (Ctrl-C; ``train``
still saves the partial model with ``--save``). Errors print ``error: ...`` on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .config import PRESETS, TrainConfig, parse_layers
from .errors import CatdnnError, ConfigError
from .network import INITS, THRESHOLD
from .optim import HYPERPARAMETERS, OPTIMIZERS, SCHEDULES, hyperparameter_label, inapplicable
from .threads import limit_blas_threads
from .validation import SELECTION_METRICS


def _layers(text: str) -> tuple:
    try:
        layers = parse_layers(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not layers:
        raise argparse.ArgumentTypeError("the layer list is empty; e.g. --layers 12288,20,7,5,1")
    return layers


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _keep_probs(text: str):
    """``0.8`` (every hidden layer) or ``0.9,0.8,0.7`` (one per hidden layer)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a keep probability (e.g. 0.8) or a list of them (e.g. 0.9,0.8,0.7)") from None
    return values[0] if len(values) == 1 else tuple(values)


def _seeds(text: str) -> tuple:
    from .sweep import parse_seeds

    try:
        return parse_seeds(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _float_list(text: str) -> tuple:
    try:
        return tuple(float(p) for p in str(text).split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers such as 0.0075,0.01") from None


class RangeText(str):
    """A sweep flag's ``LOW:HIGH``: a range for ``--random`` (read by :func:`catdnn.search.parse_range`)."""


def _list_or_range(text: str):
    """``0.0075,0.01`` (a grid's values) or ``1e-4:1e-1`` (a random search's range)."""
    return RangeText(text) if ":" in str(text) else _float_list(text)


def _range(text: str) -> RangeText:
    if ":" not in str(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a range LOW:HIGH such as 4:64")
    return RangeText(text)


def _hidden_list(text: str) -> tuple:
    """``"20,7,5;7"`` -> ((20, 7, 5), (7,)); ``none`` is a network without hidden layer."""
    nets = []
    for part in str(text).split(";"):
        part = part.strip()
        try:
            nets.append(() if part.lower() == "none" else parse_layers(part))
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not nets[-1] and part.lower() != "none":
            raise argparse.ArgumentTypeError(f'empty network in {text!r}: write e.g. "20,7,5;7" (or none)')
    return tuple(nets)


def _choice_list(choices):
    def parse(text: str) -> tuple:
        items = tuple(p.strip() for p in str(text).split(",") if p.strip())
        for item in items:
            if item not in choices:
                raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(choices)}")
        return items
    return parse


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"the threshold is a probability from 0 to 1, not {text}")
    return value


def _check_save_path(path: str) -> None:
    """Refuse a --save path that cannot be written, before any training time is spent."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ConfigError(f"--save {path}: is a folder; give a file name such as {target / 'model.npz'}")
    if not parent.is_dir():
        raise ConfigError(f"--save {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"--save {path}: not allowed to write there")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="catdnn" if os.path.basename(sys.argv[0]) == "catdnn" else "python -m catdnn",  # the installed command
        description="A from-scratch NumPy deep neural network that tells cats from non-cats.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a network on the cat/non-cat dataset")
    t.add_argument("--preset", choices=list(PRESETS),
                   help="the network and settings to start from: the course's two-layer or deep (the default), or "
                        "cnn, a small convolutional net (the default with an --arch that has conv steps)")
    t.add_argument("--layers", type=_layers, help="layer sizes, e.g. 12288,20,7,5,1 (overrides the preset)")
    t.add_argument("--arch", metavar="SPEC",
                   help="the architecture, e.g. in32,conv16,conv32,conv64,dense64 (a convolutional net) or "
                        "dense20,dense7,dense5 (an MLP, the deep preset's layers); overrides the preset")
    t.add_argument("--lr", "--learning-rate", dest="lr", type=_positive_float, help="learning rate (0.0075)")
    t.add_argument("--iterations", type=int, help="gradient-descent iterations (2500)")
    t.add_argument("--init", choices=list(INITS), help="weight init (two-layer: small, deep: xavier)")
    t.add_argument("--seed", type=int, help="random seed for the weights (1)")
    t.add_argument("--print-every", type=int, default=100, help="print the cost every N iterations (100)")
    t.add_argument("--data-dir", help="folder holding the two .h5 files (default: $CATDNN_DATA_DIR, data/)")
    t.add_argument("--no-download", action="store_true", help="never download the dataset")
    t.add_argument("--dataset", metavar="PATH", help=DATASET_HELP)
    t.add_argument("--solver", default="auto", help=argparse.SUPPRESS)
    t.add_argument("--save", metavar="MODEL.npz", help="save the trained model to this file")
    t.add_argument("--seeds", type=_seeds, metavar="SEEDS",
                   help="train once per seed (e.g. 1-5 or 1,3,7), all cores at once, and print the mean ± std "
                        "of the accuracies")
    _add_run_options(t)
    k = t.add_argument_group("techniques beyond the course (each off by default)")
    k.add_argument("--l2", type=_positive_float, metavar="LAMBDA", help="L2 regularisation λ (0: off)")
    k.add_argument("--keep-prob", type=_keep_probs, metavar="P[,P...]",
                   help="dropout: keep probability of every hidden layer, or one per hidden layer (1: off)")
    k.add_argument("--batch-size", type=int, metavar="N",
                   help="mini-batches of N examples, reshuffled every epoch (0: the whole set)")
    k.add_argument("--optimizer", choices=list(OPTIMIZERS),
                   help="; ".join(f"{name}: {cls.description}" for name, cls in OPTIMIZERS.items()) + " (default gd)")
    for h in HYPERPARAMETERS.values():
        k.add_argument(f"--{h.name}", type=_positive_float,
                       help=f"{hyperparameter_label(h.name)}, {h.help} ({h.default:g})")
    k.add_argument("--schedule", choices=list(SCHEDULES),
                   help="learning-rate schedule (default constant; --decay alone means inverse-time, "
                        "with --decay-every step)")
    k.add_argument("--decay", type=_positive_float, metavar="D", help="decay rate: α0/(1+D·epoch)")
    k.add_argument("--decay-every", type=int, metavar="K", help="step schedule: α0/(1+D·⌊epoch/K⌋)")
    k.add_argument("--flip", action="store_true", default=None,
                   help="augment: mirror each training image with probability 1/2 at every iteration")
    k.add_argument("--shift", type=int, metavar="PX",
                   help="augment: shift each training image by up to PX pixels each way at every iteration")
    k.add_argument("--tta", action="store_true", default=None,
                   help="predict with the mean of P(cat) for the image and its mirror image")
    k.add_argument("--batch-norm", action="store_true", default=None,
                   help="batch normalisation of every hidden layer, a CNN's conv layers per channel (learned "
                        "γ, β; running averages at prediction)")
    t.set_defaults(parser=t)

    pr = sub.add_parser("predict", help="say cat or non-cat for image files")
    pr.add_argument("--model", required=True, metavar="MODEL.npz", help="a model saved by 'train --save'")
    pr.add_argument("--threshold", type=_threshold, default=THRESHOLD,
                    help=f"P(cat) above this is 'cat' ({THRESHOLD:g})")
    pr.add_argument("images", nargs="+", metavar="IMAGE")

    d = sub.add_parser("download", help="download and verify the dataset into data/ (installed: ~/.catdnn/data)")
    d.add_argument("--dest", help="folder to download into (default: the checkout's data/; installed: "
                                  "data/ in $CATDNN_HOME, ~/.catdnn)")

    a = sub.add_parser("app", help="run the dashboard (Streamlit) on http://127.0.0.1:8501",
                       description="Run the dashboard, as `streamlit run dashboard.py` does in a checkout, with its "
                                   "server settings (only this machine may connect).")
    a.add_argument("--port", type=int, help="the port to serve on (default: Streamlit's, 8501)")
    a.add_argument("options", nargs="*", metavar="STREAMLIT_OPTION",
                   help="Streamlit's own options, after --, e.g. catdnn app -- --server.address 0.0.0.0")

    v = sub.add_parser("serve", help="serve the dashboard to a class on the local network, or to the public",
                       description="Start the dashboard for a class (students join with its code and a display "
                                   "name; the teacher link opens the teacher view) or for anonymous visitors, on "
                                   "this machine's LAN address, and print the links. A link carries its holder's "
                                   "secret key: give --cert and --key to encrypt them (TLS).")
    who = v.add_mutually_exclusive_group(required=True)
    who.add_argument("--class", dest="class_name", metavar="NAME",
                     help='the class, e.g. "Period 3" (opened again with the same code if it exists; every serve '
                          "gives a new teacher link)")
    who.add_argument("--public", action="store_true", help="anonymous visitors, each with work of their own")
    v.add_argument("--address", help="the address to serve on (default: this machine's LAN address; 0.0.0.0: all)")
    v.add_argument("--port", type=int, help="the port (default 8501)")
    v.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="another name the app answers to, e.g. a public deployment's domain (repeatable)")
    v.add_argument("--cert", metavar="FILE", help="TLS certificate (PEM), with --key: the links travel encrypted")
    v.add_argument("--key", metavar="FILE", help="the TLS certificate's private key (PEM)")
    v.add_argument("--scheduler", metavar="ADDRESS",
                   help="send trainings to this Dask scheduler, e.g. tcp://10.0.0.5:8786")
    v.add_argument("--dry-run", action="store_true",
                   help="print the student link and the server's command, start and change nothing (the teacher "
                        "link is printed when the server starts: each start gives a new one)")

    i = sub.add_parser("info", help="where the dataset is and what it holds")
    i.add_argument("--data-dir")
    i.add_argument("--dataset", metavar="PATH", help=DATASET_HELP)
    i.set_defaults(parser=i)

    s = sub.add_parser("sweep", help="train every combination of some settings, on all cores or a Dask cluster")
    s.add_argument("--preset", choices=list(PRESETS),
                   help="the settings to start from (deep; cnn when every --arch is a convolutional net)")
    s.add_argument("--iterations", type=int, help="iterations of every run (the preset's: 2500)")
    s.add_argument("--lr", type=_list_or_range, metavar="LR[,LR...]",
                   help="learning rates, e.g. 0.0075,0.01; with --random a range drawn log-uniformly, e.g. 1e-4:1e-1")
    s.add_argument("--hidden", type=_hidden_list, metavar="SIZES[;SIZES...]",
                   help='hidden layers of each network, ";" between networks, e.g. "20,7,5;7"')
    s.add_argument("--arch", nargs="+", metavar="SPEC",
                   help="architectures, convolutional nets included, e.g. --arch in32,conv16,dense64 "
                        "in32,conv16,conv32,dense64 dense20,dense7,dense5 (with --hidden: both sets of networks)")
    s.add_argument("--init", type=_choice_list(list(INITS)), metavar="INIT[,INIT...]", help=", ".join(INITS))
    s.add_argument("--optimizer", type=_choice_list(list(OPTIMIZERS)), metavar="OPT[,OPT...]",
                   help=", ".join(OPTIMIZERS))
    s.add_argument("--l2", type=_list_or_range, metavar="LAMBDA[,LAMBDA...]",
                   help="L2 regularisation strengths; with --random a range drawn uniformly, e.g. 0:2")
    s.add_argument("--seeds", type=_seeds, default=(1,), metavar="SEEDS", help="seeds, e.g. 1-3 (1)")
    rs = s.add_argument_group(
        "random search (the second course's): --random N draws N settings in the ranges given, scores each by "
        "k-fold cross-validation on the training images only (never the test images), and --zoom K draws N "
        "more in ranges narrowed around the K best; --optimizer and --init are then drawn among those listed")
    rs.add_argument("--random", type=int, metavar="N", help="draw N settings at random instead of a grid")
    rs.add_argument("--width", type=_range, metavar="LO:HI", help="hidden layer widths, each drawn uniformly")
    rs.add_argument("--depth", type=_range, metavar="LO:HI", help="number of hidden layers, drawn uniformly")
    rs.add_argument("--keep-prob", type=_range, metavar="LO:HI", help="dropout keep probability, drawn uniformly")
    for h in HYPERPARAMETERS.values():
        rs.add_argument(f"--{h.name}", type=_range, metavar="LO:HI",
                        help=f"{hyperparameter_label(h.name)}, "
                             + ("1-" + h.symbol if h.scale == "1-log" else h.symbol) + " drawn log-uniformly")
    rs.add_argument("--folds", type=int, metavar="K", help="k-fold cross-validation (5)")
    rs.add_argument("--metric", choices=SELECTION_METRICS, help="validation score (auc)")
    rs.add_argument("--zoom", type=int, metavar="K", help="a second round around the K best settings")
    rs.add_argument("--seed", type=int, help="seeds the draws and the folds (0)")
    s.add_argument("--data-dir", help="folder holding the two .h5 files")
    s.add_argument("--no-download", action="store_true", help="never download the dataset")
    _add_run_options(s)
    s.set_defaults(parser=s)

    r = sub.add_parser("runs", help="the run history: list, show, delete or export runs")
    ra = r.add_subparsers(dest="action", required=True, metavar="ACTION")
    rl = ra.add_parser("list", help="every run, newest first")
    rl.add_argument("--limit", type=int, default=0, help="only the newest N runs")
    rs = ra.add_parser("show", help="one run's settings, results and curve")
    rs.add_argument("id", type=int)
    rs.add_argument("--save", metavar="MODEL.npz", help="also save the run's model to this file")
    rd = ra.add_parser("delete", help="delete runs")
    rd.add_argument("ids", type=int, nargs="+", metavar="ID")
    rx = ra.add_parser("export", help="the table of runs as CSV (- for standard output)")
    rx.add_argument("file", metavar="FILE.csv")
    r.set_defaults(parser=r)

    ds = sub.add_parser("datasets", help="the datasets imported from photos: list or delete them")
    da = ds.add_subparsers(dest="action", required=True, metavar="ACTION")
    da.add_parser("list", help="every imported dataset, newest first")
    dd = da.add_parser("delete", help="delete an imported dataset (its photos as imported; runs on it are kept)")
    dd.add_argument("name", metavar="NAME", help="its name, or its folder's name when several share a name")
    ds.set_defaults(parser=ds)
    return p


def _add_run_options(p) -> None:
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run the runs on this Dask cluster instead of this machine's cores (needs distributed)")
    p.add_argument("--workers", type=int, help="worker processes on this machine (default: one per core)")
    p.add_argument("--no-record", action="store_true", help="do not keep the runs in the run history")


DATASET_HELP = ("your own photos instead: a folder with cat/ and non-cat/ subfolders or a zip of one "
                "(imported once into $CATDNN_HOME/datasets), an imported dataset's folder or name, or a folder "
                "holding a .h5 pair")


def open_dataset(args, download: bool = True):
    """The dataset ``--dataset`` names (photos imported, or reused, on the way), else ``--data-dir``'s."""
    from .data import load_dataset

    if not getattr(args, "dataset", None):
        return load_dataset(args.data_dir, download=download and not getattr(args, "no_download", False),
                            progress=_ProgressBar())
    if args.data_dir:
        args.parser.error("give --dataset or --data-dir, not both")
    from .photos import resolve_dataset

    def progress(done: int, total: int, name: str) -> None:
        if done == total or done % 50 == 0:
            print(f"\rimporting photos: {done:,} of {total:,}", end="\n" if done == total else "",
                  file=sys.stderr, flush=True)

    folder, info = resolve_dataset(args.dataset, progress=progress)
    if info is not None:
        how = "reused the import of" if info.cached else "imported"
        print(f"{how} {info.name!r}: {info.m_train} training and {info.m_test} test photos, "
              f"{len(info.skipped)} file(s) skipped", file=sys.stderr)
        for s in info.skipped[:20] if not info.cached else ():
            print(f"  skipped {s.name}: {s.reason}", file=sys.stderr)
        if len(info.skipped) > 20 and not info.cached:
            print(f"  ... and {len(info.skipped) - 20} more", file=sys.stderr)
    return load_dataset(folder, download=False)


class _ProgressBar:
    """A one-line download progress bar on stderr."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.last = stream, 0.0

    def __call__(self, name: str, done: int, total) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - self.last < 0.1:
            return
        self.last = now
        if total:
            frac = done / total
            bar = "#" * int(30 * frac)
            self.stream.write(f"\rdownloading {name} [{bar:<30}] {frac:6.1%} of {total / 1e6:.1f} MB")
        else:
            self.stream.write(f"\rdownloading {name} {done / 1e6:.1f} MB")
        if final:
            self.stream.write("\n")
        self.stream.flush()


def cmd_train(args) -> int:
    from .diagnose import diagnose
    from .model_io import save_model
    from .train import Trainer

    try:  # impossible settings are usage errors, refused before any work starts
        if args.print_every < 1:
            raise ConfigError("--print-every must be at least 1")
        network = _network(args)
        base = PRESETS[args.preset]
        config = TrainConfig.preset(
            args.preset, learning_rate=args.lr, iterations=args.iterations,
            init=args.init, seed=args.seed, **_technique_settings(args, base.optimizer), **network,
        ).validate()
        if args.save:
            _check_save_path(args.save)
        _check_run_options(args, several=bool(args.seeds))
        if args.seeds and (args.seed is not None or args.save):
            flag = "--seed" if args.seed is not None else "--save"
            raise ConfigError(f"--seeds trains one model per seed: give it without {flag}")
    except ConfigError as exc:
        args.parser.error(str(exc))
    ds = open_dataset(args)
    history = _open_history(args)
    if args.seeds:
        return _train_seeds(args, config, ds, history)
    trainer = Trainer(config, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y,
                      cost_every=args.print_every, solver=args.solver, classes=ds.classes, dataset=ds.name)
    extra = "".join(f", {t}" for t in config.techniques())
    print(f"Training {config.arch or list(config.layers)} init={config.init} lr={config.learning_rate:g} "
          f"iterations={config.iterations} seed={config.seed}{extra}", file=sys.stderr)
    print(trainer.solver_reason, file=sys.stderr)
    printed, interrupted = 0, False
    try:
        for _ in trainer.run():
            for i, cost in trainer.history[printed:]:
                print(f"Cost after iteration {i}: {cost:.6f}", flush=True)
            printed = len(trainer.history)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: {trainer.message}", file=sys.stderr)
    if trainer.status == "diverged":
        for i, cost in trainer.history[printed:]:
            print(f"Cost after iteration {i}: {cost:.6f}")
        _record(history, trainer, None, ds)
        raise ConfigError(trainer.message)
    model = trainer.model()
    _record(history, trainer, model, ds)
    for message in diagnose(trainer.history, ds.train.Y, config.learning_rate, params=model.params, X=ds.train.X,
                           bn=model.bn):
        print(f"warning: {message}", file=sys.stderr)
    _print_metrics(model, ds)  # before the accuracies, which stay the last lines
    print(f"Train accuracy: {model.train_accuracy:.6f}")
    print(f"Test accuracy: {model.test_accuracy:.6f}")
    print(f"({trainer.message}, solver: {trainer.solver_name})", file=sys.stderr)
    if args.save:
        save_model(model, args.save)
        print(f"Model saved to {args.save}" + (" (partial)" if interrupted else ""), file=sys.stderr)
    return 130 if interrupted else 0


def _network(args) -> dict:
    """The network flags as TrainConfig fields, and ``args.preset`` resolved (cnn for a conv --arch, else deep)."""
    from .arch import parse_arch

    if args.arch is not None and args.layers is not None:
        raise ConfigError("give the network as --arch or --layers, not both")
    arch = parse_arch(args.arch) if args.arch is not None else None
    if args.preset is None:
        args.preset = "cnn" if arch is not None and arch.is_cnn else "deep"
    if arch is not None and arch.is_cnn:
        return {"arch": arch.text}
    layers = arch.mlp_layers() if arch is not None else args.layers
    if layers is None:
        return {}
    return {"layers": layers, "arch": "", "dtype": "float64"}  # an MLP, whatever the preset was


def _print_metrics(model, ds) -> None:
    """Balanced accuracy and AUC on both splits (plain accuracy flatters the majority "non-cat")."""
    from .evaluate import metrics

    train = metrics(model.predict_proba(ds.train.X), ds.train.labels)
    test = metrics(model.predict_proba(ds.test.X), ds.test.labels)
    for name, label in (("balanced_accuracy", "Balanced accuracy"), ("auc", "AUC")):
        print(f"{label}: train {_fmt(train[name])}, test {_fmt(test[name])}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.6f}"


def _check_run_options(args, several: bool) -> None:
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not several and (args.scheduler or args.workers is not None):
        raise ConfigError(f"{'--scheduler' if args.scheduler else '--workers'} applies to several runs: "
                          "give --seeds, or use the sweep command")
    if args.scheduler:
        from .sweep import check_scheduler

        args.scheduler = check_scheduler(args.scheduler)


def _open_history(args):
    """The run history, or None (--no-record, or a history that cannot be used: then a warning)."""
    if args.no_record:
        return None
    from .history import History, HistoryError

    try:
        return History()
    except HistoryError as exc:
        print(f"warning: runs are not kept in the history: {exc}", file=sys.stderr)
        return None


def _record(history, trainer, model, ds) -> None:
    if history is None:
        return
    from .history import HistoryError

    try:
        run_id = history.add(trainer.config, status=trainer.status, message=trainer.message,
                             history=trainer.history, accuracy_history=trainer.accuracy_history,
                             iterations_done=trainer.iterations_done, elapsed=trainer.elapsed,
                             solver=trainer.solver_name, source="cli", dataset=str(ds.source), model=model)
    except HistoryError as exc:
        print(f"warning: the run is not kept in the history: {exc}", file=sys.stderr)
        return
    print(f"Kept as run {run_id} (python -m catdnn runs show {run_id})", file=sys.stderr)


def _describe(config: TrainConfig) -> str:
    from .labels import arch_text

    extra = "".join(f", {t}" for t in config.techniques())
    return f"{arch_text(config)} init={config.init} lr={config.learning_rate:g} seed={config.seed}{extra}"


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event):
    """While inside, Ctrl-C (SIGINT) only sets ``stop``: nothing is raised at whatever line runs then, so a
    sweep stops where it looks at ``stop`` and still reports and keeps what it finished."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set a handler
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_sweep(args, configs, ds, history, label: str, summarise) -> int:
    """Run ``configs`` on ``--workers`` processes (one per core) or ``--scheduler``, printing a line as each
    finishes, then ``summarise(results)``; return the exit status.

    Ctrl-C at any moment in here (connecting, starting the workers, waiting, keeping a run, printing,
    shutting down, summarising) stops the sweep through an event, never an exception: the runs that
    finished are printed, kept, and counted in the ``interrupted:`` line, and the status is 130."""
    from .sweep import curve_options, dask_client, dask_executor, sweep

    total, results = len(configs), []
    with _ctrl_c_sets(threading.Event()) as stop:
        client = dask_client(args.scheduler) if args.scheduler and not stop.is_set() else None
        try:
            where = (f"the Dask cluster at {args.scheduler}" if args.scheduler
                     else f"{args.workers or os.cpu_count()} processes")
            print(f"Sweep of {total} runs on {where}", file=sys.stderr)
            for res in sweep(configs, dask_executor(client) if client else None, data_dir=ds.source, history=history,
                             source="cli", label=label, workers=args.workers, stop=stop,
                             **curve_options(configs[0])):
                results.append(res)
                acc = (f"train {res.train_accuracy:.3f}, test {res.test_accuracy:.3f}"
                       if res.test_accuracy is not None else res.message)
                kept = f" run {res.run_id}" if res.run_id is not None else ""
                print(f"[{len(results)}/{total}]{kept} {_describe(res.config)}: {res.status}, {acc} "
                      f"({res.elapsed:.1f} s)", flush=True)
        finally:
            if client is not None:
                client.close()
        summarise(results)
        if stop.is_set():
            print(f"\ninterrupted: {len(results)} of {total} runs finished"
                  + (" (kept in the history)" if history is not None else ""), file=sys.stderr)
            return 130
    return 0 if all(r.status == "finished" for r in results) else 1


def _train_seeds(args, config: TrainConfig, ds, history) -> int:
    from .sweep import seed_configs, spread

    def summarise(results) -> None:
        s = spread(results)
        if s is not None:
            print(f"Mean ± std {s.text()}")
            print("(the course's 0.80 test accuracy is one seed's: seed 1)", file=sys.stderr)

    return _run_sweep(args, seed_configs(config, args.seeds), ds, history, f"seeds {_seed_text(args.seeds)}",
                      summarise)


def _seed_text(seeds) -> str:
    seeds = list(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def cmd_sweep(args) -> int:
    from .data import load_dataset
    from .sweep import grid, parse_networks, spread

    if args.random is not None:
        return _random_search(args)
    given = [f"--{name}" for name in _RANDOM_ONLY if getattr(args, name.replace("-", "_")) is not None]
    given += [f"--{name} {value}" for name, value in (("lr", args.lr), ("l2", args.l2)) if isinstance(value, RangeText)]
    if given:
        args.parser.error(f"{given[0]} applies to a random search: give --random N")
    try:
        arches = parse_networks(";".join(args.arch or ()))
        if args.preset is None:
            args.preset = "cnn" if arches and all(n.get("arch") for n in arches) else "deep"
        base = TrainConfig.preset(args.preset, iterations=args.iterations)
        _check_run_options(args, several=True)
        networks = parse_networks(";".join(",".join(map(str, h)) or "none" for h in args.hidden or ()), base)
        networks += parse_networks(";".join(args.arch or ()), base)
        axes = dict(network=networks, init=args.init, optimizer=args.optimizer, learning_rate=args.lr, l2=args.l2,
                    seed=list(args.seeds))
        configs = grid(base, **axes)
        for c in configs:
            c.validate()
    except ConfigError as exc:
        args.parser.error(str(exc))
    ds = load_dataset(args.data_dir, download=not args.no_download, progress=_ProgressBar())

    def summarise(results) -> None:
        groups: dict = {}
        for r in sorted(results, key=lambda r: r.index):
            groups.setdefault(_describe(r.config).rsplit(" seed=", 1)[0], []).append(r)
        if len(args.seeds) > 1 and groups:
            print("\nTest accuracy by settings (mean ± std over the seeds):")
            summary = [(name, spread(rs)) for name, rs in groups.items()]
            for name, s in sorted(summary, key=lambda x: -(x[1].test_mean if x[1] else -1.0)):
                print(f"  {name}: " + (f"{s.test_mean:.3f} ± {s.test_std:.3f} ({s.n} runs)" if s else "no result"))

    return _run_sweep(args, configs, ds, _open_history(args), _sweep_label(args), summarise)


#: The sweep flags that only a random search takes (ranges).
_RANDOM_ONLY = ("width", "depth", "keep-prob", *HYPERPARAMETERS, "folds", "metric", "zoom", "seed")
#: A random search's defaults: 5 folds, scored by AUC, no zoom, draws seeded with 0.
_RANDOM_DEFAULTS = {"folds": 5, "metric": "auc", "zoom": 0, "seed": 0}


def _random_search(args) -> int:
    """``sweep --random N``: :func:`catdnn.search.random_search`, printed round by round."""
    from .data import load_dataset
    from .search import PARAMETERS, parse_ranges, random_search, setting_text
    from .sweep import curve_options, dask_client, dask_executor, parse_networks

    for name, value in _RANDOM_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        if args.random < 1:
            raise ConfigError(f"--random N draws at least 1 setting, not {args.random}")
        if len(args.seeds) > 1:
            raise ConfigError("a random search trains each setting with one seed (--seeds S); --seed seeds the draws")
        nets = parse_networks(";".join([*(",".join(map(str, h)) or "none" for h in args.hidden or ()),
                                        *(args.arch or ())]))
        if len(nets) > 1:
            raise ConfigError("a random search starts from one network: give one --hidden or --arch (or --width "
                              "and --depth ranges)")
        preset = args.preset or ("cnn" if nets and nets[0].get("arch") else "deep")
        base = TrainConfig.preset(preset, iterations=args.iterations, seed=args.seeds[0], **(nets[0] if nets else {}))
        _check_run_options(args, several=True)
        texts = {name: getattr(args, name.replace("-", "_")) for name in PARAMETERS}
        for name, value in texts.items():
            if value is not None and not isinstance(value, RangeText):
                raise ConfigError(f"with --random, --{name} is a range LOW:HIGH, not a list")
        ranges = parse_ranges(texts, {"optimizer": args.optimizer, "init": args.init})
        if args.folds < 2:
            raise ConfigError(f"--folds K needs K ≥ 2, not {args.folds}")
    except ConfigError as exc:
        args.parser.error(str(exc))
    ds = load_dataset(args.data_dir, download=not args.no_download, progress=_ProgressBar())
    n, k = args.random, args.folds
    rounds = []

    def on_round(number, rnd) -> None:
        rounds.append(rnd)
        words = "ranges" if not number else f"zoomed around the {args.zoom} best"
        print(f"Round {number + 1} ({words}): " + " · ".join(r.text() for r in rnd.ranges), flush=True)

    def on_run(fold, res, score) -> None:
        got = f"{args.metric} {score:.3f}" if score is not None else res.message or "no score"
        print(f"  [fold {fold + 1}/{k}] setting {res.index + 1}: {res.status}, {got} ({res.elapsed:.1f} s)",
              file=sys.stderr, flush=True)

    with _ctrl_c_sets(threading.Event()) as stop:
        client = dask_client(args.scheduler) if args.scheduler and not stop.is_set() else None
        where = f"the Dask cluster at {args.scheduler}" if client else f"{args.workers or os.cpu_count()} processes"
        print(f"Random search: {n} settings × {k} folds a round on {where}, scored by validation {args.metric} on "
              f"the {ds.train.m} training images (the test images are never read; these runs are not kept in the "
              "history)", file=sys.stderr)
        try:
            random_search(base, ranges, n, ds, seed=args.seed, k=k, metric=args.metric, zoom_k=args.zoom,
                          executor=dask_executor(client) if client else None, workers=args.workers, stop=stop,
                          on_run=on_run, on_round=on_round, **curve_options(base))
        except ConfigError as exc:
            args.parser.error(str(exc))
        finally:
            if client is not None:
                client.close()
        for number, rnd in enumerate(rounds):
            print(f"\nRound {number + 1}, best first (validation {args.metric}, mean ± std over the folds):")
            for rank, s in enumerate(rnd.scored, start=1):
                print(f"  {rank:>3}. {s.describe():<28} {setting_text(s.setting)}")
        best = [s for rnd in rounds for s in rnd.scored if s.cv.completed(s.checkpoint)]
        if best:
            top = max(best, key=lambda s: s.cv.rank(s.checkpoint))
            print(f"\nBest by validation: {top.describe()}: {_describe(top.config)}")
        if stop.is_set():
            print("\ninterrupted", file=sys.stderr)
            return 130
    return 0 if best else 1


def _sweep_label(args) -> str:
    parts = [f"{k} {','.join(map(str, v))}" for k, v in (("lr", args.lr), ("init", args.init),
                                                         ("optimizer", args.optimizer), ("l2", args.l2)) if v]
    if args.hidden:
        parts.append("hidden " + ";".join(",".join(map(str, h)) or "none" for h in args.hidden))
    if args.arch:
        parts.append("arch " + ";".join(args.arch))
    parts.append(f"seeds {_seed_text(args.seeds)}")
    return "sweep: " + " · ".join(parts)


def cmd_runs(args) -> int:
    from .history import History
    from .labels import compare

    with History() as history:
        if args.action == "list":
            runs = history.runs()
            print(f"{len(runs)} runs in {history.path}", file=sys.stderr)
            if args.limit > 0:
                runs = runs[: args.limit]
            print(f"{'id':>5}  {'created (UTC)':<19}  {'source':<10} {'status':<8} {'iters':>7} {'train':>6} "
                  f"{'test':>6} {'secs':>7}  run (architecture, then what differs between the runs listed)")
            for r, label in zip(runs, compare(runs, numbered=False)[1]):
                acc = [f"{a:.3f}" if a is not None else "-" for a in (r.train_accuracy, r.test_accuracy)]
                print(f"{r.id:>5}  {r.created[:19].replace('T', ' '):<19}  {r.source:<10} {r.status:<8} "
                      f"{r.iterations_done:>7} {acc[0]:>6} {acc[1]:>6} {r.elapsed:>7.1f}  {label}")
        elif args.action == "show":
            r = history.get(args.id)
            for key, value in r.row().items():
                print(f"{key}: {value}")
            if r.history:
                (i0, c0), (i1, c1) = r.history[0], r.history[-1]
                print(f"cost curve: {len(r.history)} points, {c0 if c0 is None else round(c0, 6)} at iteration "
                      f"{i0} to {c1 if c1 is None else round(c1, 6)} at iteration {i1}")
            if args.save:
                from .model_io import save_model

                _check_save_path(args.save)
                save_model(history.model(args.id), args.save)
                print(f"Model saved to {args.save}", file=sys.stderr)
        elif args.action == "delete":
            from .board import delete_runs, machine_board

            present = {r.id for r in history.runs(ids=args.ids)}
            missing = [i for i in args.ids if i not in present]
            with machine_board() as board:  # a class served from this machine: its board lets go of them too
                _n, withdrawn = delete_runs(history, present, board)
            if present:
                print(f"deleted {len(present)} run{'s' if len(present) != 1 else ''}: "
                      f"{', '.join(map(str, sorted(present)))}"
                      + (f" (and took {withdrawn} off the class board)" if withdrawn else ""))
            if missing:
                raise CatdnnError(f"no run {', '.join(map(str, missing))} in the history")
        elif args.action == "export":
            text = history.csv_text()
            if args.file == "-":
                sys.stdout.write(text)
            else:
                Path(args.file).write_text(text, encoding="utf-8", newline="")  # the CSV's own line ends
                print(f"{len(history)} runs written to {args.file}", file=sys.stderr)
    return 0


def cmd_datasets(args) -> int:
    """``datasets list|delete NAME``: the machine's user sees and deletes every imported dataset."""
    from datetime import datetime

    from .photos import datasets_dir, delete_dataset, list_datasets

    if args.action == "list":
        found = list_datasets()
        print(f"{len(found)} imported datasets in {datasets_dir()}", file=sys.stderr)
        if found:
            print(f"{'created':<16}  {'train':>5} {'test':>5}  {'from':<8} {'folder':<22}  name")
        for d in found:
            when = datetime.fromtimestamp(d.created).strftime("%Y-%m-%d %H:%M")
            origin = f"upload:{len(d.owners)}" if d.uploaded else "machine"
            print(f"{when:<16}  {d.m_train:>5} {d.m_test:>5}  {origin:<8} {d.folder.name:<22}  {d.name}")
    else:
        info = delete_dataset(args.name)
        print(f"deleted {info.name!r} ({info.folder.name}): {info.m_train + info.m_test} photos; runs on it are kept")
    return 0


def _technique_settings(args, base_optimizer: str = "gd") -> dict:
    """The TrainConfig fields the technique flags set (None: not given), checked for flags that
    would have no effect (``base_optimizer``: the preset's)."""
    opt = args.optimizer or base_optimizer
    wrong = inapplicable(opt, [name for name in HYPERPARAMETERS if getattr(args, name) is not None])
    if wrong:
        raise ConfigError(f"--{wrong[0]} applies to --optimizer {' or '.join(wrong[1])} (this run uses {opt})")
    schedule = args.schedule
    if schedule is None and args.decay is not None:
        schedule = "step" if args.decay_every is not None else "inverse-time"
    if args.decay_every is not None and schedule != "step":
        raise ConfigError("--decay-every applies to the step schedule (--schedule step, or give --decay)")
    if schedule not in (None, "constant") and args.decay is None:
        raise ConfigError(f"--schedule {schedule} needs a decay rate: give --decay D")
    return dict(
        l2=args.l2, keep_prob=args.keep_prob, batch_size=args.batch_size, optimizer=args.optimizer,
        **{name: getattr(args, name) for name in HYPERPARAMETERS}, schedule=schedule, decay=args.decay,
        decay_every=args.decay_every, flip=args.flip, shift=args.shift, tta=args.tta,
        batch_norm=args.batch_norm,
    )


def cmd_predict(args) -> int:
    import numpy as np

    from .evaluate import verdict
    from .images import image_to_input, prepare_image
    from .model_io import load_model

    model = load_model(args.model)
    status = 0
    for path in args.images:
        try:
            x = image_to_input(prepare_image(path, name=path))
        except CatdnnError as exc:
            print(f"error: {exc}", file=sys.stderr)  # the message starts with the path
            status = 1
            continue
        p = float(model.predict_proba(x)[0])
        print(f"{path}: {verdict(p, args.threshold)} (p={np.round(p, 4):.4f})", flush=True)
    return status


def cmd_download(args) -> int:
    from .data import download_dataset

    dest = download_dataset(args.dest, progress=_ProgressBar())
    print(f"dataset ready in {dest}")
    return 0


def cmd_app(args) -> int:
    from .serve import run_app

    run_app(args.port, args.options)  # replaces this process
    return 0


def cmd_serve(args) -> int:
    import shlex

    from .serve import run_plan, serve_plan

    plan = serve_plan(args.class_name, public=args.public, address=args.address, port=args.port, cert=args.cert,
                      key=args.key, hosts=args.host, scheduler=args.scheduler, dry_run=args.dry_run)
    for line in plan.lines():
        print(line)
    if plan.warning:
        print(plan.warning, file=sys.stderr)
    if args.dry_run:
        print("server command: " + shlex.join([f"{k}={v}" for k, v in plan.env.items()] + plan.command))
        return 0
    print("starting the server (Ctrl-C stops it)…", flush=True)
    run_plan(plan)  # replaces this process
    return 0


def cmd_info(args) -> int:
    ds = open_dataset(args, download=False)
    print(f"dataset: {ds.name} in {ds.source}")
    for name, split in (("train", ds.train), ("test", ds.test)):
        cats = int(split.labels.sum())
        print(f"  {name}: {split.m} images, {cats} cat, {split.m - cats} non-cat")
    print(f"  classes: {', '.join(ds.classes)}")
    return 0


COMMANDS = {"train": cmd_train, "sweep": cmd_sweep, "runs": cmd_runs, "predict": cmd_predict,
            "download": cmd_download, "info": cmd_info, "app": cmd_app, "datasets": cmd_datasets, "serve": cmd_serve}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    limit_blas_threads()
    try:
        return COMMANDS[args.command](args)
    except CatdnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:  # e.g. stdout on a full disk
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 1
