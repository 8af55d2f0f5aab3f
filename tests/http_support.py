"""A real HTTP server on 127.0.0.1 for the dataset-download tests (tests/test_data.py,
tests/robustness/test_dataset_files.py, tests/test_app.py). Nothing here reaches the internet.

Imported as ``tests.http_support`` (not from a conftest: the suite's conftest modules share a name).
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from pathlib import Path

MODES = ("ok", "cut", "stall", "html", "flip", "missing")


@contextlib.contextmanager
def serve(folder: Path, mode: str = "ok", cut_at: float = 0.5):
    """Serve the files of ``folder`` (by file name: ``BASE/anything/NAME`` is ``folder/NAME``) on
    127.0.0.1 in a thread; yields the base URL ``http://127.0.0.1:PORT``.

    ``mode``: ok | cut (Content-Length, then the connection closes part way, at ``cut_at`` of the
    file) | stall (sends part, then goes silent) | html (a captive-portal page with 200 OK) | flip
    (right length, one byte changed) | missing (404). A file not in ``folder`` is a 404.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    folder = Path(folder)
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = folder / self.path.rsplit("/", 1)[-1]
            if mode == "missing" or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            if mode == "html":
                page = b"<html><body>Please log in to the school Wi-Fi</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            if mode == "flip":
                b = bytearray(body)
                b[len(b) // 2] ^= 0xFF
                body = bytes(b)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode in ("cut", "stall"):
                self.wfile.write(body[: int(len(body) * cut_at)])
                self.wfile.flush()
                if mode == "stall":
                    release.wait(10)  # silent until the client gives up (or the test ends)
                self.close_connection = True
                return
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
