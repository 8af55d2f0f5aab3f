"""``catdnn app``: run the dashboard, from a checkout or from the installed package.

The app is ``dashboard.py``, ``pages/`` and ``ui/`` with its server settings in
``.streamlit/config.toml`` (only this machine may connect, the upload limit, XSRF: SECURITY.md). In
a checkout they sit at the top, next to ``catdnn/``; the wheel carries a copy of them as
``catdnn/app/`` (pyproject.toml). Streamlit reads ``.streamlit/config.toml`` from its working
folder, so the app runs in that folder, and the paths the user gave in the environment
(``$CATDNN_DATA_DIR``, ``$CATDNN_HOME``) are made absolute first. This module never imports
streamlit: it replaces the process with ``python -m streamlit run``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .data import ENV_VAR, HOME_ENV_VAR
from .errors import CatdnnError

#: The app's entry script (Streamlit's folder mode: pages/ sits next to it).
APP_SCRIPT = "dashboard.py"


def app_dir() -> Path:
    """The folder holding the app: the installed copy ``catdnn/app/``, else the checkout's top folder.

    Raises :class:`CatdnnError` when neither holds it (a copy of ``catdnn/`` alone).
    """
    here = Path(__file__).resolve().parent
    for folder in (here / "app", here.parent):
        if (folder / APP_SCRIPT).is_file() and (folder / "ui" / "__init__.py").is_file():
            return folder
    raise CatdnnError(f"the dashboard ({APP_SCRIPT}, pages/, ui/) is not installed next to {here}: install catdnn "
                      "from its wheel or checkout (pip install .), or run `streamlit run dashboard.py` in a checkout")


def app_command(port: int | None = None, options=()) -> list[str]:
    """The ``streamlit run`` command line of the app: ``options`` are Streamlit's (``--server.port 8502``)."""
    cmd = [sys.executable, "-m", "streamlit", "run"]
    if port is not None:
        cmd += ["--server.port", str(int(port))]
    return [*cmd, *options, str(app_dir() / APP_SCRIPT)]


def run_app(port: int | None = None, options=()) -> None:
    """Replace this process by the app's Streamlit server (never returns; Ctrl-C stops the server)."""
    cmd, folder = app_command(port, options), app_dir()
    env = dict(os.environ)
    for name in (ENV_VAR, HOME_ENV_VAR):  # relative to where the user typed the command, not the app's folder
        if env.get(name, "").strip():
            env[name] = str(Path(env[name]).expanduser().resolve())
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(folder)
    os.execve(sys.executable, cmd, env)
