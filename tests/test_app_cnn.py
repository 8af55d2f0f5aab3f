"""The convolutional net in the app: the cnn preset on the Train page (a small budget), then the
Misclassified, Inside and Predict pages with that model; the architecture field for either kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import INSIDE, MISCLASSIFIED, PREDICT, TRAIN, app, assert_clean, images, session_of

from catdnn import PRESETS
from catdnn.model_io import model_to_bytes

ITERATIONS = 50  # the slider's smallest step: about 7 epochs of the cnn preset


def chelsea_bytes() -> bytes:
    skdata = pytest.importorskip("skimage.data")
    return (Path(skdata.data_dir) / "chelsea.png").read_bytes()


@pytest.fixture(scope="module")
def trained(data_dir):
    """The Train page after a cnn-preset run of ITERATIONS iterations, and its model."""
    at = app(TRAIN).run()
    at.segmented_control(key="train_preset").set_value("cnn").run()
    assert at.text_input(key="train_arch").value == PRESETS["cnn"].arch
    at.slider(key="train_iters").set_value(ITERATIONS)
    at.button(key="train_submit").click().run()
    return at, session_of(at).run.model


def test_the_cnn_preset_trains_on_the_train_page(trained):
    at, model = trained
    assert_clean(at)
    run = session_of(at).run
    assert run.status == "finished" and model is not None and model.is_cnn
    assert model.config.arch == PRESETS["cnn"].arch and model.iterations_done == ITERATIONS
    assert model.params[0][0].shape == (16, 27)  # 16 filters of 3×3×3
    assert any("Finished" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{model.test_accuracy:.2f}"
    assert "Test balanced accuracy" in metrics and "Test AUC" in metrics
    assert any("**CNN solver: a convolutional net" in c.value for c in at.caption)  # not "Cnn solver"
    assert len(run.history) > 5 and run.accuracy_history  # the curves were recorded
    assert len(at.get("download_button")) == 1


def test_the_architecture_field_takes_an_mlp_spec_and_refuses_a_bad_one(data_dir):
    at = app(TRAIN).run()
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    assert at.text_input(key="train_arch").value == ""
    at.text_input(key="train_arch").set_value("conv16,dense8,conv4")
    at.button(key="train_submit").click().run()
    assert_clean(at)
    assert any("Cannot train" in e.value and "after a dense layer" in e.value for e in at.error)
    assert session_of(at).run is None
    at.text_input(key="train_arch").set_value("dense5")
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    model = session_of(at).run.model
    assert not model.is_cnn and model.layers == (12288, 5, 1)


def test_misclassified_shows_the_cnn_mistakes_and_the_class_balanced_scores(trained):
    _, model = trained
    at = app(MISCLASSIFIED, model).run()
    assert_clean(at)
    line = next(m.value for m in at.markdown if m.value.startswith("**Test set"))
    assert "balanced accuracy" in line and "AUC" in line
    assert images(at) >= 1 or any("None at this threshold" in s.value for s in at.success)


def test_inside_shows_the_filters_and_feature_maps_of_a_cnn(trained):
    _, model = trained
    at = app(INSIDE, model).run()
    assert_clean(at)
    headers = [h.value for h in at.header]
    assert "What the first convolution looks for" in headers and "Feature maps of one image" in headers
    assert "Gradient check" not in headers  # the MLP's views say they do not apply
    assert any("for MLPs" in i.value for i in at.info)
    assert images(at) == 16 + 1 + 16  # the filters, the image, conv 1's maps
    at.segmented_control(key="inside_conv_layer").set_value(3).run()
    assert_clean(at)
    assert images(at) == 16 + 1 + 64
    at.number_input(key="inside_index").set_value(7).run()
    assert_clean(at)
    assert any("image **#7**" in m.value for m in at.markdown)


def test_predict_with_a_cnn_gives_a_verdict_and_a_saliency_map(trained):
    _, model = trained
    at = app(PREDICT, model).run()
    at.file_uploader(key="predict_files").set_value(("chelsea.png", chelsea_bytes(), "image/png")).run()
    assert_clean(at)
    assert len(at.error) == 0
    assert len([c for c in at.caption if c.value.startswith("Verdict:")]) == 1
    assert images(at) == 3  # the photo, what the network sees, where it looks


def test_predict_with_an_uploaded_cnn_model_file(trained):
    _, model = trained
    at = app(PREDICT).run()
    at.radio(key="predict_source").set_value("file").run()
    at.file_uploader(key="predict_model_file").set_value(("cnn.npz", model_to_bytes(model), "application/zip"))
    at.file_uploader(key="predict_files").set_value(("chelsea.png", chelsea_bytes(), "image/png"))
    at.run()
    assert_clean(at)
    # a 50-iteration run of the cnn preset's network is no preset: named by its architecture
    assert any(c.value.startswith(f"Model: custom ({model.config.arch})") for c in at.caption)
    assert len([c for c in at.caption if c.value.startswith("Verdict:")]) == 1
