"""Shared by the AppTest suites: the app's scripts, a session with a trained model, what a page shows.

Sessions are set up and read only through ``ui.state``'s public functions (``session()`` and
``SessionState.keep``), never by writing its keys into ``st.session_state`` by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the pages import the app's `ui` package

from streamlit.testing.v1 import AppTest  # noqa: E402

from ui import state  # noqa: E402

TIMEOUT = 120  # seconds per AppTest run: loading the dataset and training take more than the default 3 s
ENTRY = "dashboard.py"
TRAIN = "pages/1_Train.py"
MISCLASSIFIED = "pages/2_Misclassified.py"
INSIDE = "pages/3_Inside_the_network.py"
PREDICT = "pages/4_Predict.py"
RUNS = "pages/5_Runs.py"
LESSONS = "pages/6_Lessons.py"
STEP = "pages/7_Step.py"
BOARD = "pages/8_Class_board.py"
TEACHER = "pages/9_Teacher.py"
#: Every page script under pages/, in the sidebar's order (by number prefix).
PAGES = [f"pages/{p.name}" for p in sorted((ROOT / "pages").glob("*.py"), key=lambda p: int(p.name.split("_")[0]))]


def app(path: str, *models) -> AppTest:
    """An AppTest of ``path`` (relative to the project) whose session holds ``models``, the last one current."""
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    for model in models:
        give_model(at, model)
    return at


def give_model(at: AppTest, model) -> str:
    """Put a trained model into ``at``'s session as the current one, as a finished run does; returns its name."""
    name, _dropped = state.session(at.session_state).keep(model)
    return name


def session_of(at: AppTest) -> state.SessionState:
    """The session's models and last run, as the pages see them."""
    return state.session(at.session_state)


def assert_clean(at: AppTest) -> None:
    """No exception element (the traceback a user would see)."""
    assert len(at.exception) == 0, [e.value for e in at.exception]


def images(at: AppTest) -> int:
    return len(at.get("image"))


def class_home(tmp_path: Path, monkeypatch) -> Path:
    """A fresh catdnn folder (its own class store and run history) as ``$CATDNN_HOME``, with fresh rate limiters
    (3 misses, 50 joins) so that no test inherits another's counts; returns the folder."""
    from catdnn import classroom
    from catdnn.classroom import RateLimiter

    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    monkeypatch.setattr(classroom, "FAILURES", RateLimiter(3, 100))
    monkeypatch.setattr(classroom, "JOINS", RateLimiter(50, 500))
    return tmp_path
