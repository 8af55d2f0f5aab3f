"""The class board and the teacher view: what pages/8_Class_board.py and pages/9_Teacher.py draw.

What may be done is decided in the engine (:mod:`catdnn.board` checks a submitted run is the student's,
:class:`~catdnn.history.History` shows a student only their runs and the teacher all): these helpers only draw.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import streamlit as st

from catdnn import classroom
from catdnn.board import FOLDS, MAX_ENTRIES, METRIC, Board, BoardError, Standings, dataset_key
from catdnn.classroom import Identity, Limits
from catdnn.errors import CatdnnError
from catdnn.history import csv_cell
from catdnn.labels import compare
from catdnn.serve import CLASS_URL_ENV
from catdnn.workers import shared_pool

from .identity import class_store, mode

#: The command that starts a class (the README's "Serve a class").
SERVE_COMMAND = 'python -m catdnn serve --class "Period 3"'
#: Who counts as online on the teacher view: seen on a page in the last this many seconds.
ONLINE_SECONDS = 60
#: Runs the teacher's delete list offers at once, the newest first (of every student, or of the one chosen): a
#: list of every run made each rerun of the page take seconds once a class had kept thousands.
DELETE_LIST = 200


@st.cache_resource(max_entries=8)
def _open_board(path: str) -> Board:
    return Board(class_store())


def class_board() -> Board:
    """The server's class board (in the class store's file), opened once per server process."""
    return _open_board(str(classroom.default_path()))


def has_board(identity: Identity) -> bool:
    """Whether ``identity`` works with a class board: a class's students and teacher (local and public mode have
    none)."""
    return bool(identity.class_code) and identity.role in ("student", "teacher")


def draw_class_mode_note(page: str) -> None:
    """Local (or public) mode: what class mode is, and the one command that starts it."""
    where = ("this server serves the public: each visitor's work is their own, and there is no class" if mode() ==
             "public" else "this app runs in local mode: one person on this machine")
    st.info(f"**The {page} is for a class**, and {where}. In class "
            "mode a teacher serves the app to students on the local network: each student joins with the class "
            "code and a display name, trains their own runs (nobody else sees them) and submits their best to the "
            "class board, ranked by a validation score on held-out training images; at the end the teacher "
            "reveals the test accuracies. The teacher view shows who is online and training, pauses training, "
            "sets limits and exports the class's runs. Start a class with:", icon=":material/school:")
    st.code(SERVE_COMMAND, language="bash")
    st.caption("It prints the students' link (with a QR code on the teacher view) and the teacher's link, which "
               "carries a secret token: keep that one to yourself.")


# --------------------------------------------------------------------------- the board
def _pct(x) -> str:
    return "" if x is None else f"{x:.1%}"


def board_rows(standings: Standings, viewer: Identity) -> list[dict]:
    """The board's table: rank, name, architecture, settings (without the seed), validation score; after the
    reveal, the test accuracy, each run's rank on the validation board and its seed too."""
    rows = []
    for r in standings.rows:
        e = r.entry
        you = viewer.role == "student" and r in standings.mine(viewer)
        row = {"rank": r.rank, "name": e.name + (" (you)" if you else ""), "run": e.run_id,
               "architecture": e.architecture, "settings": e.settings}
        if standings.revealed:
            row.update({"seed": r.seed, "test accuracy": _pct(r.test_accuracy), "validation rank": r.public_rank})
        row["validation score"] = e.score_text
        rows.append(row)
    return _cells(rows)


def draw_board(standings: Standings, viewer: Identity) -> None:
    """The board as ``viewer`` sees it, with a sentence on what it ranks by."""
    if standings.revealed:
        st.markdown("**The test accuracies are revealed**: the board is ranked by them (the *private* board). "
                    "*Validation rank* is each run's place on the board the class saw while it worked (the "
                    "*public* board): a run that drops far overfitted the images it was chosen on.")
    else:
        st.markdown(f"Ranked by **validation score**: the {METRIC.replace('_', ' ')} of the run's settings "
                    f"trained on {FOLDS - 1}/{FOLDS} of the training images and scored on the other {FOLDS}th, "
                    f"for each of {FOLDS} folds (mean ± spread). The test images are kept for the end: your "
                    "teacher reveals the test accuracies then, and each run's seed (training is repeatable, so "
                    "with the seed anyone could train a run again and read its test accuracy early).")
    if not standings.rows:
        st.info("**No runs on the board yet.**" + (" Train a run, then submit it above." if viewer.role == "student"
                                                   else ""), icon=":material/leaderboard:")
        return
    st.dataframe(board_rows(standings, viewer), key="board_table", hide_index=True)


def submit_ui(identity: Identity, history, dataset) -> None:
    """A student's submission: one of their finished runs on this dataset, scored on the shared pool."""
    board = class_board()
    try:
        dataset_key(dataset)
    except BoardError as exc:  # a student's upload: the class does not share it
        st.info(f"**Not for the board.** {str(exc)[:1].upper()}{str(exc)[1:]}.", icon=":material/info:")
        return
    try:
        runs = [r for r in history.runs() if r.status == "finished" and r.dataset == dataset.name]
    except CatdnnError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    if not runs:
        st.caption(f"Your finished runs on {dataset.name} will be listed here: train one on the **Train** page.")
        return
    labels = dict(zip([r.id for r in runs], compare(runs)[1]))  # each names what sets it apart from the others
    with st.form("board_submit_form"):
        run_id = st.selectbox("Your run", list(labels), format_func=labels.get, key="board_run")
        go = st.form_submit_button("Submit to the board", key="board_submit", type="primary",
                                   icon=":material/leaderboard:")
    st.caption(f"Scoring trains the run's settings {FOLDS} times (once per fold) on this server's workers. "
               f"At most {MAX_ENTRIES} runs of yours on the board; submitting a run again replaces its entry.")
    if not go:
        return
    if class_store().get_class(identity.class_code).paused:
        st.info("Your teacher has paused training: the scoring starts when it resumes.", icon=":material/pause:")
    bar = st.progress(0.0, text=f"Scoring run {run_id}: 0 of {FOLDS} folds trained")
    done = [0]

    def on_run(fold, result, score) -> None:  # a Streamlit call: where leaving the page stops the scoring
        done[0] += 1
        bar.progress(done[0] / FOLDS, text=f"Scoring run {run_id}: {done[0]} of {FOLDS} folds trained")

    try:
        entry = board.submit(identity, run_id, history, dataset, executor=shared_pool(), on_run=on_run)
    except CatdnnError as exc:
        bar.empty()
        st.error(f"**Not submitted.** {str(exc)[:1].upper()}{str(exc)[1:]}.", icon=":material/block:")
        return
    bar.empty()
    st.success(f"Run {entry.run_id} is on the board: validation score {entry.score_text}.",
               icon=":material/check_circle:")


def withdraw_ui(identity: Identity, standings: Standings) -> None:
    """A student takes one of their entries off the board (to make room for another: at most MAX_ENTRIES)."""
    mine = {r.entry.run_id: f"#{r.entry.run_id} {r.entry.architecture} · {r.entry.settings}"
            for r in standings.mine(identity)}
    if not mine:
        return
    with st.form("board_withdraw_form"):
        run_id = st.selectbox("Your run on the board", list(mine), format_func=mine.get, key="board_withdraw_run")
        go = st.form_submit_button("Take it off the board", key="board_withdraw", icon=":material/remove:")
    if go and class_board().withdraw(identity, [run_id]):
        st.rerun()


# --------------------------------------------------------------------------- the teacher view
def student_link(code: str) -> str:
    """The students' link: the one ``catdnn serve`` printed, else this page's address with ``?join=CODE``."""
    link = os.environ.get(CLASS_URL_ENV, "").strip()
    if link:
        return link
    base = (st.context.url or "").split("?")[0]
    for page in ("/Teacher", "/Class_board"):
        base = base.removesuffix(page)
    return f"{base or 'http://localhost:8501'}/?join={code}"


def _ago(seconds: float) -> str:
    return "now" if seconds < 5 else f"{seconds:.0f} s ago"


def online_rows(members, now: float | None = None) -> list[dict]:
    """Who is online: name, the page they are on, when they were last seen."""
    now = time.time() if now is None else now
    return _cells([{"name": m.name, "page": m.page, "seen": _ago(now - m.last_seen)} for m in members])


def job_rows(jobs, names: dict) -> list[dict]:
    """The pool's trainings (running, paused, queued) with the student's name ("" for a CLI or board run)."""
    return _cells([{"student": names.get(j.owner, ""), "state": j.state, "iterations": f"{j.iterations_done:,} / "
                    f"{j.iterations:,}", "run": j.label, "waited": f"{j.waited:.0f} s", "trained": f"{j.trained:.0f} s"}
                   for j in jobs])


def _cells(rows: list[dict]) -> list[dict]:
    """Rows for ``st.dataframe``, whose toolbar downloads them as CSV: every cell as the CSV writer has it
    (a display name such as ``-Bob`` is shown and downloaded as ``'-Bob``: OWASP's CSV injection)."""
    return [{k: csv_cell(v) for k, v in row.items()} for row in rows]


def _meminfo() -> dict:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, value = line.partition(":")
            out[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _rss(pid) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def server_resources(pids=()) -> dict:
    """The server's cores, load and memory, read from the OS (``/proc`` on Linux; what it cannot read is None):
    ``cores``, ``load`` (1-minute load average), ``memory_total``, ``memory_available`` and ``app_memory`` (the
    resident memory of this server process and of ``pids``, its training workers), in bytes."""
    mem = _meminfo()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    app = sum(_rss(p) for p in ("self", *pids))
    return {"cores": os.cpu_count(), "load": load, "memory_total": mem.get("MemTotal"),
            "memory_available": mem.get("MemAvailable"), "app_memory": app or None}


def _gib(n) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def draw_server(resources: dict) -> None:
    cols = st.columns(4)
    cols[0].metric("Cores", resources["cores"] or "?")
    cols[1].metric("Load (1 min)", "?" if resources["load"] is None else f"{resources['load']:.1f}")
    cols[2].metric(f"Memory free (of {_gib(resources['memory_total'])})", _gib(resources["memory_available"]))
    cols[3].metric("The app's memory", _gib(resources["app_memory"]))


def limits_form_ui(limits: Limits) -> Limits | None:
    """The per-student limits form; the new limits once submitted (None otherwise, or after drawing why not)."""
    with st.form("teacher_limits_form"):
        cols = st.columns(4)
        most = cols[0].number_input("Most iterations per run (0: no limit)", 0, 1_000_000,
                                    int(limits.max_iterations or 0), step=100, key="teacher_max_iterations")
        minutes = cols[1].number_input("Most minutes of training per run (0: no limit)", 0, 24 * 60,
                                       round((limits.max_seconds or 0) / 60), key="teacher_max_minutes",
                                       help="A run stops there, like a Stop click, and keeps its model so far.")
        at_once = cols[2].number_input("Runs at once per student", 1, 16, int(limits.runs_at_once),
                                       key="teacher_runs_at_once")
        cnn = cols[3].checkbox("Convolutional nets allowed", bool(limits.cnn_allowed), key="teacher_cnn_allowed")
        go = st.form_submit_button("Set the limits", key="teacher_limits_set")
    if not go:
        return None
    try:
        return replace(limits, max_iterations=int(most) or None, runs_at_once=int(at_once), cnn_allowed=bool(cnn),
                       max_seconds=60.0 * int(minutes) if minutes else None)
    except CatdnnError as exc:
        st.error(str(exc), icon=":material/error:")
        return None
