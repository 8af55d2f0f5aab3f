"""The engine never imports streamlit (the dashboard imports the engine, not the other way)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_catdnn_does_not_import_streamlit():
    code = (
        "import sys, catdnn, catdnn.cli, catdnn.data, catdnn.train, catdnn.model_io, catdnn.images; "
        "import pkgutil, importlib; "
        "[importlib.import_module('catdnn.' + m.name) for m in pkgutil.iter_modules(catdnn.__path__) "
        " if m.name != '__main__']; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'plotly', 'torch')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
