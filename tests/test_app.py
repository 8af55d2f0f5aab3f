"""The dashboard under Streamlit's AppTest: every page runs, trains, shows its mistakes, predicts.

Each page script is also run on its own (as when opened first by URL), with a trained model put into
its session where a test needs one (tests/app_support.py). The dataset comes from $CATDNN_DATA_DIR
(see conftest.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from catdnn import PRESETS, TrainConfig, fit
from catdnn.data import COURSE_NAME
from catdnn.images import image_to_input, prepare_image
from catdnn.model import Model
from catdnn.model_io import model_to_bytes
from tests.app_support import (
    BOARD,
    ENTRY,
    INSIDE,
    LESSONS,
    MISCLASSIFIED,
    PAGES,
    PREDICT,
    RUNS,
    STEP,
    TEACHER,
    TRAIN,
    app,
    assert_clean,
    images,
    session_of,
)


def chelsea_bytes() -> bytes:
    from skimage import data as skdata

    return (Path(skdata.data_dir) / "chelsea.png").read_bytes()


@pytest.fixture(scope="module")
def model(dataset):
    """The course's two-layer model (2500 iterations, 0.72 test accuracy): at threshold 0.5 it makes
    both kinds of mistakes on the test set (a 300-iteration model answered non-cat for every image)."""
    return fit(PRESETS["two-layer"], dataset)


# --------------------------------------------------------------------------- smoke
def test_home_page(data_dir):
    at = app(ENTRY).run()
    assert_clean(at)
    assert at.title[0].value.startswith("catdnn")
    baseline = [m for m in at.metric if "cat" in m.label]
    assert baseline and baseline[0].value == "0.66"  # always answering "cat" on the test set
    assert any("72 cats, 137 non-cats" in m.value for m in at.markdown)
    assert any("33 cats, 17 non-cats" in m.value for m in at.markdown)
    assert images(at) == 12
    assert len(at.get("plotly_chart")) == 1
    latex = [e.proto.body for e in at.latex]
    assert len(latex) == 4 and "W^{[l]} A^{[l-1]} + b^{[l]}" in latex[0] and r"\alpha" in latex[3]


TITLES = {TRAIN: "Train", MISCLASSIFIED: "Misclassified", INSIDE: "Inside the network", PREDICT: "Predict",
          RUNS: "Runs", LESSONS: "Lessons", STEP: "Step", BOARD: "Class board", TEACHER: "Teacher"}
OFFER_KEYS = {MISCLASSIFIED: "mis_train_deep", INSIDE: "inside_train_deep", PREDICT: "predict_train_deep"}


def sidebar_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.sidebar.caption]


@pytest.fixture
def no_runs(tmp_path, monkeypatch):
    """An empty run history: the sidebar says "No model trained yet." only to a user with no saved run (the test
    session's history holds the runs other tests kept)."""
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))


def test_the_pages_folder_holds_the_pages_in_order():
    assert PAGES == [TRAIN, MISCLASSIFIED, INSIDE, PREDICT, RUNS, LESSONS, STEP, BOARD, TEACHER]


@pytest.mark.parametrize("page", PAGES)
def test_page_opened_first_by_url(data_dir, no_runs, page):
    """Each page works on its own in a fresh session; without a model it says so and offers one."""
    at = app(page).run()
    assert_clean(at)
    assert at.title[0].value == TITLES[page]
    if page == TRAIN:
        assert at.button(key="train_submit")
        assert any("press **Train**" in i.value for i in at.info)
    elif page in OFFER_KEYS:
        assert any("No model yet" in i.value for i in at.info)
        assert at.button(key=OFFER_KEYS[page])
    assert images(at) == 0
    assert sidebar_captions(at) == ["No model trained yet."]


@pytest.mark.parametrize("page", [ENTRY, *PAGES])
def test_every_page_opened_first_names_the_model_in_the_sidebar(data_dir, model, page):
    """The sidebar looks the same whichever page a visitor opens first (each calls ui.page_setup)."""
    at = app(page, model).run()
    assert_clean(at)
    assert sidebar_captions(at) == [f"Current model: two-layer (7) on {COURSE_NAME}, test {model.test_accuracy:.2f}"]


def test_navigation_reaches_every_page(data_dir):
    at = app(ENTRY).run()
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
        assert at.title[0].value == TITLES[page]


@pytest.mark.parametrize("page", [MISCLASSIFIED, INSIDE])
def test_the_sidebar_names_the_model_on_pages_that_stop_early(data_dir, no_runs, model, page):
    """Pages without a model end with st.stop(): the sidebar caption must be drawn anyway."""
    at = app(ENTRY).run()
    at.switch_page(page).run()
    assert_clean(at)
    assert any("No model yet" in i.value for i in at.info)  # the page stopped early
    assert sidebar_captions(at) == ["No model trained yet."]

    at = app(ENTRY, model).run()
    at.switch_page(page).run()
    assert_clean(at)
    assert sidebar_captions(at) == [f"Current model: two-layer (7) on {COURSE_NAME}, test {model.test_accuracy:.2f}"]


# --------------------------------------------------------------------------- train
def test_train_a_short_run(data_dir):
    at = app(TRAIN).run()
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    assert at.text_input(key="train_hidden").value == "7"
    assert at.selectbox(key="train_init").value == "small"
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    session = session_of(at)
    run = session.run
    assert run.status == "finished"
    model = run.model
    assert model.iterations_done == 100 and model.layers == (12288, 7, 1)
    assert session.current_model is model and list(session.models.values()) == [model]
    assert any("Finished" in s.value and "100 iterations" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Train accuracy"] == f"{model.train_accuracy:.2f}"
    assert metrics["Test accuracy"] == f"{model.test_accuracy:.2f}"
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the cost curve and the accuracy curves
    assert len(run.history) > 10 and run.history[0][0] == 0
    assert len(at.get("download_button")) == 1
    assert not [b for b in at.button if b.key == "train_stop"]  # the Stop button is gone after the run


def test_train_rejects_a_bad_layer_list(data_dir):
    at = app(TRAIN).run()
    at.text_input(key="train_hidden").set_value("20, seven, 5")
    at.button(key="train_submit").click().run()
    assert_clean(at)
    assert len(at.error) == 1 and "'seven'" in at.error[0].value and "not a whole number" in at.error[0].value
    assert session_of(at).run is None and not session_of(at).models
    assert at.segmented_control(key="train_preset").value == "custom"


def test_a_blank_layer_list_trains_logistic_regression_and_says_so(data_dir):
    at = app(TRAIN).run()
    at.text_input(key="train_hidden").set_value("  ")
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    assert len(at.error) == 0
    run = session_of(at).run
    assert run.status == "finished" and run.model.layers == (12288, 1)
    notes = [i.value for i in at.info if "No hidden layer" in i.value]
    assert len(notes) == 1 and "logistic regression" in notes[0] and "first model" in notes[0]
    assert at.info[0].value == notes[0]  # above the run's result and any warning

    at.text_input(key="train_hidden").set_value("7")  # a network with a hidden layer: no note
    at.button(key="train_submit").click().run()
    assert session_of(at).run.model.layers == (12288, 7, 1)
    assert not [i for i in at.info if "No hidden layer" in i.value]


def test_a_diverging_run_ends_with_a_warning_and_keeps_no_model(data_dir, model):
    # eight ReLU layers with He init at learning rate 1 blow up at once (cost 0.75, then 22.8)
    at = app(TRAIN, model).run()
    at.text_input(key="train_hidden").set_value("20, 20, 20, 20, 20, 20, 20, 20")
    at.selectbox(key="train_init").set_value("he")
    at.select_slider(key="train_lr").set_value(1.0)
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    session = session_of(at)
    assert session.run.status == "diverged" and session.run.model is None
    assert list(session.models.values()) == [model]  # the model from before is still the current one
    assert session.current_model is model
    warning = " ".join(w.value for w in at.warning)
    assert "diverged" in warning and "cost exploded" in warning and "smaller learning rate" in warning
    assert len(at.get("download_button")) == 0


def test_a_stopped_run_is_shown_with_its_partial_model(data_dir, monkeypatch):
    """What the page shows after the rerun that a Stop click causes (the browser test clicks it).

    A Stop click reaches the training loop as Streamlit's stop signal, raised by the next redraw;
    here the second redraw raises it (st.stop()), then the page runs again as after the click.
    """
    import streamlit as st

    import ui.training

    draw = ui.training.draw_training_frame

    def stop_at_the_second_redraw(trainer, progress, frame):
        draw(trainer, progress, frame)
        if frame == 2:
            st.stop()

    monkeypatch.setattr(ui.training, "draw_training_frame", stop_at_the_second_redraw)
    at = app(TRAIN).run()
    at.text_input(key="train_hidden").set_value("100")
    at.slider(key="train_iters").set_value(10_000)  # tens of seconds: the stop lands midway
    at.button(key="train_submit").click().run()
    at.run()
    assert_clean(at)
    partial = session_of(at).current_model
    assert partial.status == "stopped" and 0 < partial.iterations_done < 10_000
    assert any("Stopped" in w.value and "partial model is kept" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["Iterations"] == f"{partial.iterations_done:,} / 10,000"
    assert len(at.get("download_button")) == 1
    assert f"stopped at {partial.iterations_done:,}/10,000" in sidebar_captions(at)[0]


# --------------------------------------------------------------------------- memory per session
def zero_model(hidden: int) -> Model:
    """A [12288, hidden, 1] model of zeros (np.zeros: the pages are not touched, so no real memory)."""
    config = TrainConfig(layers=(12288, hidden, 1))
    params = [(np.zeros((hidden, 12288)), np.zeros((hidden, 1))), (np.zeros((1, hidden)), np.zeros((1, 1)))]
    return Model(params=params, config=config)


def test_a_session_keeps_at_most_1_gib_of_weights_oldest_dropped_first():
    from ui.state import SessionState

    session = SessionState()
    names = []
    for run in (1, 2, 3):  # hidden layer 5400: about 506 MiB of weights each, two fit in 1 GiB (SECURITY.md)
        name, dropped = session.keep(zero_model(5400))
        names.append(name)
        assert session.current == name and session.current_model.config.layers == (12288, 5400, 1)
        assert dropped == ([] if run < 3 else [names[0]])
    assert list(session.models) == names[1:]
    assert sum(m.nbytes for m in session.models.values()) <= 1024**3

    # the count limit still holds for small models
    session = SessionState()
    for _ in range(session.max_models + 2):
        session.keep(zero_model(3))
    assert len(session.models) == session.max_models and next(iter(session.models)).startswith("#3 ")


def test_the_train_page_says_which_models_were_dropped(data_dir, model):
    at = app(TRAIN, model, replace(model))
    oldest, older = session_of(at).models
    session_of(at).max_bytes = int(2.5 * model.nbytes)  # room for two and a half: the third run drops the oldest
    at.run()
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    session = session_of(at)
    assert list(session.models) == [older, session.current] and session.current.startswith("#3 ")
    dropped = [i.value for i in at.info if "dropped" in i.value]
    assert len(dropped) == 1 and f"**{oldest}**" in dropped[0] and older not in dropped[0], dropped


# --------------------------------------------------------------------------- misclassified
def test_misclassified_shows_the_mistakes_for_the_threshold(dataset, model):
    p = model.predict_proba(dataset.test.X)
    cat = dataset.test.labels == 1
    at = app(MISCLASSIFIED, model).run()
    assert_clean(at)
    wrong = int(np.sum((p > 0.5) != cat))
    expected = {"TP": int(np.sum((p > 0.5) & cat)), "FP": int(np.sum((p > 0.5) & ~cat)),
                "FN": int(np.sum((p <= 0.5) & cat)), "TN": int(np.sum((p <= 0.5) & ~cat))}
    assert expected["FP"] > 0 and expected["FN"] > 0 and expected["TP"] > 0 and expected["TN"] > 0, expected
    assert wrong == expected["FP"] + expected["FN"] == 14  # the course's 0.72 on 50 test images
    for cell, n in expected.items():
        assert at.button(key=f"mis_cell_{cell}").label.endswith(f" {n} {cell}")
    assert images(at) == wrong
    assert at.subheader[0].value == f"Mistakes: {wrong} images"
    said = [c.value for c in at.caption if "P(cat) = " in c.value]
    assert sum("said **cat**" in c for c in said) == expected["FP"]  # the grid shows both kinds of mistake
    assert sum("said **non-cat**" in c for c in said) == expected["FN"]

    at.slider(key="mis_threshold").set_value(0.3).run()
    wrong_03 = int(np.sum((p > 0.3) != cat))
    assert images(at) == wrong_03
    assert at.button(key="mis_cell_FP").label.endswith(f" {int(np.sum((p > 0.3) & ~cat))} FP")

    at.button(key="mis_cell_TP").click().run()  # a cell of the confusion matrix filters the grid
    assert images(at) == int(np.sum((p > 0.3) & cat))
    at.button(key="mis_cell_errors").click().run()
    assert images(at) == wrong_03


def test_misclassified_is_sorted_by_confidence_and_can_show_the_training_set(dataset, model):
    at = app(MISCLASSIFIED, model).run()
    captions = [c.value for c in at.caption if "P(cat) = " in c.value]
    wrongness = []
    for c in captions:
        prob = float(c.split("P(cat) = ")[1].split()[0])
        wrongness.append(prob if "true **non-cat**" in c else round(1 - prob, 2))  # captions show 2 decimals
    assert len(wrongness) == 14 and wrongness == sorted(wrongness, reverse=True)

    at.toggle(key="mis_train_set").set_value(True).run()
    assert_clean(at)
    p = model.predict_proba(dataset.train.X)
    assert images(at) == int(np.sum((p > 0.5) != (dataset.train.labels == 1)))
    assert "Training set, 209 images" in at.markdown[0].value


# --------------------------------------------------------------------------- predict
def test_predict_gives_a_verdict_for_a_real_photo(data_dir, model):
    at = app(PREDICT, model).run()
    at.file_uploader(key="predict_files").set_value(("chelsea.png", chelsea_bytes(), "image/png")).run()
    assert_clean(at)
    assert len(at.error) == 0
    verdicts = [c.value for c in at.caption if c.value.startswith("Verdict:")]
    assert len(verdicts) == 1 and verdicts[0].split()[1] in {"cat", "non-cat"}
    assert images(at) == 3  # the original, the 64×64 image the network sees and its saliency map
    original = at.get("image")[0]
    assert [i.caption for i in original.proto.imgs] == ["original, 451×300"]  # the file's size, not the preview's
    assert "where it looks" in at.get("image")[2].proto.imgs[0].caption
    bars = [e for e in at.get("progress") if "P(cat) =" in e.proto.text]
    assert len(bars) == 1
    at.toggle(key="predict_saliency").set_value(False).run()
    assert_clean(at)
    assert images(at) == 2 and len([c for c in at.caption if c.value.startswith("Verdict:")]) == 1


def test_predict_reports_an_unreadable_file_and_still_predicts_the_others(data_dir, model):
    at = app(PREDICT, model).run()
    at.file_uploader(key="predict_files").set_value(
        [
            ("notes.jpg", b"shopping list: milk, eggs, cat food\n", "image/jpeg"),
            ("chelsea.png", chelsea_bytes(), "image/png"),
            ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png"),
        ]
    ).run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 2
    assert errors[0].startswith("notes.jpg:") and errors[1].startswith("broken.png:")
    assert "Traceback" not in " ".join(errors)
    assert len([c for c in at.caption if c.value.startswith("Verdict:")]) == 1


def test_predict_with_an_uploaded_model_file(data_dir, model):
    at = app(PREDICT).run()
    at.radio(key="predict_source").set_value("file").run()
    at.file_uploader(key="predict_model_file").set_value(("model.npz", model_to_bytes(model), "application/zip"))
    at.file_uploader(key="predict_files").set_value(("chelsea.png", chelsea_bytes(), "image/png"))
    at.run()
    assert_clean(at)
    assert len([c for c in at.caption if c.value.startswith("Verdict:")]) == 1

    at.file_uploader(key="predict_model_file").set_value(("model.npz", b"not a zip file", "application/zip")).run()
    assert_clean(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("model.npz:")
    assert not [c for c in at.caption if c.value.startswith("Verdict:")]


def npz_bytes(arrays: dict) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def model_arrays(m) -> dict:
    import io

    with np.load(io.BytesIO(model_to_bytes(m))) as npz:
        return {k: npz[k] for k in npz.files}


def small_model() -> Model:
    """A valid catdnn model with other layers than the session's: [12288, 3, 1], not trained."""
    from catdnn.network import init_params

    config = TrainConfig(layers=(12288, 3, 1), init="xavier", seed=3)
    return Model(params=init_params(config.layers, config.init, config.seed), config=config, iterations_done=0)


BAD_MODEL_FILES = {
    "nan.npz": (lambda: {**model_arrays(small_model()), "W1": np.full((3, 12288), np.nan)}, "NaN"),
    "pickled.npz": (lambda: {**model_arrays(small_model()), "W1": np.array([{"W": 1}], dtype=object)}, "pickled"),
    "keras.npz": (lambda: {"dense/kernel": np.zeros((12288, 3)), "dense/bias": np.zeros(3)}, "not a catdnn model"),
}


def verdicts(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("Verdict:")]


@pytest.mark.parametrize("name", list(BAD_MODEL_FILES))
def test_predict_refuses_a_bad_model_file_and_gives_no_verdict(data_dir, model, name):
    make, words = BAD_MODEL_FILES[name]
    at = app(PREDICT, model).run()  # a session model too: it must not be used instead
    at.radio(key="predict_source").set_value("file").run()
    at.file_uploader(key="predict_model_file").set_value((name, npz_bytes(make()), "application/zip"))
    at.file_uploader(key="predict_files").set_value(("chelsea.png", chelsea_bytes(), "image/png"))
    at.run()
    assert_clean(at)
    assert len(at.error) == 1, [e.value for e in at.error]
    assert at.error[0].value.startswith(f"{name}: ") and words in at.error[0].value, at.error[0].value
    assert "Traceback" not in at.error[0].value
    assert verdicts(at) == [] and not [e for e in at.get("progress") if "P(cat) =" in e.proto.text]
    assert any("Choose or train a model above" in w.value for w in at.warning)


def test_predict_with_a_model_file_of_other_layers(data_dir, model):
    from catdnn.images import image_to_input, prepare_image

    other = small_model()
    expected = float(other.predict_proba(image_to_input(prepare_image(chelsea_bytes(), "chelsea.png")))[0])
    assert f"{expected:.2f}" != f"{float(model.predict_proba(image_to_input(prepare_image(chelsea_bytes())))[0]):.2f}"
    at = app(PREDICT, model).run()
    at.radio(key="predict_source").set_value("file").run()
    at.file_uploader(key="predict_model_file").set_value(("small.npz", model_to_bytes(other), "application/zip"))
    at.file_uploader(key="predict_files").set_value(("chelsea.png", chelsea_bytes(), "image/png"))
    at.run()
    assert_clean(at)
    assert len(at.error) == 0
    assert any(c.value == f"Model: custom (3) on {COURSE_NAME}" for c in at.caption)
    assert len(verdicts(at)) == 1
    bars = [e.proto.text for e in at.get("progress") if "P(cat) =" in e.proto.text]
    assert bars == [f"P(cat) = {expected:.2f}"]  # the file's model answered, not the session's


def test_predict_without_a_model_trains_the_deep_preset_in_one_click(data_dir):
    at = app(PREDICT).run()
    at.button(key="predict_train_deep").click().run()
    assert_clean(at)
    model = session_of(at).current_model
    assert model.layers == (12288, 20, 7, 5, 1) and model.iterations_done == 2500
    assert abs(model.test_accuracy - 0.80) < 1e-9  # the course's number
    assert not any("No model yet" in i.value for i in at.info)


# --------------------------------------------------------------------------- first use: the download
@pytest.fixture
def no_dataset_yet(tmp_path, monkeypatch):
    """A machine without the dataset: no $CATDNN_DATA_DIR, an empty data/ folder, no public mirrors."""
    import catdnn.data

    folder = tmp_path / "data"
    monkeypatch.delenv("CATDNN_DATA_DIR", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(catdnn.data, "DEFAULT_DATA_DIR", folder)
    monkeypatch.setattr(catdnn.data, "MIRRORS", {name: [] for name in catdnn.data.MIRRORS})  # never the internet
    return folder


def test_first_use_downloads_the_dataset(no_dataset_yet, data_dir, monkeypatch):
    from tests.http_support import serve

    with serve(data_dir) as url:
        monkeypatch.setenv("CATDNN_DATA_URL", url)
        at = app(ENTRY).run()
    assert_clean(at)
    assert not at.get("progress")  # the download's bar is gone once it is done
    assert len(at.error) == 0
    assert sorted(p.name for p in no_dataset_yet.iterdir()) == ["test_catvnoncat.h5", "train_catvnoncat.h5"]
    assert images(at) == 12


def page_text(at: AppTest) -> str:
    """Every text element's value, the expanders' contents included."""
    return "\n".join(str(e.value) for kind in ("error", "markdown", "caption", "info", "warning")
                     for e in getattr(at, kind))


def test_a_failed_download_says_what_to_do(no_dataset_yet, monkeypatch):
    with socket_free_port() as port:
        monkeypatch.setenv("CATDNN_DATA_URL", f"http://127.0.0.1:{port}")  # nothing listens there
        at = app(TRAIN).run()
    assert_clean(at)
    assert not at.get("progress")  # the "Downloading…" bar is gone, not left above the error
    assert len(at.error) == 1
    message = at.error[0].value
    # what to do comes first, with the folder, and says to reload
    assert message.startswith(
        "**The dataset is not available.** Copy `train_catvnoncat.h5` and `test_catvnoncat.h5` into "
        f"`{no_dataset_yet}`, or set `CATDNN_DATA_DIR` to a folder holding them, then reload this page."), message
    # why: one list item per URL tried, out of the way in an expander
    assert len(at.expander) == 1 and at.expander[0].label == "Why the download failed"
    details = [m.value for m in at.expander[0].markdown]
    assert details[0] == f"Could not download the dataset into `{no_dataset_yet}`. The addresses tried:"
    assert details[1].startswith(f"- `http://127.0.0.1:{port}/train_catvnoncat.h5: ") and details[1].count("\n- ") == 0
    assert "--data-dir" not in page_text(at)  # the CLI's option means nothing in the app
    assert not at.main.button  # the page stopped: no form to train without data (the sidebar can import photos)


def test_an_empty_data_dir_says_what_to_do(tmp_path, monkeypatch, no_runs):
    monkeypatch.setenv("CATDNN_DATA_DIR", str(tmp_path))
    at = app(ENTRY).run()
    assert_clean(at)
    assert len(at.error) == 1
    assert at.error[0].value.startswith(
        "**The dataset is not available.** Copy `train_catvnoncat.h5` and `test_catvnoncat.h5` into "
        f"`{tmp_path}` (named by `CATDNN_DATA_DIR`), then reload this page"), at.error[0].value
    assert [m.value for m in at.expander[0].markdown] == [
        f"missing from {tmp_path}:", "- `train_catvnoncat.h5`\n- `test_catvnoncat.h5`"]
    assert "--data-dir" not in page_text(at)
    assert at.sidebar.caption[0].value == "No model trained yet."


def test_a_damaged_dataset_file_is_named(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CATDNN_DATA_DIR", str(tmp_path))
    (tmp_path / "train_catvnoncat.h5").write_bytes((data_dir / "train_catvnoncat.h5").read_bytes()[:100_000])
    (tmp_path / "test_catvnoncat.h5").write_bytes((data_dir / "test_catvnoncat.h5").read_bytes())
    at = app(TRAIN).run()
    assert_clean(at)
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith(f"**The dataset is not available.** {tmp_path / 'train_catvnoncat.h5'}: "), message
    assert message.endswith("Then reload this page.") and "--data-dir" not in message


class socket_free_port:
    """A port on 127.0.0.1 that nothing listens on, while in the with block."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


def test_a_dead_network_is_explained_after_the_run(dataset):
    # learning rate 1 on the deep net: the ReLUs die and the cost sticks at 0.643974
    at = app(TRAIN).run()
    at.segmented_control(key="train_preset").set_value("deep").run()
    at.select_slider(key="train_lr").set_value(1.0)
    at.slider(key="train_iters").set_value(300)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    run = session_of(at).run
    assert run.status == "finished" and run.model is not None
    warning = " ".join(w.value for w in at.warning)
    # the page passes the model's weights to diagnose, which then names the dead layer itself
    from catdnn.probe import dead_units

    dead = dead_units(run.model.params, dataset.train.X)
    layer = next(l for l, d in enumerate(dead, start=1) if d.all())
    n = dead[layer - 1].size
    assert "stopped learning" in warning and "0.643974" in warning, warning
    assert f"all {n} ReLU units of layer {layer} output 0 for every training image" in warning, warning


def test_predict_with_the_camera(data_dir, model):
    at = app(PREDICT, model).run()
    at.toggle(key="predict_use_camera").set_value(True).run()
    at.camera_input(key="predict_camera").set_value(("photo.jpg", skimage_jpeg(), "image/jpeg")).run()
    assert_clean(at)
    assert len(at.error) == 0
    verdicts = [c.value for c in at.caption if c.value.startswith("Verdict:")]
    assert len(verdicts) == 1
    expected = model.predict_proba(image_to_input(prepare_image(skimage_jpeg())))[0]
    bars = [e.proto.text for e in at.get("progress") if "P(cat) =" in e.proto.text]
    assert bars == [f"P(cat) = {expected:.2f}"]


def skimage_jpeg() -> bytes:
    """A real photo (scikit-image's rocket.jpg), as a camera would send it."""
    import skimage.data

    return (Path(skimage.data.data_dir) / "rocket.jpg").read_bytes()
