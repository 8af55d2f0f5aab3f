"""Item 4: two browser sessions training at the same time on one server stay apart.

One `streamlit run dashboard.py` on 127.0.0.1, two Playwright browser contexts (two Streamlit
sessions, as two students' browsers). Both train on the Train page at once with different settings;
a Stop in one leaves the other running to the end; afterwards each session shows only its own model,
run and history on the Train, Misclassified and Predict pages.

Also, without a browser: two AppTest sessions keep separate state, and every page (whichever a
visitor opens first) limits BLAS to one thread per process (the measured best for concurrent
trainings, see catdnn/threads.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from catdnn.data import COURSE_NAME
from tests.app_support import ENTRY, PAGES
from tests.browser_support import (
    MAIN,
    ROOT,
    chromium,
    errors_on_page,
    goto_page,
    idle,
    main_button,
    require_playwright,
    stop_run,
    streamlit_server,
)

# A: a wide net that would take minutes (so it is always mid-run when stopped); B: a shorter net
# (about 10 s alone on a 2-core machine) that must run to its end while A is stopped.
A_HIDDEN, A_ITERS = "500, 500, 500", 10_000
B_HIDDEN, B_ITERS = "200, 100", 8_000
PROGRESS = f"{MAIN} [data-testid='stProgress']:has-text('it/s')"
ITERATION = re.compile(r"Iteration ([\d,]+) of ([\d,]+)")


# --------------------------------------------------------------------------- two real browsers
@pytest.fixture(scope="module")
def sync_api():
    return require_playwright()


@pytest.fixture(scope="module")
def server(data_dir, sync_api):
    with streamlit_server(data_dir, "concurrency_streamlit.log") as (base, _port, _proc):
        yield base


@pytest.fixture(scope="module")
def browser(sync_api):
    with chromium(sync_api) as b:
        yield b


def _open_train_page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # its own cookies: its own session
    page = context.new_page()
    page.goto(f"{server}/Train")
    idle(page, timeout=60_000)
    return page


def _set_form(page, hidden: str, iterations: int) -> None:
    page.locator(f"{MAIN} input[aria-label='Hidden layer sizes']").fill(hidden)
    page.keyboard.press("Tab")  # the settings are plain widgets: each change reruns the page; let it finish
    idle(page)
    slider = page.locator(f"{MAIN} [data-testid='stSlider']", has_text="Iterations").locator("input[type='range']")
    slider.focus()
    slider.press("End")  # 10,000
    step = int(float(slider.get_attribute("step") or 100))  # the slider's own step (50 since the cnn preset)
    for _ in range((10_000 - iterations) // step):
        slider.press("ArrowLeft")
    idle(page)
    assert slider.input_value() == str(iterations)


def _iteration(page) -> tuple[int, int] | None:
    """(done, total) from the live progress bar, or None when no run is on screen."""
    bars = page.locator(PROGRESS)
    if bars.count() == 0:
        return None
    m = ITERATION.search(bars.first.inner_text())
    return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else None


def _wait_until(what: str, check, timeout: float = 60.0, page=None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:.0f} s: {what}")
        (page.wait_for_timeout(200) if page is not None else time.sleep(0.2))


def _sidebar_model(page) -> str:
    text = page.locator("[data-testid='stSidebar']").inner_text()
    m = re.search(r"Current model: (.+)", text)
    assert m, text
    return m.group(1).strip()


def _metrics(page) -> dict[str, str]:
    out = {}
    for metric in page.locator(f"{MAIN} [data-testid='stMetric']").all():
        label = metric.locator("[data-testid='stMetricLabel']").inner_text().strip()
        out[label] = metric.locator("[data-testid='stMetricValue']").inner_text().strip()
    return out


@pytest.mark.browser
@pytest.mark.slow
def test_two_browser_sessions_train_at_once_and_stay_apart(server, browser):
    a = _open_train_page(browser, server)
    b = _open_train_page(browser, server)
    pages = {"A": a, "B": b}
    try:
        _set_form(a, A_HIDDEN, A_ITERS)
        _set_form(b, B_HIDDEN, B_ITERS)

        # Both train at once: A starts, then B while A runs.
        main_button(a, "Train").click()
        a.wait_for_selector(PROGRESS, timeout=60_000)
        main_button(b, "Train").click()
        b.wait_for_selector(PROGRESS, timeout=60_000)
        start_a, start_b = _iteration(a), _iteration(b)
        assert start_a and start_a[1] == A_ITERS and start_a[0] < A_ITERS, start_a
        assert start_b and start_b[1] == B_ITERS, start_b
        # ... and both advance together (neither waits for the other to finish)
        _wait_until(
            f"both runs should advance at the same time (A was at {start_a}, B at {start_b})",
            lambda: (_iteration(a) or (0, 0))[0] > start_a[0] and (_iteration(b) or (0, 0))[0] > start_b[0],
            page=a,
        )
        before_stop = _iteration(b)
        assert before_stop and before_stop[0] < B_ITERS, (
            f"B finished before A could be stopped ({before_stop}): make B's run longer"
        )
        assert b.locator("[data-testid='stApp'][data-test-script-state='running']").count() == 1

        # Stop A: A keeps its partial model ...
        a_done = stop_run(a, A_ITERS)

        # ... while B runs on to its last iteration.
        b.locator(f"{MAIN} [data-testid='stAlert']", has_text=re.compile("Stopped|Finished|diverged")).first.wait_for(
            timeout=300_000
        )
        idle(b)
        finished = b.locator(f"{MAIN} [data-testid='stAlert']").first.inner_text()
        assert f"Finished {B_ITERS:,} iterations" in finished, finished

        # Each Train page shows its own last run and model.
        ma, mb = _metrics(a), _metrics(b)
        assert ma["Iterations"] == f"{a_done:,} / {A_ITERS:,}", ma
        assert mb["Iterations"] == f"{B_ITERS:,} / {B_ITERS:,}", mb
        label_a, label_b = _sidebar_model(a), _sidebar_model(b)
        assert label_a.startswith(f"custom (500, 500, 500) on {COURSE_NAME}, test ")
        assert f"stopped at {a_done:,}/{A_ITERS:,}" in label_a
        assert label_b.startswith(f"custom (200, 100) on {COURSE_NAME}, test ") and "stopped" not in label_b
        assert label_a.endswith(f"test {ma['Test accuracy']}, stopped at {a_done:,}/{A_ITERS:,}"), (label_a, ma)
        assert label_b.endswith(f"test {mb['Test accuracy']}"), (label_b, mb)

        # Neither session sees the other's model (nor a second one) on Misclassified and Predict.
        for name, page, own, other, test_acc in (("A", a, label_a, label_b, ma["Test accuracy"]),
                                                 ("B", b, label_b, label_a, mb["Test accuracy"])):
            for title in ("Misclassified", "Predict"):
                goto_page(page, title)
                main = page.locator(MAIN).inner_text()
                assert f"Model: {own}" in main, (name, title, main[:500])
                assert other not in main, (name, title)
                assert page.locator(f"{MAIN} [data-testid='stSelectbox']", has_text="Model").count() == 0
                if title == "Misclassified":
                    assert f"Test set, 50 images: accuracy {test_acc}, balanced accuracy" in main, (name, main[:500])
                    assert "at threshold 0.50" in main, (name, main[:500])
            assert _sidebar_model(page) == own
            assert errors_on_page(page) == [], name
        assert browser.blocked == []  # nothing left the machine
    finally:
        for page in pages.values():
            page.context.close()


# --------------------------------------------------------------------------- without a browser
def test_two_apptest_sessions_keep_their_own_state(data_dir):
    """Two sessions of the Train page (as two tabs): each holds only its own run and model."""
    from tests.app_support import TRAIN, app, assert_clean, session_of

    sessions = {}
    for name, hidden, iterations in (("one", "3", 100), ("two", "4, 2", 200)):
        at = app(TRAIN).run()
        at.text_input(key="train_hidden").set_value(hidden)
        at.slider(key="train_iters").set_value(iterations)
        at.button(key="train_submit").click().run()
        assert_clean(at)
        sessions[name] = at
    one, two = (session_of(sessions[k]) for k in ("one", "two"))
    assert one is not two
    assert [m.layers for m in one.models.values()] == [(12288, 3, 1)]
    assert [m.layers for m in two.models.values()] == [(12288, 4, 2, 1)]
    assert one.run.model.iterations_done == 100 and two.run.model.iterations_done == 200
    assert one.run.history is not two.run.history
    assert one.run.history[-1][0] < 100 <= two.run.history[-1][0]
    # each form still shows its own session's settings
    assert sessions["one"].text_input(key="train_hidden").value == "3"
    assert sessions["two"].text_input(key="train_hidden").value == "4, 2"


def test_the_cached_dataset_cannot_be_changed_by_a_session(data_dir):
    """The one cached dataset all sessions share (st.cache_resource): every array in it is read-only,
    so no session can change another's data."""
    import warnings

    from ui.dataset import cached_dataset  # the app's loader, at the project root

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = cached_dataset(str(data_dir))
        second = cached_dataset(str(data_dir))
    assert second is first  # one copy for every session
    before = first.train.images[0].copy(), int(first.train.labels[0])
    for split in (first.train, first.test):
        for array in (split.images, split.labels, split.X, split.Y):
            assert not array.flags.writeable
            with pytest.raises(ValueError, match="read-only"):  # one session scribbling on the data ...
                array[0] = 0
    third = cached_dataset(str(data_dir))
    assert (third.train.images[0] == before[0]).all() and third.train.labels[0] == before[1]  # ... changes nothing


@pytest.mark.parametrize("script", [ENTRY, *PAGES])
def test_the_dashboard_limits_blas_to_one_thread_per_process(script):
    """Every session trains on a thread of one process: whichever page runs first (ui.page_setup) sets
    the process-wide limit."""
    pytest.importorskip("threadpoolctl")
    code = (
        "from streamlit.testing.v1 import AppTest\n"
        "from catdnn.threads import blas_thread_count\n"
        f"at = AppTest.from_file({script!r}, default_timeout=120).run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "print('BLAS', blas_thread_count())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CATDNN_BLAS_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    count = out.stdout.split("BLAS")[-1].strip()
    if count == "None":
        pytest.skip("no BLAS library found by threadpoolctl")
    assert count == "1", out.stdout
