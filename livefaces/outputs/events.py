"""The events output (`--events FILE|-`): JSON Lines, one event per line, shared by cameras.

`EventLog` owns one file (or standard output). Several cameras may write to it, each from its
own writer thread: a lock makes every line whole and in one piece, and each line is flushed as
it is written, so a crash loses nothing already handed over. The file is opened for appending
(an event log keeps its history across restarts), and `reopen()` (safe from any thread, e.g. a
SIGHUP handler for logrotate) closes it and opens the same path again. `EventsSink` is one
camera's output: it writes every event it is given through the shared log.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Sequence
from typing import IO

import numpy as np

from livefaces.events import Event
from livefaces.frames import FrameResult

STDOUT = "-"


class EventLog:
    """A JSON Lines file written whole-line by any number of threads; `-` is standard output.

    Cameras `attach` to it and `release` it when they close; the file closes with the last one.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "standard output" if path == STDOUT else path
        self._lock = threading.Lock()
        self._users = 0
        self._stream: IO[str] | None = self._open()
        self.lines_written = 0

    def _open(self) -> IO[str]:
        if self.path == STDOUT:
            return sys.stdout
        return open(self.path, "a", encoding="utf-8")  # closed by release or reopen

    def write(self, records: Sequence[dict]) -> None:
        """Append one line per record, each written whole and flushed."""
        lines = [json.dumps(record) + "\n" for record in records]
        with self._lock:
            if self._stream is None:
                raise ValueError(f"{self.name}: the event log is closed")
            for line in lines:
                self._stream.write(line)
                self._stream.flush()
            self.lines_written += len(lines)

    def reopen(self) -> None:
        """Open the path again and close the old file (after logrotate moved it); safe from any
        thread. If the path cannot be opened, the old file stays in use and the OSError is raised.
        Standard output stays as it is."""
        if self.path == STDOUT:
            return
        with self._lock:
            if self._stream is None:
                return
            old, self._stream = self._stream, self._open()
            with contextlib.suppress(OSError):
                old.close()

    def attach(self) -> EventLog:
        """One more camera writes here."""
        with self._lock:
            self._users += 1
        return self

    def release(self) -> None:
        """A camera is done; the last one closes the file."""
        with self._lock:
            self._users -= 1
            if self._users > 0 or self._stream is None:
                return
            stream, self._stream = self._stream, None
            if self.path != STDOUT:
                with contextlib.suppress(OSError):  # what a full disk refused was counted already
                    stream.close()


class EventsSink:
    """One camera's events, as JSON lines in a (possibly shared) `EventLog`. No images, no frames:
    only `on_events` writes."""

    render: str | None = None

    def __init__(self, log: EventLog) -> None:
        self.log = log.attach()
        self.events_written = self.failed = 0
        self.last_error: str | None = None
        self._closed = False

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        """Frames are not logged here (that is `--json`)."""

    def on_events(self, events: Sequence[Event]) -> None:
        """Write the events; a file that cannot take them (a full disk) loses them, counted, and
        never stops the camera."""
        try:
            self.log.write([event.to_dict() for event in events])
        except OSError as error:
            self.failed += len(events)
            self.last_error = error.strerror or str(error)
            return
        self.events_written += len(events)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.log.release()

    def summary(self) -> str:
        text = f"{self.log.name}: {self.events_written} events"
        if self.failed:
            text += f", {self.failed} could not be written ({self.last_error})"
        return text
