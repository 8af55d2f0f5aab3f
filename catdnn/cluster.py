"""Dask clusters: checking a scheduler's address and connecting to it.

The sweeps (:mod:`catdnn.sweep`) and the worker pool's trainings (:class:`catdnn.workers.TrainingPool` with
``scheduler=``, the dashboard's ``$CATDNN_SCHEDULER``) run on a Dask cluster through here. Dask schedules;
catdnn never does. A scheduler's results are unpickled here, so it must be trusted. This module imports only
:mod:`catdnn.errors` (and ``distributed`` when it connects).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import urlsplit

from .errors import CatdnnError, ConfigError

#: ``CATDNN_SCHEDULERS``: the Dask scheduler addresses (comma-separated) the dashboard may connect to,
#: besides this machine's own. A scheduler's results are unpickled, so it must be trusted.
SCHEDULERS_ENV_VAR = "CATDNN_SCHEDULERS"


def check_scheduler(address: str, allowed: Iterable[str] | None = None) -> str:
    """``address`` as ``tcp://host:port`` if it is well formed and, when ``allowed`` is given, either on
    this machine (loopback) or in ``allowed``; else :class:`ConfigError` saying why.

    ``tls://`` is refused with its reason: a TLS scheduler needs the client's certificate and key (a
    ``distributed.Security``), which catdnn's address alone cannot carry."""
    text = str(address or "").strip()
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme == "tls":
        raise ConfigError(
            f"{address!r} is a TLS scheduler, which catdnn cannot connect to: TLS needs this machine's certificate "
            "and key (a distributed.Security object), and an address carries neither. Give the scheduler a "
            "tcp:// address on a network you trust, or, from Python, connect with "
            "distributed.Client(address, security=...) and pass client.get_executor() to catdnn.sweep.sweep")
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"{address!r} is not a Dask scheduler address such as tcp://127.0.0.1:8786")
    text = f"{parts.scheme}://{parts.netloc}"
    if allowed is not None:
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        listed = {a.strip().rstrip("/") for a in allowed if a.strip()}
        if not local and text not in listed and parts.netloc not in listed:
            raise ConfigError(
                f"the dashboard connects only to schedulers on this machine, or those listed in "
                f"{SCHEDULERS_ENV_VAR} (a scheduler's results are unpickled here, so it must be trusted): start "
                f"the app with {SCHEDULERS_ENV_VAR}={text} to allow this one")
    return text


def allowed_schedulers() -> list[str]:
    """The addresses in ``$CATDNN_SCHEDULERS``."""
    return [a.strip() for a in os.environ.get(SCHEDULERS_ENV_VAR, "").split(",") if a.strip()]


def dask_client(address: str, timeout: float = 10.0):
    """A ``distributed.Client`` connected to the scheduler at ``address`` (close it when done).

    Raises :class:`CatdnnError` when ``distributed`` is not installed or the scheduler does not answer.
    """
    address = check_scheduler(address)
    try:
        from distributed import Client
    except ImportError:
        raise CatdnnError("running on a Dask cluster needs the `distributed` package: "
                          "pip install -r requirements-dist.txt") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise CatdnnError(f"no Dask scheduler answered at {address} within {timeout:g} s ({exc})") from None
