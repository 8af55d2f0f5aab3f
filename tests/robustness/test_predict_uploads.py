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


def png(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def verdicts(at) -> int:
    return len([c for c in at.caption if c.value.startswith("Verdict:")])


def test_predict_judges_a_bounded_number_of_photos_and_frees_the_rest(data_dir, tiny_model, monkeypatch):
    """Issue 19, A10: 20 uploads of 20 MB each once stayed in the server's memory (387 MB); the page judges
    the first photos within its limit, says which it dropped and removes them from Streamlit's store."""
    import re

    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

    removed = []
    real_remove = MemoryUploadedFileManager.remove_file
    monkeypatch.setattr(MemoryUploadedFileManager, "remove_file",
                        lambda self, session_id, file_id: (removed.append(file_id),
                                                           real_remove(self, session_id, file_id))[1])
    at = app(PREDICT, tiny_model).run()
    n = 15
    at.file_uploader(key="predict_files").set_value([(f"p{i:02d}.png", png(i), "image/png") for i in range(n)]).run()
    assert_clean(at)
    [warning] = [w.value for w in at.warning if "dropped" in w.value]
    limit = int(re.search(r"At most (\d+) photos", warning).group(1))
    assert limit < n and verdicts(at) == limit
    assert f"{n - limit} were dropped" in warning and f"p{limit:02d}.png" in warning
    assert len(removed) == n - limit  # no longer held in the server's memory


def test_predict_decodes_each_upload_once(data_dir, tiny_model, monkeypatch):
    """Every rerun (a toggle, another widget) once decoded every photo twice again."""
    from catdnn import images

    calls = []
    for fn in ("prepare_image", "preview_image", "load_image", "prepare_and_preview"):
        real = getattr(images, fn)
        monkeypatch.setattr(images, fn, lambda data, name=None, _real=real, _fn=fn: (calls.append((_fn, name)),
                                                                                      _real(data, name))[1])
    at = app(PREDICT, tiny_model).run()
    at.file_uploader(key="predict_files").set_value([("a.png", png(1), "image/png"), ("b.png", png(2), "image/png"),
                                                     ("bad.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png")])
    at.run()
    for saliency in (False, True):
        at.toggle(key="predict_saliency").set_value(saliency).run()
        assert_clean(at)
        assert verdicts(at) == 2 and len(at.error) == 1
    assert sorted(calls) == [("prepare_and_preview", "a.png"), ("prepare_and_preview", "b.png"),
                             ("prepare_and_preview", "bad.png")]  # one decode per photo, whatever the reruns


def test_an_uploaded_model_file_is_read_once_not_on_every_rerun(data_dir, tiny_model, monkeypatch):
    from catdnn import model_io

    calls = []
    real = model_io.load_model
    monkeypatch.setattr(model_io, "load_model", lambda data, name=None: (calls.append(name), real(data, name))[1])
    at = app(PREDICT).run()
    at.radio(key="predict_source").set_value("file").run()
    at.file_uploader(key="predict_model_file").set_value(("m.npz", model_to_bytes(tiny_model), "application/zip"))
    at.file_uploader(key="predict_files").set_value(("a.png", png(1), "image/png")).run()
    for saliency in (False, True):
        at.toggle(key="predict_saliency").set_value(saliency).run()
        assert_clean(at)
        assert verdicts(at) == 1
    assert calls == ["m.npz"]
    at.file_uploader(key="predict_model_file").set_value(("m.npz", b"not a zip", "application/zip")).run()
    assert at.error[0].value.startswith("m.npz:") and verdicts(at) == 0 and calls == ["m.npz", "m.npz"]
