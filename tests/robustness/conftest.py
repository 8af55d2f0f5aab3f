"""Helpers for the robustness suite: real photos, image bytes in every format, tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def skimage_dir() -> Path:
    """scikit-image's bundled sample photos (present offline: chelsea.png, coffee.png, rocket.jpg, ...)."""
    skdata = pytest.importorskip("skimage.data")
    return Path(skdata.data_dir)


@pytest.fixture(scope="session")
def chelsea_rgb():
    """scikit-image's cat photo as an RGB PIL image (451×300)."""
    from PIL import Image

    skdata = pytest.importorskip("skimage.data")
    return Image.fromarray(skdata.chelsea())


@pytest.fixture(scope="session")
def tiny_model():
    """A small, valid catdnn model ([12288, 3, 1]) built without training."""
    from catdnn.config import TrainConfig
    from catdnn.data import N_X
    from catdnn.model import Model
    from catdnn.network import init_params

    config = TrainConfig(layers=(N_X, 3, 1), iterations=10, init="xavier", seed=3)
    params = init_params(config.layers, config.init, config.seed)
    return Model(params=params, config=config, history=[(0, 0.69)], iterations_done=10,
                 train_accuracy=0.5, test_accuracy=0.5)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


@pytest.fixture()
def no_decoding(monkeypatch):
    """Record every call that would decode pixels; the list must stay empty for a
    refused (bomb or oversized) image."""
    from PIL import Image, ImageFile, WebPImagePlugin

    calls = []
    for cls in (Image.Image, ImageFile.ImageFile, WebPImagePlugin.WebPImageFile):
        original = cls.__dict__.get("load")
        if original is None:
            continue

        def spy(self, *a, _original=original, **kw):
            calls.append(type(self).__name__)
            return _original(self, *a, **kw)

        monkeypatch.setattr(cls, "load", spy)
    return calls
