"""The class board (catdnn.board): submitting one's own run, the refusals, the validation score by k-fold CV on the
training images only (the test split is poisoned), and the ranking before and after the teacher's reveal."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import replace

import numpy as np
import pytest

from catdnn import board as bd
from catdnn.board import Board, BoardError
from catdnn.classroom import MACHINE, Identity, Limits
from catdnn.config import PRESETS
from catdnn.evaluate import constant_accuracy
from catdnn.history import History
from catdnn.train import fit
from catdnn.validation import cross_validate
from catdnn.workers import TrainingPool
from tests.history_support import class_of_two, constant_model

BASE = replace(PRESETS["two-layer"], iterations=30)


class Counting(cf.ThreadPoolExecutor):
    """An executor in this process (so the poisoned dataset is the fold runs' too) that counts its trainings."""

    def __init__(self):
        super().__init__(2)
        self.trainings = 0

    def submit(self, *args, **kwargs):
        self.trainings += 1
        return super().submit(*args, **kwargs)


@pytest.fixture
def klass(tmp_path):
    """A class with two students and its teacher, a board, and each one's run history."""
    store, code, ana, bob, teacher = class_of_two(tmp_path)
    board = Board(store)
    runs = tmp_path / "runs.sqlite3"
    k = type("Class", (), {})()
    k.store, k.code, k.ana, k.bob, k.teacher, k.board = store, code, ana, bob, teacher, board
    k.history = {who: History(runs, viewer=who) for who in (ana, bob, teacher)}
    yield k
    board.close()
    for h in k.history.values():
        h.close()
    store.close()


def keep(k, who, config=BASE, cat=False, status="finished", dataset=None):
    """A run of ``who``'s, as the Train page keeps it (the dataset by its display name), with a model that answers
    "cat" (or "non-cat") for every image: its test accuracy is known. Its record says 0.99, which the board
    never copies (it measures the model)."""
    return k.history[who].add(config, status=status, test_accuracy=0.99, train_accuracy=0.9,
                              iterations_done=config.iterations, source="app", dataset=dataset,
                              model=constant_model(config, cat))


def test_the_score_is_cross_validation_on_the_training_images_only(klass, poisoned, dataset):
    """The entry's scores are those of validation.cross_validate on the training images, with the board's folds,
    seed and metric; the poisoned test split was never read (it raises on any use)."""
    run = keep(klass, klass.ana, dataset=poisoned)
    with Counting() as ex:
        entry = klass.board.submit(klass.ana, run, klass.history[klass.ana], poisoned, executor=ex)
    assert ex.trainings == bd.FOLDS

    def train_fold(X, Y, Xv):
        return {BASE.iterations: fit(BASE, X=X, Y=Y).predict_proba(Xv)}

    ref = cross_validate(train_fold, poisoned.train.X, poisoned.train.Y, k=bd.FOLDS, seed=bd.FOLD_SEED,
                         metric=bd.METRIC)
    np.testing.assert_allclose(entry.scores, ref.scores[BASE.iterations], atol=1e-12)
    assert entry.score == pytest.approx(np.mean(ref.scores[BASE.iterations]))
    assert (entry.name, entry.architecture) == ("Ana", "[12288,7,1]")
    assert entry.test_accuracy == constant_accuracy(dataset.test.Y, 0)  # its model's, not its record's 0.99
    assert entry.settings == "small init · gradient descent · lr 0.0075 · 30 iterations"  # no seed: see below


def test_another_students_run_is_refused_like_a_missing_one(klass, poisoned):
    """Bob cannot submit Ana's run: not through his history, not through the teacher's (which lists it), and the
    refusal says what a run id that does not exist gets. The teacher and the machine's user submit nothing."""
    run = keep(klass, klass.ana, dataset=poisoned)
    with Counting() as ex:
        with pytest.raises(BoardError) as missing:
            klass.board.submit(klass.bob, run + 100, klass.history[klass.bob], poisoned, executor=ex)
        with pytest.raises(BoardError) as theirs:
            klass.board.submit(klass.bob, run, klass.history[klass.bob], poisoned, executor=ex)
        with pytest.raises(BoardError) as through_teacher:
            klass.board.submit(klass.bob, run, klass.history[klass.teacher], poisoned, executor=ex)
        forged = Identity("student", owner="f" * 64, name="Eve", class_code=klass.code)  # a made-up owner
        with pytest.raises(BoardError) as forged_owner:
            klass.board.submit(forged, run, klass.history[klass.teacher], poisoned, executor=ex)
        for who in (klass.teacher, MACHINE, Identity("owner", owner="session-token")):
            with pytest.raises(BoardError, match="only a student"):
                klass.board.submit(who, run, klass.history[klass.teacher], poisoned, executor=ex)
    assert ex.trainings == 0  # refused before any training
    assert str(theirs.value) == str(through_teacher.value) == str(forged_owner.value) == str(missing.value).replace(
        str(run + 100), str(run))
    assert klass.board.standings(klass.teacher).rows == ()


def test_refusals_before_any_training(klass, poisoned, dataset):
    with Counting() as ex:
        stopped = keep(klass, klass.ana, status="stopped", dataset=poisoned)
        with pytest.raises(BoardError, match="only a finished run"):
            klass.board.submit(klass.ana, stopped, klass.history[klass.ana], poisoned, executor=ex)
        elsewhere = keep(klass, klass.ana, dataset="my pets")
        with pytest.raises(BoardError, match="was trained on 'my pets'"):
            klass.board.submit(klass.ana, elsewhere, klass.history[klass.ana], poisoned, executor=ex)
        long = keep(klass, klass.ana, replace(BASE, iterations=500), dataset=poisoned)  # before the limits
        klass.store.update_class(klass.code, limits=Limits(max_iterations=100))
        with pytest.raises(BoardError, match="cannot be scored: this run asks for 500 iterations"):
            klass.board.submit(klass.ana, long, klass.history[klass.ana], poisoned, executor=ex)
    assert ex.trainings == 0


def test_one_entry_per_run_and_a_limit_per_student(klass, poisoned):
    """Submitting a run again replaces its entry (without training again); a student has at most MAX_ENTRIES."""
    runs = [keep(klass, klass.ana, replace(BASE, seed=s), dataset=poisoned) for s in range(1, bd.MAX_ENTRIES + 2)]
    with Counting() as ex:
        for r in runs[:-1]:
            klass.board.submit(klass.ana, r, klass.history[klass.ana], poisoned, executor=ex)
        assert ex.trainings == bd.FOLDS * bd.MAX_ENTRIES
        first = klass.board.submit(klass.ana, runs[0], klass.history[klass.ana], poisoned, executor=ex)
        assert ex.trainings == bd.FOLDS * bd.MAX_ENTRIES  # the same settings on the same folds: kept, not retrained
        with pytest.raises(BoardError, match=f"{bd.MAX_ENTRIES} runs on the board"):
            klass.board.submit(klass.ana, runs[-1], klass.history[klass.ana], poisoned, executor=ex)
        assert ex.trainings == bd.FOLDS * bd.MAX_ENTRIES
        rows = klass.board.standings(klass.ana).rows
        assert sorted(r.entry.run_id for r in rows) == sorted(runs[:-1])  # one entry each, the refused one absent
        assert next(r.entry for r in rows if r.entry.run_id == runs[0]).scores == first.scores
        # Bob cannot withdraw Ana's entry; Ana can, then the fourth run goes on
        assert klass.board.withdraw(klass.bob, [runs[0]]) == 0
        assert klass.board.withdraw(klass.ana, [runs[0]]) == 1
        klass.board.submit(klass.ana, runs[-1], klass.history[klass.ana], poisoned, executor=ex)
    assert len(klass.board.standings(klass.bob).rows) == bd.MAX_ENTRIES


def test_ranked_by_validation_score_then_by_test_accuracy_after_the_reveal(klass, poisoned, dataset):
    """While the class works, the board ranks by validation score and shows no test accuracy (to anyone);
    after the teacher's reveal it shows them and re-ranks by them, each row keeping its validation rank."""
    weak = keep(klass, klass.ana, replace(BASE, iterations=2, learning_rate=1e-4), cat=True, dataset=poisoned)
    strong = keep(klass, klass.bob, replace(BASE, iterations=60, learning_rate=0.01), cat=False, dataset=poisoned)
    with Counting() as ex:
        a = klass.board.submit(klass.ana, weak, klass.history[klass.ana], poisoned, executor=ex)
        b = klass.board.submit(klass.bob, strong, klass.history[klass.bob], poisoned, executor=ex)
    assert b.score > a.score  # the premise: more training scores better on the held-out folds

    for viewer in (klass.ana, klass.bob, klass.teacher):
        board = klass.board.standings(viewer)
        assert not board.revealed
        assert [(r.entry.run_id, r.rank, r.public_rank) for r in board.rows] == [(strong, 1, 1), (weak, 2, 2)]
        assert all(r.test_accuracy is None and r.private_rank is None and r.seed is None for r in board.rows)
    assert [r.entry.name for r in klass.board.standings(klass.ana).mine(klass.ana)] == ["Ana"]

    klass.store.update_class(klass.code, revealed=True)
    board = klass.board.standings(klass.ana)
    assert board.revealed
    assert [(r.entry.run_id, r.rank, r.private_rank, r.public_rank, r.test_accuracy) for r in board.rows] == [
        (weak, 1, 1, 2, constant_accuracy(dataset.test.Y, 1)), (strong, 2, 2, 1, constant_accuracy(dataset.test.Y, 0))]
    assert [r.seed for r in board.rows] == [BASE.seed, BASE.seed]  # shown once revealed
    # the teacher takes a run off the board
    assert klass.board.withdraw(klass.teacher, [strong]) == 1
    assert [r.entry.run_id for r in klass.board.standings(klass.bob).rows] == [weak]


def test_the_board_is_a_class_members(klass):
    with pytest.raises(BoardError, match="serves a class"):
        klass.board.standings(MACHINE)
    with pytest.raises(BoardError, match="serves a class"):
        klass.board.standings(Identity("visitor", owner="v" * 64))


class RecordingPool(TrainingPool):
    """A real worker pool that notes whose each training is."""

    def __init__(self):
        super().__init__(1)
        self.owners = []

    def submit(self, config, data_dir, **kwargs):
        self.owners.append(kwargs.get("owner"))
        return super().submit(config, data_dir, **kwargs)


def test_on_the_worker_pool_the_fold_runs_are_the_students(klass, dataset):
    """On the app's pool the scoring's runs are queued as the student's (round-robin with the class, named on
    the teacher's view), not as nobody's."""
    run = keep(klass, klass.ana, replace(BASE, iterations=5), dataset=dataset)
    pool = RecordingPool()
    try:
        entry = klass.board.submit(klass.ana, run, klass.history[klass.ana], dataset, executor=pool)
    finally:
        pool.close()
    assert pool.owners == [klass.ana.owner] * bd.FOLDS and len(entry.scores) == bd.FOLDS


def _on_board(k) -> list[int]:
    return sorted(r.entry.run_id for r in k.board.standings(k.teacher).rows)


def test_deleting_a_run_takes_it_off_the_board_and_only_its_owners_delete_does(klass, poisoned):
    """A run deleted by a student (the Runs page) or the teacher goes off the board with it (an entry is a copy,
    and the deleted run's entry stayed once). Another's run id, through a student's history, deletes nothing and
    withdraws nothing, whatever board it is handed; a visitor or a local tab withdraws nothing."""
    ana, bob = keep(klass, klass.ana, dataset=poisoned), keep(klass, klass.bob, dataset=poisoned)
    bob2 = keep(klass, klass.bob, replace(BASE, seed=2), dataset=poisoned)
    with Counting() as ex:
        for who, run in ((klass.ana, ana), (klass.bob, bob), (klass.bob, bob2)):
            klass.board.submit(who, run, klass.history[who], poisoned, executor=ex)
    assert _on_board(klass) == sorted([ana, bob, bob2])

    assert bd.delete_runs(klass.history[klass.ana], [bob, ana], klass.board) == (1, 1)  # hers only
    assert _on_board(klass) == sorted([bob, bob2]) and [r.id for r in klass.history[klass.bob].runs()] == [bob2, bob]
    assert bd.delete_runs(klass.history[klass.ana], [bob], klass.board) == (0, 0)
    for outsider in (Identity("visitor", owner=klass.bob.owner), Identity("owner", owner=klass.bob.owner)):
        assert klass.board.withdraw(outsider, [bob]) == 0  # Bob's owner name, in another role: nothing
    assert _on_board(klass) == sorted([bob, bob2])
    assert bd.delete_runs(klass.history[klass.teacher], [bob], klass.board) == (1, 1)
    assert _on_board(klass) == [bob2]
    assert bd.delete_runs(klass.history[klass.bob], [bob2], None) == (1, 0)  # no board handed: the run only


def test_the_cli_delete_takes_runs_off_every_class_board(klass, poisoned, tmp_path, monkeypatch, capsys):
    """`python -m catdnn runs delete` (the machine's user) takes a deleted run off its class's board; on a machine
    that never served a class it creates no class store."""
    from catdnn.cli import main

    run = keep(klass, klass.ana, dataset=poisoned)
    with Counting() as ex:
        klass.board.submit(klass.ana, run, klass.history[klass.ana], poisoned, executor=ex)
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))  # the klass fixture's history and class store
    assert main(["runs", "delete", str(run)]) == 0
    assert f"deleted 1 run: {run} (and took 1 off the class board)" in capsys.readouterr().out
    assert _on_board(klass) == [] and klass.history[klass.teacher].runs() == []

    fresh = tmp_path / "fresh"
    monkeypatch.setenv("CATDNN_HOME", str(fresh))
    with History() as h:
        other = h.add(BASE, status="finished", source="cli")
    assert main(["runs", "delete", str(other)]) == 0
    assert "deleted 1 run" in capsys.readouterr().out and not (fresh / "classroom.sqlite3").exists()


def test_a_run_deleted_while_it_is_scored_does_not_come_back_on_the_board(klass, poisoned):
    # issue 18's attack review: the scoring (5 trainings) takes a while, and a delete from another tab (or the
    # teacher's) found no entry to withdraw yet; the entry was then written for a run that no longer existed
    run = keep(klass, klass.ana, dataset=poisoned)
    deleted = []

    def on_run(fold, result, score):
        if not deleted:
            deleted.append(bd.delete_runs(klass.history[klass.ana], [run], klass.board))

    with Counting() as ex, pytest.raises(BoardError, match="deleted while it was being scored"):
        klass.board.submit(klass.ana, run, klass.history[klass.ana], poisoned, executor=ex, on_run=on_run)
    assert deleted == [(1, 0)]  # the run went; nothing was on the board yet
    assert klass.history[klass.teacher].runs() == []
    assert _on_board(klass) == []
