"""The live chart's cost: a 10 000-iteration ``deep`` run on the Train page vs the engine alone.

    python bench/bench_app.py [--repeats 5] [--iterations 10000]

The page (``pages/1_Train.py``) runs under Streamlit's ``AppTest`` (no browser: what is measured is
the server-side work of the live view, i.e. building and sending the redraws about 5 times a
second). The training runs on a worker process (catdnn.workers) while the page draws: the app's
figures are the training time the worker reports (``ui.state.session().run.elapsed``) and the whole
script run, from the Train click to the kept model (the time a user waits).
The engine alone is a :class:`catdnn.train.Trainer` with the options the page uses
(cost and accuracy sampling), run to the end plus ``model()``. Runs alternate app / engine.
Target: the page adds at most 20 % to the engine's time.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from _common import ROOT, load_data, machine, median, set_threads, table

from catdnn.config import PRESETS
from catdnn.train import Trainer


def engine_alone(config, ds):
    from ui.training import trainer_options  # the very options the page uses

    trainer = Trainer(config, ds.train.X, ds.train.Y, ds.test.X, ds.test.Y, **trainer_options(config))
    t0 = time.perf_counter()
    for _ in trainer.run():
        pass
    trainer.model()
    return time.perf_counter() - t0, trainer.solver_name


TRAIN_PAGE = ROOT / "pages" / "1_Train.py"


class Probe:
    """Wraps the page's per-redraw call (the page imports it from the same ``ui.training`` module
    object at each run) to count the redraws and the time spent drawing them."""

    def __init__(self):
        import ui.training

        self.redraws, self.model_calls, self.model_s, self.draw_s = 0, 0, 0.0, 0.0
        draw = ui.training.draw_training_frame
        probe = self

        def timed_draw(*a, **k):
            t0 = time.perf_counter()
            try:
                return draw(*a, **k)
            finally:
                probe.redraws += 1
                probe.draw_s += time.perf_counter() - t0

        ui.training.draw_training_frame = timed_draw

    def reset(self):
        self.redraws, self.model_calls, self.model_s, self.draw_s = 0, 0, 0.0, 0.0


def app_run(iterations, timeout):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(TRAIN_PAGE), default_timeout=timeout)
    at.run()
    if at.exception:
        raise RuntimeError(f"the Train page failed to load: {at.exception}")
    at.slider(key="train_iters").set_value(iterations)
    at.button(key="train_submit").click()
    t0 = time.perf_counter()
    at.run()
    script = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"the Train page failed: {at.exception}")
    from ui.state import session

    run = session(at.session_state).run
    if run.status != "finished" or run.iterations_done != iterations:
        raise RuntimeError(f"the run did not finish: {run.status} after {run.iterations_done} iterations")
    return run.elapsed, script


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=10_000)
    ap.add_argument("--threads", type=int, help="limit BLAS threads (threadpoolctl); default: unchanged")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    if not TRAIN_PAGE.is_file():
        raise SystemExit(f"bench_app: the Train page ({TRAIN_PAGE}) is not there")
    ds = load_data()
    config = replace(PRESETS["deep"], iterations=args.iterations)
    print(f"machine: {machine()}")
    app_train, app_script, engine, parts = [], [], [], []
    app_run(100, 120)  # warm-up: imports, the dataset cache
    probe = Probe()
    for _ in range(args.repeats):
        e, solver = engine_alone(config, ds)
        engine.append(e)
        probe.reset()
        a, s = app_run(args.iterations, 600)
        app_train.append(a)
        app_script.append(s)
        parts.append((probe.redraws, probe.model_calls, probe.model_s, probe.draw_s))
    e, a, s = median(engine), median(app_train), median(app_script)
    print(f"deep preset, {args.iterations} iterations, solver {solver}, median of {args.repeats}, alternating\n")
    print(table(["", "median s", "vs engine", "all runs (s)"], [
        ["engine alone (Trainer, the page's options)", f"{e:.3f}", "1.00×", " ".join(f"{x:.3f}" for x in engine)],
        ["Train page: training on the worker, live chart drawn", f"{a:.3f}", f"{a / e:.2f}×",
         " ".join(f"{x:.3f}" for x in app_train)],
        ["Train page: whole script run (AppTest)", f"{s:.3f}", f"{s / e:.2f}×",
         " ".join(f"{x:.3f}" for x in app_script)],
    ]))
    n, calls, ms, ds_ = (median(x) for x in zip(*parts))
    print(f"\nper app run (medians): {n:.0f} redraws; drawing them (progress, metrics, two plotly charts) "
          f"took {ds_ * 1e3:.0f} ms of the server's time in all ({ds_ / max(n, 1) * 1e3:.1f} ms per redraw)")
    print(f"\ntarget: the live page adds ≤ 20 % to the engine's time: {(a / e - 1) * 100:+.0f} % "
          f"{'MET' if a <= 1.2 * e else 'MISSED'} (whole script run: {(s / e - 1) * 100:+.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
