"""The cat / non-cat dataset: find it, download it (checksum-verified), validate it, load it.

Where the two HDF5 files are looked for, in order:

1. a folder given explicitly (``load_dataset(data_dir)``, the CLI's ``--data-dir``);
2. the folder in the environment variable ``CATDNN_DATA_DIR``;
3. the project's ``data/`` folder (:data:`DEFAULT_DATA_DIR`; an installed package's is in ``~/.catdnn``),
   where they are downloaded to on first use when missing.

A folder named explicitly (1 or 2) must hold the files: nothing is downloaded into it.

A folder may instead hold a dataset imported from the user's own photos (:mod:`catdnn.photos`):
:data:`IMPORTED_FILES` in the same HDF5 layout (``train_set_x``, ``train_set_y``, ``list_classes``,
``test_…``) and a :data:`MANIFEST` recording the arrays' checksums. Those files have their own names,
so a folder holding the course's file names is always checked against the course's published
checksums: an imported dataset is checked against its own manifest instead, never in their place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import DataError

ENV_VAR = "CATDNN_DATA_DIR"
#: Space-separated base URLs tried before the public mirrors (``BASE/train_catvnoncat.h5``).
URL_ENV_VAR = "CATDNN_DATA_URL"
#: The user's own catdnn folder (run history, imported photo datasets); this variable moves it.
HOME_ENV_VAR = "CATDNN_HOME"


def home_dir() -> Path:
    """``$CATDNN_HOME`` if set, else ``~/.catdnn``: where catdnn keeps what the user makes (not created here)."""
    env = os.environ.get(HOME_ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".catdnn"


_TOP = Path(__file__).resolve().parent.parent
#: The project's ``data/`` folder in a checkout (next to ``catdnn/``); an installed package (``pip
#: install .``) keeps the dataset in the user's catdnn folder, ``data/`` in :func:`home_dir`, never in site-packages.
DEFAULT_DATA_DIR = _TOP / "data" if (_TOP / "pyproject.toml").is_file() else home_dir() / "data"

FILES = {"train": "train_catvnoncat.h5", "test": "test_catvnoncat.h5"}

#: SHA-256 of the files as published (see the project's data README).
FILE_SHA256 = {
    "train_catvnoncat.h5": "fbe56ab67c3ae28d564e3a644189117976d6b31af0a3ce9bb17dbf22908af242",
    "test_catvnoncat.h5": "e4424b72b02c6ef1d42d51775e81d6797cda400003672ac0f2cc1d0b631f1648",
}
#: SHA-256 of the arrays inside (the images' uint8 bytes, then the labels as little-endian int64):
#: some mirrors' files differ by a byte of HDF5 metadata while holding identical arrays.
CONTENT_SHA256 = {
    "train_catvnoncat.h5": "f19135472731081e70474f7c5ee3ce3d87911a74cc4fb4304cac932037506996",
    "test_catvnoncat.h5": "cc71f43ca60bb555ad8f09e4126400c8dedbb6a4fed536b9724b5f89f7dcf048",
}
MIRRORS = {
    "train_catvnoncat.h5": [
        "https://github.com/kruthi-meghana/CatVsNonCat/raw/master/datasets/train_catvnoncat.h5",
        "https://github.com/Hiren2002/Logistic-Regression/raw/main/datasets/train_catvnoncat.h5",
    ],
    "test_catvnoncat.h5": [
        "https://github.com/kruthi-meghana/CatVsNonCat/raw/master/datasets/test_catvnoncat.h5",
    ],
}
EXPECTED = {"train": 209, "test": 50}
#: The course's dataset, as the app names it.
COURSE_NAME = "cat / non-cat (the course's)"
#: An imported photo dataset's files (the course's layout inside) and its manifest (see catdnn.photos).
IMPORTED_FILES = {"train": "train_set.h5", "test": "test_set.h5"}
MANIFEST = "dataset.json"
MANIFEST_FORMAT = "catdnn-photos"
#: One image as the network sees it: 64×64 RGB, flattened in (row, column, channel) order.
IMAGE_SHAPE = (64, 64, 3)
N_X = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]  # 12288: the network's input size

ProgressCallback = Callable[[str, int, "int | None"], None]  # (file name, bytes done, total or None)


@dataclass(frozen=True)
class Split:
    """One split of the dataset.

    Attributes
    ----------
    images : ndarray of shape (m, 64, 64, 3), uint8
    labels : ndarray of shape (m,), int64, 1 = cat
    """

    images: np.ndarray
    labels: np.ndarray

    @property
    def m(self) -> int:
        return int(self.labels.shape[0])

    @cached_property
    def X(self) -> np.ndarray:
        """The network's input: ndarray of shape (12288, m), float64 in [0, 1] (read-only)."""
        X = flatten_images(self.images)
        X.flags.writeable = False
        return X

    @cached_property
    def Y(self) -> np.ndarray:
        """The labels as ndarray of shape (1, m), float64 (read-only)."""
        Y = self.labels.reshape(1, -1).astype(np.float64)
        Y.flags.writeable = False
        return Y


@dataclass(frozen=True)
class Dataset:
    """The training and test splits, the class names (index = label) and where they came from.

    ``source`` is the folder the files were read from (a worker process reloads it from there);
    ``name`` is what the app calls the dataset; ``imported`` is True for the user's own photos;
    ``uploaded`` for photos a visitor uploaded to the app (its manifest said so when it was loaded: runs
    on it are that visitor's, :func:`catdnn.history.is_upload`, even once its folder is removed).
    """

    train: Split
    test: Split
    classes: tuple
    source: Path
    name: str = COURSE_NAME
    imported: bool = False
    uploaded: bool = False


def flatten_images(images: np.ndarray) -> np.ndarray:
    """(m, 64, 64, 3) uint8 images -> ndarray of shape (12288, m), float64 scaled to [0, 1].

    Each column is one image flattened in (row, column, channel) order, as in the course. This is
    the one place where images become the network's input (the dataset's and a user's photos).
    """
    m = images.shape[0]
    return images.reshape(m, -1).T / 255.0


# --------------------------------------------------------------------------- locating
def _has_files(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES.values())


def is_imported(folder) -> bool:
    """Whether ``folder`` holds a dataset imported from photos (its manifest and both files)."""
    folder = Path(folder)
    return (folder / MANIFEST).is_file() and all((folder / f).is_file() for f in IMPORTED_FILES.values())


def read_manifest(folder) -> dict:
    """An imported dataset's manifest (name, counts, skipped files, checksums); DataError if unreadable."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a readable dataset manifest ({exc}); import the photos again",
                        folder=Path(folder)) from None
    digests = manifest.get("content_sha256") if isinstance(manifest, dict) else None
    if (not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT
            or not isinstance(digests, dict) or not all(isinstance(digests.get(k), str) for k in FILES)):
        raise DataError(f"{path}: not a catdnn photo dataset manifest; import the photos again", folder=Path(folder))
    return manifest


def find_data_dir(data_dir=None) -> tuple[Path | None, str]:
    """Where the dataset should be read from, and why: ``(folder or None, description)``.

    Returns the explicit folder or ``$CATDNN_DATA_DIR`` when given (whether or not it holds the
    files), else ``data/`` if it holds them, else ``(None, ...)``: the files need downloading.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "the folder given"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), f"${ENV_VAR}"
    if _has_files(DEFAULT_DATA_DIR):
        return DEFAULT_DATA_DIR, "the project's data/ folder"
    return None, "nowhere yet"


def _missing_error(folder: Path, why: str) -> DataError:
    missing = [f for f in FILES.values() if not (folder / f).is_file()]
    where = "" if folder == DEFAULT_DATA_DIR else f" ({why})"
    if folder == DEFAULT_DATA_DIR:
        fix = "run `python -m catdnn download` to fetch them, or copy them there"
    else:
        fix = (f"copy them there, or unset {ENV_VAR} / leave out --data-dir to use {DEFAULT_DATA_DIR} "
               "(downloaded on first use)")
    return DataError(f"dataset not found: {', '.join(missing)} missing in {folder}{where}. To fix: {fix}.",
                     folder=folder, missing=missing)


def unreadable_message(exc: DataError) -> str:
    """What a student or visitor is told when the dataset of ``exc`` (a :class:`DataError` with its ``folder``)
    cannot be read: the dataset by its display name, never the server's folders (``exc``'s own message, for the
    machine's user, names them). A folder no longer there (an upload deleted, or expired, after a run on it was
    queued) can no longer tell its name."""
    folder = None if exc.folder is None else Path(exc.folder)
    name = None
    if folder is not None and folder.is_dir():
        try:
            name = COURSE_NAME if _has_files(folder) else (
                str(read_manifest(folder).get("name") or "") if is_imported(folder) else None)
        except (DataError, OSError):
            name = None
    shown = f"the dataset {name!r}" if name else "the dataset this run was given"
    if exc.missing or folder is None or not folder.is_dir():
        return (f"dataset not found: {shown} is not on the server (an upload may have been deleted, or have "
                "expired, after the run was queued): choose a dataset and train again")
    return f"{shown} cannot be read on the server (its files are damaged): import the photos again, or choose another"


# --------------------------------------------------------------------------- reading & validating
def content_digest(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of a split's arrays: the images' uint8 bytes, then the labels as little-endian int64."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.asarray(y, dtype="<i8").tobytes())
    return h.hexdigest()


def read_split(path: Path, split: str, verify: bool = True, digest: str | None = None):
    """Read and validate one HDF5 file; return ``(images, labels, classes)``.

    With ``verify``, the arrays must match the published ``{split}_catvnoncat.h5``, or ``digest``
    (their SHA-256, see :func:`content_digest`) when given: an imported dataset's own checksum.

    Raises :class:`DataError` naming the file and what is wrong with it.
    """
    import h5py

    path = Path(path)
    name = FILES[split]
    kx, ky = f"{split}_set_x", f"{split}_set_y"
    try:
        with h5py.File(path, "r") as h:
            missing = [k for k in (kx, ky, "list_classes") if k not in h]
            if missing:
                raise DataError(
                    f"{path}: not the {split} file of the cat/non-cat dataset (missing "
                    f"{', '.join(missing)}; found {', '.join(sorted(h.keys())) or 'no datasets'})"
                )
            x, y, classes = h[kx][()], h[ky][()], h["list_classes"][()]
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc}); delete it and try again") from None
    except Exception as exc:  # h5py raises assorted errors on damaged files
        raise DataError(f"{path}: damaged HDF5 file ({type(exc).__name__}: {exc})") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{path}: {kx} should be (m, 64, 64, 3) uint8 images, found {x.shape} {x.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{path}: {ky} should hold {x.shape[0]} labels, found shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or not np.isin(y, (0, 1)).all():
        raise DataError(f"{path}: labels in {ky} must be 0 (non-cat) or 1 (cat)")
    try:
        names = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in np.ravel(classes))
    except UnicodeDecodeError:
        names = ()
    if len(names) != 2:
        raise DataError(f"{path}: list_classes should name 2 classes, found {list(np.ravel(classes))!r}")
    if verify and digest is not None:
        if content_digest(x, y) != digest:
            raise DataError(f"{path}: the images or labels differ from those recorded when the photos were "
                            "imported (checksum mismatch): the file is damaged; import the photos again")
    elif verify and content_digest(x, y) != CONTENT_SHA256[name]:
        raise DataError(
            f"{path}: the images or labels differ from the published cat/non-cat dataset "
            "(checksum mismatch): the file is corrupt or a different dataset; delete it and try again"
        )
    return x, y.astype(np.int64), names


def load_dataset(
    data_dir=None,
    *,
    download: bool = True,
    progress: ProgressCallback | None = None,
    verify: bool = True,
) -> Dataset:
    """Find (or download), validate and load both splits.

    Parameters
    ----------
    data_dir : str or Path, optional
        A folder that holds the two files, or a dataset imported from photos (:mod:`catdnn.photos`);
        overrides ``$CATDNN_DATA_DIR`` and ``data/``.
    download : bool
        Download into ``data/`` when no folder was named and ``data/`` lacks the files.
    progress : callable(name, done_bytes, total_bytes_or_None), optional
        Called while downloading.
    verify : bool
        Check the arrays against the published dataset's checksums (an imported dataset's: against
        those in its manifest).
    """
    folder, why = find_data_dir(data_dir)
    if folder is None:
        if not download:
            raise _missing_error(DEFAULT_DATA_DIR, why)
        download_dataset(DEFAULT_DATA_DIR, progress=progress)
        folder, why = DEFAULT_DATA_DIR, "downloaded"
    course = _has_files(folder)  # the course's file names: always the course's checksums
    if not course and not is_imported(folder):
        raise _missing_error(folder, why)
    manifest = None if course else read_manifest(folder)
    files = FILES if course else IMPORTED_FILES
    xs, ys, names = {}, {}, None
    for split, fname in files.items():
        digest = None if course else manifest["content_sha256"][split]
        try:
            xs[split], ys[split], names = read_split(folder / fname, split, verify=verify, digest=digest)
        except DataError as exc:  # a damaged or substituted file: nothing is missing, the folder is known
            exc.folder = folder
            raise
    for array in (*xs.values(), *ys.values()):
        array.flags.writeable = False  # one loaded dataset can be shared (the dashboard's sessions do)
    return Dataset(
        train=Split(xs["train"], ys["train"]),
        test=Split(xs["test"], ys["test"]),
        classes=names,
        source=folder,
        name=COURSE_NAME if course else str(manifest.get("name") or folder.name),
        imported=not course,
        uploaded=not course and bool(manifest.get("uploaded", False)),
    )


# --------------------------------------------------------------------------- downloading
def _urls_for(name: str, urls=None) -> list[str]:
    if urls is not None:
        return [u.rstrip("/") + "/" + name for u in urls]
    env = os.environ.get(URL_ENV_VAR, "").split()
    return [u.rstrip("/") + "/" + name for u in env] + MIRRORS[name]


def _fetch(url: str, dest: Path, name: str, progress, timeout: float) -> None:
    """Stream ``url`` into a temporary file next to ``dest``; rename it only once verified."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest.parent)
    ok = False
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            sha, done = hashlib.sha256(), 0
            if progress:
                progress(name, 0, total)
            while chunk := resp.read(64 * 1024):
                out.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(name, done, total)
        if total is not None and done != total:
            raise DataError(f"{url}: download interrupted ({done} of {total} bytes)")
        if sha.hexdigest() != FILE_SHA256[name]:
            # A mirror may differ by a byte of HDF5 metadata: accept it if the arrays are identical.
            try:
                read_split(Path(tmp), "train" if name.startswith("train") else "test", verify=True)
            except DataError:
                raise DataError(
                    f"{url}: checksum mismatch: the file is not the published {name}"
                ) from None
        os.replace(tmp, dest)
        ok = True
    finally:
        if not ok:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def download_dataset(
    dest_dir=None,
    *,
    urls=None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download the files missing from ``dest_dir`` (default ``data/``), verifying each one.

    Each file is streamed into a temporary ``.part`` file in ``dest_dir`` and renamed into place
    only after its checksum (or its arrays' checksum) matches, so an interrupted or corrupted
    download never leaves a file that a later run would take for good.

    Parameters
    ----------
    urls : list of str, optional
        Base URLs to try instead of ``$CATDNN_DATA_URL`` and the public mirrors.

    Raises :class:`DataError` when a file could not be had from any URL.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else DEFAULT_DATA_DIR
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data folder {dest_dir}: {exc.strerror}") from None
    for name in FILES.values():
        dest = dest_dir / name
        if dest.is_file():
            continue
        errors = []
        for url in _urls_for(name, urls):
            try:
                _fetch(url, dest, name, progress, timeout)
                break
            except DataError as exc:
                errors.append(str(exc))
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                errors.append(f"{url}: {reason}")
        else:
            raise DataError(
                f"could not download {name} into {dest_dir}:\n  "
                + "\n  ".join(errors)
                + f"\nOffline? Copy train_catvnoncat.h5 and test_catvnoncat.h5 into {dest_dir}, "
                f"or point {ENV_VAR} (or --data-dir) at a folder that holds them.",
                folder=dest_dir,
                missing=[n for n in FILES.values() if not (dest_dir / n).is_file()],
                attempts=errors,
            )
    return dest_dir
