"""The run history: every finished, stopped or diverged run, kept in a local SQLite database.

The database is ``runs.sqlite3`` in the user's catdnn folder (:func:`catdnn.data.home_dir`:
``$CATDNN_HOME``, else ``~/.catdnn``). It uses the standard library's :mod:`sqlite3` in WAL mode,
so several processes (a dashboard, a CLI run, a sweep) write to it at once without losing a run:
each write is one short ``BEGIN IMMEDIATE`` transaction and waits for the others
(:data:`BUSY_SECONDS`). Open one :class:`History` per process or session and keep it.

What a run keeps (:class:`RunRecord`): its settings (the :class:`~catdnn.config.TrainConfig` as a
dict), its seed, the whole cost curve and accuracy curve, the final accuracies, its timing, how it
ended and why, the solver, where it came from (``source``: the Train page, the CLI, a sweep) and
its model as the ``.npz`` bytes of :mod:`catdnn.model_io` (never pickle). A diverged run keeps no
model.

Who sees a run (:attr:`History.identity`, a :class:`~catdnn.classroom.Identity`): every run has an owner
(the identity's :attr:`~catdnn.classroom.Identity.owner` that kept it), and the engine decides, not the page:

- **local mode** (a string ``viewer``: the session's token): a run trained on photos a visitor uploaded to the
  app is that session's (``private``): listed, opened, exported and deleted only through a :class:`History`
  opened with the same ``viewer``, never through another session's, even when its folder was removed before
  the run was kept (:func:`is_upload` fails closed; pass the Dataset, which remembers). Other runs are
  everyone's, as before the modes existed.
- **class and public mode** (a student's or visitor's Identity): every run they keep is private, and they list,
  open, reload, export and delete **only their own**; another's run id gets exactly what a missing one gets
  ("there is no run N"). The teacher's Identity sees and deletes their own runs, their class's (each run
  records its owner's class, ``class``) and the machine's public ones (local mode's and the CLI's), never
  another class's served from the same machine, nor a public visitor's.
- **the CLI** (``viewer=None``: :data:`~catdnn.classroom.MACHINE`) is the machine's owner and sees every run.

A run names its dataset by its display name, never by its folder on the server, and every CSV cell that a
spreadsheet would take for a formula is neutralised (:func:`csv_text_of`).

The file is bounded (SECURITY.md, "Resources"): a model larger than :data:`MAX_MODEL_BYTES` is not
kept (its curves and metrics are); beyond :data:`MAX_OWNER_MODEL_BYTES` of models per user (a
session, else a source such as the CLI) the user's oldest models are dropped first, their runs kept;
beyond :data:`MAX_TOTAL_MODEL_BYTES` in all, a student's or visitor's own older models go, else their new
model is not kept, never another person's (the machine's user, one person, loses the oldest of all).
Dropped models and deleted runs give their space back to the file system (``auto_vacuum = INCREMENTAL``).

The schema has a version (the ``schema_version`` table). An older database is migrated on opening,
after a copy of it is put aside next to it (``runs.sqlite3.v1.bak``); a newer one (from a later
catdnn) or a file that is not a readable database raises :class:`HistoryError` with a clear message.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .classroom import MACHINE, Identity
from .config import TrainConfig
from .errors import CatdnnError
from .labels import arch_text, dataset_name

FILE_NAME = "runs.sqlite3"
#: The schema this catdnn writes; :data:`MIGRATIONS` brings older ones up to it.
SCHEMA_VERSION = 3
#: How long a write waits for another process's write to finish (seconds).
BUSY_SECONDS = 60.0
#: Where a run came from.
SOURCES = ("app", "cli", "sweep")
#: The largest model one run keeps (its ``.npz`` bytes): 64 MiB is 32 times the course's deep net (2.0 MB)
#: and a first layer of about 680 units; a larger model is not kept, its run's curves and metrics are.
MAX_MODEL_BYTES = 64 * 2**20
#: Models kept per user (a session of the app, else a source: the CLI), the oldest dropped first: 1 GiB.
MAX_OWNER_MODEL_BYTES = 2**30
#: Models kept in all, the oldest dropped first: 4 GiB.
MAX_TOTAL_MODEL_BYTES = 4 * 2**30

_SCHEMA_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    seed INTEGER,
    history TEXT NOT NULL DEFAULT '[]',
    accuracy_history TEXT NOT NULL DEFAULT '[]',
    iterations_done INTEGER NOT NULL DEFAULT 0,
    train_accuracy REAL,
    test_accuracy REAL,
    elapsed REAL NOT NULL DEFAULT 0,
    solver TEXT NOT NULL DEFAULT '',
    dataset TEXT NOT NULL DEFAULT '',
    sweep TEXT NOT NULL DEFAULT '',
    model BLOB
);
CREATE INDEX runs_created ON runs (created);
"""

_V1_TO_V2 = """
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN private INTEGER NOT NULL DEFAULT 0
"""

#: Which class a run's owner was in (their Identity's ``class_code``; "" outside class mode): a teacher sees
#: their own class's runs, never another class's served from the same machine. Runs kept before it are no
#: class's: a teacher sees none of the students' runs kept before (the CLI does).
_V2_TO_V3 = "ALTER TABLE runs ADD COLUMN class TEXT NOT NULL DEFAULT ''"


def is_upload(dataset) -> bool:
    """Whether runs on ``dataset`` (a :class:`~catdnn.data.Dataset` or its folder) are a visitor's: photos a
    visitor uploaded to the app. It fails closed: a run is public only when its folder shows public data (the
    course's files, or an import whose manifest says it was made on this machine). A folder no longer there
    (an upload removed to make room for newer ones while a run trained on it), half removed or with an
    unreadable manifest counts as an upload, and so does a Dataset loaded from an upload
    (``Dataset.uploaded``) whatever happened to its folder since. A display name (not a folder) is not one."""
    from .data import _has_files, is_imported, read_manifest

    if getattr(dataset, "uploaded", False):
        return True
    folder = getattr(dataset, "source", dataset)
    if folder is None or str(folder) == "":
        return False
    folder = Path(str(folder))
    if not (folder.is_absolute() or folder.is_dir()):
        return False  # a name, as dataset_name() tells them apart (a display name may hold a slash)
    if _has_files(folder):
        return False  # the course's
    try:
        return not is_imported(folder) or bool(read_manifest(folder).get("uploaded", False))
    except (CatdnnError, OSError):
        return True


def _v1_to_v2(db) -> None:
    """Add who owns a run; name datasets by their display names; runs on uploads (whose visitor is not known),
    or on folders no longer there to tell (:func:`is_upload`), become private to nobody in the app (the CLI
    sees them)."""
    for statement in _V1_TO_V2.split(";"):
        db.execute(statement)
    for run_id, dataset in db.execute("SELECT id, dataset FROM runs").fetchall():
        if dataset and ("/" in dataset or os.sep in dataset):
            db.execute("UPDATE runs SET dataset = ?, private = ? WHERE id = ?",
                       (dataset_name(dataset), int(is_upload(dataset)), run_id))


#: What :meth:`History.saved_models` counts on every page of the app (the sidebar), found without a scan: a person's
#: runs that kept a model. Without it the count read every run's row past its model (the owner column comes after
#: it): 13 ms a page with 1,000 runs of 0.7 MB models; with it 0.01 ms (a student's, a visitor's; a local tab's,
#: which also counts the public runs, scans this index: 1 ms).
_MODELS_INDEX = "CREATE INDEX IF NOT EXISTS runs_owner_models ON runs (owner) WHERE model IS NOT NULL"

#: ``MIGRATIONS[v]`` takes a database from schema version ``v`` to ``v + 1`` (version 0: an empty file):
#: SQL statements, or a function of the connection.
MIGRATIONS = {0: _SCHEMA_V1, 1: _v1_to_v2, 2: _V2_TO_V3}


#: The roles whose runs are always private (class and public mode), and who see only their own.
PRIVATE_ROLES = ("student", "visitor", "teacher")
#: What a spreadsheet takes for the start of a formula (OWASP, CSV injection): such a cell gets a leading ``'``.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_identity(viewer) -> Identity:
    """Who a ``viewer`` is: an :class:`~catdnn.classroom.Identity` as it is; a string (a local-mode session's
    token) the machine's user in that session; None the machine's user (the CLI, :data:`~catdnn.classroom.MACHINE`)."""
    if isinstance(viewer, Identity):
        return viewer
    return MACHINE if viewer is None else Identity("owner", owner=str(viewer))


def csv_cell(value):
    """A value safe in a CSV cell: a string a spreadsheet would run as a formula (starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return: OWASP's CSV-injection list) gets a leading ``'``, which
    spreadsheets show as text; numbers, booleans and None are kept as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text_of(rows: list[dict]) -> str:
    """Rows (dicts with the same keys) as CSV text, every cell through :func:`csv_cell`: the one CSV writer of
    catdnn (the Runs page, ``runs export``, the teacher's export)."""
    out = io.StringIO()
    if rows:
        # RFC 4180's line ends: the writer then quotes a cell holding a CR too, which "\n" alone left bare
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writerow({k: csv_cell(k) for k in rows[0]})
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


class HistoryError(CatdnnError):
    """The run history cannot be used (a corrupt file, a newer schema, no permission)."""


@dataclass
class RunRecord:
    """One run of the history. ``config`` is a :class:`TrainConfig`; curves are lists of tuples."""

    id: int
    created: str
    source: str
    status: str  # finished | stopped | diverged
    message: str
    config: TrainConfig
    seed: int | None
    iterations_done: int
    train_accuracy: float | None
    test_accuracy: float | None
    elapsed: float
    solver: str
    dataset: str = ""
    sweep: str = ""  # the sweep or lesson the run belongs to, if any
    has_model: bool = False
    history: list = field(default_factory=list)  # [(iteration, cost)]; empty in list_runs()
    accuracy_history: list = field(default_factory=list)  # [(iteration, train, test)]; empty in list_runs()
    owner: str = ""  # who kept it (an Identity's owner: a hash, never a key); "" for the CLI's; not in row()

    def row(self) -> dict:
        """The run as one flat table row: its results, then every setting by name."""
        c = self.config
        row = {
            "id": self.id, "created": self.created, "source": self.source, "status": self.status,
            "train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
            "iterations_done": self.iterations_done, "seconds": round(self.elapsed, 3), "solver": self.solver,
            "architecture": arch_text(c),
        }
        for key, value in c.to_dict().items():
            row[key] = ",".join(str(v) for v in value) if isinstance(value, list) else value
        row.update(sweep=self.sweep, dataset=self.dataset, model=self.has_model, message=self.message)
        return row


def _note(message: str, note: str) -> str:
    return f"{message}; {note}" if message else note


def default_path() -> Path:
    """``runs.sqlite3`` in the user's catdnn folder (``$CATDNN_HOME``, else ``~/.catdnn``)."""
    from .data import home_dir

    return home_dir() / FILE_NAME


def _json_points(points) -> str:
    """Curves as JSON; a non-finite value (a diverged cost) is stored as null."""
    def num(x):
        x = float(x)
        return x if math.isfinite(x) else None
    return json.dumps([[int(p[0]), *(None if v is None else num(v) for v in p[1:])] for p in points])


def _points(text: str) -> list:
    return [tuple(p) for p in json.loads(text or "[]")]


class History:
    """The run history in the SQLite file ``path`` (default :func:`default_path`), created if missing.

    One connection, usable from any thread of this process (a lock serialises its use). Raises
    :class:`HistoryError` when the file is not a readable catdnn history or is from a newer catdnn.

    ``viewer`` is who uses this connection (:func:`as_identity`): an :class:`~catdnn.classroom.Identity`; a
    local-mode session's token (a string); or None for the machine's owner (the CLI). What each may see is
    the module docstring's: :attr:`identity` keeps the Identity, :attr:`viewer` the owner it keeps runs under
    (None for the CLI). The three ``max_*`` bound the models kept (default :data:`MAX_MODEL_BYTES`,
    :data:`MAX_OWNER_MODEL_BYTES`, :data:`MAX_TOTAL_MODEL_BYTES`).
    """

    def __init__(self, path=None, viewer: Identity | str | None = None, *, max_model_bytes: int = MAX_MODEL_BYTES,
                 max_owner_bytes: int = MAX_OWNER_MODEL_BYTES, max_total_bytes: int = MAX_TOTAL_MODEL_BYTES):
        self.path = Path(path) if path is not None else default_path()
        self.identity = as_identity(viewer)
        self.viewer = self.identity.owner or None
        self.max_model_bytes, self.max_owner_bytes = int(max_model_bytes), int(max_owner_bytes)
        self.max_total_bytes = int(max_total_bytes)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            folder = f" {self.path.parent}" if self._shows_files else " on the server"
            raise HistoryError(f"cannot create the folder for the run history{folder}: "
                               f"{exc.strerror or (exc if self._shows_files else type(exc).__name__)}") from None
        try:
            self._db = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open {self._name}: {exc}") from None
        try:
            self._setup()
        except HistoryError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise HistoryError(self._unreadable(exc)) from None

    @property
    def _shows_files(self) -> bool:
        """Whether this viewer's messages may name the history's file: the machine's user's and the teacher's
        do; a student's or visitor's never show the server's folders."""
        return self.identity.role in ("owner", "teacher")

    @property
    def _name(self) -> str:
        return f"the run history {self.path}" if self._shows_files else "the run history on the server"

    def _unreadable(self, exc) -> str:
        return (f"{self._name} is not a readable database ({exc}). Move the file aside "
                "(or delete it) and catdnn starts a new, empty history; nothing else is affected.")

    # ------------------------------------------------------------------ schema
    def _setup(self) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        for _attempt in range(100):  # switching to WAL needs a moment alone with the file
            try:
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(0.05)
        else:  # pragma: no cover - another process held the file for 5 s
            mode = ""
        if str(mode).lower() != "wal":
            raise HistoryError(f"{self._name} cannot use WAL mode (journal mode {mode!r}): "
                               "is it on a network drive? Set CATDNN_HOME to a local folder.")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA journal_size_limit = {MAX_MODEL_BYTES}")  # the WAL shrinks back after a big model
        version = self._version()
        if version == 0:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table: freed pages can be returned
        if version != SCHEMA_VERSION:
            self._migrate(version)
        try:  # not a schema change: an older catdnn reads the file as before
            db.execute(_MODELS_INDEX)
        except sqlite3.DatabaseError:  # busy, or a damaged file (whose queries then say so): the count scans
            pass
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # an older file: rebuild it once to return space
            try:
                db.execute("PRAGMA busy_timeout = 1000")
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")
                db.execute("VACUUM")
            except sqlite3.OperationalError:  # another process is using it: next time
                pass
            finally:
                db.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")

    def _migrate(self, version: int) -> None:
        db = self._db
        if version > SCHEMA_VERSION:
            raise self._newer(version)
        db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
        try:
            version = self._version()
            if version > SCHEMA_VERSION:
                raise self._newer(version)
            if 0 < version < SCHEMA_VERSION:
                self._copy_aside(version)
            while version < SCHEMA_VERSION:
                step = MIGRATIONS[version]
                if callable(step):
                    step(db)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            db.execute(statement)
                version += 1
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _version(self) -> int:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables - {"sqlite_sequence"}:
                raise HistoryError(f"{self.path if self._shows_files else 'the run history file on the server'} "
                                   "is an SQLite database but not a catdnn run history "
                                   f"(it holds the tables {', '.join(sorted(tables))}). Set CATDNN_HOME "
                                   "to another folder, or move the file aside.")
            return 0
        row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _newer(self, version: int) -> HistoryError:
        return HistoryError(
            f"{self._name} was written by a newer catdnn (schema version {version}; this "
            f"catdnn reads up to version {SCHEMA_VERSION}). Upgrade catdnn, or set CATDNN_HOME to another "
            "folder to keep a separate history; the file was left as it is.")

    def _copy_aside(self, version: int) -> Path:
        """Copy the database (with what its WAL holds) next to it before migrating it."""
        target = self.path.with_name(f"{self.path.name}.v{version}.bak")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.v{version}.{n}.bak")
        # read through a second connection: this one holds the write lock (WAL lets a reader in)
        source, copy = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS), sqlite3.connect(str(target))
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return target

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._version()

    # ------------------------------------------------------------------ writing
    def add(self, config: TrainConfig, *, status: str, message: str = "", history=(), accuracy_history=(),
            iterations_done: int = 0, train_accuracy=None, test_accuracy=None, elapsed: float = 0.0,
            solver: str = "", source: str = "cli", dataset="", sweep: str = "", model=None,
            private: bool | None = None) -> int:
        """Keep one run; returns its id. ``model``: a :class:`~catdnn.model.Model` (its accuracies are
        used when none are given) or None. ``dataset``: a :class:`~catdnn.data.Dataset`, its folder or its
        name (kept as its display name, :func:`dataset_name`: pass the Dataset, or its name, since a folder
        removed meanwhile can no longer tell it). ``private`` (default: whether the dataset is a visitor's
        upload, :func:`is_upload`, which counts a folder no longer there as one) keeps the run to this
        connection's viewer.

        A model over the per-run limit is not kept (the run is, with its curves and a note); beyond the
        per-user and overall limits, the oldest models are dropped (their runs stay)."""
        blob = None
        if model is not None:
            from .model_io import model_to_bytes

            train_accuracy = model.train_accuracy if train_accuracy is None else train_accuracy
            test_accuracy = model.test_accuracy if test_accuracy is None else test_accuracy
            if model.nbytes > self.max_model_bytes:  # the weights alone: no need to write the file to know
                message = _note(message, self._too_big(model.nbytes))
            else:
                blob = model_to_bytes(model)
                if len(blob) > self.max_model_bytes:
                    message, blob = _note(message, self._too_big(len(blob))), None
        if self.identity.role in PRIVATE_ROLES:  # class and public mode: every run is its owner's alone
            private = True
        private = is_upload(dataset) if private is None else bool(private)
        values = (
            datetime.now(timezone.utc).isoformat(timespec="milliseconds"), str(source), str(status), str(message),
            json.dumps(config.to_dict()), int(config.seed), _json_points(history), _json_points(accuracy_history),
            int(iterations_done), None if train_accuracy is None else float(train_accuracy),
            None if test_accuracy is None else float(test_accuracy), float(elapsed or 0.0), str(solver or ""),
            dataset_name(dataset), str(sweep or ""), blob, self.viewer or "", int(private),
            str(self.identity.class_code or ""),
        )
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._db.execute(
                        "INSERT INTO runs (created, source, status, message, config, seed, history, "
                        "accuracy_history, iterations_done, train_accuracy, test_accuracy, elapsed, solver, "
                        "dataset, sweep, model, owner, private, class) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
                    dropped = self._enforce_quotas(str(source), cur.lastrowid) if blob is not None else 0
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                if dropped:
                    self._return_space()
            except sqlite3.DatabaseError as exc:
                raise HistoryError(f"could not save the run in {self._name}: {exc}") from None
            return int(cur.lastrowid)

    def _too_big(self, nbytes: int) -> str:
        return (f"its model ({nbytes / 2**20:,.0f} MiB) is not kept: the run history keeps models of at most "
                f"{self.max_model_bytes / 2**20:,.0f} MiB")

    def _enforce_quotas(self, source: str, run_id: int) -> int:
        """Keep the models under this user's limit and the overall one (in the current transaction) after run
        ``run_id`` kept one; returns how many were dropped. Beyond this user's limit, their oldest models go.
        Beyond the overall limit, a student's, visitor's or teacher's older models go, never another's (a
        script with many identities must not push everyone's models out), and when that is not enough the new
        model is not kept (its run is, with a note); the machine's user (local mode, the CLI: one person) loses
        the oldest models of all, as before the modes. A user is the viewer, else the source (the CLI)."""
        mine = ("owner = ?", (self.viewer,)) if self.viewer else ("owner = '' AND source = ?", (source,))
        dropped, _ = self._drop_oldest_models(mine, mine, self.max_owner_bytes, "this user's")
        whose = ("1", ()) if self.identity.role == "owner" else mine
        older = (f"{whose[0]} AND id != ?", (*whose[1], run_id))
        more, total = self._drop_oldest_models(("1", ()), older, self.max_total_bytes, "all")
        if total > self.max_total_bytes:
            note = (f"its model is not kept: the run history's models are at their limit "
                    f"({self.max_total_bytes / 2**20:,.0f} MiB in all); delete runs you no longer need")
            self._db.execute("UPDATE runs SET model = NULL, message = CASE WHEN message = '' THEN ? "
                             "ELSE message || '; ' || ? END WHERE id = ?", (note, note, run_id))
            more += 1
        return dropped + more

    def _drop_oldest_models(self, counted: tuple, candidates: tuple, limit: int, whose: str) -> tuple[int, int]:
        """Drop the oldest models among ``candidates`` (an SQL condition and its arguments) until the models of
        ``counted`` take at most ``limit`` bytes; returns how many were dropped and the bytes ``counted`` then
        takes (still above ``limit`` when the candidates were not enough)."""
        db = self._db
        total = db.execute("SELECT COALESCE(SUM(LENGTH(model)), 0) FROM runs WHERE model IS NOT NULL AND "
                           f"{counted[0]}", counted[1]).fetchone()[0]
        if total <= limit:
            return 0, total
        drop = []
        for run_id, size in db.execute(f"SELECT id, LENGTH(model) FROM runs WHERE model IS NOT NULL AND "
                                       f"{candidates[0]} ORDER BY id", candidates[1]):
            if total <= limit:
                break
            drop.append(run_id)
            total -= size
        note = (f"its model was dropped to keep {whose} models under {limit / 2**20:,.0f} MiB "
                "(the oldest go first, its curves and metrics stay)")
        db.executemany("UPDATE runs SET model = NULL, message = CASE WHEN message = '' THEN ? "
                       "ELSE message || '; ' || ? END WHERE id = ?", [(note, note, i) for i in drop])
        return len(drop), total

    def _return_space(self) -> None:
        """Give the pages freed by deleted runs and dropped models back to the file system."""
        try:
            self._db.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page only
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError:  # busy: the space is reused by the next runs, and returned next time
            pass

    def delete(self, ids) -> int:
        """Delete the runs ``ids`` (those this viewer may see); returns how many there were. Their space
        is given back to the file system."""
        return len(self.remove(ids))

    def remove(self, ids) -> list[int]:
        """:meth:`delete`, returning the ids of the runs deleted (sorted): those of ``ids`` this viewer may see.
        What else holds a run by its id (the class board: :func:`catdnn.board.delete_runs`) lets go of these."""
        ids = [int(i) for i in ids]
        if not ids:
            return []
        where, args = self._visible()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")  # what is listed is what goes (RETURNING needs SQLite 3.35)
                try:
                    gone = sorted(int(r[0]) for r in self._db.execute(
                        f"SELECT id FROM runs WHERE id IN ({','.join('?' * len(ids))}) AND {where}", (*ids, *args)))
                    if gone:
                        self._db.execute(f"DELETE FROM runs WHERE id IN ({','.join('?' * len(gone))})", gone)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                if gone:
                    self._return_space()
            except sqlite3.DatabaseError as exc:
                raise HistoryError(f"could not delete runs from {self._name}: {exc}") from None
            return gone

    def _visible(self) -> tuple[str, tuple]:
        """The SQL condition (and its arguments) of the runs this viewer may see: every run for the CLI; the
        teacher's own, their class's (never another class's) and the machine's user's public ones (what every
        local-mode tab sees: the teacher serves from the machine); a student's or visitor's own only; a local
        session's own and everyone's public ones."""
        who = self.identity
        if who.role == "teacher" and who.class_code:
            return ("((owner = ? AND owner != '') OR class = ? OR (class = '' AND private = 0))",
                    (who.owner, who.class_code))
        if who.sees_all and who.role != "teacher":
            return "1", ()
        if who.role != "owner" or not who.owner:
            return "(owner = ? AND owner != '')", (who.owner,)
        return "(private = 0 OR owner = ?)", (who.owner,)

    def size(self) -> dict:
        """How much the history holds: ``{"file_bytes", "model_bytes", "models", "runs"}``: the runs and models
        this viewer may see (another session's private runs are not counted), and the file's size on disk."""
        where, args = self._visible()
        sql = f"SELECT COUNT(*), COUNT(model), COALESCE(SUM(LENGTH(model)), 0) FROM runs WHERE {where}"
        runs, models, nbytes = self._query(sql, args)[0]
        file_bytes = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {"file_bytes": file_bytes, "model_bytes": int(nbytes), "models": int(models), "runs": int(runs)}

    # ------------------------------------------------------------------ reading
    _COLUMNS = ("id, created, source, status, message, config, seed, iterations_done, train_accuracy, "
                "test_accuracy, elapsed, solver, dataset, sweep, model IS NOT NULL, owner")

    def _record(self, r, curves=None) -> RunRecord:
        try:
            rec = RunRecord(int(r[0]), r[1], r[2], r[3], r[4], TrainConfig.from_dict(json.loads(r[5])), r[6],
                            int(r[7]), r[8], r[9], float(r[10]), r[11], r[12], r[13], bool(r[14]), owner=str(r[15]))
            if curves is not None:
                rec.history, rec.accuracy_history = _points(curves[0]), _points(curves[1])
        except (TypeError, ValueError, AttributeError, RecursionError) as exc:  # a damaged row
            raise HistoryError(f"run {r[0]} of {self._name} is damaged ({type(exc).__name__}): "
                               "delete it (`python -m catdnn runs delete`) or move the file aside") from None
        return rec

    def _query(self, sql: str, args=()) -> list:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise HistoryError(self._unreadable(exc)) from None

    def runs(self, curves: bool = False, ids=None, *, owners=None, limit: int | None = None) -> list[RunRecord]:
        """Every run (or those of ``ids``; of ``owners``, Identity owners such as a class's students), newest
        first, at most ``limit`` of them; with ``curves``, their cost and accuracy curves too."""
        extra = ", history, accuracy_history" if curves else ""
        where, args = self._visible()
        for column, values in (("id", ids), ("owner", owners)):
            if values is not None:
                values = [int(v) for v in values] if column == "id" else [str(v) for v in values]
                if not values:
                    return []
                where, args = f"{where} AND {column} IN ({','.join('?' * len(values))})", (*args, *values)
        if limit is not None:
            where, args = f"{where} ORDER BY id DESC LIMIT ?", (*args, max(0, int(limit)))
        else:
            where += " ORDER BY id DESC"
        rows = self._query(f"SELECT {self._COLUMNS}{extra} FROM runs WHERE {where}", args)
        return [self._record(r, r[16:18] if curves else None) for r in rows]

    def get(self, run_id: int) -> RunRecord:
        """One run with its curves; :class:`HistoryError` if there is none with that id."""
        found = self.runs(curves=True, ids=[run_id])
        if not found:
            raise HistoryError(f"there is no run {run_id} in the history (see `python -m catdnn runs list`)")
        return found[0]

    def model(self, run_id: int):
        """The :class:`~catdnn.model.Model` kept with run ``run_id``; :class:`HistoryError` if it kept none."""
        from .model_io import load_model

        where, args = self._visible()
        rows = self._query(f"SELECT model, status, iterations_done, message, dataset FROM runs WHERE id = ? AND "
                           f"{where}", (int(run_id), *args))
        if not rows:
            raise HistoryError(f"there is no run {run_id} in the history (see `python -m catdnn runs list`)")
        blob, status, done, message, dataset = rows[0]
        if blob is None:
            why = ("it diverged" if status == "diverged" else "it stopped before its first iteration" if not done
                   else message or "its model was not kept")
            raise HistoryError(f"run {run_id} kept no model ({why})")
        model = load_model(bytes(blob), name=f"the model of run {run_id}")
        if dataset:  # the run's own record names it (model files older than the field say the course's)
            model.dataset = str(dataset)
        return model

    def __len__(self) -> int:
        where, args = self._visible()
        return int(self._query(f"SELECT COUNT(*) FROM runs WHERE {where}", args)[0][0])

    def saved_models(self) -> int:
        """How many of the runs this viewer may see kept a model (:meth:`model` loads one): one COUNT on an index,
        no model read, cheap enough for every page of the app."""
        where, args = self._visible()
        return int(self._query(f"SELECT COUNT(*) FROM runs WHERE {where} AND model IS NOT NULL", args)[0][0])

    def csv_text(self, runs=None, names: dict | None = None) -> str:
        """The runs' table (:meth:`RunRecord.row`) as CSV text, newest first (default: every run this viewer
        may see). With ``names`` (owner → display name, e.g. the class's members), a ``student`` column after
        ``id`` names who kept each run ("" for one nobody in ``names`` kept). Datasets are named by their
        display names, never by folders on the server; cells are neutralised (:func:`csv_text_of`)."""
        rows = []
        for r in (self.runs() if runs is None else runs):
            row = r.row()
            row["dataset"] = dataset_name(row["dataset"])  # a name stays a name; a folder becomes its name
            if names is not None:
                row = {"id": row.pop("id"), "student": str(names.get(r.owner, "")), **row}
            rows.append(row)
        return csv_text_of(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
