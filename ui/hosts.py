"""Which ``Host`` headers the app answers: a guard against DNS rebinding (SECURITY.md).

Streamlit accepts any ``Host``. A page on an attacker's domain whose DNS is re-pointed to
127.0.0.1 reaches the app with ``Host: evil.example.com:8501`` and an ``Origin`` that matches it,
so Streamlit's XSRF and WebSocket Origin checks pass, and that page could start trainings and
upload files. A browser always sends the name it used in ``Host``, and an attacker cannot make a
browser send ``localhost`` for its own domain: so every page stops unless ``Host`` names this
machine (``localhost``, ``127.0.0.1``, ``[::1]``, any port) or a host the user allowed in
``$CATDNN_ALLOWED_HOSTS`` (for a teacher who serves a class on purpose).

Pure Python, no Streamlit: :func:`ui.page_setup` applies it.
"""

from __future__ import annotations

import os
import re

from catdnn.serve import ALLOWED_HOSTS_ENV as ENV_VAR  # `catdnn serve` sets it for a class

#: The names of this machine that a browser can only send when it really talks to this machine.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

_HOST = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<name>[^:\[\]]+))(?::(?P<port>\d{1,5}))?$")


def host_name(header: str) -> str | None:
    """The host part of a ``Host`` header, lower-case, without port, brackets or a trailing dot
    (``"LocalHost.:8501"`` → ``"localhost"``, ``"[::1]:8501"`` → ``"::1"``); None if malformed."""
    match = _HOST.match(header.strip())
    if match is None:
        return None
    name = (match.group("v6") or match.group("name")).lower().rstrip(".")
    return name or None


def allowed_hosts(env: str | None = None) -> set[str]:
    """This machine's names plus those listed (comma- or space-separated) in ``$CATDNN_ALLOWED_HOSTS``."""
    text = os.environ.get(ENV_VAR, "") if env is None else env
    extra = {host_name(item) for item in re.split(r"[,\s]+", text) if item}
    return set(LOCAL_HOSTS) | {h for h in extra if h}


def host_allowed(header: str | None, env: str | None = None) -> bool:
    """Whether a request with this ``Host`` header may use the app.

    No header at all is allowed: every browser sends one (so no web page can omit it), and
    Streamlit's own test harness sends none.
    """
    if header is None or header == "":
        return True
    name = host_name(header)
    return name is not None and name in allowed_hosts(env)


def shown(header: str) -> str:
    """The header made safe to show in a message (printable ASCII, at most 100 characters)."""
    text = "".join(ch for ch in header if 32 < ord(ch) < 127 and ch not in "`<>*_[]()\\")
    return text[:100] or "?"
