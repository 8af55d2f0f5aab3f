"""What the Train page's live redraws cost the server process, as more users train at once.

    python bench/bench_redraw.py [--users 1,4,8] [--iterations 10000] [--root DIR ...]

For each checkout ``--root`` (default: this one; give an older one to compare, e.g. a ``git worktree`` of
main), a local-mode server is started on 127.0.0.1 (``streamlit run dashboard.py``, a fresh
``$CATDNN_HOME``), and ``N`` light clients (``bench/stclient.py``: one real WebSocket session each) open the
Train page, set the deep preset's iterations and press Train at the same moment. Printed per N: the
median and largest click-to-result times, the server process's own CPU seconds during the runs (the workers
that train are other processes and are not counted: this is what drawing the pages costs), and the live
frames each client received (the element deltas of its Train run, a proxy for redraws).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import machine, median, table
from bench_class import cpu_seconds, free_port, has_result, wait_healthy
from stclient import Client

ROOT = Path(__file__).resolve().parent.parent


def start(root: Path, home: Path, port: int):
    env = dict(os.environ, CATDNN_HOME=str(home), CATDNN_MODE="local", no_proxy="127.0.0.1,localhost",
               NO_PROXY="127.0.0.1,localhost", PYTHONPATH=str(root))
    env.pop("CATDNN_SCHEDULER", None)
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--server.fileWatcherType", "none"], cwd=str(root), env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(proc, base, home / "server.log")
    return proc, base


class Counting(Client):
    """A client that counts the element deltas it reads (each live redraw sends a few)."""

    deltas = 0

    def read(self, until=None):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        recv = self.ws.recv

        def counted(*args, **kwargs):
            data = recv(*args, **kwargs)
            msg = ForwardMsg()
            msg.ParseFromString(data)
            if msg.WhichOneof("type") == "delta":
                self.deltas += 1
            return data

        self.ws.recv = counted
        try:
            return super().read(until)
        finally:
            self.ws.recv = recv


def user(base: str, iterations: int, barrier: threading.Barrier, out: list) -> None:
    c = Counting(base, timeout=600)
    try:
        c.run()  # the home page first: the session learns the pages' names
        c.run(page="Train", query=f"iterations={iterations}")  # a settings link: the form opens filled in
        barrier.wait()
        c.deltas = 0
        t = time.monotonic()
        c.run(click="train_submit", until=has_result)
        out.append((time.monotonic() - t, c.deltas))
    except Exception:
        barrier.abort()  # the others do not wait for ever
        raise
    finally:
        c.close()


def measure(root: Path, users: int, iterations: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="catdnn-bench-redraw-") as tmp:
        proc, base = start(root, Path(tmp), free_port())
        try:
            Client(base).run()  # the first page run imports everything
            out: list = []
            barrier = threading.Barrier(users + 1)
            threads = [threading.Thread(target=user, args=(base, iterations, barrier, out)) for _ in range(users)]
            for t in threads:
                t.start()
            barrier.wait()
            cpu0 = cpu_seconds(proc.pid)
            for t in threads:
                t.join()
            cpu = cpu_seconds(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    times = [s for s, _d in out]
    return {"users": users, "median": median(times), "max": max(times), "cpu": cpu,
            "deltas": median([d for _s, d in out])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", default="1,4,8")
    ap.add_argument("--iterations", type=int, default=10_000)
    ap.add_argument("--root", action="append", type=Path)
    args = ap.parse_args()
    print(machine())
    rows = []
    for root in args.root or [ROOT]:
        for n in (int(x) for x in args.users.split(",")):
            r = measure(root.resolve(), n, args.iterations)
            rows.append([str(root), n, f"{r['median']:.1f}", f"{r['max']:.1f}", f"{r['cpu']:.1f}",
                         f"{r['deltas']:.0f}"])
            print(rows[-1], flush=True)
    print(table(["checkout", "users", "click to result, median (s)", "max (s)", "server CPU (s)",
                 "deltas per user"], rows))


if __name__ == "__main__":
    main()
