"""One log line per state change of a session, read from the `SessionStatus` values it publishes.

`StateLog.observe` compares each status with the previous one and logs what changed: the session
starting, a camera connecting, online (again), lost, failed, ended or stopped, and the session
ending. Reconnection attempts are not logged here: the camera's watchdog says each one itself,
with its exact wait, when it happens (a poll would see it late and say it twice). Cameras of
known length (files, folders) also log their progress now and then. Nothing is logged per
frame. It only reads plain values, so it does not care how the states are produced;
`StatusWatcher` polls the session a few times a second on its own thread and hands each value
over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from livefaces.observe.logs import STATE_LOGGER
from livefaces.panel import camera_progress_text
from livefaces.runtime import status as states
from livefaces.runtime.status import CameraStatus, SessionStatus

PREFIX = "livefaces:"
LEVELS = {
    states.RECONNECTING: logging.WARNING,
    states.LOST: logging.ERROR,
    states.FAILED: logging.ERROR,
}
POLL_SECONDS = 0.25
PROGRESS_SECONDS = 60.0


def describe_change(camera: CameraStatus) -> str:
    """The line for a camera that just reached its current state (or a new attempt or error)."""
    name, snap, state = f"{PREFIX} [{camera.name}]", camera.stats, camera.state
    error = f": {camera.error}" if camera.error else ""
    if state == states.CONNECTING:
        return f"{name} connecting to {camera.source}"
    if state == states.ONLINE:
        size = f"{camera.size[0]}x{camera.size[1]}" if camera.size else "size unknown"
        rate = f" @ {camera.fps:.4g} fps" if camera.fps else ""
        again = f" (reconnect {camera.reconnects})" if camera.reconnects else ""
        return f"{name} online{again}: {camera.source}, {size}{rate}"
    if state == states.RECONNECTING:
        wait = f", next try in {camera.next_try_in:.1f} s" if camera.next_try_in is not None else ""
        return f"{name} reconnecting (attempt {camera.attempt}{wait}){error}"
    if state in (states.ENDED, states.STOPPED):
        return f"{name} {state} after {snap.captured} frames captured, {snap.displayed} shown{error}"
    return f"{name} {state}{error}"


class StateLog:
    """Logs the differences between successive session statuses (one line per change)."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress_seconds: float = PROGRESS_SECONDS,
    ) -> None:
        self._log = logger or logging.getLogger(STATE_LOGGER)
        self._clock = clock
        self._progress_seconds = progress_seconds
        self._seen: dict[str, tuple[str, int, str | None]] = {}
        self._next_progress: float | None = None
        self._started = self._finished = False

    def observe(self, status: SessionStatus) -> None:
        """Log whatever changed since the last status observed."""
        if self._finished:
            return
        if not self._started:
            self._started = True
            names = ", ".join(camera.name for camera in status.cameras)
            count = len(status.cameras)
            self._log.info(
                f"{PREFIX} session started: {count} camera{'s' if count != 1 else ''} ({names}) "
                f"on {status.device}"
            )
        for camera in status.cameras:
            key = (camera.state, camera.attempt, camera.error)
            if self._seen.get(camera.name) != key:
                self._seen[camera.name] = key
                if camera.state == states.RECONNECTING:
                    continue
                self._log.log(LEVELS.get(camera.state, logging.INFO), describe_change(camera))
        self._progress(status)

    def finish(self, status: SessionStatus) -> None:
        """The last status of the session: its changes, then the session's end."""
        self.observe(status)
        if not self._finished:
            self._finished = True
            ended = ", ".join(f"{camera.name} {camera.state}" for camera in status.cameras)
            self._log.info(f"{PREFIX} session ended: {ended}")

    def _progress(self, status: SessionStatus) -> None:
        now = self._clock()
        if self._next_progress is None:
            self._next_progress = now + self._progress_seconds
        if now < self._next_progress:
            return
        self._next_progress = now + self._progress_seconds
        for camera in status.cameras:
            text = camera_progress_text(camera)
            if text is not None and camera.state == states.ONLINE:
                self._log.info(f"{PREFIX} [{camera.name}] progress: {' '.join(text.split())}")


class StatusWatcher:
    """Hands `status()` to `state_log` every `interval` seconds on its own thread; `stop` hands
    over the final status (idempotent). A failing status reader is skipped, never fatal."""

    def __init__(
        self, status: Callable[[], SessionStatus], state_log: StateLog, interval: float = POLL_SECONDS
    ) -> None:
        self._status, self._state_log, self._interval = status, state_log, interval
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="state-log", daemon=True)

    def start(self) -> StatusWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
            if self._thread.is_alive():
                self._thread.join(2.0)
            status = self._read()
            if status is not None:
                self._state_log.finish(status)

    def _read(self) -> SessionStatus | None:
        try:
            return self._status()
        except Exception:  # the runner went away: the next poll may work
            return None

    def _watch(self) -> None:
        while True:
            status = self._read()
            if status is not None:
                self._state_log.observe(status)
            if self._done.wait(self._interval):
                return
