"""A class of 30: every student joins a class-mode server and presses Train on the deep preset at the same
moment, over real WebSocket connections; one more student, who is not training, opens pages meanwhile.

    python bench/bench_class.py [--students 30] [--browsers 4] [--preset deep] [--timeout 300]

The server is the real thing, started like ``python -m catdnn serve --class`` does (class mode, the served
class, the Host allowlist) on 127.0.0.1 with a fresh ``$CATDNN_HOME``. ``--browsers`` of the students are
headless Debian Chromium tabs (Playwright); the others are light clients (``bench/stclient.py``: one
WebSocket session each, speaking Streamlit's protocol, as a tab does, without a renderer). Each student
opens the join link, types a name, joins, opens the Train page, and all press Train together. With
``--preset cnn`` (issue 18's target: 30 students on the CNN preset, the last result within 60 s) the Train
page is opened with the preset's settings in its address, as a share link gives them.

Printed: every student's click-to-result time (until the Train page shows the run's test accuracy), the
idle student's page times while the others train, the server's CPU and peak RSS (and the workers'), and
what the run history kept (runs per student, each owned by its student). Targets (issue 16): every
student has a result within 30 s; the idle student gets any page within 2 s; the history holds one run
per student, owned by that student.
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
from urllib.parse import parse_qs, urlencode, urlsplit

from _common import machine, median, table
from stclient import Client

from catdnn.classroom import ClassStore, Identity
from catdnn.config import PRESETS
from catdnn.history import History
from catdnn.share import config_to_query

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
MAIN = "[data-testid='stMain']"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = ["Runs", "Lessons", "Class_board", "Predict", ""]  # what the idle student opens ("": Home)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        return []
    kids = [int(p) for p in out]
    return kids + [g for k in kids for g in children(k)]


class Sampler(threading.Thread):
    """Samples the server's and its workers' CPU use and memory every 0.5 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.peak_rss, self.worker_peak = pid, threading.Event(), 0.0, 0.0
        self.cpu_start = self.cpu_end = 0.0
        self.server_start = self.server_end = 0.0
        self.workers: dict = {}  # pid -> (CPU s when first seen, last seen); a worker that ends keeps its last
        self.t0 = self.t1 = 0.0

    def cpu(self) -> float:
        return cpu_seconds(self.pid) + sum(cpu_seconds(k) for k in children(self.pid))

    def _sample_workers(self) -> None:
        for k in children(self.pid):
            c = cpu_seconds(k)
            first = self.workers.get(k, (c, c))[0]
            self.workers[k] = (first, c)

    @property
    def worker_cpu(self) -> float:
        """CPU seconds of the worker processes (and their children) while sampled."""
        return sum(last - first for first, last in self.workers.values())

    def run(self):
        self.t0, self.cpu_start, self.server_start = time.monotonic(), self.cpu(), cpu_seconds(self.pid)
        self._sample_workers()
        while not self.stop.wait(0.5):
            self.peak_rss = max(self.peak_rss, proc_status(self.pid).get("VmHWM", 0))
            for k in children(self.pid):
                self.worker_peak = max(self.worker_peak, proc_status(k).get("VmHWM", 0))
            self._sample_workers()
        self._sample_workers()
        self.t1, self.cpu_end, self.server_end = time.monotonic(), self.cpu(), cpu_seconds(self.pid)


def start_server(home: Path, port: int, class_name: str):
    """The class-mode server, started like ``catdnn serve --class`` (its plan), on 127.0.0.1."""
    from catdnn.serve import app_dir, serve_plan

    env = dict(os.environ, CATDNN_HOME=str(home), no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    os.environ["CATDNN_HOME"] = str(home)
    plan = serve_plan(class_name, address="127.0.0.1", port=port)
    env.update(plan.env)
    cmd = [*plan.command[:-1], "--server.fileWatcherType", "none", plan.command[-1]]  # the script comes last
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen(cmd, cwd=str(app_dir()), env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(proc, base, home / "server.log")
    return proc, base, plan


def wait_healthy(proc, base: str, log: Path, seconds: float = 90) -> None:
    """Wait until the Streamlit server ``proc`` at ``base`` answers its health check (without any proxy); exit
    naming its ``log`` if it ends or does not answer within ``seconds``."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + seconds
    while True:
        try:
            if opener.open(f"{base}/_stcore/health", timeout=2).status == 200:
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start: see {log}")
            time.sleep(0.3)


def has_result(page) -> bool:
    acc = page.metric("Test accuracy")
    return acc not in (None, "–") and page.widget("train_stop") is None


def train_query(key: str | None, settings: str) -> str:
    """The Train page's query: the student's key and, for a preset other than the page's default, its settings."""
    return "&".join(q for q in (f"key={key}" if key else "", settings) if q)


def light_student(base: str, code: str, name: str, barrier: threading.Barrier, out: dict, timeout: float,
                  settings: str = ""):
    try:
        c = Client(base, timeout=timeout)
        c.run(query=f"join={code}")
        c.run(values={"join_code": code, "join_name": name}, click="join_button")
        key = next((v for k, v in (p.split("=", 1) for p in c.query.split("&") if "=" in p) if k == "key"), None)
        for _ in range(5):  # the join's own rerun may still supersede the first request for the page
            c.run(page="Train", query=train_query(key, settings) if settings else None)
            if c.page.widget("train_submit") is not None:
                break
            time.sleep(0.5)
        if c.page.widget("train_submit") is None:
            raise RuntimeError(f"{name}: no Train button after joining: {[t[:60] for t in c.page.texts()]}")
        barrier.wait()
        t = time.monotonic()
        page = c.run(click="train_submit", until=has_result)
        out[name] = {"seconds": time.monotonic() - t, "test": page.metric("Test accuracy"), "client": "light",
                     "key": key}
        c.close()
    except Exception as exc:  # noqa: BLE001 - reported in the table
        out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            barrier.abort()
        except threading.BrokenBarrierError:
            pass


def browser_students(base: str, code: str, names: list, barrier: threading.Barrier, out: dict, timeout: float,
                     settings: str = ""):
    """The Chromium students, all driven from this one thread (Playwright's sync API is per thread)."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            pages = []
            for name in names:
                page = b.new_context().new_page()
                page.goto(f"{base}/?join={code}")
                page.wait_for_selector(IDLE, timeout=60_000)
                page.get_by_role("textbox", name="Your name").fill(name)
                page.locator(f"{MAIN} button", has_text="Join").first.click()
                page.get_by_text("You joined as").first.wait_for(timeout=60_000)
                page.wait_for_selector(IDLE, timeout=60_000)
                for _ in range(4):  # as a person would: click Train in the sidebar until the page is there
                    page.locator("[data-testid='stSidebarNav'] a", has_text="Train").first.click()
                    try:
                        page.wait_for_selector(f"{MAIN} [data-testid='stBaseButton-primary']", timeout=15_000)
                        break
                    except Exception:  # noqa: BLE001 - try again
                        continue
                page.wait_for_selector(IDLE, timeout=60_000)
                if settings:  # the preset's settings in the address, as a share link opens the page
                    key = parse_qs(urlsplit(page.url).query).get("key", [None])[0]
                    page.goto(f"{base}/Train?{train_query(key, settings)}")
                    page.wait_for_selector(f"{MAIN} [data-testid='stBaseButton-primary']", timeout=60_000)
                    page.wait_for_selector(IDLE, timeout=60_000)
                pages.append((name, page))
            barrier.wait()
            starts = {}
            for name, page in pages:
                page.locator(f"{MAIN} [data-testid='stBaseButton-primary']", has_text="Train").first.click()
                starts[name] = time.monotonic()
            pending = dict(pages)
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                for name, page in list(pending.items()):
                    metric = page.locator("[data-testid='stMetric']", has_text="Test accuracy")
                    stop = page.locator(f"{MAIN} button", has_text="Stop")
                    if metric.count() and "–" not in metric.first.inner_text() and not stop.count():
                        out[name] = {"seconds": time.monotonic() - starts[name], "client": "chromium",
                                     "test": metric.first.inner_text().split()[-1]}
                        del pending[name]
                time.sleep(0.1)
            for name in pending:
                out[name] = {"error": "no result before the timeout"}
            b.close()
    except Exception as exc:  # noqa: BLE001
        for name in names:
            out.setdefault(name, {"error": f"{type(exc).__name__}: {exc}"})
        try:
            barrier.abort()
        except threading.BrokenBarrierError:
            pass


def idle_student(base: str, code: str, start: threading.Event, done: threading.Event, times: list, timeout: float):
    c = Client(base, timeout=timeout)
    c.run(query=f"join={code}")
    c.run(values={"join_code": code, "join_name": "Idle student"}, click="join_button")
    start.wait()
    i = 0
    while not done.is_set():
        page = PAGES[i % len(PAGES)]
        t = time.monotonic()
        c.run(page=page)
        times.append((page or "Home", time.monotonic() - t))
        i += 1
    c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--browsers", type=int, default=4, help="how many of the students are Chromium tabs")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--preset", default="deep", choices=sorted(PRESETS),
                    help="what every student trains (deep: the Train page's default)")
    args = ap.parse_args()
    settings = "" if args.preset == "deep" else urlencode(config_to_query(PRESETS[args.preset]))
    print(machine())
    home = Path(tempfile.mkdtemp(prefix="bench-class-"))
    port = free_port()
    proc, base, plan = start_server(home, port, "Bench class")
    code = plan.class_code
    print(f"server {base} (pid {proc.pid}), class code {code}, home {home}; every student trains the "
          f"{args.preset} preset")
    names = [f"Student {i + 1:02d}" for i in range(args.students)]
    browser_names, light_names = names[: args.browsers], names[args.browsers:]
    barrier = threading.Barrier(len(light_names) + (1 if browser_names else 0) + 1)
    out: dict = {}
    page_times: list = []
    idle_go, idle_done = threading.Event(), threading.Event()
    sampler = Sampler(proc.pid)
    threads = [threading.Thread(target=light_student, args=(base, code, n, barrier, out, args.timeout, settings),
                                daemon=True) for n in light_names]
    if browser_names:
        threads.append(threading.Thread(target=browser_students,
                                        args=(base, code, browser_names, barrier, out, args.timeout, settings),
                                        daemon=True))
    idler = threading.Thread(target=idle_student, args=(base, code, idle_go, idle_done, page_times, args.timeout),
                             daemon=True)
    try:
        for t in threads:
            t.start()
        idler.start()
        try:
            barrier.wait(timeout=args.timeout)  # everyone joined and opened Train
        except threading.BrokenBarrierError:
            pass
        click = time.monotonic()
        sampler.start()
        idle_go.set()
        for t in threads:
            t.join(args.timeout)
        last = time.monotonic() - click
        idle_done.set()
        idler.join(60)
        sampler.stop.set()
        sampler.join()
    finally:
        proc.terminate()
        proc.wait(30)

    rows, ok = [], []
    for n in names:
        r = out.get(n, {"error": "no answer"})
        rows.append([n, r.get("client", "?"), f"{r['seconds']:.1f}" if "seconds" in r else "–", r.get("test", "–"),
                     " ".join(r.get("error", "").split())[:600]])
        if "seconds" in r:
            ok.append(r["seconds"])
    print(table(["student", "client", "click to result (s)", "test acc", "error"], rows))
    if ok:
        print(f"\nresults: {len(ok)}/{len(names)}; click to result median {median(ok):.1f} s, max {max(ok):.1f} s; "
              f"the last result {last:.1f} s after the clicks (target: every one within "
              f"{60 if args.preset == 'cnn' else 30} s)")
    if page_times:
        worst = max(t for _, t in page_times)
        by_page = {}
        for p, t in page_times:
            by_page.setdefault(p, []).append(t)
        print("idle student's pages while the class trained: " + ", ".join(
            f"{p} {median(ts):.2f} s median / {max(ts):.2f} s max ({len(ts)}×)" for p, ts in by_page.items())
            + f"; worst {worst:.2f} s (target ≤ 2 s)")
    span = max(1e-9, sampler.t1 - sampler.t0)
    print(f"server + workers CPU: {sampler.cpu_end - sampler.cpu_start:.1f} s over {span:.1f} s "
          f"({(sampler.cpu_end - sampler.cpu_start) / span:.2f} cores of {os.cpu_count()}): the server (Streamlit, "
          f"every session's page) {sampler.server_end - sampler.server_start:.1f} s, the training workers "
          f"{sampler.worker_cpu:.1f} s ({sampler.worker_cpu / max(1, len(ok)):.1f} s a result); "
          f"peak RSS: server {sampler.peak_rss:.0f} MB, largest worker {sampler.worker_peak:.0f} MB")
    os.environ["CATDNN_HOME"] = str(home)
    with ClassStore(home / "classroom.sqlite3") as store, History(home / "runs.sqlite3") as history:
        members = store.members(code)
        runs = history.runs()  # the machine's owner sees every run
        own = []  # what each student sees of the history through their own identity
        for m in members:
            with History(home / "runs.sqlite3", viewer=Identity("student", m.owner, m.name, code)) as theirs:
                own.append((m.name, [r.owner == m.owner for r in theirs.runs()]))
        trained = [(n, seen) for n, seen in own if n != "Idle student"]
        exactly_one = sum(1 for _, seen in trained if seen == [True])
        print(f"history: {len(runs)} runs; {len(members)} students joined; through their own identity, "
              f"{exactly_one} of {len(names)} students see exactly one run, their own; the idle student sees "
              f"{sum(len(seen) for n, seen in own if n == 'Idle student')}; runs owned by no student: "
              f"{sum(1 for r in runs if r.owner not in {m.owner for m in members})}")


if __name__ == "__main__":
    main()
