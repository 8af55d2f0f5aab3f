"""DNS rebinding: a page on a foreign name that resolves to 127.0.0.1 must not be able to drive the app.

A real `streamlit run dashboard.py` on 127.0.0.1 and Debian's Chromium told to resolve
``evil.example.com`` to 127.0.0.1 (``--host-resolver-rules``): exactly what a rebinding attacker's
page gets. The browser then sends ``Host: evil.example.com:PORT`` and a matching ``Origin``, which
Streamlit's own XSRF and Origin checks accept. Every page must refuse before doing anything, say how
to allow a host on purpose, and the normal path (http://127.0.0.1:PORT) must still work. With the
host listed in ``CATDNN_ALLOWED_HOSTS`` (a teacher serving a class) the page works.

Nothing here leaves the machine: the foreign name is mapped to 127.0.0.1 inside Chromium, and every
request to any other address is blocked and fails the test.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, MAIN, idle, require_playwright, streamlit_server

EVIL = "evil.example.com"
REFUSAL = "only answers on this machine's own addresses"


@pytest.fixture(scope="module")
def sync_api():
    return require_playwright()


def _browser(pw, port):
    """Chromium that resolves EVIL to 127.0.0.1 and lets through only requests to this server."""
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1", "--no-proxy-server"]
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
    blocked = []

    def route(r):
        parts = urlsplit(r.request.url)
        if parts.scheme in ("data", "blob") or (parts.hostname in (EVIL, "127.0.0.1") and parts.port == port):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context = browser.new_context()
    context.route("**/*", route)
    return browser, context, blocked


def _open(context, url):
    page = context.new_page()
    page.goto(url)
    idle(page)
    # the Train page writes its settings into the link once it is drawn: wait until that answer is in too
    page.locator(f"{MAIN} [data-testid='stAlert'], {MAIN} button").first.wait_for(timeout=60_000)
    idle(page)
    return page


@pytest.mark.browser
def test_a_foreign_host_is_refused_on_every_page_and_localhost_still_works(sync_api, data_dir, monkeypatch):
    monkeypatch.delenv("CATDNN_ALLOWED_HOSTS", raising=False)
    with streamlit_server(data_dir, "dns_rebinding_streamlit.log") as (base, port, _proc), \
            sync_api.sync_playwright() as pw:
        browser, context, blocked = _browser(pw, port)
        try:
            for path in ("", "Train", "Predict"):
                page = _open(context, f"http://{EVIL}:{port}/{path}")
                main = page.locator(MAIN)
                assert REFUSAL in main.inner_text(), path
                assert f"{EVIL}:{port}" in main.inner_text()  # says which name was used
                assert "CATDNN_ALLOWED_HOSTS" in main.inner_text()  # and how to allow one on purpose
                assert main.get_by_role("button", name="Train").count() == 0  # nothing to drive
                assert page.locator("[data-testid='stFileUploader']").count() == 0
                page.close()
            page = _open(context, f"{base}/Train")  # the normal path
            assert REFUSAL not in page.locator(MAIN).inner_text()
            page.locator(MAIN).get_by_role("button", name="Train").wait_for(timeout=60_000)
            assert page.locator(MAIN).get_by_role("button", name="Train").count() == 1
        finally:
            browser.close()
    assert blocked == [], blocked


@pytest.mark.browser
def test_a_host_the_teacher_lists_is_allowed(sync_api, data_dir, monkeypatch):
    monkeypatch.setenv("CATDNN_ALLOWED_HOSTS", f"classroom.example, {EVIL}")
    with streamlit_server(data_dir, "dns_allowed_streamlit.log") as (_base, port, _proc), \
            sync_api.sync_playwright() as pw:
        browser, context, blocked = _browser(pw, port)
        try:
            page = _open(context, f"http://{EVIL}:{port}/Train")
            assert REFUSAL not in page.locator(MAIN).inner_text()
            page.locator(MAIN).get_by_role("button", name="Train").wait_for(timeout=60_000)
            assert page.locator(MAIN).get_by_role("button", name="Train").count() == 1
        finally:
            browser.close()
    assert blocked == [], blocked
