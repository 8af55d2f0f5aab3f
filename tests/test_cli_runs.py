"""`python -m catdnn runs|sweep|train --seeds`: runs are kept, listed, shown, deleted, exported; clear errors."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(home, *args, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "catdnn", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "CATDNN_HOME": str(home)})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ids(home) -> list[int]:
    proc = run(home, "runs", "list")
    assert proc.returncode == 0, proc.stderr
    return [int(line.split()[0]) for line in proc.stdout.splitlines()[1:]]


def test_train_keeps_its_run_and_runs_lists_shows_exports_and_deletes_it(tmp_path):
    home = tmp_path / "home"
    proc = run(home, "train", "--preset", "two-layer", "--iterations", "50", "--print-every", "10")
    assert proc.returncode == 0, proc.stderr
    assert "Kept as run 1" in proc.stderr and (home / "runs.sqlite3").is_file()
    listed = run(home, "runs", "list")
    assert "1 runs in" in listed.stderr and str(home) in listed.stderr
    line = listed.stdout.splitlines()[1]
    assert line.split()[:6] == ["1", *line.split()[1:3], "cli", "finished", "50"]
    assert "[12288,7,1] · small init" in line  # the run names its architecture
    shown = run(home, "runs", "show", "1", "--save", tmp_path / "m.npz")
    assert shown.returncode == 0, shown.stderr
    assert "learning_rate: 0.0075" in shown.stdout and "cost curve: 6 points" in shown.stdout
    from catdnn import load_model

    assert load_model(tmp_path / "m.npz").iterations_done == 50
    out = tmp_path / "runs.csv"
    assert run(home, "runs", "export", out).returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 1 and rows[0]["status"] == "finished" and rows[0]["layers"] == "12288,7,1"
    gone = run(home, "runs", "delete", "1", "7")
    assert gone.returncode == 1 and "deleted 1 run: 1" in gone.stdout and "no run 7" in gone.stderr
    assert ids(home) == []
    assert run(home, "runs", "show", "1").returncode == 1


def test_a_diverged_run_is_kept_too(tmp_path):
    proc = run(tmp_path, "train", "--iterations", "300", "--lr", "100")
    assert proc.returncode == 1 and "Kept as run 1" in proc.stderr
    assert "diverged" in run(tmp_path, "runs", "show", "1").stdout


def test_no_record_keeps_nothing(tmp_path):
    proc = run(tmp_path, "train", "--preset", "two-layer", "--iterations", "10", "--no-record")
    assert proc.returncode == 0 and not (tmp_path / "runs.sqlite3").exists()


def test_train_over_seeds_prints_the_spread_and_keeps_every_run(tmp_path):
    proc = run(tmp_path, "train", "--iterations", "60", "--seeds", "1-3")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert sorted(line.split("]")[0] for line in lines) == ["[1/3", "[2/3", "[3/3"]
    assert "Mean ± std over 3 seeds: train accuracy " in proc.stdout
    assert "the course's 0.80 test accuracy is one seed's" in proc.stderr
    assert sorted(ids(tmp_path)) == [1, 2, 3]


def test_a_grid_sweep(tmp_path):
    proc = run(tmp_path, "sweep", "--lr", "0.0075,0.01", "--hidden", "20,7,5;7", "--seeds", "1-2",
               "--iterations", "40", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Sweep of 8 runs on 2 processes" in proc.stderr
    assert "Test accuracy by settings (mean ± std over the seeds):" in proc.stdout
    assert "[12288,7,1] init=xavier lr=0.01: " in proc.stdout
    assert len(ids(tmp_path)) == 8
    rows = list(csv.DictReader(io.StringIO(run(tmp_path, "runs", "export", "-").stdout)))
    assert {(r["architecture"], r["learning_rate"]) for r in rows} == {
        (a, lr) for a in ("[12288,20,7,5,1]", "[12288,7,1]") for lr in ("0.0075", "0.01")}
    assert {r["sweep"] for r in rows} == {"sweep: lr 0.0075,0.01 · hidden 20,7,5;7 · seeds 1-2"}


def test_a_sweep_of_architectures_cnns_included(tmp_path):
    proc = run(tmp_path, "sweep", "--arch", "in16,conv2,dense4", "dense7", "--iterations", "3", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Sweep of 2 runs" in proc.stderr
    rows = list(csv.DictReader(io.StringIO(run(tmp_path, "runs", "export", "-").stdout)))
    assert sorted(r["architecture"] for r in rows) == ["[12288,7,1]", "in16,conv2,dense4"]
    assert {r["sweep"] for r in rows} == {"sweep: arch in16,conv2,dense4;dense7 · seeds 1"}
    listed = run(tmp_path, "runs", "list").stdout
    assert "in16,conv2,dense4" in listed and "[12288,7,1]" in listed  # a CNN never reads like its dense head
    # only convolutional nets: they start from the cnn preset (Adam, mini-batches), as `train --arch` does
    home = tmp_path / "cnn"
    proc = run(home, "sweep", "--arch", "in16,conv2,dense4;in16,conv4,dense4", "--iterations", "2", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(run(home, "runs", "export", "-").stdout)))
    assert sorted(r["architecture"] for r in rows) == ["in16,conv2,dense4", "in16,conv4,dense4"]
    assert {r["optimizer"] for r in rows} == {"adam"}


@pytest.mark.parametrize("args, message", [
    (["train", "--seeds", "1-3", "--seed", "2"], "without --seed"),
    (["train", "--seeds", "5-1"], "runs backwards"),
    (["train", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler applies to several runs"),
    (["sweep", "--hidden", "20,,7"], "empty entry"),
    (["sweep", "--arch", "in32,conv16,bogus8"], "unknown step 'bogus8'"),
    (["sweep", "--init", "zeros"], "'zeros' is not one of"),
    (["sweep", "--scheduler", "http://x"], "not a Dask scheduler address"),
    (["sweep", "--scheduler", "tls://127.0.0.1:8786"], "is a TLS scheduler, which catdnn cannot connect to"),
    (["sweep", "--workers", "0"], "--workers must be at least 1"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    proc = run(tmp_path, *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_a_corrupt_history_gets_a_clear_message_and_training_still_works(tmp_path):
    (tmp_path / "runs.sqlite3").write_bytes(b"garbage" * 1000)
    proc = run(tmp_path, "runs", "list")
    assert proc.returncode == 1 and "is not a readable database" in proc.stderr
    proc = run(tmp_path, "train", "--preset", "two-layer", "--iterations", "10")
    assert proc.returncode == 0 and "warning: runs are not kept in the history" in proc.stderr
    assert "Test accuracy" in proc.stdout


def test_a_newer_history_gets_a_clear_message(tmp_path):
    assert run(tmp_path, "runs", "list").returncode == 0
    with sqlite3.connect(tmp_path / "runs.sqlite3") as db:
        db.execute("UPDATE schema_version SET version = 99")
    proc = run(tmp_path, "runs", "list")
    assert proc.returncode == 1 and "written by a newer catdnn (schema version 99" in proc.stderr


def test_ctrl_c_stops_a_sweep_and_keeps_the_runs_it_finished(tmp_path):
    """A real Ctrl-C (SIGINT) on a real process, once the sweep has said it started: Ctrl-C is then the
    sweep's to handle, whatever line runs when it lands (see the in-process test below for each phase)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "catdnn", "train", "--iterations", "100000", "--seeds", "1-4", "--workers", "2",
         "--print-every", "1000"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CATDNN_HOME": str(tmp_path)})
    try:
        while "Sweep of 4 runs" not in proc.stderr.readline():
            pass
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert "Traceback" not in err
    finished = re.search(r"interrupted: (\d) of 4 runs finished \(kept in the history\)", err)
    assert proc.returncode == 130 and finished, err
    assert len(ids(tmp_path)) == int(finished.group(1))  # what it says it kept is what it kept


class _Tripwire(io.TextIOBase):
    """A stream that sends this process a Ctrl-C (SIGINT) right after ``text`` is first written to it."""

    def __init__(self, stream, text: str, fire):
        self.stream, self.text, self.fire = stream, text, fire

    def write(self, s):
        n = self.stream.write(s)
        if self.text in s:
            self.fire()
        return n

    def flush(self):
        self.stream.flush()


def _once():
    """A function that sends SIGINT to this process the first time it is called, never again."""
    fired = []

    def fire():
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)
    return fire


def _after(monkeypatch, owner, name, fire, before=False):
    original = getattr(owner, name)

    def hooked(*args, **kwargs):
        if before:
            fire()
        out = original(*args, **kwargs)
        if not before:
            fire()
        return out
    monkeypatch.setattr(owner, name, hooked)


def _hook(phase, monkeypatch, fire):
    from catdnn.history import History
    from catdnn.workers import Job, TrainingPool

    if phase == "announcing the sweep":
        monkeypatch.setattr(sys, "stderr", _Tripwire(sys.stderr, "Sweep of", fire))
    elif phase == "starting the workers":
        _after(monkeypatch, TrainingPool, "__init__", fire)
    elif phase == "queueing the first run":
        _after(monkeypatch, TrainingPool, "submit", fire)
    elif phase == "a run ending while the sweep waits":  # sent from the pool's thread, as a terminal would
        original = Job.add_done_callback
        monkeypatch.setattr(Job, "add_done_callback",
                            lambda job, fn: (original(job, fn), original(job, lambda j: fire())))
    elif phase == "keeping the first run":
        _after(monkeypatch, History, "add", fire)
    elif phase == "printing the first result":
        monkeypatch.setattr(sys, "stdout", _Tripwire(sys.stdout, "[1/3]", fire))
    elif phase == "shutting the workers down":
        _after(monkeypatch, TrainingPool, "close", fire, before=True)
    elif phase == "printing the spread":
        monkeypatch.setattr(sys, "stdout", _Tripwire(sys.stdout, "Mean ± std", fire))


@pytest.mark.parametrize("phase, at_least, at_most", [
    ("announcing the sweep", 0, 0), ("starting the workers", 0, 0), ("queueing the first run", 0, 1),
    ("a run ending while the sweep waits", 1, 2), ("keeping the first run", 1, 1),
    ("printing the first result", 1, 1), ("shutting the workers down", 3, 3), ("printing the spread", 3, 3)])
def test_ctrl_c_at_any_phase_of_a_seed_spread_reports_and_keeps_what_finished(
        phase, at_least, at_most, tmp_path, monkeypatch, capsys):
    """Issue 15 §4: Ctrl-C is sent at each phase of ``train --seeds`` by a hook on what the sweep does
    there (no timing): each time, the runs that finished are printed, counted and kept, never a bare
    ``interrupted`` from an exception that escaped."""
    from catdnn import cli
    from catdnn.history import History

    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    _hook(phase, monkeypatch, _once())
    code = cli.main(["train", "--iterations", "30", "--seeds", "1-3", "--workers", "1"])
    out, err = capsys.readouterr()
    finished = re.search(r"\ninterrupted: (\d) of 3 runs finished \(kept in the history\)\n", err)
    assert code == 130 and finished, err
    k = int(finished.group(1))
    assert at_least <= k <= at_most
    assert len([line for line in out.splitlines() if line.startswith("[")]) == k
    with History(tmp_path / "runs.sqlite3") as h:
        kept = h.runs()
    assert len(kept) == k and {r.status for r in kept} <= {"finished"}


def test_train_over_seeds_on_a_dask_cluster(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(host="127.0.0.1", protocol="tcp", processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster:
        proc = run(tmp_path, "train", "--iterations", "40", "--seeds", "1-2", "--scheduler", cluster.scheduler_address)
    assert proc.returncode == 0, proc.stderr
    assert f"on the Dask cluster at {cluster.scheduler_address}" in proc.stderr
    assert "Mean ± std over 2 seeds" in proc.stdout and len(ids(tmp_path)) == 2


def test_no_scheduler_there_is_a_clear_error(tmp_path):
    proc = run(tmp_path, "train", "--iterations", "10", "--seeds", "1-2", "--scheduler", "tcp://127.0.0.1:9")
    assert proc.returncode == 1 and "no Dask scheduler answered at tcp://127.0.0.1:9" in proc.stderr
