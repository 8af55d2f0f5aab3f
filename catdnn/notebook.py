"""What a notebook (or a Python prompt) shows: :func:`catdnn.fit`'s progress bar and a Model's summary.

The bar is plain text, redrawn in place and throttled by time (:data:`REDRAW_SECONDS`), not by
iteration count: ``\\r`` on a stream (a terminal's stderr), or one display that updates itself in a
Jupyter kernel. IPython is never imported here: a notebook has already imported it, and then
``sys.modules`` holds it. Of catdnn, only :mod:`catdnn.errors` is imported here.
"""

from __future__ import annotations

import html
import sys
import time

from .errors import ConfigError

#: At most one redraw every this many seconds (the first and the last iteration are always drawn).
REDRAW_SECONDS = 0.2
BAR_WIDTH = 30


def _kernel_shell():
    """The IPython shell of a Jupyter kernel this code runs in, else None."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell if getattr(shell, "kernel", None) is not None else None


def interactive() -> bool:
    """Whether a person watches this session: a Jupyter kernel, IPython, or Python's ``>>>`` prompt."""
    ipython = sys.modules.get("IPython")
    return hasattr(sys, "ps1") or bool(ipython is not None and getattr(ipython, "get_ipython", lambda: None)())


class ProgressBar:
    """A one-line progress bar for the training loop's :class:`~catdnn.train.Progress` events.

    ``bar(event)`` after each iteration, ``bar.close()`` at the end (ends the line of a run that
    stopped early). ``stream``: where the text goes, ``\\r``-redrawn; None = an updating display in
    a Jupyter kernel, else ``sys.stderr``.
    """

    def __init__(self, label: str = "", stream=None, *, min_interval: float = REDRAW_SECONDS, clock=time.monotonic):
        self.label, self.min_interval, self.clock = label, float(min_interval), clock
        self.stream = stream
        self._display = None  # IPython's DisplayHandle, in a kernel
        self._kernel = stream is None and _kernel_shell() is not None
        if stream is None and not self._kernel:
            self.stream = sys.stderr
        self._last = None  # clock of the last redraw
        self._text = ""
        self._open = False  # a line was drawn and not ended
        self._cost = None  # the last cost reported (most iterations do not compute one)

    def text(self, p) -> str:
        """The bar's line for the event ``p``."""
        done, total = p.iterations_done, max(p.iterations, 1)
        filled = int(BAR_WIDTH * done / total)
        c = p.cost if p.cost is not None else self._cost
        cost = f"  cost {c:.4f}" if c is not None else ""
        label = f"{self.label} " if self.label else ""
        return f"{label}[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{p.iterations}{cost}  {p.elapsed:.1f} s"

    def __call__(self, p) -> None:
        now = self.clock()
        self._cost = p.cost if p.cost is not None else self._cost
        final = p.iterations_done >= p.iterations
        if not final and self._last is not None and now - self._last < self.min_interval:
            return
        self._last = now
        self._draw(self.text(p), p)
        if final:
            self.close()

    def _draw(self, text: str, p) -> None:
        if self._kernel:
            from IPython.display import display  # a kernel has imported IPython already

            bundle = {"text/plain": text, "text/html": (
                f"<progress value='{p.iterations_done}' max='{p.iterations}' style='width: 20em'></progress> "
                f"<code>{html.escape(text)}</code>")}
            if self._display is None:
                self._display = display(bundle, raw=True, display_id=True)
            else:
                self._display.update(bundle, raw=True)
        else:
            pad = " " * max(len(self._text) - len(text), 0)  # a shorter line covers the longer one
            self.stream.write(f"\r{text}{pad}")
            self.stream.flush()
        self._text, self._open = text, True

    def close(self) -> None:
        """End the bar's line (once)."""
        if self._open and not self._kernel:
            self.stream.write("\n")
            self.stream.flush()
        self._open = False


def progress_bar(progress, label: str = "") -> ProgressBar | None:
    """The bar :func:`catdnn.fit`'s ``progress`` asks for, or None.

    ``progress``: None = a bar when a person watches (:func:`interactive`), nothing in scripts, the
    CLI and tests; True = a bar; False = none; a stream (``write``, ``flush``) = a text bar on it.
    """
    if progress is None:
        progress = interactive()
    if progress is True:
        return ProgressBar(label)
    if progress is False:
        return None
    if not hasattr(progress, "write"):
        raise ConfigError(f"progress must be True, False, None (a bar when interactive) or a stream, not {progress!r}")
    return ProgressBar(label, progress)


def model_html(model) -> str:
    """A Model's short summary as an HTML table (``Model._repr_html_``): what Jupyter shows for a model."""
    cfg = model.config

    def acc(a):
        return "–" if a is None else f"{a:.3f}"

    rows = [
        ("network", f"{model.network} ({model.param_count:,} parameters)"),
        ("settings", ", ".join([f"init {cfg.init}", f"learning rate {cfg.learning_rate:g}", f"seed {cfg.seed}",
                                *cfg.techniques()])),
        ("iterations", f"{model.iterations_done:,} of {cfg.iterations:,} ({model.status}), "
                       f"{model.train_seconds:.1f} s"),
        ("accuracy", f"train {acc(model.train_accuracy)}, test {acc(model.test_accuracy)}"),
    ]
    if model.history:
        rows.append(("cost", f"{model.history[0][1]:.4f} at iteration {model.history[0][0]} → "
                             f"{model.history[-1][1]:.4f} at {model.history[-1][0]} (model.cost_figure())"))
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                   f"{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table><caption style='text-align:left'><b>catdnn Model</b></caption>{body}</table>"
