"""Streamlit-only glue for the dashboard, split by purpose; only the app (dashboard.py, pages/) imports it.

Layers go one way: pages → ui → catdnn (the engine, which never imports streamlit).

- ``state``     this session's models and last training run (small dataclasses in st.session_state)
- ``dataset``   the cached dataset, downloaded on first use, its errors drawn from their fields
- ``training``  the live training loop that redraws the curve, and how a run ended
- ``widgets``   widgets more than one page uses: the image grid, the model picker / one-click offer
- ``figures``   the Plotly figure builders (pure functions returning plain dicts)
- ``hosts``     which Host headers the app answers (the guard against DNS rebinding)
- ``identity``  who this session is in the server's mode (local, class, public): ``current()``

Naming: a helper that returns values is ``*_ui()``, one that only draws is ``draw_*()``.
"""

from __future__ import annotations

# pandas is imported here, once, when the first page imports ui: st.plotly_chart imports it lazily on first
# use, and three sessions doing that at the same moment once met a partially initialised module (issue 19).
import pandas  # noqa: F401
import streamlit as st

from catdnn.errors import CatdnnError
from catdnn.threads import limit_blas_threads

from . import hosts, identity, state
from .dataset import dataset_picker_ui
from .history import session_history

#: An emoji icon is drawn by the browser. A ":material/…:" page icon would make every visitor's
#: browser fetch the icon font from fonts.gstatic.com, and nothing may leave the machine (SECURITY.md).
PAGE_ICON = "🐱"


def page_setup(title: str | None = None) -> None:
    """What every page does first: the page config, the Host check, the BLAS limit, the sidebar's
    dataset picker (and photo import) and model caption.

    Called at the top of dashboard.py and of every script in pages/, so the sidebar looks the same
    whichever page a visitor opens first by URL. The caption is drawn before the page's content: a
    page that ends early with ``st.stop()`` (no model yet, no dataset) would otherwise cut it off.
    A request whose ``Host`` does not name this machine (DNS rebinding: see :mod:`ui.hosts`) stops
    here, before anything else runs; then the session's identity is resolved (:mod:`ui.identity`: a class's
    join form, a refused key), and every page reads it with ``ui.identity.current()``.
    """
    st.set_page_config(page_title=f"{title} · catdnn" if title else "catdnn", page_icon=PAGE_ICON, layout="wide")
    host = st.context.headers.get("Host")
    if not hosts.host_allowed(host):
        name = hosts.shown(hosts.host_name(host) or host)
        st.error(
            f"**This app only answers on this machine's own addresses** (`localhost`, `127.0.0.1`), and this "
            f"page was reached as `{hosts.shown(host)}`. A web page on another site can point its name at this "
            "machine to drive the app (DNS rebinding), so nothing runs here.\n\n"
            f"If you serve the app to a class on purpose, allow the address students use and restart: "
            f"`{hosts.ENV_VAR}={name} streamlit run dashboard.py --server.address 0.0.0.0` "
            "(several: separate them with commas).", icon=":material/block:")
        st.stop()
    # Who this session is (local: the machine's user; class: a student or the teacher; public: a visitor).
    # A refusal, or a class-mode visitor who has not joined (the join form), stops here.
    identity.identity_ui(title or "Home")
    # One BLAS thread per process: every browser session trains on a thread of this one process, and
    # concurrent trainings then share the cores instead of oversubscribing them (catdnn/threads.py).
    limit_blas_threads()  # idempotent: cheap on every rerun
    dataset_picker_ui()  # this session's dataset: the course's, or the user's own photos
    st.sidebar.caption(model_note())


def model_note() -> str:
    """The sidebar's line on this tab's model: the current one; else, when the viewer has saved runs with a model
    (a student back by their bookmark: their runs are on the server, the tab's models are not), how to load one;
    else that none was trained. The count is the engine's (:meth:`catdnn.history.History.saved_models`, through
    this session's history: a student or a visitor counts only their own runs), one COUNT on every page."""
    model = state.session().current_model
    if model is not None:
        return f"Current model: {state.model_label(model)}"
    try:
        history = session_history()
        n = history.saved_models()
    except CatdnnError:  # a history that cannot be read: the Runs page says why
        n = 0
    if not n:
        return "No model trained yet."
    whose = "the" if history.identity.role == "teacher" else "your"  # the teacher also sees the class's runs
    runs = f"{whose} saved run" if n == 1 else f"one of {whose} {n} saved runs"
    return f"No model in this tab yet: load {runs} on the Runs page (Use this model)."
