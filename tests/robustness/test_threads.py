"""Item 4 (engine side): BLAS thread limiting is process-wide, has a documented default, and can be
overridden by the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("threadpoolctl")

from catdnn import threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_default_is_documented_and_env_overrides(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    assert threads.default_blas_threads() == threads.DEFAULT_BLAS_THREADS == 1
    monkeypatch.setenv(threads.ENV_VAR, "2")
    assert threads.default_blas_threads() == min(2, os.cpu_count() or 1)
    for junk in ("0", "-1", "many", "", "1.5"):
        monkeypatch.setenv(threads.ENV_VAR, junk)
        assert threads.default_blas_threads() == threads.DEFAULT_BLAS_THREADS


def test_limit_applies_to_the_whole_process_and_other_threads():
    code = (
        "import threading, numpy as np\n"
        "from catdnn.threads import limit_blas_threads, blas_thread_count\n"
        "assert limit_blas_threads() == 1\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(blas_thread_count())); t.start(); t.join()\n"
        "print(blas_thread_count(), seen[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(threads.ENV_VAR, None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    if out.stdout.split()[0] == "None":
        pytest.skip("no BLAS library found by threadpoolctl")
    assert out.stdout.split() == ["1", "1"]


def test_context_manager_restores():
    before = threads.blas_thread_count()
    if before is None:
        pytest.skip("no BLAS library found by threadpoolctl")
    with threads.blas_threads(1):
        assert threads.blas_thread_count() == 1
    assert threads.blas_thread_count() == before


def test_bad_limit_is_refused():
    with pytest.raises(ValueError):
        threads.limit_blas_threads(0)
