"""Keeping what native libraries print straight to file descriptor 2 off the user's terminal.

TensorFlow's C++ start-up notes ("no CUDA driver", oneDNN, cuInit), libjpeg's "Premature end of
JPEG file", FFmpeg and Qt all write to fd 2 behind Python's back, burying the one-line messages
and the panel. Two tools:

- `diverted()`: for the command line, for the whole run. Python's `sys.stderr` keeps
  writing to the terminal through a duplicate of fd 2, while fd 2 itself goes to /dev/null.
- `silenced()`: fd 2 to /dev/null for a moment, for the library's TensorFlow import.

Set `LIVEFACES_NATIVE_LOGS=1` (or `TF_CPP_MIN_LOG_LEVEL` to a level of your choice) to see them.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator

SHOW_VARIABLE = "LIVEFACES_NATIVE_LOGS"


def wanted() -> bool:
    """Whether the user asked to see native logs (`LIVEFACES_NATIVE_LOGS=1`)."""
    return os.environ.get(SHOW_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Send fd 2 to /dev/null for the duration (unless native logs are wanted).

    Python exceptions still propagate; they are reported after fd 2 is restored.
    """
    if wanted():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _writes_to_fd2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def diverted() -> Iterator[None]:
    """For a command-line run: fd 2 to /dev/null, `sys.stderr` still on the terminal.

    Only a `sys.stderr` that writes to fd 2 is moved to a duplicate of it; a replaced one (a
    test's capture, a log file) is left alone. Everything is restored on exit.
    """
    if wanted():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    previous = sys.stderr
    if _writes_to_fd2(previous):
        sys.stderr = io.TextIOWrapper(
            io.FileIO(saved, "w", closefd=False), encoding=previous.encoding, errors="backslashreplace",
            line_buffering=True,
        )  # fmt: skip
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        if sys.stderr is not previous and _is_ours(sys.stderr, saved):
            sys.stderr = previous
        os.close(saved)


def _is_ours(stream: object, fd: int) -> bool:
    try:
        return stream.fileno() == fd  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
