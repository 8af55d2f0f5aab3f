"""Shared by the real-server tests: start `streamlit run dashboard.py` on 127.0.0.1, drive Debian's
Chromium with Playwright, and the page helpers (the app's pages and their URLs, wait for the script to
go idle, sidebar navigation, what the navigation showed while a page loaded, stop a run).

Plain functions and context managers, not fixtures: each test module wraps them in its own fixtures.
Nothing here connects to any address other than 127.0.0.1, and every page opened through
:func:`chromium` is held to that: any request to another address is blocked and listed, and the
browser's ``with`` block fails if the list is not empty (SECURITY.md, "Nothing leaves the machine").
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
MAIN = "[data-testid='stMain']"
LOCAL_BYPASS = {"no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
HOME_TITLE = "catdnn: cat or not cat?"


def sidebar_pages() -> list[tuple[str, str, str]]:
    """``(sidebar label, URL path, page title)`` of every page, in sidebar order: the entry script, then
    the scripts in pages/ by number prefix, as Streamlit's folder mode names them ("3_Inside_the_network.py"
    -> label "Inside the network", URL path "Inside_the_network")."""
    scripts = sorted((ROOT / "pages").glob("*.py"), key=lambda p: int(p.name.split("_")[0]))
    pages = [("dashboard", "", HOME_TITLE)]
    for script in scripts:
        path = script.stem.split("_", 1)[1]
        pages.append((path.replace("_", " "), path, path.replace("_", " ")))
    return pages


#: Recorded from the very first paint (a context's init script): every distinct state of the
#: navigation links and of the main area's h1 titles, in ``window.__catdnnNav``.
NAV_RECORDER = """
(() => {
  const seen = [];
  window.__catdnnNav = seen;
  let last = null;
  const record = () => {
    const texts = (selector) => [...document.querySelectorAll(selector)].map((e) => e.innerText.trim());
    const state = {links: texts("[data-testid*='Nav'] a"), titles: texts("[data-testid='stMain'] h1")};
    const key = JSON.stringify(state);
    if (key !== last) { last = key; seen.push(state); }
  };
  new MutationObserver(record).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""


def nav_history(page) -> list[dict]:
    """What the page showed since it started loading (needs NAV_RECORDER): ``[{"links": [...], "titles": [...]}]``."""
    return page.evaluate("() => window.__catdnnNav || []")


def unavailable(reason: str):
    """Skip, or fail when CATDNN_REQUIRE_BROWSER=1 (as in CI)."""
    if os.environ.get("CATDNN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CATDNN_REQUIRE_BROWSER=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def require_playwright():
    """Playwright's sync API, once Chromium and the package are known to be there."""
    if not Path(CHROMIUM).is_file() or not os.access(CHROMIUM, os.X_OK):
        unavailable(f"Chromium not found at {CHROMIUM} (install Debian's `chromium` package)")
    try:
        from playwright import sync_api
    except ImportError:
        unavailable("the Python package `playwright` is not installed (pip install playwright)")
    return sync_api


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0):
    """GET a URL on 127.0.0.1 without any proxy from the environment."""
    assert url.startswith("http://127.0.0.1:"), url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(url, timeout=timeout)


@contextlib.contextmanager
def streamlit_server(data_dir, log_name: str, args=("--server.address", "127.0.0.1"), port: int | None = None):
    """Run `streamlit run dashboard.py --server.port PORT *args`; yields ``(base_url, port, process)``.

    Waits (at most 60 s) for http://127.0.0.1:PORT/_stcore/health; the server is always shut down.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    port = port or free_port()
    # only the project's config file and ``args`` configure the server (no STREAMLIT_* from outside)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(LOCAL_BYPASS, CATDNN_DATA_DIR=str(data_dir))
    log_path = ARTIFACTS / log_name
    cmd = [
        sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
        "--server.headless", "true", "--server.fileWatcherType", "none", *args,
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(proc, base, log_path)
            yield base, port, proc
        finally:
            shut_down(proc)


def wait_until_healthy(proc, base: str, log_path, timeout: float = 60) -> None:
    """Wait (at most ``timeout`` s) until the Streamlit server ``proc`` answers ``base``/_stcore/health; fails the
    test, naming its log, if it exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with code {proc.returncode}; see {log_path}")
        try:
            with http_get(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"streamlit did not become healthy within {timeout:g} s; see {log_path}")
        time.sleep(0.3)


def shut_down(proc) -> None:
    """Stop a server this test started (terminate, then kill after 15 s)."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def is_local(url: str) -> bool:
    """A request the tests allow: to 127.0.0.1 (any port), or a data: / blob: URL inside the page."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob") or (parts.scheme in ("http", "https", "ws", "wss")
                                                and parts.hostname == "127.0.0.1")


class LocalOnlyBrowser:
    """A Playwright ``Browser`` whose every context blocks, and lists in ``blocked``, any request that
    is not addressed to 127.0.0.1. ``new_context`` and ``new_page`` take Playwright's arguments."""

    def __init__(self, browser):
        self.browser = browser
        self.blocked: list[str] = []

    def _route(self, route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def new_context(self, **kwargs):
        context = self.browser.new_context(**kwargs)
        context.route("**/*", self._route)
        return context

    def new_page(self, **kwargs):
        """A page in a context of its own (``page.context``), as ``Browser.new_page`` gives."""
        return self.new_context(**kwargs).new_page()


@contextlib.contextmanager
def chromium(sync_api):
    """A headless Debian Chromium driven by Playwright, as a :class:`LocalOnlyBrowser`; closed afterwards.

    Fails (after a body that did not fail itself) if any page asked for an address other than 127.0.0.1.
    """
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        guarded = LocalOnlyBrowser(b)
        try:
            yield guarded
        finally:
            b.close()
    assert guarded.blocked == [], f"requests to other addresses than 127.0.0.1 (blocked): {guarded.blocked}"


def idle(page, timeout=120_000):
    """Wait until the script has finished its run (give the rerun a moment to start first)."""
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=timeout)


def goto_page(page, title: str) -> None:
    """Navigate with the sidebar link (keeps the session, unlike a new URL)."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.wait_for_selector(f"{MAIN} h1:has-text('{title}')", timeout=30_000)
    idle(page)


def main_button(page, text: str):
    return page.locator(f"{MAIN} button", has_text=re.compile(rf"{re.escape(text)}\s*$")).first


def stop_run(page, iterations: int) -> int:
    """Click the Train page's Stop during a run, wait for the page to settle, and check it says the run
    stopped midway with its partial model kept; returns how many iterations were done."""
    main_button(page, "Stop").click()  # .first: a stale copy of the button may linger in the DOM
    page.locator(f"{MAIN} [data-testid='stAlert']", has_text=re.compile("Stopped|Finished")).first.wait_for(
        timeout=60_000
    )
    idle(page)
    stopped = page.locator(f"{MAIN} [data-testid='stAlert']").first.inner_text()
    m = re.search(rf"Stopped after ([\d,]+) of {iterations:,} iterations: the partial model is kept", stopped)
    assert m, stopped
    done = int(m.group(1).replace(",", ""))
    assert 0 < done < iterations, (done, iterations)
    return done


def full_screenshot(page, path) -> None:
    """Save the whole page to ``path``: Streamlit scrolls inside the app, so grow the viewport to the content."""
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]')]"
        ".map(e => e.scrollHeight), window.innerHeight)"
    )
    page.set_viewport_size({"width": size["width"], "height": min(int(height), 8000)})
    page.wait_for_timeout(400)
    try:
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)


def errors_on_page(page) -> list[str]:
    """Tracebacks / exceptions Streamlit would show to the user."""
    return page.locator("[data-testid='stException']").all_inner_texts()
