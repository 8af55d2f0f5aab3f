"""The Predict page against hostile uploads (issue 19): crafted model files, too many photos, decoding
each photo once."""

from __future__ import annotations

import io

import numpy as np
import pytest
from robustness_helpers import hostile_model_files

from catdnn.model_io import model_to_bytes
from tests.app_support import PREDICT, app, assert_clean


@pytest.fixture(scope="module")
def model_arrays(tiny_model) -> dict:
    with np.load(io.BytesIO(model_to_bytes(tiny_model))) as npz:
        return {k: npz[k] for k in npz.files}


def test_crafted_model_files_are_one_message_on_the_page(data_dir, model_arrays):
    at = app(PREDICT).run()
    at.radio(key="predict_source").set_value("file").run()
    for name, data in hostile_model_files(model_arrays).items():
        at.file_uploader(key="predict_model_file").set_value((name, data, "application/zip")).run()
        assert_clean(at)
        assert len(at.error) == 1 and at.error[0].value.startswith(f"{name}:"), [e.value for e in at.error]
