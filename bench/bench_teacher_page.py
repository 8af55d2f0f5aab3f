"""How long a rerun of the Teacher page takes as the class's runs pile up (AppTest, this process).

    python bench/bench_teacher_page.py [RUNS ...]      (default: 5000)

For each count, a fresh catdnn home holds a class of 30 students and RUNS finished runs spread over them (one
transaction, through the History API); the Teacher page is opened with the teacher's link, then rerun five times:
the median rerun is printed. The page rebuilt the whole CSV export and a delete list of every run on each rerun
before it built the CSV only when the download is pressed and listed a bounded number of runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(n_runs: int, students: int = 30, reruns: int = 5) -> float:
    from streamlit.testing.v1 import AppTest

    from catdnn import classroom
    from catdnn.classroom import ClassStore, RateLimiter
    from catdnn.config import PRESETS
    from catdnn.data import COURSE_NAME
    from catdnn.history import History

    home = tempfile.mkdtemp(prefix="bench-teacher-")
    os.environ["CATDNN_HOME"] = home
    os.environ[classroom.MODE_ENV] = "class"
    config = replace(PRESETS["two-layer"], iterations=20)
    with ClassStore(Path(home) / classroom.FILE_NAME, failures=RateLimiter(100, 1000),
                    joins=RateLimiter(1000, 1000)) as store:
        info, token = store.start_class("Period 3")
        people = [store.join(info.code, f"Student {i}") for i in range(students)]
    os.environ[classroom.CLASS_ENV] = info.code
    histories = [History(viewer=p) for p in people]
    for i in range(n_runs):
        histories[i % students].add(config, status="finished", test_accuracy=0.7, train_accuracy=0.9,
                                    iterations_done=20, source="app", dataset=COURSE_NAME)
    for h in histories:
        h.close()
    at = AppTest.from_file(str(ROOT / "pages/9_Teacher.py"), default_timeout=600)
    at.query_params["teacher"] = token
    at.run()
    assert not at.exception, at.exception
    times = []
    for _ in range(reruns):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [5000]:
        print(f"{n:>7,} runs: a Teacher page rerun takes {measure(n):.2f} s (median of 5)", flush=True)
