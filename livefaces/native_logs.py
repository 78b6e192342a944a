"""Silencing what native libraries print straight to file descriptor 2 while they start up."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Send fd 2 to /dev/null for the duration: TensorFlow's C++ start-up notes ("no CUDA
    driver", oneDNN) and Qt's font warnings would bury the one-line messages and the panel.

    Python exceptions still propagate; they are reported after fd 2 is restored.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
