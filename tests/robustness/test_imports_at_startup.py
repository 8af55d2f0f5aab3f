"""Modules the app would otherwise import lazily from several sessions' threads at once are imported
when the app starts (issue 19, A14: three sessions importing pandas through st.plotly_chart at the same
moment met a partially initialised module)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pandas_is_imported_with_the_app_glue_before_any_page_draws():
    code = "import sys\nimport ui\nprint('pandas' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "True"
