"""Shared test setup: the dataset comes from ../shared/data (never the internet)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()


def _dataset_dir() -> Path:
    env = os.environ.get("CATDNN_DATA_DIR")
    return Path(env) if env else SHARED_DATA


# Every test (and every subprocess it starts) reads the dataset from the shared folder, so nothing
# ever tries to download it.
os.environ.setdefault("CATDNN_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding train_catvnoncat.h5 and test_catvnoncat.h5."""
    d = _dataset_dir()
    if not (d / "train_catvnoncat.h5").is_file():
        pytest.fail(f"the dataset is not in {d}: set CATDNN_DATA_DIR to the folder holding the .h5 files")
    return d


@pytest.fixture(scope="session")
def dataset(data_dir):
    """The real dataset, loaded once."""
    from catdnn import load_dataset

    return load_dataset(data_dir)
