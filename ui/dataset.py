"""The dataset for the pages: cached, downloaded on first use with a progress bar, and a clear error
(what to do first, then the details) drawn from :class:`~catdnn.errors.DataError`'s fields.

Each session picks its dataset in the sidebar (:func:`dataset_picker_ui`, drawn by ``page_setup``):
the course's, or one imported from a zip of the user's photos (:mod:`catdnn.photos`). Every page
then gets the chosen one from :func:`dataset_ui`. Imported datasets live in the server user's
catdnn folder. Which ones a session may pick, open and delete is the engine's decision, by the session's
identity (:func:`ui.identity.current`, :func:`catdnn.photos.list_datasets`): one imported on the machine
(a teacher imports once for a class) is everyone's; an upload is its importers' (and the teacher's).
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from catdnn import data, photos
from catdnn.data import COURSE_NAME, ENV_VAR, FILES, Dataset, download_dataset, find_data_dir, load_dataset
from catdnn.errors import DataError

from .identity import current

FILE_NAMES = " and ".join(f"`{name}`" for name in FILES.values())
#: This session's dataset: "" for the course's, else an imported dataset's folder (session state, not a widget).
CHOICE_KEY = "dataset_choice"
#: The last import's result (a catdnn.photos.PhotoDataset), shown in the sidebar until dismissed.
REPORT_KEY = "dataset_import_report"
#: Most zips one person (a local tab, a student, a visitor) may have imported at once (each up to
#: photos.MAX_UPLOAD_FILES photos: 25 MB on disk); deleting one makes room. A script can open more tabs (and in
#: public mode be more visitors), so what bounds the disk is photos.MAX_UPLOADS_BYTES for all uploads together.
MAX_TAB_IMPORTS = 5
#: A delete's refusal, shown on the next run (the delete runs in a callback).
DELETE_ERROR_KEY = "dataset_delete_error"
IMPORT_HELP = (
    f"Zip a folder holding a **cat/** and a **non-cat/** subfolder of photos (JPEG, PNG, WebP, BMP or GIF). "
    f"Each photo is shrunk to 64×64; {photos.TEST_FRACTION:.0%} of each class is kept for testing (always the "
    "same ones). Unreadable files are skipped and listed. A zip may be as large as the server's upload limit "
    "(`server.maxUploadSize`, 20 MB here by default); for more photos, import the folder on the server's machine "
    "with `python -m catdnn info --dataset FOLDER`, which every session can then pick. Your upload is offered "
    "only to you (this browser tab, or your key's link in a class), and you can delete it. An upload may hold "
    f"{photos.MAX_UPLOAD_FILES:,} photos and {photos.MAX_UPLOAD_PIXELS / 1e9:g} billion pixels in all; a tab may "
    f"import {MAX_TAB_IMPORTS} zips.")
#: The import popover's key (its open state), and the flag that closes it on the run after an import.
POPOVER_KEY = "dataset_import_popover"
CLOSE_KEY = "dataset_import_close"
#: Skipped files listed in the import report (the rest are counted).
SHOW_SKIPPED = 100


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def cached_dataset(folder: str) -> Dataset:
    """The dataset in ``folder``, read once per server process and shared by every session.

    Every array in it is read-only (the images, the labels and the network's inputs), so no session
    can change what another one sees; sharing one copy, rather than st.cache_data's copy per call,
    keeps a class's memory flat and spares every rerun a 25 MB copy."""
    return load_dataset(folder, download=False)


def _download_ui() -> Path:
    """Download the dataset into data/ with a progress bar; returns the folder."""
    bar = st.progress(0.0, text="Downloading the cat / non-cat dataset (about 3 MB, first use only)…")
    last = [0.0]

    def progress(name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and not (total and done >= total):
            return
        last[0] = now
        frac = min(done / total, 1.0) if total else 0.0
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        bar.progress(frac, text=f"Downloading {name}: {size}")

    try:
        return download_dataset(progress=progress)
    finally:
        bar.empty()  # also when the download fails: the error replaces the bar


def draw_dataset_error(action: str, headline: str = "", items=(), title: str = "Details") -> None:
    """What to do first (in the error box), then ``headline`` and ``items`` (one line each) in an expander."""
    st.error(f"**The dataset is not available.** {action}", icon=":material/block:")
    if not headline and not items:
        return
    with st.expander(title, key="dataset_error_details"):
        st.markdown(headline)
        if items:
            st.markdown("\n".join(f"- `{item.replace('`', chr(39))}`" for item in items))


def _chosen() -> str:
    """This session's imported dataset's folder, or "" for the course's (only a dataset the engine lets this
    session open counts: the session never names an arbitrary path, nor another person's upload)."""
    choice = st.session_state.get(CHOICE_KEY, "")
    if choice and (Path(choice).parent != photos.datasets_dir()
                   or choice not in {str(d.folder) for d in photos.list_datasets(viewer=current())}):
        return ""
    return choice


def dataset_ui() -> Dataset:
    """The session's dataset (the course's is downloaded on first use, with a progress bar); stops the
    page with a clear error."""
    choice = _chosen()
    if choice:
        try:
            return cached_dataset(choice)
        except DataError as exc:
            draw_dataset_error(f"{exc} Pick another dataset in the sidebar, or import the photos again.")
            st.stop()
    folder, _why = find_data_dir()
    if folder is None:
        try:
            folder = _download_ui()
        except DataError as exc:
            draw_dataset_error(
                f"Copy {FILE_NAMES} into `{exc.folder}`, or set `{ENV_VAR}` to a folder holding them, "
                "then reload this page.",
                f"Could not download the dataset into `{exc.folder}`. The addresses tried:", exc.attempts,
                title="Why the download failed")
            st.stop()
    try:
        return cached_dataset(str(folder))
    except DataError as exc:
        if exc.missing:  # $CATDNN_DATA_DIR names a folder without the files
            draw_dataset_error(
                f"Copy {FILE_NAMES} into `{exc.folder}` (named by `{ENV_VAR}`), then reload this page; or start "
                f"the app without `{ENV_VAR}` to download them into `{data.DEFAULT_DATA_DIR}`.",
                f"missing from {exc.folder}:", exc.missing)
        else:  # a damaged or substituted file: the message names it and what to do
            draw_dataset_error(f"{exc} Then reload this page.")
        st.stop()


def _picked() -> None:
    """on_change of the sidebar's picker: the session's choice follows it (before the script runs)."""
    st.session_state[CHOICE_KEY] = st.session_state["sidebar_dataset"]
    st.session_state.pop(REPORT_KEY, None)


def dataset_picker_ui() -> None:
    """The sidebar's dataset picker (the course's, or one imported from photos) and the zip import.

    The choice is this session's (kept in session state, so it survives moving between pages)."""
    imported = photos.list_datasets(viewer=current())  # the engine's choice: this person's own and the shared
    options = {"": COURSE_NAME} | {str(d.folder): d.label for d in imported}
    choice = st.session_state.get(CHOICE_KEY, "")
    if choice not in options:  # never chosen, or its folder was removed
        choice = ""
    st.session_state[CHOICE_KEY] = st.session_state["sidebar_dataset"] = choice
    st.sidebar.selectbox(
        "Dataset", list(options), format_func=options.get, key="sidebar_dataset", on_change=_picked,
        help="Every page trains and tests on this dataset. Import your own photos below.")
    report = st.session_state.get(REPORT_KEY)
    if report is not None:
        draw_import_report(report)
    if st.session_state.pop(CLOSE_KEY, False):  # imported: close the popover, which covered the report
        st.session_state[POPOVER_KEY] = False
    with st.sidebar.popover("Import your photos", icon=":material/upload:", key=POPOVER_KEY, on_change="rerun",
                            help=IMPORT_HELP, width="stretch"):
        import_ui()
    deletable = [d for d in imported if photos.may_delete(d, current())]
    if deletable or DELETE_ERROR_KEY in st.session_state:
        with st.sidebar.popover("Delete a dataset", icon=":material/delete:", key="dataset_delete_popover",
                                width="stretch"):
            delete_ui(deletable)


def _delete(folder_name: str) -> None:
    """on_click of the delete button (before the script runs): the engine deletes what this person may."""
    try:
        info = photos.delete_dataset(folder_name, viewer=current())
    except DataError as exc:
        st.session_state[DELETE_ERROR_KEY] = str(exc)
        return
    st.session_state.pop(REPORT_KEY, None)
    st.session_state.pop("dataset_delete_confirm", None)
    if st.session_state.get(CHOICE_KEY) == str(info.folder):
        st.session_state[CHOICE_KEY] = ""  # back to the course's
    st.toast(f"Deleted {info.name!r}: its photos are no longer offered here (runs on it are kept).")


def delete_ui(deletable: list) -> None:
    """Pick one of the datasets this person may delete (their uploads; every import for the teacher), confirm,
    delete. Runs trained on it stay in the history, under its name."""
    error = st.session_state.pop(DELETE_ERROR_KEY, None)
    if error:
        st.error(f"**Not deleted.** {error}", icon=":material/block:")
    if not deletable:
        return
    by_folder = {d.folder.name: d for d in deletable}
    pick = st.selectbox("Dataset to delete", list(by_folder), format_func=lambda f: by_folder[f].label,
                        key="dataset_delete_pick")
    sure = st.checkbox("I want to delete it", key="dataset_delete_confirm")
    st.button("Delete", key="dataset_delete", on_click=_delete, args=(pick,), disabled=not (sure and pick),
              icon=":material/delete:")


def import_ui() -> None:
    """A zip upload and an Import button; a successful import becomes the session's dataset."""
    upload = st.file_uploader("A zip with a cat/ and a non-cat/ folder of photos", type=["zip"], key="dataset_zip",
                              help=IMPORT_HELP)
    if not st.button("Import", key="dataset_import", disabled=upload is None, icon=":material/photo_library:"):
        return
    who = current()
    mine = [d for d in photos.list_datasets(viewer=who) if d.uploaded and who.owner in d.owners]
    if len(mine) >= MAX_TAB_IMPORTS:
        st.error(f"**Not imported.** You have {len(mine)} zips of photos imported here, the most one tab may "
                 f"({MAX_TAB_IMPORTS}): pick one of them in the Dataset list, delete one, or import the photos on "
                 "the server's machine with `python -m catdnn info --dataset FOLDER`.", icon=":material/block:")
        return
    bar = st.progress(0.0, text="Reading the zip…")
    last = [0.0]

    def progress(done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or done == total:
            last[0] = now
            bar.progress(done / max(total, 1), text=f"Decoding photo {done:,} of {total:,}")

    try:
        info = photos.import_photos(upload, name=Path(upload.name).stem, progress=progress, viewer=who)
    except DataError as exc:
        st.error(f"**Not imported.** {exc}", icon=":material/block:")
        return
    finally:
        bar.empty()
    st.session_state[CHOICE_KEY] = str(info.folder)
    st.session_state[REPORT_KEY] = info
    st.session_state[CLOSE_KEY] = True
    st.rerun()  # the picker shows the new dataset, the report shows in the open, and the page runs on it


def _plain(text: str) -> str:
    """A file name or reason from a zip, safe inside one Markdown list item (no newline, no backtick)."""
    return "".join(ch if ch.isprintable() and ch != "`" else "'" if ch == "`" else "?" for ch in str(text))


def draw_import_report(info: photos.PhotoDataset) -> None:
    """What the last import gave: the photos per split and class, and the files skipped (and why)."""
    c = info.counts
    again = " (imported before: reused)" if info.cached else ""
    st.sidebar.success(
        f"**{info.name}**{again}: {info.m_train} training photos ({c['train']['cat']} cats) and {info.m_test} test "
        f"photos ({c['test']['cat']} cats).", icon=":material/check_circle:")
    if info.skipped:
        with st.sidebar.expander(f"{len(info.skipped)} file(s) skipped", key="dataset_skipped"):
            st.markdown("\n".join(f"- `{_plain(s.name)}`: {_plain(s.reason)}" for s in info.skipped[:SHOW_SKIPPED]))
            if len(info.skipped) > SHOW_SKIPPED:
                st.caption(f"… and {len(info.skipped) - SHOW_SKIPPED} more.")
