"""Interrupts during a run: the first stops cleanly, a third aborts the finish, none can cut a file.

Only the command line installs these handlers (`livefaces.cli.main`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

EXIT_ABORTED = 130
ABORT_GRACE_SECONDS = 10.0


class Interrupts:
    """SIGINT and SIGTERM during a run, counted.

    The first stops the run cleanly: every output is finished and playable. The second only
    says that the app is finishing. The third aborts the finish: the threads are no longer
    waited for, the outputs are closed with what they hold (frames read but not yet processed
    are left out) and the exit code is 130. Should even closing hang, the process exits after
    `ABORT_GRACE_SECONDS` and says that the recording is incomplete. The handler never
    raises, so no signal can cut a file's finalization in half; its messages go straight to
    the stderr descriptor (printing is not re-entrant).
    """

    def __init__(self, stop: threading.Event, abort: threading.Event, recording: bool) -> None:
        self.stop, self.abort = stop, abort
        self.recording = recording
        self.count = 0
        self.first: str | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.first = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self.stop.set()
        elif self.count == 2:
            what = "the recording" if self.recording else "the outputs"
            _say(f"livefaces: finishing {what}... (interrupt once more to abort)")
        elif self.count == 3:
            self.abort.set()
            _say("livefaces: aborting: closing the outputs with what they hold, without waiting")
            timer = threading.Timer(ABORT_GRACE_SECONDS, _give_up)
            timer.daemon = True
            timer.start()


def _say(line: str) -> None:
    """One line straight to the stderr descriptor: safe inside a signal handler."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        os.write(sys.stderr.fileno(), (line + "\n").encode())


def _give_up() -> None:
    _say("livefaces: aborted: the finish hung; the recording is incomplete and may not play")
    os._exit(EXIT_ABORTED)


class Hangups:
    """SIGHUP during a run: every target (a callable) reopens its files, for logrotate; the run
    goes on, a hang-up never stops it. A target runs inside the signal handler: it must not
    block for long, and one that fails (a path that cannot be opened again) keeps its old file
    and is named in one line."""

    def __init__(self) -> None:
        self.targets: list[Callable[[], None]] = []
        self._previous: object = None
        self._installed = False

    def install(self) -> None:
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGHUP, self._handle)
            self._installed = True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous)  # type: ignore[arg-type]
            self._installed = False

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        for target in list(self.targets):
            try:
                target()
            except Exception as error:
                _say(f"livefaces: SIGHUP: cannot reopen: {error}; writing on to the old file")
