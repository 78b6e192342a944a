"""Where the app's lines go: the terminal as today, or timestamped logs for a service.

Every line the app says while it runs (warnings, state changes, the final report) goes through
the `livefaces` logger; the command line decides where it lands (`Logs`):

- stderr a terminal: the plain lines users know (`livefaces: wrote out.mp4: ...`), printed
  through the rich console so they never tear the live panel; state changes are left to the
  panel, which shows them.
- stderr not a terminal (a service, a pipe, a file): one record per line with an ISO 8601 time
  and a level, `2025-01-05T12:00:00.123+01:00 INFO livefaces: [front] online: ...`; the message
  is exactly the terminal's line. State changes are logged as they happen (`StateLog`), never
  one line per frame.
- `--log-file PATH`: the same timestamped records appended to a file too, reopened on SIGHUP
  (logrotate renames the file, then signals: the next record starts the new file).

Errors that stop the run before it starts (exit code 2) stay one plain line on stderr, as the
command line promises, and are also written to the log file.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console

LOGGER = "livefaces"
STATE_LOGGER = "livefaces.state"  # state changes: logged in service mode, shown by the panel otherwise

logging.getLogger(LOGGER).addHandler(logging.NullHandler())  # a library logs nothing unless asked


def log() -> logging.Logger:
    """The app's logger (its lines start with `livefaces: `, as on the terminal)."""
    return logging.getLogger(LOGGER)


class TimestampFormatter(logging.Formatter):
    """`<ISO 8601 local time, ms, UTC offset> <LEVEL> <message>`: one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")
        message = " ".join(record.getMessage().splitlines())
        return f"{when} {record.levelname} {message}"


class ConsoleHandler(logging.Handler):
    """Plain lines through a rich console (above a live panel, if one is shown)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._console.print(record.getMessage(), highlight=False, soft_wrap=True, markup=False)
        except Exception:
            self.handleError(record)


class ReopeningFileHandler(logging.FileHandler):
    """Appends records to a file; after `request_reopen` the next record reopens the path.

    `request_reopen` only sets a flag, so a signal handler may call it at any moment: the file is
    closed and opened again by the thread that writes the next record, under the handler's lock.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self._reopen = False

    def request_reopen(self) -> None:
        self._reopen = True

    def emit(self, record: logging.LogRecord) -> None:
        if self._reopen:
            self._reopen = False
            if self.stream is not None:
                stream, self.stream = self.stream, None  # type: ignore[assignment]
                stream.close()
        super().emit(record)


def _without_state(record: logging.LogRecord) -> bool:
    return not record.name.startswith(STATE_LOGGER)


class Logs:
    """The command line's logging for one run: `install`, then `close` (idempotent).

    service: stderr gets timestamped records (else plain lines through `console`, without state
    changes). log_file: records also appended there (opened at once: an OSError if it cannot be).
    """

    def __init__(self, console: Console, service: bool, log_file: Path | None = None) -> None:
        self._logger = logging.getLogger(LOGGER)
        self._file: ReopeningFileHandler | None = None
        if log_file is not None:
            self._file = ReopeningFileHandler(log_file)
            self._file.setFormatter(TimestampFormatter())
        if service:
            self._stderr: logging.Handler = logging.StreamHandler(sys.stderr)
            self._stderr.setFormatter(TimestampFormatter())
        else:
            self._stderr = ConsoleHandler(console)
            self._stderr.addFilter(_without_state)
        self._handlers = [h for h in (self._stderr, self._file) if h is not None]
        self._saved = (self._logger.level, self._logger.propagate)

    def install(self) -> Logs:
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False
        for handler in self._handlers:
            self._logger.addHandler(handler)
        return self

    def close(self) -> None:
        for handler in self._handlers:
            self._logger.removeHandler(handler)
            handler.close()
        self._handlers = []
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]

    def request_reopen(self) -> None:
        """Reopen the log file at the next record (SIGHUP: safe in a signal handler)."""
        if self._file is not None:
            self._file.request_reopen()

    def setup_error(self, line: str, stream: TextIO | None = None) -> None:
        """A line that ends the run before it starts: plain on stderr, and in the log file."""
        print(line, file=stream or sys.stderr)
        if self._file is not None:
            self._file.handle(self._logger.makeRecord(LOGGER, logging.ERROR, __file__, 0, line, (), None))
