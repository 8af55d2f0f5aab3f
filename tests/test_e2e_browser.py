"""End to end in a real browser: `streamlit run dashboard.py` driven by Debian's headless Chromium.

Trains the two-layer preset from the Train page (the course's 0.72 test accuracy), stops a longer run
midway and checks the partial model is kept, browses the mistakes, uploads chelsea.png on the
Predict page and reads the verdict; walks the Step page through one iteration. Screenshots of every
page go to artifacts/ (desktop and phone).
On 5 fresh server starts, every page opens by its URL with the sidebar listing every page in order,
and no other navigation or page shows first.

Skipped when Chromium or Playwright is missing, unless CATDNN_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser_support import (
    ARTIFACTS,
    MAIN,
    NAV_RECORDER,
    chromium,
    errors_on_page,
    full_screenshot,
    goto_page,
    idle,
    main_button,
    nav_history,
    require_playwright,
    sidebar_pages,
    stop_run,
    streamlit_server,
)
from tests.photo_support import photo_tree, zip_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def sync_api():
    return require_playwright()


@pytest.fixture(scope="module")
def server(data_dir, sync_api):
    """A `streamlit run dashboard.py` on 127.0.0.1 and a free port; always shut down afterwards."""
    args = ("--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false")
    with streamlit_server(data_dir, "e2e_streamlit.log", args) as (base, _port, _proc):
        yield base


@pytest.fixture(scope="module")
def browser(sync_api):
    with chromium(sync_api) as b:
        yield b


def shot(page, name: str) -> None:
    full_screenshot(page, ARTIFACTS / f"e2e_{name}.png")


def test_dashboard_in_a_real_browser(server, browser, sync_api):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    console_errors = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))

    # Home
    page.goto(server)
    idle(page, timeout=60_000)
    expect = sync_api.expect
    expect(page.locator(MAIN).get_by_text("Always answering")).to_be_visible()
    expect(page.locator(f"{MAIN} [data-testid='stImage'] img")).to_have_count(12, timeout=30_000)
    expect(page.locator(f"{MAIN} .katex-display")).to_have_count(4, timeout=30_000)
    shot(page, "home")

    goto_page(page, "Train")
    # A longer run, stopped midway: the partial model is kept. A wide custom network keeps the run
    # long (minutes) however fast the solver gets, so the stop always lands midway.
    page.locator(f"{MAIN} input[aria-label='Hidden layer sizes']").fill("500, 500, 500")
    page.keyboard.press("Tab")  # each change reruns the page (plain widgets): let it answer before the next
    idle(page)
    slider = page.locator(f"{MAIN} [data-testid='stSlider']", has_text="Iterations").locator("input[type='range']")
    slider.focus()
    slider.press("End")
    idle(page)
    assert slider.input_value() == "10000"
    main_button(page, "Train").click()
    # Stop as soon as the live view is up: the engine is fast, 10,000 iterations take only seconds
    page.wait_for_selector(f"{MAIN} [data-testid='stProgress']:has-text('it/s')", timeout=60_000)
    page.wait_for_timeout(1000)
    live = page.locator(f"{MAIN} [data-testid='stProgress']").first.inner_text()
    assert re.search(r"Iteration [\d,]+ of 10,000 · [\d,]+ it/s · about .+ left", live), live
    assert page.locator(f"{MAIN} [data-testid='stMetric']", has_text="Test accuracy").count() == 1
    shot(page, "train_live")
    done = stop_run(page, 10_000)
    assert page.locator(f"{MAIN} [data-testid='stDownloadButton']").count() == 1
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert f"stopped at {done:,}/10,000" in sidebar, sidebar
    shot(page, "train_stopped")

    # Train the two-layer preset, fully (2500 iterations): the course's 0.72
    page.locator(MAIN).get_by_role("radio", name="two-layer").click()
    idle(page)
    assert page.locator(f"{MAIN} input[aria-label='Hidden layer sizes']").input_value() == "7"
    main_button(page, "Train").click()
    page.wait_for_selector(f"{MAIN} [data-testid='stAlert']:has-text('Finished')", timeout=300_000)
    idle(page)
    result = page.locator(f"{MAIN} [data-testid='stAlert']").first.inner_text()
    assert "2,500 iterations" in result
    assert "test accuracy 0.72" in result, result
    # the whole cost curve and both accuracy curves are drawn
    expect(page.locator(f"{MAIN} [data-testid='stPlotlyChart'] .scatterlayer .trace")).to_have_count(3, timeout=30_000)
    assert page.locator(f"{MAIN} [data-testid='stDownloadButton']").count() == 1
    shot(page, "train_two_layer")

    # Misclassified, with the two-layer model: the grid shows the FP + FN test images
    goto_page(page, "Misclassified")
    labels = page.locator(f"{MAIN} button").all_inner_texts()
    counts = {k: int(re.search(r"(\d+) " + k, " ".join(labels)).group(1)) for k in ("TP", "FP", "FN", "TN")}
    assert sum(counts.values()) == 50 and counts["FP"] + counts["FN"] == 14, counts  # 0.72 test accuracy
    expect(page.locator(f"{MAIN} [data-testid='stImage'] img")).to_have_count(counts["FP"] + counts["FN"])
    shot(page, "misclassified")

    # Predict: upload chelsea.png and read the verdict
    from skimage import data as skdata

    chelsea = Path(skdata.data_dir) / "chelsea.png"
    goto_page(page, "Predict")
    page.locator(f"{MAIN} [data-testid='stFileUploaderDropzoneInput']").last.set_input_files(str(chelsea))
    page.wait_for_selector(f"{MAIN} :text('Verdict:')", timeout=60_000)
    idle(page)
    verdict = page.locator(f"{MAIN} :text('Verdict:')").first.inner_text()
    assert re.search(r"Verdict: (cat|non-cat)", verdict), verdict
    assert page.locator(f"{MAIN} [data-testid='stProgress']", has_text="P(cat) =").count() == 1
    shot(page, "predict")

    assert errors_on_page(page) == []
    assert console_errors == []
    page.close()

    # Every page at phone width, each opened first by URL
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    for _label, path, title in sidebar_pages():
        phone.goto(f"{server}/{path}")
        idle(phone, timeout=60_000)
        assert phone.locator(f"{MAIN} h1").first.inner_text() == title
        assert errors_on_page(phone) == []
        shot(phone, f"phone_{path.lower() or 'home'}")
    # a page opened first without a model offers the one-click deep preset (the course's 0.80)
    phone.goto(f"{server}/Misclassified")
    idle(phone, timeout=60_000)
    main_button(phone, "Train the deep preset now").click()
    phone.wait_for_selector(f"{MAIN} h3:has-text('Mistakes: 10 images')", timeout=300_000)
    idle(phone)
    expect(phone.locator(f"{MAIN} [data-testid='stImage'] img")).to_have_count(10)
    assert errors_on_page(phone) == []
    shot(phone, "phone_misclassified_deep")
    phone.close()
    assert browser.blocked == []  # nothing left the machine (no telemetry, no fonts, nothing)


SIDEBAR = ["dashboard", "Train", "Misclassified", "Inside the network", "Predict", "Runs", "Lessons", "Step",
           "Class board", "Teacher"]
FRESH_STARTS = 5


def test_every_page_opens_by_url_on_fresh_server_starts(data_dir, browser):
    """On each of 5 fresh servers, every page opened by its URL in a new session (the first of them
    a different page each time): the sidebar lists every page in order from the first moment it
    shows any, only that page's title ever appears, and the sidebar names no model yet."""
    pages = sidebar_pages()
    assert [label for label, _path, _title in pages] == SIDEBAR  # every script in pages/, in order
    for start in range(FRESH_STARTS):
        first = start % len(pages)
        with streamlit_server(data_dir, f"e2e_fresh_start_{start + 1}.log") as (base, _port, _proc):
            for label, path, title in pages[first:] + pages[:first]:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(NAV_RECORDER)
                page = context.new_page()
                try:
                    page.goto(f"{base}/{path}")
                    idle(page, timeout=60_000)
                    page.locator(f"{MAIN} h1", has_text=title).first.wait_for(timeout=30_000)
                    where = f"start {start + 1}, {label} (/{path})"
                    # (the Train page's address holds its form's settings: ?hidden=20,7,5&lr=...)
                    assert page.url.split("?")[0] == f"{base}/{path}", where
                    assert "?" not in page.url or path == "Train", where
                    assert page.locator("[data-testid='stSidebarNav'] a").all_inner_texts() == SIDEBAR, where
                    history = nav_history(page)
                    assert history and history[-1] == {"links": SIDEBAR, "titles": [title]}, (where, history)
                    flashes = [h for h in history
                               if h["links"] not in ([], SIDEBAR) or h["titles"] not in ([], [title])]
                    assert flashes == [], (where, flashes)
                    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
                    assert "No model" in sidebar, (where, sidebar)  # none in this tab (the history may hold some)
                    assert errors_on_page(page) == [], where
                finally:
                    context.close()
    assert browser.blocked == []  # nothing left the machine


def test_a_link_fills_the_train_form_and_trains_only_when_asked(server, browser, sync_api):
    """The Train page's settings live in its URL: a shared link fills the form (techniques too), never
    trains by itself, and Train reproduces the run; a bad value in a link is named and its default kept."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console_errors = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    page.goto(f"{server}/Train?hidden=7&lr=0.0075&iterations=300&init=small&seed=1&l2=0.5&optimizer=momentum")
    idle(page, timeout=60_000)
    form = page.locator(MAIN)
    sync_api.expect(form.locator("input[aria-label='Hidden layer sizes']")).to_have_value("7", timeout=30_000)
    idle(page)
    slider = form.locator("[data-testid='stSlider']", has_text="Iterations").locator("input[type='range']")
    assert slider.input_value() == "300"
    assert form.locator("input[aria-label='L2 regularisation λ (0: off)']").input_value() == "0.5"
    optimizer = form.locator("[data-testid='stSelectbox']", has_text="Optimizer")
    shown = optimizer.inner_text() + " ".join(i.input_value() for i in optimizer.locator("input").all())
    assert "momentum" in shown, shown
    page.wait_for_timeout(1500)  # nothing trains by itself
    idle(page)
    assert form.locator("[data-testid='stProgress']").count() == 0
    assert form.locator("[data-testid='stAlert']:has-text('Finished')").count() == 0
    assert "No model" in page.locator("[data-testid='stSidebar']").inner_text()  # none in this tab yet
    shot(page, "train_link")

    main_button(page, "Train").click()
    page.wait_for_selector(f"{MAIN} [data-testid='stAlert']:has-text('Finished')", timeout=300_000)
    idle(page)
    result = form.locator("[data-testid='stAlert']", has_text="Finished").first.inner_text()
    assert "300 iterations" in result, result
    assert "Gram solver: with momentum and L2, W1 stays" in form.inner_text()
    assert "l2=0.5" in page.url and "optimizer=momentum" in page.url and "iterations=300" in page.url

    page.goto(f"{server}/Train?iterations=abc&lr=0.02")
    idle(page, timeout=60_000)
    warning = form.locator("[data-testid='stAlert']", has_text="not used").first.inner_text()
    assert "iterations='abc'" in warning and "Kept iterations=2500" in warning, warning
    assert slider.input_value() == "2500"
    shot(page, "train_link_bad_value")
    assert errors_on_page(page) == []
    assert console_errors == []
    page.close()
    assert browser.blocked == []


def test_the_runs_page_lists_runs_and_trains_a_seed_spread(server, browser, sync_api):
    """The Runs page in a real browser: the table of kept runs, then a 2-seed spread on the server's cores
    with its mean ± std and the note that the course's 0.80 is one seed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{server}/Runs")
        idle(page)
        page.locator(f"{MAIN} h1", has_text="Runs").first.wait_for(timeout=30_000)
        page.get_by_role("tab", name="Seed spread").click()
        page.locator(f"{MAIN} input[aria-label='Seeds (1 to N)']").fill("2")
        main_button(page, "Train over the seeds").click()
        page.locator(f"{MAIN} [data-testid='stAlert']", has_text="one seed's").first.wait_for(timeout=120_000)
        idle(page)
        metric = page.locator(f"{MAIN} [data-testid='stMetric']", has_text="Test accuracy").first.inner_text()
        assert re.search(r"0\.\d{3} ± 0\.\d{3}", metric), metric
        page.get_by_role("tab", name="Runs").first.click()
        sync_api.expect(page.locator(f"{MAIN} [data-testid='stDataFrame']").first).to_be_visible(timeout=30_000)
        assert errors_on_page(page) == []
        shot(page, "runs")
    finally:
        context.close()
    assert browser.blocked == []


def _checked_presets(page) -> list[str]:
    return page.locator(f"{MAIN} [role='radio'][aria-checked='true']").all_inner_texts()


def _query(page) -> dict:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def test_the_train_page_shows_what_is_on_screen(server, browser, sync_api, tmp_path):
    """Issue 15 in a real browser: the address follows a form change without Train; a second click on the
    chosen preset keeps it chosen; after an import, Last run names the dataset it trained on, then the
    imported one (with the small test set's warning), and the import popover has closed over its report."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    console_errors = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    page.goto(f"{server}/Train")
    idle(page, timeout=60_000)
    form = page.locator(MAIN)
    form.locator("[data-testid='stSlider']", has_text="Learning rate").wait_for(timeout=30_000)
    sync_api.expect(form.locator("[role='radio'][aria-checked='true']")).to_have_count(1, timeout=30_000)
    assert _checked_presets(page) == ["deep"]

    # the address follows a form change, with nothing trained
    rate = form.locator("[data-testid='stSlider']", has_text="Learning rate").locator("input[type='range']")
    rate.focus()
    rate.press("ArrowRight")  # 0.0075 -> 0.01
    idle(page)
    assert _query(page) == {"hidden": "20,7,5", "lr": "0.01", "iterations": "2500", "init": "xavier", "seed": "1"}
    assert _checked_presets(page) == ["custom"]  # no longer every setting of deep
    assert form.locator("[data-testid='stAlert']:has-text('Finished')").count() == 0
    shot(page, "train_link_follows_the_form")

    # a preset click, then a second click on it: it stays chosen
    form.get_by_role("radio", name="deep").click()
    idle(page)
    assert _checked_presets(page) == ["deep"] and _query(page)["lr"] == "0.0075"
    form.get_by_role("radio", name="deep").click()
    idle(page)
    assert _checked_presets(page) == ["deep"]

    # a short run on the course's dataset, then an import: Last run still names the course's
    form.get_by_role("radio", name="two-layer").click()
    idle(page)
    iterations = form.locator("[data-testid='stSlider']", has_text="Iterations").locator("input[type='range']")
    iterations.focus()
    iterations.press("Home")  # 50
    idle(page)
    main_button(page, "Train").click()
    page.wait_for_selector(f"{MAIN} [data-testid='stAlert']:has-text('Finished')", timeout=120_000)
    idle(page)
    assert _query(page)["iterations"] == "50" and _query(page)["hidden"] == "7"
    archive = tmp_path / "pets.zip"
    archive.write_bytes(zip_bytes(photo_tree(12, 8, extra={"pets/cat/notes.txt": b"not a photo"}, top="pets")))
    page.get_by_role("button", name="Import your photos").click()
    page.locator("[data-testid='stPopoverBody'] [data-testid='stFileUploaderDropzoneInput']").set_input_files(
        str(archive))
    idle(page)
    page.locator("[data-testid='stPopoverBody'] button", has_text="Import").first.click()
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stAlert']", has_text="16 training photos").wait_for(timeout=60_000)
    idle(page)
    sync_api.expect(page.locator("[data-testid='stPopoverBody']")).to_have_count(0, timeout=10_000)  # closed
    assert sidebar.get_by_text("1 file(s) skipped").is_visible()
    heading = form.locator("h3", has_text="Last run").inner_text()
    assert heading == "Last run · on cat / non-cat (the course's)", heading
    assert "50 test images, each worth 2 %" in form.inner_text()
    shot(page, "train_last_run_after_import")

    main_button(page, "Train").click()  # the same settings on the 16 + 4 photos
    form.locator("h3", has_text="Last run · on pets").wait_for(timeout=120_000)
    idle(page)
    warning = form.locator("[data-testid='stAlert']", has_text="Only 4 test images").inner_text()
    assert "25 %" in warning, warning
    assert "on pets" in sidebar.inner_text()
    shot(page, "train_last_run_on_the_import")
    assert errors_on_page(page) == []
    assert console_errors == []
    page.close()
    assert browser.blocked == []


def test_step_walks_one_iteration(server, browser, sync_api):
    """The Step page in a real browser: forward, backward, update, each click drawing every layer's equations
    (KaTeX) and numbers; the deep net from seed 1 on all 209 images starts at the course's cost 0.771749 and
    the update lowers it to 0.697991; only the next phase's button can be clicked."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console_errors = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    page.goto(f"{server}/Step")
    idle(page, timeout=60_000)
    main = page.locator(MAIN)
    main.locator("h1", has_text="Step").first.wait_for(timeout=30_000)
    expect = sync_api.expect
    expect(main_button(page, "Backward")).to_be_disabled()

    def metric(label: str) -> str:
        return main.locator("[data-testid='stMetric']", has_text=label).first.locator(
            "[data-testid='stMetricValue']").inner_text()

    for phase, heading in (("Forward", "1 · Forward propagation, iteration 1"),
                           ("Backward", "2 · Backward propagation, iteration 1"),
                           ("Update", "3 · Update, iteration 1")):
        expect(main_button(page, phase)).to_be_enabled()
        main_button(page, phase).click()
        main.locator("h3", has_text=heading).first.wait_for(timeout=60_000)
        idle(page)
        expect(main_button(page, phase)).to_be_disabled()
        assert main.locator(".katex-display").count() >= 4 * 3, phase  # every layer: its equations and arrays
        assert metric("Cost before the update") == "0.771749"
        shot(page, f"step_{phase.lower()}")
    assert metric("Cost after the update") == "0.697991"
    assert "Iteration 1 done" in main.inner_text()
    expect(main_button(page, "Forward")).to_be_enabled()
    assert errors_on_page(page) == []
    assert console_errors == []
    page.close()
    assert browser.blocked == []
