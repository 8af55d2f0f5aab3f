"""The class board: students submit runs, ranked by a validation score while the class works, and by test
accuracy once the teacher reveals it (a public board, then a private one, as a data-science contest).

* :meth:`Board.submit`: a student puts one of **their own** finished runs on their class's board. The
  engine checks the run is theirs (another student's run id is refused with the very message a missing
  run gets, so an id reveals nothing). The entry copies the student's display name, the run's
  architecture (:func:`catdnn.labels.arch_text`), its other settings without the seed
  (:func:`catdnn.labels.config_label`; training is deterministic, so a classmate who had the seed would train
  the run again and read its test accuracy before the reveal: :attr:`Row.seed` is None until then) and the
  test accuracy of the run's own model on the board dataset's test images (measured by the board, not copied
  from the run's record: a record names its dataset by display name only), and gets a **validation score**:
  :data:`FOLDS`-fold cross-validation of the run's settings on the **training images only**
  (:func:`catdnn.search.score`, on the executor given: the app's shared worker pool), by :data:`METRIC`.
  The test images are never read for it. Every entry is scored on the same folds (:data:`FOLD_SEED`),
  so two entries differ by their settings, not by their luck in the split. The fold runs are the student's
  trainings under the class's limits (:class:`~catdnn.classroom.Limits`): on the shared pool they wait behind
  the student's other runs, one training of theirs at a time.
* A board is a **dataset's**: entries and standings are keyed by :func:`dataset_key`, the dataset's identity
  (the course's files, or the folder of photos imported on the machine, named by its content), never by its
  display name, which a student's upload may copy. Only a dataset the whole class shares goes on the board:
  a student's upload is refused (:func:`catdnn.history.is_upload`).
* :meth:`Board.standings`: the board as a class member sees it. While the class works it is ranked by
  validation score (fewer failed folds first, then the higher mean: :meth:`catdnn.validation.CVResult.rank`)
  and test accuracies are hidden from everyone. Once the teacher reveals them (``ClassStore.update_class(code,
  revealed=True)``) each row shows its test accuracy and the board re-ranks by it; each row keeps its rank on
  the validation board, so the class sees who overfitted (the private board against the public one).
* One entry per run: submitting a run again replaces its entry (refreshing the name and the test accuracy;
  its score is kept, since the same settings on the same folds train the same). At most
  :data:`MAX_ENTRIES` entries per student, and one submission being scored per student at a time.

The board lives in its own table of the class store's file (``classroom.sqlite3``, :class:`~catdnn.classroom.
ClassStore`). An entry is a copy, so a run is deleted with :func:`delete_runs`, which takes its entry off the
board too (the Runs and Teacher pages, ``python -m catdnn runs delete``): a student only their own, the teacher
their class's, the machine's user any class's.

This module imports :mod:`catdnn.search` (and so the sweeps) and :mod:`catdnn.classroom`; none imports it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .classroom import ClassStore, Identity, same
from .config import TrainConfig
from .errors import CatdnnError
from .labels import arch_text, config_label, dataset_name
from .validation import CVResult

#: The key of the course's dataset on the board (:func:`dataset_key`).
COURSE_KEY = "course"

#: Folds of the cross-validation that scores an entry; each trains the run's settings once, so a submission
#: costs :data:`FOLDS` times the run's own training (on 4/5 of its images).
FOLDS = 5
#: The folds' seed: every entry is scored on the same split of the training images.
FOLD_SEED = 0
#: The board's score: balanced accuracy on the folds' held-out training images, on the same 0–1 scale as the
#: test accuracy it is later compared with (plain accuracy would reward always answering "non-cat").
METRIC = "balanced_accuracy"
#: Entries one student may have on their class's board (a run submitted again replaces its entry): enough to
#: compare a few ideas, few enough that one student's submissions (each :data:`FOLDS` trainings on the shared
#: pool) cannot crowd out the class's.
MAX_ENTRIES = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS board (
    class TEXT NOT NULL, run_id INTEGER NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL,
    architecture TEXT NOT NULL, settings TEXT NOT NULL, config TEXT NOT NULL, dataset TEXT NOT NULL,
    test_accuracy REAL, metric TEXT NOT NULL, scores TEXT NOT NULL, submitted REAL NOT NULL,
    PRIMARY KEY (class, run_id));
CREATE INDEX IF NOT EXISTS board_owner ON board (class, owner);
"""
_COLUMNS = ("class, run_id, owner, name, architecture, settings, config, dataset, test_accuracy, metric, scores, "
            "submitted")


class BoardError(CatdnnError):
    """A submission is refused (not your run, not finished, too many entries), or the board cannot be used."""


def _no_run(run_id) -> BoardError:
    """The one refusal for a run that is not there and for one that is someone else's: the same words."""
    return BoardError(f"there is no run {run_id} of yours to submit: pick one of your own finished runs")


def dataset_key(dataset) -> str:
    """The board's key of ``dataset`` (a :class:`~catdnn.data.Dataset`), the same for every member of the class:
    :data:`COURSE_KEY` for the course's files, else the folder name of photos imported on the machine (their name
    and content key, e.g. ``pets-4308155cc6e3``: not a server path). Raises :class:`BoardError` for photos a
    student or visitor uploaded, which are theirs alone: nobody else could train on them."""
    from .data import is_imported
    from .history import is_upload

    if is_upload(dataset):
        raise BoardError(f"{dataset_name(dataset)!r} holds photos uploaded in the app, which only their owner can "
                         "train on: the board takes runs on a dataset the whole class shares (the course's, or one "
                         "imported on the server with python -m catdnn)")
    folder = Path(str(dataset.source))
    return folder.name if is_imported(folder) else COURSE_KEY


@dataclass(frozen=True)
class Entry:
    """One run on a class's board, as submitted. ``settings``: without the seed; ``dataset``: its
    :func:`dataset_key`; ``scores``: the validation score of each fold (NaN where the fold failed: diverged,
    stopped); ``test_accuracy``: the run's own, shown only once revealed."""

    class_code: str
    run_id: int
    owner: str
    name: str
    architecture: str
    settings: str
    config: TrainConfig
    dataset: str
    test_accuracy: float | None
    metric: str
    scores: tuple
    submitted: float

    @property
    def cv(self) -> CVResult:
        """The entry's cross-validation (one checkpoint: the run's iterations)."""
        return CVResult(f"run {self.run_id}", self.metric, {self.config.iterations: list(self.scores)}, 0.0,
                        len(self.scores))

    @property
    def score(self) -> float:
        """The mean validation score over the folds that completed (NaN when none did)."""
        return self.cv.mean(self.config.iterations)

    @property
    def score_text(self) -> str:
        """E.g. ``"0.781 ± 0.041 (5 folds)"``."""
        return self.cv.describe(self.config.iterations)


@dataclass(frozen=True)
class Row:
    """One line of the board as shown: the entry, its rank on this board, its rank by validation score
    (``public_rank``), and, once revealed, its test accuracy, its rank by it (``private_rank``) and the run's
    seed (else None: with the seed and the settings anyone could train the run again and read its test
    accuracy early)."""

    entry: Entry
    rank: int
    public_rank: int
    private_rank: int | None
    test_accuracy: float | None
    seed: int | None = None


@dataclass(frozen=True)
class Standings:
    """The board of a class as a member sees it: ranked by validation score, or by test accuracy once
    ``revealed``."""

    class_code: str
    revealed: bool
    rows: tuple

    def mine(self, identity: Identity) -> list[Row]:
        """The rows of ``identity``'s entries."""
        return [r for r in self.rows if identity.owner and same(r.entry.owner, identity.owner)]


def _public_key(e: Entry) -> tuple:
    """Best first: fewer failed folds, then the higher mean, then the earlier submission."""
    failed, mean, _ = e.cv.rank(e.config.iterations)
    return (-failed, -mean, e.submitted)


def _private_key(e: Entry) -> tuple:
    """Best first: a test accuracy over none, the higher one, then the validation board's order."""
    t = e.test_accuracy
    return (t is None, -(t or 0.0), *_public_key(e))


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


class Board:
    """The class board, in the class store's file (its own table). One per server process: it is thread-safe,
    and it keeps the students whose submission is being scored (one at a time each)."""

    def __init__(self, store: ClassStore):
        self.store = store
        self.path = store.path
        self._lock = threading.RLock()
        self._scoring: set[str] = set()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BoardError(f"cannot open the class board in {self.path}: {exc}") from None

    # ------------------------------------------------------------------ submitting
    def submit(self, identity: Identity, run_id: int, history, dataset, *, executor=None, stop=None,
               on_run=None) -> Entry:
        """Put ``identity``'s run ``run_id`` (from ``history``, a :class:`~catdnn.history.History` opened for
        ``identity``) on their class's board, scored by cross-validation on ``dataset``'s training images.

        ``dataset`` is the :class:`~catdnn.data.Dataset` the run trained on (its display name must be the run's).
        ``executor``, ``stop``, ``on_run(fold, result, score)``: as :func:`catdnn.search.score` takes them (the
        app passes its shared worker pool, whose queue then serves the fold runs as the student's, in turn with
        the other students' trainings). Returns the entry; raises :class:`BoardError` when refused, before
        any training: not a student of a class, not their run (the same message as a missing run), not
        finished, trained on another dataset, a dataset the class does not share (an upload: :func:`dataset_key`),
        no model kept with the run (the board measures the run's own model on the test images),
        beyond the class's limits as they are now (iterations, a CNN), :data:`MAX_ENTRIES` entries already, a
        submission of theirs still being scored; or when the scoring was stopped or a fold could not train (queued
        too long, a worker lost: nothing is submitted then). On a :class:`~catdnn.workers.TrainingPool` the fold
        runs are the student's, under the class's limits: they wait behind the student's other runs (never two
        trainings of theirs at once), and count as one run queued or training beyond ``runs_at_once``, so a
        submission is never refused for a training the student has going.
        """
        from .history import HistoryError
        from .search import score
        from .sweep import curve_options
        from .workers import TrainingPool, check_limits

        if identity.role != "student" or not identity.class_code or not identity.owner:
            raise BoardError("only a student who joined a class submits runs to its board")
        try:
            run_id = int(run_id)
            record = history.get(run_id)
        except (HistoryError, TypeError, ValueError):
            raise _no_run(run_id) from None
        if not same(getattr(record, "owner", "") or "", identity.owner):
            raise _no_run(run_id)
        if record.status != "finished":
            raise BoardError(f"run {run_id} {record.status} before its last iteration: only a finished run goes "
                             "on the board (its score trains the same settings to the end)")
        if record.dataset and record.dataset != dataset_name(dataset):
            raise BoardError(f"run {run_id} was trained on {record.dataset!r}, and the board scores it on the "
                             f"training images of {dataset_name(dataset)!r}: choose {record.dataset!r} in the "
                             "sidebar, or submit a run trained on this one")
        key = dataset_key(dataset)
        test_accuracy = self._test_accuracy(run_id, history, dataset)
        code = identity.class_code
        limits = self.store.get_class(code).limits
        try:  # scoring trains the settings again: the class's limits as they are now apply to them
            check_limits(record.config, limits)
        except CatdnnError as exc:
            raise BoardError(f"run {run_id} cannot be scored: {exc}") from None
        with self._lock:
            old = self._entry(code, run_id)
            if old is None and len(self._entries(code, owner=identity.owner)) >= MAX_ENTRIES:
                raise BoardError(f"you have {MAX_ENTRIES} runs on the board, the most a student may have: "
                                 "withdraw one first (or submit one of them again to refresh it)")
            if identity.owner in self._scoring:
                raise BoardError("a run of yours is being scored: wait until it is on the board")
            self._scoring.add(identity.owner)
        try:
            if old is not None and old.config == record.config:
                scores = old.scores  # the same settings on the same folds score the same: no need to train again
            else:
                options = curve_options(record.config)
                if isinstance(executor, TrainingPool):  # its queue serves students in turn, and names them
                    # the student's trainings, one at a time: the one fold run in the queue at a time waits behind
                    # their other runs (room for it beyond runs_at_once, so it is held, not refused)
                    try:
                        held = replace(limits, runs_at_once=limits.runs_at_once + 1)
                    except CatdnnError:  # already the most Limits allows
                        held = limits
                    options.update(owner=identity.owner, limits=held)
                lost = []

                def ended(fold, result, s) -> None:
                    if result.status in ("failed", "crashed"):
                        lost.append(f"fold {fold + 1}: {result.message or result.status}")
                    if on_run is not None:
                        on_run(fold, result, s)

                cv = score([record.config], dataset, k=FOLDS, seed=FOLD_SEED, metric=METRIC, executor=executor,
                           stop=stop, on_run=ended, **options)[0]
                if stop is not None and stop.is_set():
                    raise BoardError(f"the scoring of run {run_id} was stopped: it is not on the board")
                if lost:
                    raise BoardError(f"the scoring of run {run_id} could not train {lost[0]}: it is not on the "
                                     "board, submit it again")
                scores = tuple(cv.scores[record.config.iterations])
            entry = Entry(code, run_id, identity.owner, identity.name or self.store.name_of(identity.owner),
                          arch_text(record.config), config_label(record.config, architecture=False),
                          record.config, key, test_accuracy, METRIC,
                          tuple(float(s) for s in scores), time.time())
            with self._lock:  # the lock delete_runs's withdraw takes: a delete after this check finds the entry
                if not history.runs(ids=[run_id]):  # deleted (another tab, the teacher) while it was scored
                    raise BoardError(f"run {run_id} was deleted while it was being scored: it is not on the board")
                self._write(entry)
            return entry
        finally:
            with self._lock:
                self._scoring.discard(identity.owner)

    @staticmethod
    def _test_accuracy(run_id: int, history, dataset) -> float:
        """The accuracy of run ``run_id``'s own model on the test images of ``dataset``'s folder: what the board
        reveals, measured here rather than copied from the run's record, since a record names its dataset by
        display name only, and a run on a student's own photos named like the class's dataset would bring a
        test accuracy measured on those."""
        from .data import load_dataset
        from .history import HistoryError
        from .network import score

        name = dataset_name(dataset)
        try:
            model = history.model(run_id)
        except HistoryError:
            raise BoardError(f"run {run_id} kept no model, and the board measures the run's own model on the test "
                             f"images of {name!r}: submit a run that kept its model (the Runs page says which)"
                             ) from None
        try:
            test = load_dataset(dataset.source, download=False).test
            return float(score(model.predict_proba(test.X), test.Y))
        except (CatdnnError, ValueError) as exc:
            raise BoardError(f"run {run_id}'s model cannot be measured on the test images of {name!r}: {exc}"
                             ) from None

    def _write(self, e: Entry) -> None:
        scores = json.dumps([None if not math.isfinite(s) else s for s in e.scores])
        try:
            self._db.execute(f"INSERT OR REPLACE INTO board ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (e.class_code, e.run_id, e.owner, e.name, e.architecture, e.settings,
                              json.dumps(e.config.to_dict()), e.dataset, e.test_accuracy, e.metric, scores,
                              e.submitted))
        except sqlite3.Error as exc:
            raise BoardError(f"could not write the class board in {self.path}: {exc}") from None

    def withdraw(self, identity: Identity, run_ids) -> int:
        """Take runs off the board: a student their own entries, the teacher any of their class's, the machine's
        user (the CLI, :data:`~catdnn.classroom.MACHINE`) any class's; anyone else nothing. Returns how many
        entries there were."""
        ids = [int(i) for i in run_ids]
        where, args = f"run_id IN ({','.join('?' * len(ids))})", ids
        if identity.role in ("student", "teacher") and identity.class_code:
            where, args = f"{where} AND class = ?", [*args, identity.class_code]
            if identity.role == "student":
                where, args = f"{where} AND owner = ? AND owner != ''", [*args, identity.owner]
        elif identity.role != "owner" or identity.owner:  # a visitor, a local-mode tab: no entry is theirs
            return 0
        if not ids:
            return 0
        with self._lock:
            try:
                return self._db.execute(f"DELETE FROM board WHERE {where}", args).rowcount
            except sqlite3.Error as exc:
                raise BoardError(f"could not take runs off the class board: {exc}") from None

    # ------------------------------------------------------------------ reading
    def _record(self, r) -> Entry:
        return Entry(r[0], int(r[1]), r[2], r[3], r[4], r[5], TrainConfig.from_dict(json.loads(r[6])), r[7], r[8],
                     r[9], tuple(_nan(s) for s in json.loads(r[10])), float(r[11]))

    def _entries(self, code: str, *, owner: str | None = None, dataset: str | None = None) -> list[Entry]:
        sql, args = f"SELECT {_COLUMNS} FROM board WHERE class = ?", [str(code)]
        for column, value in (("owner", owner), ("dataset", dataset)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        with self._lock:
            return [self._record(r) for r in self._db.execute(sql, args).fetchall()]

    def _entry(self, code: str, run_id: int) -> Entry | None:
        with self._lock:
            r = self._db.execute(f"SELECT {_COLUMNS} FROM board WHERE class = ? AND run_id = ?",
                                 (str(code), int(run_id))).fetchone()
        return None if r is None else self._record(r)

    def standings(self, viewer: Identity, dataset=None) -> Standings:
        """``viewer``'s class's board (a student's or the teacher's), only the entries on ``dataset`` (a
        :class:`~catdnn.data.Dataset`, or its :func:`dataset_key`) when given. Test accuracies and seeds are None
        in every row until the teacher reveals them."""
        if viewer.role not in ("student", "teacher") or not viewer.class_code:
            raise BoardError("the board is a class's: it is there when the app serves a class "
                             "(python -m catdnn serve --class NAME)")
        code = viewer.class_code
        revealed = self.store.get_class(code).revealed
        if dataset is not None and not isinstance(dataset, str):
            try:
                dataset = dataset_key(dataset)
            except BoardError:
                return Standings(code, revealed, ())  # an upload has no board
        entries = self._entries(code, dataset=dataset)
        public = sorted(entries, key=_public_key)
        public_rank = {e.run_id: i + 1 for i, e in enumerate(public)}
        if not revealed:
            rows = [Row(e, public_rank[e.run_id], public_rank[e.run_id], None, None) for e in public]
        else:
            private = sorted(entries, key=_private_key)
            rows = [Row(e, i + 1, public_rank[e.run_id], i + 1, e.test_accuracy, e.config.seed)
                    for i, e in enumerate(private)]
        return Standings(code, revealed, tuple(rows))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def delete_runs(history, ids, board: Board | None = None) -> tuple[int, int]:
    """Delete the runs ``ids`` and take them off the class board: how every run is deleted (the Runs page, the
    Teacher page, ``python -m catdnn runs delete``), so that no board keeps the entry of a deleted run.

    ``history`` is a :class:`~catdnn.history.History` opened for the caller (``viewer=identity``), and decides
    which runs go (:meth:`~catdnn.history.History.remove`: a student's or visitor's own, the teacher's class's,
    every run for the CLI). Only the entries of the runs it deleted are withdrawn, and only as far as
    :meth:`Board.withdraw` lets the same identity: another student's run id deletes and withdraws nothing.
    ``board``: the class board (None where there is none: local and public mode, a machine that never served a
    class). Returns (runs deleted, board entries withdrawn)."""
    gone = history.remove(ids)
    return len(gone), (board.withdraw(history.identity, gone) if board is not None else 0)


@contextmanager
def machine_board():
    """The class board of this machine's class store (:func:`catdnn.classroom.default_path`), for the machine's
    user (the CLI), closed on leaving; None when no class was ever served from here (nothing is created)."""
    from .classroom import default_path

    path = default_path()
    if not path.is_file():
        yield None
        return
    with ClassStore(path) as store, Board(store) as board:
        yield board
