"""The dataset for the pages: cached, downloaded on first use with a progress bar, and a clear error
(what to do first, then the details) drawn from :class:`~catdnn.errors.DataError`'s fields."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from catdnn import data
from catdnn.data import ENV_VAR, FILES, Dataset, download_dataset, find_data_dir, load_dataset
from catdnn.errors import DataError

FILE_NAMES = " and ".join(f"`{name}`" for name in FILES.values())


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


def dataset_ui() -> Dataset:
    """The dataset (downloaded on first use, with a progress bar); stops the page with a clear error."""
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
