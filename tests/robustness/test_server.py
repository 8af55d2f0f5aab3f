"""Item 5: the server defaults in .streamlit/config.toml, checked on a running server.

The server is started WITHOUT --server.address (and without any STREAMLIT_* variable), so the
project's config file is what is tested. The listening sockets are read from the kernel's table
(/proc/net/tcp, /proc/net/tcp6); the tests only ever connect to 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser_support import (
    MAIN,
    ROOT,
    chromium,
    errors_on_page,
    http_get,
    idle,
    main_button,
    require_playwright,
    streamlit_server,
)

CONFIG = ROOT / ".streamlit" / "config.toml"
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp*
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(data_dir):
    """`streamlit run dashboard.py --server.port PORT`: no --server.address, the config file decides."""
    with streamlit_server(data_dir, "server_defaults_streamlit.log", args=()) as (base, port, proc):
        yield base, port, proc


# --------------------------------------------------------------------------- the socket table
def _decode_address(hex_addr: str) -> str:
    """The local address of a /proc/net/tcp{,6} row: 32-bit words in the kernel's byte order."""
    raw = bytes.fromhex(hex_addr)
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    if sys.byteorder == "little":
        words = [w[::-1] for w in words]
    packed = b"".join(words)
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def listening_addresses(port: int) -> list[str]:
    """Every address a LISTEN socket on ``port`` is bound to, from /proc/net/tcp and /proc/net/tcp6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, port_hex = local.rsplit(":", 1)
            if state == LISTEN and int(port_hex, 16) == port:
                found.append(_decode_address(addr))
    return found


def test_the_socket_table_parser():
    """Rows as the kernel writes them on a little-endian machine (the parser's own check)."""
    if sys.byteorder != "little":
        pytest.skip("sample rows are little-endian")
    assert _decode_address("0100007F") == "127.0.0.1"
    assert _decode_address("00000000") == "0.0.0.0"
    assert _decode_address("00000000000000000000000001000000") == "::1"
    assert _decode_address("00000000000000000000000000000000") == "::"


def test_the_server_listens_on_loopback_only(server):
    _base, port, proc = server
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this system")
    addresses = listening_addresses(port)
    assert addresses, f"no LISTEN socket on port {port} in /proc/net/tcp{{,6}} (server pid {proc.pid})"
    for address in addresses:
        ip = ipaddress.ip_address(address)
        assert ip.is_loopback, f"port {port} is bound to {address}: reachable from other machines"
        assert not ip.is_unspecified
    assert set(addresses) <= {"127.0.0.1", "::1"}, addresses


# --------------------------------------------------------------------------- the running server
def test_xsrf_protection_is_on(server):
    base, _port, _proc = server
    with http_get(f"{base}/_stcore/health") as r:
        cookies = r.headers.get_all("Set-Cookie") or []
    assert any(c.startswith("_streamlit_xsrf=") for c in cookies), cookies
    # a state-changing request without the token is refused before anything else is looked at
    request = urllib.request.Request(f"{base}/_stcore/upload_file/some-session/some-file", data=b"x", method="PUT")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(request, timeout=5)
    assert err.value.code == 403


def test_cors_protection_is_on(server):
    """Another site's page cannot read the server's answers: no Access-Control-Allow-Origin for it."""
    base, _port, _proc = server
    request = urllib.request.Request(f"{base}/_stcore/health", headers={"Origin": "http://attacker.invalid"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as r:
        assert r.status == 200
        assert r.headers.get("Access-Control-Allow-Origin") is None, r.headers.get("Access-Control-Allow-Origin")


# --------------------------------------------------------------------------- the effective configuration
@pytest.fixture(scope="module")
def effective() -> dict:
    """Streamlit's own reading of the project's config: {option: (value, where defined)}, in a clean
    process (run from the project folder, no STREAMLIT_* variables)."""
    code = (
        "import json\n"
        "from streamlit import config\n"
        "config.get_config_options(force_reparse=True)\n"
        "keys = ['server.address', 'server.maxUploadSize', 'server.enableXsrfProtection', 'server.enableCORS',\n"
        "        'browser.gatherUsageStats', 'server.headless']\n"
        "print(json.dumps({k: [config.get_option(k), config.get_where_defined(k)] for k in keys}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_effective_configuration(effective):
    for key, (_value, where) in effective.items():
        assert Path(where).resolve() == CONFIG.resolve(), (key, where)  # set by the project, not a default
    values = {k: v for k, (v, _where) in effective.items()}
    max_mb = values["server.maxUploadSize"]
    assert values == {
        "server.address": "127.0.0.1",
        "server.maxUploadSize": max_mb,
        "server.enableXsrfProtection": True,
        "server.enableCORS": True,
        "browser.gatherUsageStats": False,
        "server.headless": True,
    }
    assert 1 <= max_mb <= 50  # modest: Streamlit's default is 200 MB


# --------------------------------------------------------------------------- the browser tests' guard
@pytest.mark.browser
def test_the_browser_helper_blocks_and_reports_requests_elsewhere():
    """tests/browser_support.chromium: a request to any address but 127.0.0.1 is blocked (it never
    leaves the machine), listed, and fails the ``with`` block."""
    sync_api = require_playwright()
    outside = "http://192.0.2.1/pixel.png"  # TEST-NET-1: documentation only, and never contacted here
    with pytest.raises(AssertionError, match="blocked") as info:
        with chromium(sync_api) as b:
            page = b.new_page()
            page.set_content(f"<img src='{outside}'>")  # waits for the load event: the image's request is done
            assert b.blocked == [outside]
    assert outside in str(info.value)


# --------------------------------------------------------------------------- uploads above the limit
@pytest.fixture(scope="module")
def browser(server):
    sync_api = require_playwright()
    with chromium(sync_api) as b:
        yield b


@pytest.mark.browser
@pytest.mark.slow
def test_an_upload_above_the_limit_is_refused(server, browser, effective, tmp_path):
    """In the browser (the uploader's own error, no verdict) and by the server itself (HTTP 413 for a
    request shaped exactly like the browser's upload, with its session and XSRF token)."""
    from skimage import data as skdata

    base, port, _proc = server
    max_mb = effective["server.maxUploadSize"][0]
    origin = f"http://127.0.0.1:{port}"
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # blocks all but 127.0.0.1
    uploads = []
    page = context.new_page()
    page.on("request", lambda r: uploads.append(r) if "/_stcore/upload_file/" in r.url and r.method == "PUT" else None)
    try:
        page.goto(f"{base}/Predict")
        idle(page, timeout=60_000)
        main_button(page, "Train the deep preset now").click()  # a model, to get verdicts
        page.wait_for_selector(f"{MAIN} :text('Model: deep')", timeout=300_000)
        idle(page)
        photos = page.locator(f"{MAIN} [data-testid='stFileUploaderDropzoneInput']").last

        # one byte over the limit: the uploader refuses it, nothing reaches the page
        big = tmp_path / "big.png"
        big.write_bytes((Path(skdata.data_dir) / "chelsea.png").read_bytes().ljust(max_mb * MB + 1, b"\0"))
        photos.set_input_files(str(big))
        error = page.locator(f"{MAIN} [data-testid='stFileUploader']", has_text="or smaller").last
        error.wait_for(timeout=30_000)
        assert re.search(rf"File must be {max_mb}(\.0)? ?MB or smaller", error.inner_text()), error.inner_text()
        idle(page)
        assert page.locator(f"{MAIN} :text('Verdict:')").count() == 0
        assert not uploads, [u.url for u in uploads]  # refused before sending

        # a photo under the limit works, through the same uploader
        page.locator(f"{MAIN} [data-testid='stFileUploader'] button[aria-label*='Remove']").first.click()
        idle(page)
        photos.set_input_files(str(Path(skdata.data_dir) / "chelsea.png"))
        page.wait_for_selector(f"{MAIN} :text('Verdict:')", timeout=60_000)
        idle(page)
        assert len(uploads) == 1 and uploads[0].response().status == 204
        assert errors_on_page(page) == []

        # the server enforces the limit itself: the browser's request, replayed with a bigger file
        sent = uploads[0]
        url = re.sub(r"/[^/]+$", "/catdnn-test-file", sent.url)
        headers = {"X-Xsrftoken": sent.headers["x-xsrftoken"], "Origin": origin}

        def put(size: int, with_token: bool = True) -> int:
            body = {"file": {"name": "photo.png", "mimeType": "image/png", "buffer": b"\0" * size}}
            answer = context.request.put(url, multipart=body, headers=headers if with_token else {})
            return answer.status

        assert put(1000) == 204  # the request's shape is right: a small file is accepted
        assert put(max_mb * MB + 1) == 413  # one byte over the limit: "File too large"
        assert put(1000, with_token=False) == 403  # and without the XSRF token, nothing at all
        assert browser.blocked == [], browser.blocked  # nothing left the machine
    finally:
        context.close()

