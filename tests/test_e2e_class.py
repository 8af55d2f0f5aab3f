"""A class and the public in a real browser: the server `catdnn serve` starts (its plan, on 127.0.0.1), driven
by Debian's headless Chromium, one browser context per person.

Class mode: the teacher opens the teacher link (the token then leaves the address); Ana and Bob join at the
student link with their names. Ana trains the deep preset briefly and submits her run to the board; the teacher
pauses, Bob's two-layer run waits and says so, the teacher resumes and it finishes; Bob submits too. Bob's Runs
page, his board form and his dataset list hold only his own work, also through a crafted link naming Ana's run,
and Ana's imported photos are not offered to him; a forged key, a forged teacher token and Bob on the Teacher page
are each refused with one sentence, no page under it and no traceback. The teacher sees both students online and
their runs, reveals the test accuracies (the board, hiding them before, then ranks by them) and exports the class's
CSV (a student column, dataset names, no server folder, no key or token). Too many forged keys meet the rate
limit, and a valid key still opens. The Train page's link to share holds no key. No page shows anyone a key or
token but their own, and the server's log holds none.

Public mode: two visitors each train; neither sees the other's run or the other's imported photos; a visitor's
reload with their ?key= (a new session) keeps their run; a forged key is refused.

Skipped when Chromium or Playwright is missing, unless CATDNN_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import secrets
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from catdnn import classroom
from catdnn.classroom import ClassStore
from catdnn.serve import app_dir, serve_plan
from tests.browser_support import (
    ARTIFACTS,
    LOCAL_BYPASS,
    MAIN,
    chromium,
    errors_on_page,
    free_port,
    full_screenshot,
    goto_page,
    idle,
    main_button,
    require_playwright,
    shut_down,
    wait_until_healthy,
)
from tests.photo_support import photo_tree, zip_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The deep preset, shortened: the slider's first two steps.
ITERATIONS = 100


@pytest.fixture(scope="module")
def sync_api():
    return require_playwright()


@pytest.fixture(scope="module")
def browser(sync_api):
    with chromium(sync_api) as b:
        yield b


@contextlib.contextmanager
def served(home: Path, data_dir, log_name: str, class_name: str | None = None):
    """The server ``catdnn serve --class NAME`` (``--public`` without a name) starts, on 127.0.0.1 and a free port,
    with its own catdnn folder ``home``; yields ``(plan, log path)``. Always shut down; its whole output (Streamlit's
    at its default log level, the app's) goes to artifacts/LOG_NAME."""
    ARTIFACTS.mkdir(exist_ok=True)
    with ClassStore(home / classroom.FILE_NAME) as store:
        plan = serve_plan(class_name, public=class_name is None, address="127.0.0.1", port=free_port(), store=store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(LOCAL_BYPASS, **plan.env, CATDNN_HOME=str(home), CATDNN_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    cmd = [*plan.command[:-1], "--server.fileWatcherType", "none", plan.command[-1]]  # the script comes last
    log_path = ARTIFACTS / log_name
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=app_dir(), env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_healthy(proc, plan.url.rstrip("/"), log_path, timeout=90)
            try:
                yield plan, log_path
            except BaseException:  # each person's page as it was, while the server still runs
                for p in PEOPLE:
                    with contextlib.suppress(Exception):
                        p.shot(f"failure_{p.name.replace(' ', '_')}")
                raise
        finally:
            shut_down(proc)


#: Everyone a test opened a browser for: on a failure each one's page goes to artifacts/ (:func:`served`).
PEOPLE: list[Person] = []


class Person:
    """One person's browser context and page, and every text their pages showed (to check for others' secrets)."""

    def __init__(self, browser, name: str):
        PEOPLE.append(self)
        self.name = name
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.shown: list[str] = []
        self.secret = ""  # their own key or token

    def open(self, url: str, heading: str = "") -> None:
        self.page.goto(url)
        self.page.wait_for_selector(f"{MAIN} h1" + (f":has-text('{heading}')" if heading else ""), timeout=120_000)
        idle(self.page)
        self.look()

    def go(self, title: str) -> None:
        goto_page(self.page, title)
        self.look()

    def look(self) -> str:
        """What the page shows now (the whole body: sidebar, main area, alerts); also kept in ``shown``."""
        text = self.page.locator("body").inner_text()
        self.shown.append(text)
        assert errors_on_page(self.page) == [], (self.name, errors_on_page(self.page))
        assert "Traceback" not in text, (self.name, text[:2000])
        return text

    def main(self) -> str:
        return self.page.locator(MAIN).inner_text()

    def wait_text(self, text: str) -> None:
        """Wait until the main area shows ``text`` (a code block, say, draws a moment after the script ends)."""
        self.page.locator(MAIN, has_text=text).wait_for(timeout=30_000)

    def shot(self, name: str) -> None:
        full_screenshot(self.page, ARTIFACTS / f"e2e_class_{name}.png")


@pytest.fixture(autouse=True)
def _forget_people():
    PEOPLE.clear()
    yield
    PEOPLE.clear()


def key_of(page) -> str:
    return parse_qs(urlsplit(page.url).query).get("key", [""])[0]


def join(browser, student_url: str, name: str) -> Person:
    """A student opens the student link in a browser of their own and joins with ``name``."""
    p = Person(browser, name)
    p.open(student_url, "Join the class")
    p.page.get_by_role("textbox", name="Your name").fill(name)
    p.page.locator(f"{MAIN} button", has_text="Join").click()
    p.page.locator(MAIN, has_text="Bookmark this page's address").wait_for(timeout=60_000)
    idle(p.page)
    p.secret = key_of(p.page)
    assert len(p.secret) >= 22, p.page.url  # 128 bits, URL-safe
    assert f"You joined as {name}" in p.look()
    return p


def start_training(p: Person, preset: str = "deep", iterations: int = ITERATIONS) -> None:
    """On the Train page: ``preset``, with ``iterations`` (the slider's first steps; none moved for the preset's
    own), Train pressed. The link the page offers to share holds these settings and not the person's key."""
    p.go("Train")
    p.page.locator(MAIN).get_by_role("radio", name=preset).click()
    idle(p.page)
    slider = p.page.locator(f"{MAIN} [data-testid='stSlider']", has_text="Iterations").locator("input[type='range']")
    if slider.input_value() != str(iterations):
        slider.focus()
        slider.press("Home")
        idle(p.page)
        while int(slider.input_value()) < iterations:
            slider.press("ArrowRight")
            idle(p.page)
    assert slider.input_value() == str(iterations)
    share = p.page.locator(f"{MAIN} [data-testid='stCode']", has_text="iterations=").first.inner_text()
    assert f"iterations={iterations}" in share and "key=" not in share and p.secret not in share, share
    main_button(p.page, "Train").click()


def train(p: Person) -> str:
    """:func:`start_training` (the deep preset, briefly), then its result's sentence."""
    start_training(p)
    return finished(p)


def finished(p: Person, iterations: int = ITERATIONS) -> str:
    alert = p.page.locator(f"{MAIN} [data-testid='stAlert']", has_text="Finished").first
    alert.wait_for(timeout=300_000)
    idle(p.page)
    text = alert.inner_text()
    assert f"{iterations:,} iterations" in text, text
    p.look()
    return text


def submit(p: Person, run_id: int) -> None:
    """On the Class board: submit the run the form offers first (it must be ``run_id``) and wait for its score."""
    p.go("Class board")
    assert options(p, p.page.locator(MAIN), "Your run")[0].startswith(f"#{run_id} ")
    main_button(p.page, "Submit to the board").click()
    p.page.locator(f"{MAIN} [data-testid='stAlert']", has_text=f"Run {run_id} is on the board").wait_for(
        timeout=300_000)
    idle(p.page)
    p.look()


def board(p: Person) -> list[dict]:
    """The Class board's table as this person sees it (its columns in view), one dict a row, in rank order."""
    p.go("Class board")
    grid = p.page.locator(f"{MAIN} [data-testid='stDataFrame']").first
    grid.locator("table tbody tr").first.wait_for(state="attached", timeout=30_000)  # the grid's accessible copy
    table = grid.evaluate("""e => { const t = e.querySelector('table');
        return {head: [...t.querySelectorAll('thead th')].map(x => x.textContent),
                rows: [...t.querySelectorAll('tbody tr')].map(
                    r => [...r.querySelectorAll('td')].map(x => x.textContent))};
        }""")
    return [dict(zip(table["head"], row)) for row in table["rows"]]


def run_ids(p: Person) -> set[int]:
    """The run numbers the Runs page offers this person (its "Runs to compare" choice: every run it lists)."""
    p.go("Runs")
    chosen = p.page.locator(f"{MAIN} [data-testid='stMultiSelect']", has_text="Runs to compare")
    chosen.wait_for(timeout=30_000)
    return {int(n) for n in re.findall(r"#(\d+)", chosen.inner_text())}


def options(p: Person, where, label: str, kind: str = "stSelectbox") -> list[str]:
    """The options a selectbox (or a multiselect: ``kind="stMultiSelect"``) labelled ``label`` inside ``where``
    offers to choose: its list opened, read and closed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    widget = where.locator(f"[data-testid='{kind}']", has_text=label).first
    opener = widget.locator("button[aria-label='Open']")
    field = widget.locator("[role='combobox']")
    (opener if opener.count() else field).click()
    listbox = p.page.locator("[role='listbox']")
    try:
        listbox.first.wait_for(timeout=3_000)
    except PlaywrightTimeout:
        field.press("ArrowDown")  # the keyboard's way to open the list
        listbox.first.wait_for(timeout=10_000)
    try:  # the list's options render a moment after the list itself (once seen empty on a busy machine)
        listbox.first.locator("[role='option']").first.wait_for(timeout=10_000)
    except PlaywrightTimeout:
        pass  # a list with no options: read as empty
    items = listbox.first.locator("[role='option']").all_inner_texts()
    p.page.keyboard.press("Escape")
    listbox.first.wait_for(state="detached", timeout=10_000)
    return items


def refused(browser, url: str, sentence: str, shot: str = "") -> str:
    """A fresh browser opens ``url`` and is refused with ``sentence``: one alert, no traceback, no page (the
    screenshot artifacts/e2e_class_SHOT.png when given)."""
    p = Person(browser, "stranger")
    try:
        p.page.goto(url)
        alert = p.page.locator(f"{MAIN} [data-testid='stAlert']", has_text=sentence).first
        alert.wait_for(timeout=60_000)
        idle(p.page)
        text = p.look()
        assert p.errors == []
        assert p.page.locator(f"{MAIN} h1").count() == 0, text[:500]  # no page under the refusal
        if shot:
            p.shot(shot)
        return text
    finally:
        p.context.close()


def import_photos(p: Person, folder: Path, name: str) -> None:
    """``p`` imports a zip of real photos (``name``/cat, ``name``/non-cat) from the sidebar; it is offered to them."""
    archive = folder / f"{name}.zip"
    archive.write_bytes(zip_bytes(photo_tree(12, 8, top=name)))
    p.page.get_by_role("button", name="Import your photos").click()
    p.page.locator("[data-testid='stPopoverBody'] [data-testid='stFileUploaderDropzoneInput']").set_input_files(
        str(archive))
    idle(p.page)
    p.page.locator("[data-testid='stPopoverBody'] button", has_text="Import").first.click()
    sidebar = p.page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stAlert']", has_text="training photos").wait_for(timeout=60_000)
    idle(p.page)
    assert offers_photos(p, name)


def offers_photos(p: Person, name: str) -> bool:
    """Whether the sidebar offers ``p`` the dataset ``name`` (to pick, or to delete)."""
    p.go("Runs")
    sidebar = p.page.locator("[data-testid='stSidebar']")
    listed = any(name in o for o in options(p, sidebar, "Dataset"))
    deletable = sidebar.get_by_role("button", name="Delete a dataset").count() > 0
    assert deletable == listed  # one's own upload is the only kind a student or a visitor may delete
    return listed


def never_shows_others_secrets(people: list[Person]) -> None:
    for p in people:
        for other in people:
            if other is not p and other.secret:
                leaks = [t[:300] for t in p.shown if other.secret in t]
                assert leaks == [], f"{p.name}'s pages showed {other.name}'s secret: {leaks}"


def test_a_teacher_and_two_students_in_their_own_browsers(tmp_path, data_dir, browser):
    with served(tmp_path, data_dir, "e2e_class_server.log", class_name="Period 3") as (plan, log_path):
        base = plan.url.rstrip("/")
        token = parse_qs(urlsplit(plan.teacher_url).query)["teacher"][0]

        teacher = Person(browser, "teacher")
        teacher.secret = token
        teacher.open(plan.teacher_url)
        assert "Join the class" not in teacher.main()
        assert token not in teacher.page.url  # once checked, the token leaves the address (a projected screen)
        teacher.go("Teacher")
        teacher.wait_text(plan.student_url)
        assert "0 students joined" in teacher.main()
        teacher.shot("teacher_empty")

        ana = join(browser, plan.student_url, "Ana")
        bob = join(browser, plan.student_url, "Bob")
        assert ana.secret != bob.secret
        people = [teacher, ana, bob]

        # Ana trains and submits her run to the board
        assert "Finished" in train(ana)
        (ana_run,) = run_ids(ana)
        submit(ana, ana_run)
        ana.shot("board_submitted")

        # the teacher pauses: Bob's training waits, and says so; on resume it finishes
        teacher.go("Teacher")
        main_button(teacher.page, "Pause training for everyone").click()
        main_button(teacher.page, "Resume training for everyone").wait_for(timeout=30_000)
        idle(teacher.page)
        start_training(bob, "two-layer", 2500)  # the course's two-layer net (0.72 test): better than Ana's
        bob.page.locator(f"{MAIN} [data-testid='stProgress']", has_text="Training is paused on this server").wait_for(
            timeout=60_000)
        bob.shot("train_paused")
        main_button(teacher.page, "Refresh").click()
        idle(teacher.page)
        teacher.page.locator(MAIN, has_text=re.compile(r"Training and queued: 1 · paused")).wait_for(timeout=30_000)
        teacher.look()
        teacher.shot("teacher_paused")
        main_button(teacher.page, "Resume training for everyone").click()
        main_button(teacher.page, "Pause training for everyone").wait_for(timeout=30_000)
        idle(teacher.page)
        finished(bob, 2500)

        # Bob sees only his own run, also through a crafted link naming Ana's
        (bob_run,) = run_ids(bob)
        assert bob_run != ana_run
        assert "They are yours alone" in bob.main()
        bob.open(f"{base}/Runs?key={bob.secret}&run={ana_run}&id={ana_run}", "Runs")
        chosen = bob.page.locator(f"{MAIN} [data-testid='stMultiSelect']", has_text="Runs to compare")
        assert re.findall(r"#(\d+)", chosen.inner_text()) == [str(bob_run)]
        reload_choice = options(bob, bob.page.locator(MAIN), "Use a chosen run's model")
        assert all(not o.startswith(f"#{ana_run} ") for o in reload_choice), reload_choice
        # … and on the board he may submit only his own; the board shows both, with no test accuracy yet
        bob.go("Class board")
        mine = options(bob, bob.page.locator(MAIN), "Your run")
        assert [o.split()[0] for o in mine] == [f"#{bob_run}"], mine
        submit(bob, bob_run)
        before = board(bob)
        assert sorted(r["name"] for r in before) == ["Ana", "Bob (you)"], before
        assert all("test accuracy" not in r and r["validation score"] for r in before), before
        bob.shot("board_bob")

        # refusals: a forged key, a forged teacher token, a student on the Teacher page
        refused(browser, f"{base}/?key={secrets.token_urlsafe(16)}", "key is not known here", "forged_key")
        refused(browser, f"{base}/Runs?key={secrets.token_urlsafe(16)}", "key is not known here")
        refused(browser, f"{base}/?teacher={secrets.token_urlsafe(32)}", "teacher link is not valid", "forged_token")
        bob.go("Teacher")
        assert "This page is the teacher's" in bob.main()
        assert "Pause training" not in bob.main() and "Export" not in bob.main()
        bob.shot("teacher_page_for_bob")

        # the teacher: both students online, both runs, the reveal, the export
        teacher.go("Teacher")
        main = teacher.main()
        assert "2 students joined" in main and "Online (seen in the last minute): 2" in main, main
        listed = options(teacher, teacher.page.locator(MAIN), "Runs to delete", "stMultiSelect")
        assert sorted(o.split(":")[0] for o in listed if o != "Select all") == ["Ana", "Bob"], listed
        main_button(teacher.page, "Reveal the test accuracies on the board").click()
        main_button(teacher.page, "Hide the test accuracies again").wait_for(timeout=30_000)
        idle(teacher.page)
        assert "The board shows the test accuracies and ranks by them." in teacher.look()
        with teacher.page.expect_download() as download:
            teacher.page.locator(f"{MAIN} [data-testid='stDownloadButton'] button").click()
        exported = Path(download.value.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(exported)))
        assert sorted((r["id"], r["student"]) for r in rows) == sorted([(str(ana_run), "Ana"), (str(bob_run), "Bob")])
        assert {r["dataset"] for r in rows} == {"cat / non-cat (the course's)"}, rows  # its name, not a folder
        for secret in (token, ana.secret, bob.secret, str(tmp_path), str(data_dir)):
            assert secret not in exported
        teacher.shot("teacher_revealed")
        revealed = board(ana)  # ranked by the test accuracies now: Bob's two-layer net first
        assert "The test accuracies are revealed" in ana.main()
        assert [(r["rank"], r["name"], r["test accuracy"]) for r in revealed] == [
            ("1", "Bob", "72.0%"), ("2", "Ana (you)", "34.0%")], revealed
        ana.shot("board_revealed")

        # Ana's photos are hers: Bob's dataset list does not offer them
        import_photos(ana, tmp_path, "anas-pets")
        assert not offers_photos(bob, "anas-pets")

        # too many forged keys from one address meet the rate limit; a valid key still opens
        # (the limit counts a minute's misses: on a loaded machine a page load takes seconds, so try until it bites)
        stranger = Person(browser, "stranger")
        for _ in range(3 * classroom.FAILURES_PER_CLIENT):
            stranger.page.goto(f"{base}/?key={secrets.token_urlsafe(16)}")
            alert = stranger.page.locator(f"{MAIN} [data-testid='stAlert']").first
            alert.wait_for(timeout=60_000)
            if "Too many" in alert.inner_text():
                break
        limited = stranger.look()
        assert re.search(r"Too many attempts: wait \d+ s and try again", limited), limited[:1000]
        assert stranger.page.locator(f"{MAIN} h1").count() == 0
        stranger.shot("rate_limited")
        stranger.context.close()
        ana.open(f"{base}/Runs?key={ana.secret}", "Runs")
        assert ana_run in run_ids(ana)

        never_shows_others_secrets(people)
        assert all(p.errors == [] for p in people), [p.errors for p in people]
    log = log_path.read_text(errors="replace")
    assert "You can now view your Streamlit app" in log
    for who, secret in (("the teacher's token", token), ("Ana's key", ana.secret), ("Bob's key", bob.secret)):
        assert secret not in log, f"the server's log holds {who}"


def test_two_public_visitors_each_see_only_their_own(tmp_path, data_dir, browser):
    with served(tmp_path, data_dir, "e2e_public_server.log") as (plan, log_path):
        base = plan.url.rstrip("/")
        visitors = []
        for name in ("first visitor", "second visitor"):
            v = Person(browser, name)
            v.open(plan.url)
            assert "Bookmark this page's address" in v.look()
            v.secret = key_of(v.page)
            assert len(v.secret) >= 22, v.page.url
            visitors.append(v)
        first, second = visitors
        assert first.secret != second.secret
        train(first)
        train(second)
        (first_run,), (second_run,) = run_ids(first), run_ids(second)
        assert first_run != second_run
        second.open(f"{base}/Runs?key={second.secret}&run={first_run}", "Runs")
        assert run_ids(second) == {second_run}
        # a reload with the key (a new session: another tab, a bookmark) keeps the visitor's run
        again = Person(browser, "first visitor again")
        again.secret = first.secret
        again.open(f"{base}/Runs?key={first.secret}", "Runs")
        assert run_ids(again) == {first_run}
        assert "Join the class" not in again.main()
        import_photos(first, tmp_path, "visitors-pets")  # and the first visitor's photos are theirs alone
        assert not offers_photos(second, "visitors-pets")
        refused(browser, f"{base}/?key={secrets.token_urlsafe(16)}", "key is not known here")
        first.shot("public_runs")
        never_shows_others_secrets(visitors)
        assert all(v.errors == [] for v in visitors + [again])
    log = log_path.read_text(errors="replace")
    assert "You can now view your Streamlit app" in log
    assert first.secret not in log and second.secret not in log
