"""Shared test setup: the dataset comes from ../shared/data (never the internet)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()


def _dataset_dir() -> Path:
    """$CATDNN_DATA_DIR, else ../shared/data (CI), else the project's data/ folder."""
    env = os.environ.get("CATDNN_DATA_DIR")
    if env:
        return Path(env)
    for folder in (SHARED_DATA, ROOT / "data"):
        if (folder / "train_catvnoncat.h5").is_file():
            return folder
    return SHARED_DATA


# Every test (and every subprocess it starts) reads the dataset from one folder, so nothing ever
# tries to download it.
os.environ["CATDNN_DATA_DIR"] = str(_dataset_dir())

# Nothing a test does lands in the user's real catdnn folder (~/.catdnn: the run history, imported
# datasets): the whole session, and every subprocess and server it starts, uses a temporary one.
TEST_HOME = Path(tempfile.mkdtemp(prefix="catdnn-test-home-"))
os.environ["CATDNN_HOME"] = str(TEST_HOME)


@pytest.fixture(scope="session", autouse=True)
def _test_home():
    """The temporary CATDNN_HOME of this test session, removed at its end."""
    yield TEST_HOME
    shutil.rmtree(TEST_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding train_catvnoncat.h5 and test_catvnoncat.h5."""
    d = _dataset_dir()
    if not (d / "train_catvnoncat.h5").is_file():
        pytest.fail(
            f"the dataset is not in {d}: run `python -m catdnn download` (fills data/) or set "
            "CATDNN_DATA_DIR to a folder holding train_catvnoncat.h5 and test_catvnoncat.h5"
        )
    return d


@pytest.fixture(scope="session")
def dataset(data_dir):
    """The real dataset, loaded once."""
    from catdnn import load_dataset

    return load_dataset(data_dir)


class _Poisoned:
    """A test split that fails any use: a score by cross-validation (the board's, a search's) must never read it."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")


@pytest.fixture
def poisoned(dataset, monkeypatch):
    """The dataset with a poisoned test split, for the code under test and for the fold runs (which load it by
    folder, through catdnn.sweep.cached_dataset)."""
    import importlib
    from dataclasses import replace

    ds = replace(dataset, test=_Poisoned())
    monkeypatch.setattr(importlib.import_module("catdnn.sweep"), "cached_dataset", lambda data_dir, **kw: ds)
    return ds
