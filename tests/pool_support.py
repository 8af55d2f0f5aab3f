"""Shared by the worker-pool tests: follow a job until its worker has begun training it."""

from __future__ import annotations

import time


def started(job, timeout=120):
    """Follow ``job`` until its worker has begun training it (bounded)."""
    end = time.monotonic() + timeout
    for _ in job.updates():
        if job.progress is not None or time.monotonic() > end:
            break
    assert job.progress is not None, f"the job did not start: {job.outcome}"
