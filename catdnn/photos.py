"""Your own photos as a dataset: a folder (or a zip of one) with a ``cat/`` and a ``non-cat/``
subfolder becomes a dataset that loads like the course's.

What :func:`import_photos` does:

* **Layout**: the class folders sit at the top, or inside one top folder (``pets/cat/…``, as zipping
  a folder gives). Files may be nested below a class folder. Accepted class-folder names:
  :data:`POSITIVE_NAMES` (label 1) and :data:`NEGATIVE_NAMES` (label 0), in any case, with ``_``
  or a space for ``-``. Hidden files and folders (``.DS_Store``, ``__MACOSX/``) are ignored.
* **Decoding**: every file goes through :func:`catdnn.images.prepare_image`, the one safe decoder
  (format allow-list, decompression-bomb checks, EXIF orientation, any mode to RGB), to the 64×64
  RGB image the network sees. A file that cannot be read is **skipped and listed** with the reason
  (:class:`Skipped`); it never aborts the import.
* **Split**: stratified (each class split in the same proportion, :data:`TEST_FRACTION`) with a fixed
  seed, so the same photos always give the same split.
* **Cache**: both splits are written as HDF5 in the course's layout (``train_set_x`` (m, 64, 64, 3)
  uint8, ``train_set_y`` (m,) int64, ``list_classes``; ``test_…``) with a manifest
  (:data:`catdnn.data.MANIFEST`: name, counts, skipped files, the arrays' checksums) into a folder
  under ``home_dir()/datasets``. :func:`catdnn.data.load_dataset` loads that folder like the
  course's; importing the same photos again (under any name) reuses it.
* **Limits on uploads**: a zip uploaded in the app holds at most :data:`MAX_UPLOAD_FILES` photos and
  inflates to at most :data:`MAX_UPLOAD_TOTAL_BYTES` and decodes at most :data:`MAX_UPLOAD_PIXELS`
  pixels in all (from the headers, before decoding); the
  datasets imported from uploads take at most :data:`MAX_UPLOADS_BYTES` of disk, the oldest removed.

**Owners** (SECURITY.md, "Zips and folders of photos"): a dataset imported in the app from an upload is its
importers' (each an :class:`~catdnn.classroom.Identity`'s ``owner``, kept in the dataset's :data:`OWNERS_FILE`;
the same photos imported by several people are one dataset with several owners). :func:`list_datasets`,
:func:`find_dataset` and :func:`delete_dataset` take the caller's identity (``viewer``): an upload is listed,
opened and deleted only by its owners, the teacher of their class (each claim records the class its owner was
in; another class's teacher gets nothing) and the machine's user (the CLI); a dataset imported on
this machine (a folder or a zip file, with the CLI) is offered to everyone and deleted only by the teacher or
the CLI. An owner's delete withdraws their claim; the photos go when nobody's claim is left. In public mode
(``$CATDNN_MODE=public``) an owner's claim lapses :func:`upload_ttl` seconds after their import
(``$CATDNN_UPLOAD_TTL``, default :data:`DEFAULT_UPLOAD_TTL`), and an upload nobody claims any more is removed
(:func:`expire_uploads`).

A zip is **refused whole**, with one clear message (:class:`~catdnn.errors.DataError`), before any
entry is inflated, when its directory shows: an entry that would escape its folder (``../``, an
absolute path, a drive letter), a symbolic link, more than :data:`MAX_FILES` files, more than
:data:`MAX_TOTAL_BYTES` in all, an entry inflating more than :data:`MAX_RATIO` times its compressed
size (a zip bomb), or entries that overlap in the archive. Entries are read into memory one at a
time (at most their declared size, which the decompressor never exceeds): nothing is ever
extracted to disk.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from . import images
from .classroom import MACHINE, Identity, current_mode, same
from .data import IMAGE_SHAPE, IMPORTED_FILES, MANIFEST, MANIFEST_FORMAT, content_digest, home_dir, is_imported
from .errors import DataError, ImageError

#: Folder names (normalised: lower case, ``_`` and spaces as ``-``) for label 1 and label 0.
POSITIVE_NAMES = ("cat", "cats")
NEGATIVE_NAMES = ("non-cat", "non-cats", "noncat", "noncats", "not-cat", "not-cats", "notcat", "other", "others")
#: The class names written to ``list_classes`` (index = label), as in the course's files.
CLASSES = ("non-cat", "cat")
#: Share of each class that goes to the test set, and the seed of the split.
TEST_FRACTION = 0.2
SPLIT_SEED = 1
#: Fewest readable photos a class needs (one to train on, one to test on).
MIN_PER_CLASS = 2
#: Most files a folder or zip may hold (each image costs 12288 bytes, and 98 KB as the network's
#: float64 input: 20 000 photos make a 2 GB input matrix per training process).
MAX_FILES = 20_000
#: Most bytes a zip may inflate to in all (from its directory, checked before inflating anything).
MAX_TOTAL_BYTES = 2 * 1024**3
#: Largest inflate-to-compressed ratio of an entry over RATIO_FLOOR bytes (photos barely compress:
#: JPEG and PNG about 1:1; zip bombs reach 1000:1 with deflate, far more with bzip2).
MAX_RATIO = 100
RATIO_FLOOR = 4 * 1024**2
#: An upload (a zip's bytes from the app, not a folder or a zip on this machine, whose user is trusted)
#: is bounded further. At most MAX_UPLOAD_FILES photos: each takes 12 KB on disk once imported and
#: 110 KB of memory when a session picks the dataset (its pixels and the network's float64 input), so
#: 25 MB and 220 MB (a 3.5 MB zip of 20 000 tiny PNGs made 235 MB on disk and 2.2 GB when picked; the
#: course's dataset has 259 photos). At most MAX_UPLOAD_PIXELS pixels decoded in
#: all, added up from the headers before decoding: decoding takes about 1 s of CPU per 100 MP (a solid
#: 10 000×10 000 PNG, a 787-byte entry), so an upload costs at most about 10 s of CPU.
MAX_UPLOAD_FILES = 2_000
MAX_UPLOAD_PIXELS = 1_000_000_000
#: Most bytes an uploaded zip may inflate to. Photos barely compress (a 20 MB upload of JPEGs is about
#: 20 MB inflated, of BMPs two or three times that), and entries under RATIO_FLOOR are not ratio-checked,
#: so 2 GB would otherwise pass; opening a file costs CPU by its bytes too (at worst about 0.1 s per MB, a
#: GIF of empty blocks, measured; each file is opened twice), so an upload's bytes cost at most about 25 s.
MAX_UPLOAD_TOTAL_BYTES = 128 * 1024**2
#: Most disk the datasets imported from uploads may take in all; beyond it the oldest are removed
#: (never one imported on this machine with the CLI): at least 40 of the largest uploads fit.
MAX_UPLOADS_BYTES = 1024**3
#: Subfolder of home_dir() holding the imported datasets, one folder each.
DATASETS_DIR = "datasets"
#: Part of the cache key: bump when an import would give different arrays from the same photos.
IMPORT_VERSION = 1
#: The file in an imported dataset's folder naming who imported it from an upload: ``{"owners": {owner: time}}``.
OWNERS_FILE = "owners.json"
#: In public mode, how long an owner's claim on photos they uploaded lasts (seconds, ``$CATDNN_UPLOAD_TTL``):
#: one hour, a visit's length; the photos are removed when no claim is left.
UPLOAD_TTL_ENV = "CATDNN_UPLOAD_TTL"
DEFAULT_UPLOAD_TTL = 3600.0
#: The clock of owners' claims and their expiry (seconds since the epoch; tests put their own).
clock = time.time
_owners_lock = threading.Lock()  # one server process serves every session: their claims are written one at a time

ImportProgress = Callable[[int, int, str], None]  # (files done, files in all, the file's name)
_IGNORED_NAMES = {"thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Skipped:
    """A file left out of the dataset, and why (one line)."""

    name: str
    reason: str


@dataclass(frozen=True)
class PhotoDataset:
    """An imported dataset, as its manifest describes it.

    ``counts`` is ``{"train": {"cat": n, "non-cat": n}, "test": {...}}``; ``cached`` is True when
    the import found the same photos already imported and reused them.
    """

    folder: Path
    name: str
    source: str
    created: float
    counts: dict
    skipped: tuple = ()
    cached: bool = False
    uploaded: bool = False  # from an upload in the app (bytes), not a folder or zip on this machine
    owners: tuple = ()  # who imported it from an upload (Identity owners: hashes, never keys)
    classes: tuple = ()  # the class each of ``owners`` was in when importing ("" outside class mode), same order

    @property
    def m_train(self) -> int:
        return sum(self.counts["train"].values())

    @property
    def m_test(self) -> int:
        return sum(self.counts["test"].values())

    @property
    def label(self) -> str:
        """A line for a picker: the name and the number of photos in each split."""
        return f"{self.name} ({self.m_train} train + {self.m_test} test photos)"


@dataclass
class _Entry:
    """One file of the folder or zip: its path inside, and how to read its bytes."""

    parts: tuple
    size: int
    read: Callable[[], bytes] = field(repr=False)

    @property
    def name(self) -> str:
        return "/".join(self.parts)


# --------------------------------------------------------------------------- listing the files
def _ignored(parts) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1].lower() in _IGNORED_NAMES


def _too_many(limit: int, what: str) -> DataError:
    return DataError(f"{what} holds more than {limit:,} files: too many to import (split it, or import "
                     f"a smaller selection)")


def _folder_entries(top: Path, max_files: int) -> list[_Entry]:
    """The files under ``top`` (not following symlinked folders, so no loop), sorted by path."""
    entries = []
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for f in files:
            path = Path(root) / f
            parts = path.relative_to(top).parts
            if _ignored(parts):
                continue
            entries.append(_Entry(parts, 0, lambda path=path: path.read_bytes()))
            if len(entries) > max_files:
                raise _too_many(max_files, f"the folder {top}")
    return sorted(entries, key=lambda e: e.parts)


def _unsafe_name(name: str) -> bool:
    """Whether a zip entry's name would land outside the folder it is extracted into."""
    if "\x00" in name:
        return True
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        return True
    return ".." in PurePosixPath(unified).parts


def _zip_entries(zf: zipfile.ZipFile, label: str, archive_size: int, max_files: int,
                 max_bytes: int = MAX_TOTAL_BYTES) -> list[_Entry]:
    """The zip's files, after checking its whole directory (see the module docstring); sorted by path."""
    infos = zf.infolist()
    files = [i for i in infos if not i.is_dir()]
    if len(files) > max_files:
        raise _too_many(max_files, f"the zip {label}")
    total = compressed = 0
    for info in infos:
        if _unsafe_name(info.filename):
            raise DataError(f"the zip {label} is refused: its entry {info.filename!r} would be written outside "
                            "its folder (an absolute path or '..'); zip the photos' folder again")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"the zip {label} is refused: its entry {info.filename!r} is a symbolic link; "
                            "zip the photos themselves")
        total += info.file_size
        compressed += info.compress_size
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DataError(
                f"the zip {label} is refused: its entry {info.filename!r} would inflate from "
                f"{info.compress_size:,} to {info.file_size:,} bytes (over {MAX_RATIO}:1: a zip bomb, not photos)")
    if total > max_bytes:
        raise DataError(f"the zip {label} is refused: it would inflate to {total / 2**20:,.0f} MB "
                        f"(over {max_bytes / 2**20:,.0f} MB: a zip bomb, or too many photos at once)")
    if archive_size and compressed > archive_size:
        raise DataError(f"the zip {label} is refused: its entries overlap ({compressed:,} compressed bytes in a "
                        f"{archive_size:,}-byte file: a zip bomb)")
    entries = []
    for info in files:
        parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p not in ("", "."))
        if not parts or _ignored(parts):
            continue
        entries.append(_Entry(parts, info.file_size, lambda info=info: _read_entry(zf, info)))
    return sorted(entries, key=lambda e: e.parts)


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.flag_bits & 0x1:
        raise ImageError(f"{info.filename}: encrypted in the zip")
    if info.file_size > images.MAX_FILE_BYTES:
        raise ImageError(f"{info.filename}: the file is too large (over {images.MAX_FILE_BYTES // 2**20} MB)")
    try:
        with zf.open(info) as f:
            return f.read(info.file_size + 1)  # the decompressor never yields more than the declared size
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ImageError(f"{info.filename}: damaged in the zip ({exc})") from None
    except Exception as exc:  # zlib.error, lzma.LZMAError, ...: a damaged entry, never an aborted import
        raise ImageError(f"{info.filename}: damaged in the zip ({type(exc).__name__}: {exc})") from None


def _class_of(folder_name: str) -> int | None:
    norm = re.sub(r"[\s_]+", "-", folder_name.strip().lower())
    return 1 if norm in POSITIVE_NAMES else 0 if norm in NEGATIVE_NAMES else None


def _base(entries: list[_Entry], label: str) -> tuple:
    """The folder holding the class folders: ``()`` (the top) or ``(name,)`` (one folder inside)."""
    def labels_under(prefix):
        n = len(prefix)
        return {_class_of(e.parts[n]) for e in entries if len(e.parts) > n + 1 and e.parts[:n] == prefix} - {None}

    candidates = [()] + [(t,) for t in sorted({e.parts[0] for e in entries if len(e.parts) > 2})]
    for prefix in candidates:
        if labels_under(prefix) == {0, 1}:
            return prefix
    found = set().union(*(labels_under(p) for p in candidates))
    seen = sorted({e.parts[0] + "/" for e in entries if len(e.parts) > 1})[:8]
    missing = " and no ".join(f"{n}/ folder" for n, y in (("cat", 1), ("non-cat", 0)) if y not in found) or (
        "cat/ and non-cat/ folders side by side")
    raise DataError(
        f"{label} needs a cat/ and a non-cat/ folder of photos (at the top, or inside one folder); "
        f"found no {missing}" + (f" (its folders: {', '.join(seen)})" if seen else "")
        + ". Put the photos of cats in cat/ and the others in non-cat/.")


# --------------------------------------------------------------------------- decoding and splitting
def _within_pixels(todo: list, max_pixels: int, skipped: list) -> list:
    """The entries of ``todo`` whose headers pass and whose pixels, added up in order, stay within
    ``max_pixels``; the others go to ``skipped``. Only headers are read (each entry inflated once
    more): decoding costs CPU in proportion to the pixels, and a solid 10 000×10 000 PNG is a
    787-byte zip entry that takes a second to decode."""
    kept, spent = [], 0
    for entry, label in todo:
        try:
            w, h = images.header_size(entry.read(), entry.name)
        except ImageError as exc:
            skipped.append(Skipped(entry.name, str(exc).removeprefix(f"{entry.name}: ")))
            continue
        if spent + w * h > max_pixels:
            skipped.append(Skipped(entry.name, f"not decoded: its {w:,}×{h:,} pixels are beyond the "
                                   f"{max_pixels / 1e6:,.0f} megapixels an upload may decode in all"))
            continue
        spent += w * h
        kept.append((entry, label))
    return kept


def _decode_all(entries, base: tuple, progress: ImportProgress | None, workers: int, max_pixels: int | None = None):
    """Decode every entry (``workers`` at a time, reading ahead a little); returns the images, labels
    and the skipped files, in the entries' order. With ``max_pixels``, the headers are read first and
    only the entries within that many pixels in all are decoded."""
    kept, labels, skipped = [], [], []
    todo = []
    for e in entries:
        rel = e.parts[len(base):]
        if e.parts[:len(base)] != base:
            skipped.append(Skipped(e.name, f"outside {base[0]}/, the folder holding cat/ and non-cat/"))
        elif len(rel) < 2:
            skipped.append(Skipped(e.name, "not inside a cat/ or non-cat/ folder"))
        elif _class_of(rel[0]) is None:
            skipped.append(Skipped(e.name, f"in {rel[0]}/, which is not a class folder (cat/ or non-cat/)"))
        else:
            todo.append((e, _class_of(rel[0])))
    if max_pixels is not None:
        todo = _within_pixels(todo, max_pixels, skipped)

    def decode(entry):
        try:
            return np.asarray(images.prepare_image(entry.read(), name=entry.name), dtype=np.uint8)
        except ImageError as exc:
            return str(exc).removeprefix(f"{entry.name}: ")
        except MemoryError:
            return "not enough memory to decode it"

    total = len(todo)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        window = collections.deque()
        it = iter(todo)
        done = 0
        while True:
            while len(window) < 2 * max(1, workers):
                nxt = next(it, None)
                if nxt is None:
                    break
                window.append((nxt, pool.submit(decode, nxt[0])))
            if not window:
                break
            (entry, label), future = window.popleft()
            result = future.result()
            if isinstance(result, str):
                skipped.append(Skipped(entry.name, result))
            else:
                kept.append(result)
                labels.append(label)
            done += 1
            if progress is not None:
                progress(done, total, entry.name)
    x = np.stack(kept) if kept else np.zeros((0, *IMAGE_SHAPE), np.uint8)
    return x, np.asarray(labels, dtype=np.int64), sorted(skipped, key=lambda s: s.name)


def stratified_split(labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED):
    """Indices ``(train, test)`` of a split that keeps each class's share in both parts.

    Each class's examples are shuffled with ``np.random.RandomState(seed)`` (class 0 first) and
    ``round(test_fraction · n)`` of them (at least 1, at most n − 1) go to the test set; each part is
    then shuffled with the same generator so the classes are mixed, as in the course's files.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.RandomState(seed)
    labels = np.asarray(labels).reshape(-1)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        n_test = min(max(int(round(test_fraction * idx.size)), 1), idx.size - 1) if idx.size > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train = np.concatenate(train) if train else np.zeros(0, np.int64)
    test = np.concatenate(test) if test else np.zeros(0, np.int64)
    return train[rng.permutation(train.size)], test[rng.permutation(test.size)]


# --------------------------------------------------------------------------- the cache
def datasets_dir(home=None) -> Path:
    """Where imported datasets are kept: ``home_dir()/datasets`` (``home`` overrides home_dir())."""
    return Path(home if home is not None else home_dir()).expanduser().absolute() / DATASETS_DIR


def _display_name(name: str) -> str:
    name = "".join(ch for ch in str(name) if ch.isprintable()).strip()
    return (name[:60] or "my photos")


def _info(folder: Path, manifest: dict, cached: bool = False) -> PhotoDataset:
    owners, classes = tuple(sorted(_claims(folder))), _classes(folder)
    return PhotoDataset(
        folder=folder, name=str(manifest.get("name") or folder.name), source=str(manifest.get("source", "")),
        created=float(manifest.get("created", 0.0)), counts=manifest["counts"],
        skipped=tuple(Skipped(str(n), str(r)) for n, r in manifest.get("skipped", [])), cached=cached,
        uploaded=bool(manifest.get("uploaded", False)), owners=owners,
        classes=tuple(classes.get(o, "") for o in owners))


# --------------------------------------------------------------------------- owners
def _claims(folder: Path) -> dict:
    """``{owner: when they imported it}`` of an imported dataset ({} when nobody's: unreadable counts as nobody's)."""
    try:
        claims = json.loads((Path(folder) / OWNERS_FILE).read_text(encoding="utf-8")).get("owners", {})
        return {str(o): float(t) for o, t in claims.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _classes(folder: Path) -> dict:
    """``{owner: the class they were in when importing}`` of an imported dataset (an owner not in it: no class)."""
    try:
        classes = json.loads((Path(folder) / OWNERS_FILE).read_text(encoding="utf-8")).get("classes", {})
        return {str(o): str(c) for o, c in classes.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _write_claims(folder: Path, claims: dict, classes: dict | None = None) -> None:
    """Replace the dataset's claims (and their owners' classes: default, those already recorded) in one step (a
    reader sees the old file or the new one, never half)."""
    classes = _classes(folder) if classes is None else classes
    classes = {o: c for o, c in classes.items() if o in claims and c}
    fd, tmp = tempfile.mkstemp(prefix=".owners-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"owners": claims, "classes": classes}, f)
        os.replace(tmp, Path(folder) / OWNERS_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _claim(folder: Path, viewer: Identity, now: float | None = None) -> None:
    """Record ``viewer``'s claim on the dataset in ``folder`` (and the class they are in)."""
    with _owners_lock:
        claims, classes = _claims(folder), _classes(folder)
        claims[viewer.owner] = clock() if now is None else float(now)
        classes[viewer.owner] = viewer.class_code
        try:
            _write_claims(folder, claims, classes)
        except OSError as exc:
            raise DataError(f"cannot record who imported the photos in {folder.name}: {exc.strerror or exc}") from None


def _server_folder(folder: Path, viewer: Identity | None) -> str:
    """A folder of the server as a message to ``viewer`` names it: itself for the machine's user (the CLI, a local
    tab) and the teacher; for a student or visitor "the server's datasets folder" (never the server's layout)."""
    return str(folder) if viewer is None or viewer.role in ("owner", "teacher") else "the server's datasets folder"


def _remove(folder: Path, viewer: Identity | None = None) -> None:
    """Remove a dataset's folder: renamed aside first (hidden, so no listing sees it half removed)."""
    aside = folder.with_name(f".removed-{folder.name}-{os.getpid()}-{threading.get_ident()}")
    try:
        os.rename(folder, aside)
    except OSError:
        aside = folder
    shutil.rmtree(aside, ignore_errors=True)
    if folder.exists():  # not renamed, and not removed: no permission
        raise DataError(f"cannot remove the dataset {folder.name}: check the permissions of "
                        f"{_server_folder(folder.parent, viewer)}")


def _is_machine(viewer: Identity) -> bool:
    return viewer.role == "owner" and not viewer.owner


def _manages(viewer: Identity, owner: str, class_code: str) -> bool:
    """Whether ``viewer`` may open and withdraw the claim of ``owner`` (who was in class ``class_code`` when
    importing): the machine's user every claim; the teacher their own and their class's, never another class's;
    a student, visitor or local-mode tab their own."""
    if viewer.role == "teacher":
        return (bool(viewer.owner) and same(viewer.owner, owner)) or (
            bool(viewer.class_code) and same(viewer.class_code, class_code or ""))
    return viewer.may_see(owner)


def may_open(info: PhotoDataset, viewer: Identity | None = None) -> bool:
    """Whether ``viewer`` (default: the machine's user) may list and open the dataset ``info``: a dataset
    imported on this machine is everyone's; an upload its owners', the machine's user's, and the teacher's of a
    class one of its owners was in."""
    viewer = MACHINE if viewer is None else viewer
    return (not info.uploaded or _is_machine(viewer)
            or any(_manages(viewer, o, c) for o, c in zip(info.owners, _padded(info), strict=True)))


def _padded(info: PhotoDataset) -> tuple:
    """``info.classes``, one per owner (a PhotoDataset made without them: no class)."""
    return info.classes if len(info.classes) == len(info.owners) else ("",) * len(info.owners)


def upload_ttl(environ=None) -> float:
    """How long (seconds) an owner's claim on uploaded photos lasts in public mode: ``$CATDNN_UPLOAD_TTL``,
    default :data:`DEFAULT_UPLOAD_TTL`; raises :class:`DataError` for a value that is not a positive number."""
    text = (os.environ if environ is None else environ).get(UPLOAD_TTL_ENV, "").strip()
    if not text:
        return DEFAULT_UPLOAD_TTL
    try:
        ttl = float(text)
    except ValueError:
        ttl = float("nan")
    if not (ttl > 0 and ttl != float("inf")):
        raise DataError(f"{UPLOAD_TTL_ENV}={text!r} is not a number of seconds above 0 "
                        f"(e.g. {DEFAULT_UPLOAD_TTL:.0f}, one hour)")
    return ttl


def expire_uploads(home=None, *, ttl: float | None = None, now: float | None = None) -> list[Path]:
    """Public mode's expiry: withdraw every owner's claim on uploaded photos older than ``ttl`` seconds (default
    :func:`upload_ttl`) at time ``now`` (default: :data:`clock`), and remove the uploads nobody claims any more (one
    nobody ever claimed: ``ttl`` after its import). Datasets imported on this machine never expire. Returns
    the folders removed."""
    ttl = upload_ttl() if ttl is None else float(ttl)
    now = clock() if now is None else float(now)
    removed = []
    for d in _all_datasets(home):
        if not d.uploaded:
            continue
        with _owners_lock:
            claims = _claims(d.folder)
            live = {o: t for o, t in claims.items() if now - t < ttl}
            if live != claims and live:
                with contextlib.suppress(OSError):
                    _write_claims(d.folder, live)
            if not live and now - (max(claims.values()) if claims else d.created) >= ttl:
                with contextlib.suppress(DataError):  # not removable now: next time
                    _remove(d.folder)
                    removed.append(d.folder)
    return removed


def read_info(folder) -> PhotoDataset:
    """The imported dataset in ``folder``, as its manifest describes it (DataError if it is not one)."""
    from .data import read_manifest

    folder = Path(folder)
    if not is_imported(folder):
        raise DataError(f"{folder}: not a dataset imported from photos", folder=folder)
    manifest = read_manifest(folder)
    try:
        return _info(folder, manifest)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{folder / MANIFEST}: an incomplete manifest; import the photos again",
                        folder=folder) from None


def list_datasets(home=None, viewer: Identity | None = None) -> list[PhotoDataset]:
    """The imported datasets ``viewer`` may open (:func:`may_open`; default: the machine's user, who sees all),
    newest first; folders that are not complete datasets are left out. In public mode, expired uploads are
    removed first (:func:`expire_uploads`)."""
    if current_mode() == "public":
        expire_uploads(home)
    return [d for d in _all_datasets(home) if may_open(d, viewer)]


def _all_datasets(home=None) -> list[PhotoDataset]:
    top = datasets_dir(home)
    found = []
    try:
        folders = [p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    for folder in folders:
        try:
            found.append(read_info(folder))
        except DataError:
            continue
    return sorted(found, key=lambda d: (-d.created, d.name))


def _write(folder: Path, x: np.ndarray, y: np.ndarray, split_idx, manifest: dict) -> None:
    import h5py

    for split, idx in zip(("train", "test"), split_idx):
        xs, ys = np.ascontiguousarray(x[idx]), y[idx].astype(np.int64)
        with h5py.File(folder / IMPORTED_FILES[split], "w") as h:
            h.create_dataset(f"{split}_set_x", data=xs)
            h.create_dataset(f"{split}_set_y", data=ys)
            h.create_dataset("list_classes", data=np.array([c.encode() for c in CLASSES]))
        manifest["content_sha256"][split] = content_digest(xs, ys)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def _key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _folder_fingerprint(entries: list[_Entry], top: Path) -> str:
    h = hashlib.sha256()
    for e in entries:
        try:
            st = (top.joinpath(*e.parts)).stat()
            h.update(repr((e.parts, st.st_size, st.st_mtime_ns)).encode())
        except OSError:
            h.update(repr((e.parts, None)).encode())
    return h.hexdigest()


def import_photos(
    source,
    name: str | None = None,
    *,
    home=None,
    test_fraction: float = TEST_FRACTION,
    seed: int = SPLIT_SEED,
    progress: ImportProgress | None = None,
    max_files: int | None = None,
    max_pixels: int | None = None,
    workers: int = images.DECODE_SLOTS,
    viewer: Identity | None = None,
) -> PhotoDataset:
    """Import a folder of photos, or a zip of one, as a dataset; returns what was imported.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        A folder with ``cat/`` and ``non-cat/`` subfolders, a ``.zip`` file of one, or a zip's
        bytes (an upload: ``getvalue()`` is used when the object has it).
    name : str, optional
        The dataset's name (default: the folder's or the zip's name).
    home : str or Path, optional
        Instead of :func:`catdnn.data.home_dir` (the dataset goes to ``home/datasets/…``).
    progress : callable(done, total, file_name), optional
        Called after each photo is decoded.
    max_files, max_pixels : int, optional
        Most files, and most pixels decoded in all (photos beyond it are skipped and listed). By
        default an upload (bytes or a file object) gets :data:`MAX_UPLOAD_FILES` and
        :data:`MAX_UPLOAD_PIXELS`, a folder or zip on this machine :data:`MAX_FILES` and no pixel limit.
    viewer : Identity, optional
        Who uploads (the app's session): an upload becomes theirs (one more owner when the same photos were
        imported before). Without it (the CLI, a folder or zip on this machine) the dataset is the machine's.

    The cache is keyed by the photos' content (a zip's bytes; a folder's paths, sizes and times), the
    split and the seed, never by the name: the same zip under another name is the same dataset. After
    an upload is imported, the oldest uploads are removed beyond :data:`MAX_UPLOADS_BYTES` in all.

    Raises :class:`DataError` with one clear message when the source is refused or holds too few
    readable photos; unreadable files are listed in the result's ``skipped`` instead.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"the test share must be between 0 and 1, not {test_fraction}")
    uploaded = not isinstance(source, (str, Path))
    if max_files is None:
        max_files = MAX_UPLOAD_FILES if uploaded else MAX_FILES
    if max_pixels is None and uploaded:
        max_pixels = MAX_UPLOAD_PIXELS
    zf = None
    try:
        if isinstance(source, (str, Path)) and Path(source).expanduser().is_dir():
            top = Path(source).expanduser()
            label = f"the folder {top}"
            entries = _folder_entries(top, max_files)
            fingerprint = ("folder", str(top.resolve()), _folder_fingerprint(entries, top))
            default_name, origin = top.resolve().name, str(top)
        else:
            if isinstance(source, (str, Path)):
                path = Path(source).expanduser()
                if not path.exists():
                    raise DataError(f"{path}: no such file or folder")
                data = _read_zip_file(path)
                label, default_name, origin = str(path), path.stem, str(path)
            else:
                data = source.getvalue() if hasattr(source, "getvalue") else (
                    source.read() if hasattr(source, "read") else bytes(source))
                label = f"'{name}'" if name else "the upload"
                default_name, origin = name or "my photos", f"{name or 'upload'} (uploaded)"
            try:
                zf = zipfile.ZipFile(io.BytesIO(data))
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
                raise DataError(f"{label} is not a zip file (or a damaged one): give a folder with cat/ and "
                                "non-cat/ subfolders, or a zip of one") from None
            entries = _zip_entries(zf, label, len(data), max_files,
                                   MAX_UPLOAD_TOTAL_BYTES if uploaded else MAX_TOTAL_BYTES)
            fingerprint = ("zip", hashlib.sha256(data).hexdigest())
            del data
        shown = _display_name(name or default_name)
        key = _key(IMPORT_VERSION, fingerprint, float(test_fraction), int(seed))  # the content, never the name
        out = datasets_dir(home) / f"photos-{key[:16]}"
        if is_imported(out):
            try:
                info = read_info(out)
            except DataError:
                shutil.rmtree(out, ignore_errors=True)  # a damaged cache: import again
            else:
                if uploaded and viewer is not None and viewer.owner:  # the same photos: one more owner
                    _claim(out, viewer)
                    info = read_info(out)
                return PhotoDataset(**{**info.__dict__, "cached": True})
        base = _base(entries, label)
        x, y, skipped = _decode_all(entries, base, progress, workers, max_pixels)
    finally:
        if zf is not None:
            zf.close()
    short = [c for v, c in ((1, "cat"), (0, "non-cat")) if np.count_nonzero(y == v) < MIN_PER_CLASS]
    if short:
        raise DataError(
            f"{label}: too few readable photos in {' and '.join(c + '/' for c in short)} (each class needs at least "
            f"{MIN_PER_CLASS}: one to train on, one to test on); {len(skipped)} file(s) could not be used")
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    counts = {split: {"cat": int(np.count_nonzero(y[idx] == 1)), "non-cat": int(np.count_nonzero(y[idx] == 0))}
              for split, idx in (("train", train_idx), ("test", test_idx))}
    manifest = {
        "format": MANIFEST_FORMAT, "version": IMPORT_VERSION, "name": shown, "source": origin,
        "created": time.time(), "classes": list(CLASSES), "test_fraction": float(test_fraction), "seed": int(seed),
        "counts": counts, "skipped": [[s.name, s.reason] for s in skipped], "content_sha256": {},
        "uploaded": uploaded,
    }
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=parent))
    except OSError as exc:
        raise DataError(f"cannot create the datasets folder {_server_folder(parent, viewer)}: "
                        f"{exc.strerror or type(exc).__name__}") from None
    try:
        _write(tmp, x, y, (train_idx, test_idx), manifest)
        if uploaded and viewer is not None and viewer.owner:
            _write_claims(tmp, {viewer.owner: clock()}, {viewer.owner: viewer.class_code})
        try:
            os.rename(tmp, out)
        except OSError:
            if not is_imported(out):  # not another import of the same photos that finished first
                raise
            if uploaded and viewer is not None and viewer.owner:  # that import's owners, and this one
                _claim(out, viewer)
    except OSError as exc:
        raise DataError(f"cannot write the dataset into {_server_folder(parent, viewer)}: "
                        f"{exc.strerror or type(exc).__name__}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if uploaded:
        evict_uploads(home, keep=out)
        if current_mode() == "public":
            expire_uploads(home)
    return _info(out, manifest)


def _disk_bytes(folder: Path) -> int:
    total = 0
    for p in folder.iterdir():
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total


def evict_uploads(home=None, keep: Path | None = None, limit: int | None = None) -> list[Path]:
    """Remove the oldest datasets imported from uploads until they take at most ``limit`` bytes
    (:data:`MAX_UPLOADS_BYTES`) in all; ``keep`` (the one just imported) and datasets imported on
    this machine are never removed. Returns the folders removed."""
    limit = MAX_UPLOADS_BYTES if limit is None else limit
    uploads = [(d, _disk_bytes(d.folder)) for d in _all_datasets(home) if d.uploaded]
    total = sum(size for _, size in uploads)
    removed = []
    for d, size in sorted(uploads, key=lambda item: item[0].created):  # oldest first
        if total <= limit:
            break
        if keep is not None and d.folder == Path(keep):
            continue
        with contextlib.suppress(DataError):  # not removable now: the next import tries again
            _remove(d.folder)
            total -= size
            removed.append(d.folder)
    return removed


def _read_zip_file(path: Path) -> bytes:
    """A zip file's bytes (refused beyond MAX_TOTAL_BYTES: it could not pass the checks anyway)."""
    try:
        if path.stat().st_size > MAX_TOTAL_BYTES:
            raise DataError(f"{path}: the file is larger than {MAX_TOTAL_BYTES / 2**30:.0f} GB: too large to import")
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def resolve_dataset(path, *, home=None, progress: ImportProgress | None = None):
    """The folder to load for the CLI's ``--dataset PATH``, and the import it came from (or None).

    ``path`` may be a folder of photos (``cat/``, ``non-cat/``), a zip of one (both imported, or
    reused from the cache), a folder holding a dataset's .h5 pair (an imported one, or the course's),
    one of those .h5 files, or the name of a dataset imported before.
    """
    from .data import _has_files

    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() == ".h5":
        p = p.parent
    if p.is_dir() and (_has_files(p) or is_imported(p)):
        return p, (read_info(p) if is_imported(p) and not _has_files(p) else None)
    if p.exists():
        info = import_photos(p, home=home, progress=progress)
        return info.folder, info
    named = _named(list_datasets(home), str(path))
    if named:
        return named[0].folder, named[0]
    raise DataError(f"--dataset {path}: no such file or folder, nor an imported dataset of that name "
                    f"(imported datasets are in {datasets_dir(home)})")


def _named(found: list[PhotoDataset], name: str) -> list[PhotoDataset]:
    return [d for d in found if d.name == name or d.folder.name == name]


def find_dataset(name: str, *, home=None, viewer: Identity | None = None) -> PhotoDataset:
    """The imported dataset called ``name`` (its display name, or its folder's name as ``datasets list`` shows
    it) among those ``viewer`` may open (default: the machine's user). Raises :class:`DataError` when there is
    none (another's upload gets exactly what a missing name gets) or when several share the name."""
    name = str(name)
    found = _named(list_datasets(home, viewer), name)
    if not found:
        shown = "".join(ch for ch in name if ch.isprintable())[:80]
        raise DataError(f"there is no imported dataset called {shown!r} (see `python -m catdnn datasets list`)")
    if len(found) > 1:
        raise DataError(f"{len(found)} imported datasets are called {name!r}: name one by its folder, "
                        + " or ".join(d.folder.name for d in found))
    return found[0]


def may_delete(info: PhotoDataset, viewer: Identity | None = None) -> bool:
    """Whether ``viewer`` may delete ``info``: the machine's user any; the teacher one imported on this machine,
    and their own and their class's claims on an upload; an upload's owners their claims."""
    viewer = MACHINE if viewer is None else viewer
    if _is_machine(viewer) or (viewer.role == "teacher" and not info.uploaded):
        return True
    return info.uploaded and bool(viewer.owner or viewer.class_code) and may_open(info, viewer)


def delete_dataset(name: str, *, home=None, viewer: Identity | None = None) -> PhotoDataset:
    """Delete the imported dataset ``name`` (:func:`find_dataset`) as ``viewer`` (default: the machine's user);
    returns it. The teacher and the machine's user remove it from disk. An owner of an upload withdraws their
    claim, and the photos are removed when nobody's claim is left (the same photos imported by someone else
    stay theirs). Raises :class:`DataError` for a dataset ``viewer`` may not open (as for a missing one) or may
    open but not delete (one imported on this machine: only the teacher or the command line may)."""
    viewer = MACHINE if viewer is None else viewer
    info = find_dataset(name, home=home, viewer=viewer)
    if not may_delete(info, viewer):
        raise DataError(f"{info.name!r} was imported on this machine for everyone: only the teacher or the command "
                        "line (`python -m catdnn datasets delete`) can delete it")
    if _is_machine(viewer) or not info.uploaded:
        _remove(info.folder)
        return info
    with _owners_lock:
        classes = _classes(info.folder)
        claims = {o: t for o, t in _claims(info.folder).items() if not _manages(viewer, o, classes.get(o, ""))}
        if claims:
            try:
                _write_claims(info.folder, claims)
            except OSError as exc:
                raise DataError(f"cannot delete {info.name!r}: {exc.strerror or type(exc).__name__}") from None
            return info
        _remove(info.folder, viewer)  # nobody's claim is left (under the lock: no claim comes in meanwhile)
    return info
