"""`pip install .` (issue 15 §5): a wheel built from the checkout installs into a fresh virtual environment,
declares requirements.txt's dependencies, and its `catdnn` command works outside the checkout, `catdnn app`
included.

Nothing is downloaded: the wheel is built without build isolation (setuptools and wheel come from
requirements-dev.txt) and installed with --no-index --no-deps; the new environment sees this
interpreter's packages (numpy, streamlit, ...) through a .pth file. (``venv --system-site-packages``
alone would not do: run from a virtual environment, it exposes the base Python's packages, not this one's.)
"""

from __future__ import annotations

import os
import shutil
import site
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs a wheel, starts a Streamlit server: seconds

ROOT = Path(__file__).resolve().parent.parent
BIN = "Scripts" if os.name == "nt" else "bin"


def _requirements() -> list[str]:
    """requirements.txt's requirement lines, comments left out."""
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert done.returncode == 0, f"{cmd} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (the build's own files stay out of the worktree)."""
    src = tmp_path_factory.mktemp("checkout") / "catdnn"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "data", ".venv", "venv", "__pycache__", "build", "dist", "*.egg-info", ".*_cache", ".hypothesis",
        "artifacts"))
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out),
          str(src)])
    (built,) = out.glob("catdnn-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh virtual environment with the wheel installed; returns (its bin folder, a folder outside the
    checkout to run in, the environment variables)."""
    home = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(home)])
    py = home / BIN / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # after its own packages
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    _run([str(py), "-m", "pip", "install", "--no-index", "--no-deps", str(wheel)], env=env)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    return home / BIN, elsewhere, env


def test_the_wheel_holds_the_engine_and_the_app_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names} == {"catdnn", wheel.name.split("-py3")[0] + ".dist-info"}
    engine = {f"catdnn/{p.name}" for p in (ROOT / "catdnn").glob("*.py")}
    patterns = ("dashboard.py", "pages/*.py", "ui/*.py", ".streamlit/config.toml")
    app = {f"catdnn/app/{p.relative_to(ROOT).as_posix()}" for pattern in patterns for p in ROOT.glob(pattern)}
    assert len(app) > 10 and engine | app <= names
    assert not any(n.startswith(("catdnn/app/tests", "catdnn/app/bench", "catdnn/app/data")) for n in names)


def test_the_wheel_declares_requirements_txt_as_its_dependencies(wheel):
    meta = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == _requirements()
    entry_points = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/entry_points.txt").decode()
    assert "catdnn = catdnn.__main__:run" in entry_points


def test_the_installed_catdnn_command_is_python_m_catdnn(venv, tmp_path):
    bindir, elsewhere, env = venv
    where = _run([str(bindir / "python"), "-c", "import catdnn, catdnn.data as d; print(catdnn.__file__); "
                  "print(d.DEFAULT_DATA_DIR)"], cwd=elsewhere, env=env).stdout.split("\n")
    assert Path(where[0]).is_relative_to(bindir.parent)  # the installed copy, not the checkout
    assert Path(where[1]) == Path(env["CATDNN_HOME"]) / "data"  # downloads go to the user's folder, not site-packages
    helped = _run([str(bindir / "catdnn"), "--help"], cwd=elsewhere, env=env).stdout
    assert helped.startswith("usage: catdnn ") and " app " in helped and " train " in helped
    module = _run([str(bindir / "python"), "-m", "catdnn", "--help"], cwd=elsewhere, env=env).stdout
    assert helped == module.replace("python -m catdnn", "catdnn")
    info = _run([str(bindir / "catdnn"), "info"], cwd=elsewhere, env=env).stdout  # the dataset of $CATDNN_DATA_DIR
    assert "train: 209 images" in info
    bad = subprocess.run([str(bindir / "catdnn"), "train", "--lr", "-1"], capture_output=True, text=True,
                         cwd=elsewhere, env=env, timeout=120)
    assert bad.returncode == 2 and "learning rate" in bad.stderr and "Traceback" not in bad.stderr


def test_the_installed_app_runs_from_its_own_copy(venv):
    bindir, elsewhere, env = venv
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "from catdnn.serve import app_dir\n"
        "at = AppTest.from_file(str(app_dir() / 'dashboard.py'), default_timeout=120).run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "print(at.title[0].value)\n"
        "print(sys.modules['ui'].__file__)\n"
    )
    title, ui_file = _run([str(bindir / "python"), "-c", script], cwd=elsewhere, env=env).stdout.splitlines()[-2:]
    assert title.startswith("catdnn")
    assert Path(ui_file).is_relative_to(bindir.parent)  # ui/ from the wheel, not the checkout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_catdnn_app_serves_the_dashboard_with_its_server_settings(venv, tmp_path):
    bindir, elsewhere, env = venv
    port = _free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        server = subprocess.Popen([str(bindir / "catdnn"), "app", "--port", str(port)], cwd=elsewhere, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline, health = time.monotonic() + 120, ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
                    health = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert health == "ok", log.read_text()
    finally:
        server.terminate()
        server.wait(30)
    # the shipped .streamlit/config.toml was read: it pins the address (Streamlit then prints one URL, no
    # "Network URL") and runs headless (no first-run e-mail prompt)
    printed = log.read_text()
    assert f"URL: http://127.0.0.1:{port}" in printed and "Network URL" not in printed, printed


def test_catdnn_app_without_the_apps_files_says_so(tmp_path):
    shutil.copytree(ROOT / "catdnn", tmp_path / "catdnn", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "catdnn", "app"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: the dashboard (dashboard.py, pages/, ui/) is not installed")
