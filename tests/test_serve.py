"""``python -m catdnn serve``: a class's (or the public's) server, its links, TLS, the plain warning, the QR code.

The dry runs check what would start; one real server starts on 127.0.0.1 (plain, then with TLS from a
certificate made here by openssl) and answers HTTP requests, and is stopped. Nothing reaches the internet.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from xml.etree import ElementTree

import pytest

from catdnn import classroom, cli
from catdnn.classroom import ClassStore, JoinRefused
from catdnn.errors import CatdnnError
from catdnn.serve import CLASS_URL_ENV, qr_svg, serve_plan
from tests.browser_support import LOCAL_BYPASS, ROOT, free_port


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDNN_HOME", str(tmp_path))
    return tmp_path


def serve(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["serve", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def links(out: str) -> tuple[str, str]:
    student = re.search(r"^student link.*: (\S+)$", out, re.M).group(1)
    teacher = re.search(r"^teacher link.*: (\S+)$", out, re.M).group(1)
    return student, teacher


def started(home, name="Period 3") -> tuple[str, str]:
    """A class started as `catdnn serve` starts it (without starting the server): (its code, the teacher's token)."""
    with ClassStore(home / classroom.FILE_NAME) as store:
        plan = serve_plan(name, address="127.0.0.1", store=store)
    return plan.class_code, plan.teacher_url.rsplit("=", 1)[1]


def test_dry_run_prints_the_student_link_the_command_and_the_plain_warning(home, capsys):
    class_code, token = started(home)
    code, out, err = serve(capsys, "--class", "Period 3", "--address", "127.0.0.1", "--port", "8611", "--dry-run")
    assert code == 0
    student = re.search(r"^student link.*: (\S+)$", out, re.M).group(1)
    assert student == f"http://127.0.0.1:8611/?join={class_code}"
    assert "teacher link: printed when the server starts" in out and "?teacher=" not in out
    command = out.split("server command: ", 1)[1]
    for part in ("CATDNN_MODE=class", f"CATDNN_CLASS={class_code}", "CATDNN_ALLOWED_HOSTS=127.0.0.1",
                 f"{CLASS_URL_ENV}={student}", "--server.address 127.0.0.1", "--server.port 8611", "streamlit run"):
        assert part in command, part
    assert token not in out + err
    assert "unencrypted" in err and "--cert FILE --key FILE" in err
    assert "Traceback" not in out + err


def test_serve_dry_run_starts_nothing_and_revokes_nothing(home, capsys):
    """Attack review: `serve --dry-run` ("start nothing") gave the running class a new teacher token, so the
    teacher's link stopped working for every new tab."""
    class_code, token = started(home)
    assert cli.main(["serve", "--class", "Period 3", "--address", "127.0.0.1", "--dry-run"]) == 0
    capsys.readouterr()
    with ClassStore(home / classroom.FILE_NAME) as store:
        assert store.teacher(class_code, token).role == "teacher"  # the running class's link still works


def test_a_dry_run_for_a_new_class_makes_no_class_and_no_store(home, capsys):
    code, out, err = serve(capsys, "--class", "Period 9", "--dry-run")
    assert code == 0 and "'Period 9' is new" in out and "?join=" not in out and "?teacher=" not in out
    assert not (home / classroom.FILE_NAME).exists()
    started(home, "Period 3")  # with a store, a dry run for another class adds nothing to it
    serve(capsys, "--class", "Period 9", "--dry-run")
    with ClassStore(home / classroom.FILE_NAME) as store:
        assert store.class_named("Period 9") is None and store.class_named("Period 3") is not None


def test_every_serve_gives_a_new_teacher_link_and_keeps_the_class(home):
    (c1, t1), (c2, t2) = started(home), started(home)
    assert c1 == c2 and t1 != t2
    with ClassStore(home / classroom.FILE_NAME) as store, pytest.raises(JoinRefused):
        store.teacher(c1, t1)


def test_public_dry_run_has_no_teacher_and_answers_to_the_given_host(home, capsys):
    code, out, err = serve(capsys, "--public", "--address", "0.0.0.0", "--host", "cats.example.org", "--dry-run")
    assert code == 0 and "teacher" not in out and "CATDNN_MODE=public" in out
    assert re.search(r"CATDNN_ALLOWED_HOSTS=\S*cats\.example\.org", out)
    assert "--server.address 0.0.0.0" in out and "http://0.0.0.0" not in out  # the link names the LAN address
    assert "unencrypted" in err


def make_certificate(folder):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate (Debian's openssl package)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_tls_options_go_to_streamlit_and_the_links_are_https(home, capsys, tmp_path):
    cert, key = make_certificate(tmp_path)
    started(home, "P")
    code, out, err = serve(capsys, "--class", "P", "--address", "127.0.0.1", "--cert", str(cert), "--key", str(key),
                           "--dry-run")
    assert code == 0 and "unencrypted" not in err
    assert re.search(r"^student link.*: https://127\.0\.0\.1:8501/\?join=", out, re.M)
    assert f"--server.sslCertFile {cert}" in out and f"--server.sslKeyFile {key}" in out


@pytest.mark.parametrize("argv, message", [
    (["--class", "P", "--cert", "c.pem"], "both --cert"),
    (["--class", "P", "--cert", "missing.pem", "--key", "missing.key"], "no such file"),
    (["--class", "P", "--port", "0"], "65535"),
    (["--class", "P", "--scheduler", "tls://10.0.0.5:8786"], "TLS scheduler"),
    (["--class", "x" * 81], "1 to 80 characters"),
])
def test_impossible_options_are_refused_in_one_line(home, capsys, argv, message):
    code, out, err = serve(capsys, *argv, "--dry-run")
    assert code == 1 and err.startswith("error: ") and message in err and "Traceback" not in err


def test_hosts_the_user_allowed_already_stay_allowed(home, monkeypatch):
    monkeypatch.setenv("CATDNN_ALLOWED_HOSTS", "teacher-pc.school.lan, 10.1.1.1")
    allowed = serve_plan("P", address="127.0.0.1", hosts=["cats.example.org"]).env["CATDNN_ALLOWED_HOSTS"].split(",")
    assert {"127.0.0.1", "cats.example.org", "teacher-pc.school.lan", "10.1.1.1"} <= set(allowed)


def test_a_class_and_the_public_at_once_is_a_usage_error(home, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--class", "P", "--public"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_a_bad_option_never_rotates_the_teacher_token(home, capsys):
    class_code, token = started(home, "P")
    serve(capsys, "--class", "P", "--port", "70000")
    with ClassStore(home / classroom.FILE_NAME) as store:
        assert store.teacher(class_code, token).role == "teacher"


def test_the_scheduler_goes_to_the_app_and_is_trusted(home, monkeypatch):
    monkeypatch.delenv("CATDNN_SCHEDULERS", raising=False)
    plan = serve_plan("P", scheduler="10.0.0.5:8786", address="127.0.0.1")
    assert plan.env["CATDNN_SCHEDULER"] == "tcp://10.0.0.5:8786"
    assert plan.env["CATDNN_SCHEDULERS"] == "tcp://10.0.0.5:8786"


# ---------------------------------------------------------------------------------------------- QR
def test_qr_svg_is_an_svg_of_the_link(home):
    svg = qr_svg("http://192.168.1.20:8501/?join=ABCD2345")
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg") and int(float(root.get("width"))) >= 21 * 8  # a version-1 code at scale 8
    assert qr_svg("http://192.168.1.20:8501/?join=ABCD2345") == svg  # deterministic
    assert qr_svg("http://192.168.1.20:8501/?join=ABCD2346") != svg
    with pytest.raises(CatdnnError, match="no link"):
        qr_svg("")
    with pytest.raises(CatdnnError, match="too long"):
        qr_svg("http://x/" + "a" * 5000)


# ---------------------------------------------------------------------------------------------- a real server
def _get(url: str, context=None):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    return opener.open(url, timeout=5)


def start(home, argv, scheme="http"):
    """``python -m catdnn serve ARGV`` as a real process on a free port of 127.0.0.1; waits until its health
    check answers. Returns (process, port, what it printed before it started the server, an SSL context)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(LOCAL_BYPASS, CATDNN_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "catdnn", "serve", "--address", "127.0.0.1", "--port", str(port),
                             *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed = []
    while not printed or not printed[-1].startswith("starting the server"):
        line = proc.stdout.readline()
        assert line, (printed, proc.communicate())
        printed.append(line.strip())
    context = ssl._create_unverified_context() if scheme == "https" else None  # our own self-signed certificate
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()
        try:
            with _get(f"{scheme}://127.0.0.1:{port}/_stcore/health", context) as r:
                if r.status == 200:
                    return proc, port, "\n".join(printed), context
        except OSError:
            pass
        assert time.monotonic() < deadline, "the server did not answer within 60 s"
        time.sleep(0.3)


def stop(proc) -> tuple[str, str]:
    """Stop the server (it is this test's own process); returns the rest of its stdout and its stderr."""
    proc.terminate()
    try:
        return proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=15)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_serve_starts_a_real_server_that_answers_its_links(home, tmp_path, scheme):
    argv = ["--class", "Period 3"]
    if scheme == "https":
        cert, key = make_certificate(tmp_path)
        argv += ["--cert", str(cert), "--key", str(key)]
    proc, port, printed, context = start(home, argv, scheme)
    try:
        student, teacher = links(printed)
        assert student.startswith(f"{scheme}://127.0.0.1:{port}/?join=") and "?teacher=" in teacher
        with _get(student, context) as r:
            assert r.status == 200 and b'<div id="root">' in r.read()  # the app's page
        if scheme == "https":
            with pytest.raises(OSError):  # plain HTTP gets nothing from a TLS server
                _get(f"http://127.0.0.1:{port}/_stcore/health").read()
    finally:
        _out, err = stop(proc)
    assert ("unencrypted" in err) == (scheme == "http")


def test_a_real_join_in_chromium_leaves_no_key_or_token_in_the_server_log(home, data_dir):
    """Two people in a real browser against `catdnn serve` at Streamlit's default log level: a student joins
    (the key lands in the address, survives a page switch; the Train page's link to share holds no key), the
    teacher opens their link (the token leaves the address bar and stays out across pages), a forged key is
    refused without a traceback; the server's whole output holds neither the key nor the token."""
    from tests.browser_support import MAIN, chromium, errors_on_page, goto_page, idle, require_playwright

    sync_api = require_playwright()
    proc, port, printed, _ = start(home, ["--class", "Period 3"])
    key = token = None
    try:
        student, teacher = links(printed)
        token = teacher.rsplit("=", 1)[1]
        with chromium(sync_api) as browser:
            page = browser.new_page()
            page.goto(student)
            page.wait_for_selector(f"{MAIN} h1:has-text('Join the class')", timeout=120_000)
            idle(page)
            code_field = page.get_by_role("textbox", name="Class code")
            sync_api.expect(code_field).to_have_value(student.rsplit("=", 1)[1], timeout=30_000)  # from ?join=
            page.get_by_role("textbox", name="Your name").fill("Ana")
            page.locator(f"{MAIN} button", has_text="Join").click()
            page.locator(MAIN, has_text="Bookmark this page's address").wait_for(timeout=60_000)
            idle(page)
            key = re.search(r"[?&]key=([^&]+)", page.url).group(1)
            assert "join=" not in page.url
            shown = page.locator("body").inner_text()  # the key only in the student's own link, once
            assert shown.count(key) == 1 and f"http://127.0.0.1:{port}/?key={key}" in shown, shown[:2000]
            goto_page(page, "Runs")  # the key stays in the address on every page
            assert f"key={key}" in page.url and not errors_on_page(page)
            goto_page(page, "Train")  # its address holds the key; the link to share, under the form, does not
            shared = page.locator(f"{MAIN} [data-testid='stCode']", has_text="hidden=").first.inner_text().strip()
            assert shared.startswith(f"http://127.0.0.1:{port}/") and "?hidden=" in shared, shared
            assert key not in shared and "key=" not in shared
            assert f"key={key}" in page.url
            forged = browser.new_page()
            forged.goto(f"http://127.0.0.1:{port}/?key={'A' * 32}")
            forged.locator(MAIN, has_text="key is not known here").wait_for(timeout=60_000)
            assert not errors_on_page(forged)
            teach = browser.new_page()
            teach.goto(teacher)
            teach.wait_for_selector(f"{MAIN} h1", timeout=120_000)
            idle(teach)
            assert not errors_on_page(teach) and "Join the class" not in teach.locator(MAIN).inner_text()
            assert "needs your teacher link again" in teach.locator(MAIN).inner_text()
            assert token not in teach.locator("body").inner_text()
            sync_api.expect(teach).not_to_have_url(re.compile("teacher="), timeout=30_000)  # out of the address bar
            goto_page(teach, "Runs")  # the tab stays the teacher's, and the token stays out
            assert "Join the class" not in teach.locator(MAIN).inner_text() and token not in teach.url
    finally:
        out, err = stop(proc)
    log = out + err  # everything Streamlit's server wrote (the CLI's own lines, the links, came before: `printed`)
    assert "You can now view your Streamlit app" in log  # this is the server's output
    assert key and key not in log
    assert token not in log
