"""The sidebar's dataset: import a zip of photos in the app, pick it, and every page runs on it (AppTest)."""

from __future__ import annotations

import pytest

from catdnn import load_dataset, photos
from catdnn.data import COURSE_NAME
from catdnn.evaluate import metrics
from catdnn.network import accuracy
from tests.app_support import ENTRY, MISCLASSIFIED, PAGES, TRAIN, app, assert_clean, give_model, session_of
from tests.photo_support import photo_tree, write_tree, zip_bytes
from ui.dataset import CHOICE_KEY, POPOVER_KEY
from ui.training import solver_reason

N_CAT, N_OTHER = 12, 8  # 10 + 6 to train on, 2 + 2 to test on


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CATDNN_HOME", str(home))
    return home


def upload_zip(at, content: bytes, name: str = "pets.zip"):
    at.file_uploader(key="dataset_zip").set_value((name, content, "application/zip")).run()
    at.button(key="dataset_import").click().run()
    assert_clean(at)
    return at


def test_import_a_zip_upload_and_train_on_it(data_dir, home):
    at = app(ENTRY).run()
    assert at.sidebar.selectbox(key="sidebar_dataset").value == ""  # the course's by default
    files = photo_tree(N_CAT, N_OTHER, extra={"pets/cat/readme.txt": b"not a photo"}, top="pets")
    upload_zip(at, zip_bytes(files))
    [info] = photos.list_datasets()
    assert at.sidebar.selectbox(key="sidebar_dataset").value == str(info.folder)  # picked for this session
    report = " ".join(s.value for s in at.sidebar.success)
    assert "pets" in report and "16 training photos" in report and "4 test photos" in report
    skipped = " ".join(m.value for m in at.sidebar.markdown)
    assert "pets/cat/readme.txt" in skipped and "text file" in skipped

    at.switch_page(TRAIN).run()  # the choice is the session's: every page uses it
    assert at.sidebar.selectbox(key="sidebar_dataset").value == str(info.folder)
    assert any("on the 16 training images of *pets*" in c.value and "its 4 test images" in c.value
               for c in at.caption)
    assert at.number_input(key="train_batch_size").label == "Mini-batch size (0: all 16 images)"  # not 209
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    assert_clean(at)
    run = session_of(at).run
    assert run.status == "finished", run.message
    # the worker process trained on the imported photos: its accuracies are the model's on them
    ds = load_dataset(info.folder)
    model = run.model
    assert model.train_accuracy == pytest.approx(accuracy(model.params, ds.train.X, ds.train.Y))
    assert model.test_accuracy == pytest.approx(accuracy(model.params, ds.test.X, ds.test.Y))

    at.switch_page(MISCLASSIFIED).run()
    assert_clean(at)
    assert any("Test set, 4 images" in m.value for m in at.markdown)


def test_last_run_names_its_dataset_and_is_measured_on_it_after_an_import(data_dir, home):
    """Issue 15: after an import, "Last run" mixed the course's test accuracy with balanced accuracy and AUC
    recomputed on the 4 imported photos, and its solver line spoke of 16 images for a run trained on 209."""
    at = app(TRAIN).run()
    at.segmented_control(key="train_preset").set_value("two-layer").run()
    at.slider(key="train_iters").set_value(100)
    at.button(key="train_submit").click().run()
    course_run = session_of(at).run
    upload_zip(at, zip_bytes(photo_tree(N_CAT, N_OTHER, top="pets")))  # the sidebar now names pets
    course = load_dataset(data_dir)
    assert [h.value for h in at.subheader if "Last run" in h.value] == [f"Last run · on *{COURSE_NAME}*"]
    assert any("sidebar's dataset is now *pets*" in i.value and f"trained on *{COURSE_NAME}*" in i.value
               for i in at.info)
    scores = metrics(course_run.model.predict_proba(course.test.X), course.test.labels)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Test accuracy"] == f"{course_run.model.test_accuracy:.2f}"
    assert shown["Test balanced accuracy"] == f"{scores['balanced_accuracy']:.2f}"
    assert shown["Test AUC"] == f"{scores['auc']:.2f}"
    text = " ".join(c.value for c in at.caption)
    reason = solver_reason(course_run.config, course)
    assert reason[1:] in text and "its 50 test images" in text  # the course's 209 images, not the 16 photos
    assert not [w for w in at.warning if "test image" in w.value]  # 50 test images: no warning

    at.button(key="train_submit").click().run()  # the same settings on the 16 + 4 photos
    assert_clean(at)
    assert [h.value for h in at.subheader if "Last run" in h.value] == ["Last run · on *pets*"]
    [small] = [w.value for w in at.warning if "test image" in w.value]  # 4 test photos: each is 25 %
    assert "Only 4 test images" in small and "25 %" in small
    names = list(session_of(at).models)  # the session's models, as every page's model list shows them
    assert f"on {COURSE_NAME}" in names[0] and " on pets, test " in names[1]
    assert session_of(at).current_model.dataset == "pets"
    assert any("on pets" in c.value for c in at.sidebar.caption)


def test_the_import_popover_closes_over_the_report_and_stays_open_over_an_error(data_dir, home):
    """Issue 15: after an import the popover stayed open over the report of the skipped files."""
    at = app(ENTRY).run()
    at.session_state[POPOVER_KEY] = True  # the user opened "Import your photos"
    upload_zip(at, zip_bytes(photo_tree(N_CAT, N_OTHER, extra={"cat/notes.txt": b"not a photo"})))
    assert at.session_state[POPOVER_KEY] is False  # closed: the report below it can be read
    assert any("1 file(s) skipped" in e.label for e in at.sidebar.expander)
    at.session_state[POPOVER_KEY] = True
    upload_zip(at, b"this is not a zip", name="bad.zip")
    assert at.session_state[POPOVER_KEY] is True  # its error is inside it: it stays open
    assert any("Not imported" in e.value for e in at.sidebar.error)


def test_every_page_runs_on_an_imported_dataset(data_dir, home, tmp_path, tiny_model):
    info = photos.import_photos(write_tree(tmp_path / "mine", photo_tree(N_CAT, N_OTHER)))
    for page in [ENTRY, *PAGES]:
        at = app(page)
        give_model(at, tiny_model)
        at.session_state[CHOICE_KEY] = str(info.folder)
        at.run()
        assert_clean(at)
        assert not at.error, (page, [e.value for e in at.error])
        assert at.sidebar.selectbox(key="sidebar_dataset").value == str(info.folder), page
    home_page = app(ENTRY)
    home_page.session_state[CHOICE_KEY] = str(info.folder)
    home_page.run()
    assert any("**16** training and **4** test images" in m.value for m in home_page.markdown)


def test_an_upload_is_offered_only_to_its_own_session(data_dir, home, tmp_path):
    """A student's uploaded photos are never offered to another browser tab; a folder imported on the
    server's machine (the teacher's, with the CLI) is offered to every tab."""
    photos.import_photos(write_tree(tmp_path / "class", photo_tree(4, 4)))  # on the machine: shared
    mine = app(ENTRY).run()
    upload_zip(mine, zip_bytes(photo_tree(N_CAT, N_OTHER, top="pets")))
    [uploaded] = [d for d in photos.list_datasets() if d.uploaded]
    def offered(at):  # the picker's labels: "cat / non-cat (the course's)", "class (6 train + 2 test photos)", …
        return sorted(label.split(" (")[0] for label in at.sidebar.selectbox(key="sidebar_dataset").options)

    assert offered(mine) == ["cat / non-cat", "class", "pets"]
    other = app(ENTRY).run()
    assert offered(other) == ["cat / non-cat", "class"]
    other.session_state[CHOICE_KEY] = str(uploaded.folder)  # even naming it does not reach it
    other.run()
    assert_clean(other)
    assert other.sidebar.selectbox(key="sidebar_dataset").value == ""


def test_the_picker_goes_back_to_the_course(data_dir, home, tmp_path):
    info = photos.import_photos(write_tree(tmp_path / "mine", photo_tree(4, 4)))
    at = app(ENTRY).run()
    options = at.sidebar.selectbox(key="sidebar_dataset").options
    assert len(options) == 2 and "mine" in options[1]
    at.sidebar.selectbox(key="sidebar_dataset").set_value(str(info.folder)).run()
    assert any("**6** training and **2** test images" in m.value for m in at.markdown)
    at.sidebar.selectbox(key="sidebar_dataset").set_value("").run()
    assert_clean(at)
    assert any("**209** training and **50** test images" in m.value for m in at.markdown)


@pytest.mark.parametrize("content, message", [
    (b"this is not a zip", "not a zip file"),
    (zip_bytes({"../evil.jpg": b"x", "cat/a.jpg": b"x"}), "outside its folder"),
    (zip_bytes({"cat/a.txt": b"x", "non-cat/b.txt": b"x"}), "too few readable photos"),
])
def test_a_bad_upload_gets_one_clear_message(data_dir, home, content, message):
    at = upload_zip(app(ENTRY).run(), content, name="bad.zip")
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and message in errors[0] and "Not imported" in errors[0]
    assert at.sidebar.selectbox(key="sidebar_dataset").value == ""  # still the course's
    assert photos.list_datasets() == []


def test_a_session_cannot_name_a_folder_outside_the_datasets(data_dir, home, tmp_path):
    """Only folders the picker offers count: a stray path in the session falls back to the course's."""
    elsewhere = photos.import_photos(write_tree(tmp_path / "x", photo_tree(3, 3)), home=tmp_path / "other")
    at = app(ENTRY)
    at.session_state[CHOICE_KEY] = str(elsewhere.folder)
    at.run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="sidebar_dataset").value == ""
    assert any("**209** training" in m.value for m in at.markdown)


@pytest.fixture
def tiny_model():
    """A small, valid model ([12288, 3, 1]) built without training."""
    from catdnn.config import TrainConfig
    from catdnn.model import Model
    from catdnn.network import init_params

    config = TrainConfig(layers=(12288, 3, 1), iterations=10, init="xavier", seed=3)
    return Model(params=init_params(config.layers, config.init, config.seed), config=config,
                 history=[(0, 0.69)], iterations_done=10, train_accuracy=0.5, test_accuracy=0.5)


def test_a_tab_imports_at_most_max_tab_imports_zips(data_dir, home, monkeypatch):
    """Issue 19, A7: a tab's imports are bounded (and all uploads together by photos.MAX_UPLOADS_BYTES)."""
    import ui.dataset

    monkeypatch.setattr(ui.dataset, "MAX_TAB_IMPORTS", 1)
    at = upload_zip(app(ENTRY).run(), zip_bytes(photo_tree(3, 3)), name="one.zip")
    assert not at.sidebar.error and len(photos.list_datasets()) == 1
    upload_zip(at, zip_bytes(photo_tree(4, 3)), name="two.zip")
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "Not imported" in errors[0] and "the most one tab may" in errors[0], errors
    assert len(photos.list_datasets()) == 1
