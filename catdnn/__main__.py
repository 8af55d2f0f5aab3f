"""``python -m catdnn``, and the ``catdnn`` command an installed package provides: see :mod:`catdnn.cli`."""

import os
import sys

from .cli import main


def run() -> int:
    """Run the command line on ``sys.argv`` and return its exit status (the ``catdnn`` console script)."""
    status = main()
    try:
        sys.stdout.flush()
    except OSError as exc:  # stdout on a full disk or a closed pipe: say so once, no traceback
        print(f"error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(run())
