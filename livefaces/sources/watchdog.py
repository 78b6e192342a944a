"""Keeping one live camera connected: reopen it when it fails, stalls, ends or races, forever.

`Watchdog.items()` runs on the camera's reader thread. It yields the source's frames and, at each
change of the link, a `StreamUp` or `StreamDown` event (plain values the reader hands on in
order with the frames, so the runner, which owns the tracker, can end the tracks at a drop). It
reopens the source after a read error, an end of stream, a stall (the source's own read timeout:
no data, or no frame, for `--stall-timeout` seconds), or a frame rate far above the announced one (a
backlog being replayed), waiting between attempts as `Backoff` says, on the stop event, so a
stop is immediate. No thread is started: an unreachable camera costs its own reader thread only,
and the others never wait for it. The `Source` keeps one clock for the session, so indices and
timestamps keep increasing across reopens and an outage shows as a gap in the timestamps.

Every line it prints goes through `report` (stderr by default), worded by `link_line`.
"""

from __future__ import annotations

import random as _random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

# isort: off
import cv2
import av

# isort: on
from livefaces.capture import STALL, Source, SourceError
from livefaces.events import StreamDown, StreamUp
from livefaces.frames import Frame
from livefaces.runtime.status import CONNECTING, LOST, ONLINE, RECONNECTING
from livefaces.sources.quality import QualityWindow
from livefaces.sources.reconnect import FPS_HIGH, Backoff, RateWatch, ReconnectSettings

ERROR, ENDED, FPS = "error", "ended", "fps"  # why a stream went down (besides STALL)
CONNECTED, RECONNECTED = "connected", "reconnected"  # why a stream came up
Report = Callable[[str], None]


def print_line(line: str) -> None:
    """The default `report`: one line on stderr."""
    print(line, file=sys.stderr, flush=True)


def link_line(camera: str, change: str, detail: str = "", attempt: int = 0, wait: float | None = None) -> str:
    """Every line the watchdog prints, worded here (the source in `detail` is already masked).

    change: "down" (a stream that was up went down), "failed" (an attempt to connect failed),
    "up" (a stream is back after `attempt` attempts), "gave_up" (`--max-reconnects` reached).
    """
    head = f"livefaces: [{camera}] "
    if change == "down":
        return head + f"stream down: {detail}; reconnecting in {wait:.1f} s (attempt {attempt})"
    if change == "failed":
        what = "cannot connect" if attempt <= 1 else f"reconnection attempt {attempt - 1} failed"
        return head + f"{what}: {detail}; next try in {wait:.1f} s (attempt {attempt})"
    if change == "up":
        return head + f"stream up after {attempt} attempt{'s' if attempt != 1 else ''}{detail}"
    if change == "gave_up":
        return head + f"giving up after {attempt} reconnection attempt{'s' if attempt != 1 else ''}: {detail}"
    raise ValueError(f"unknown change {change!r}")


@dataclass(frozen=True)
class LinkStatus:
    """The link as the panel shows it: a plain value, replaced whole by the reader thread.

    state: connecting | online | reconnecting | lost. attempt: the attempt under way or next
    (0 when online). retry_at: `clock()` time of the next attempt while waiting for it.
    error: the last error (kept once back online, as the panel's "last error").
    reconnects: reconnections that succeeded; stalls: drops for want of frames.
    """

    state: str = CONNECTING
    attempt: int = 0
    retry_at: float | None = None
    error: str | None = None
    reconnects: int = 0
    stalls: int = 0


class Watchdog:
    """Yields a live source's frames and link events, reconnecting it as `settings` say.

    opened: frames of an opening made before (the app opens every camera before TensorFlow
    loads); open_error: that opening failed (service mode): the watchdog starts by waiting
    for its first retry. Raises `SourceError` once `max_reconnects` attempts in a row failed.
    """

    def __init__(
        self,
        camera: str,
        source: Source,
        settings: ReconnectSettings,
        stop: threading.Event,
        report: Report = print_line,
        *,
        opened: Iterator[Frame] | None = None,
        open_error: SourceError | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.camera = camera
        self.source = source
        self.settings = settings
        self.status = LinkStatus()
        self.quality = QualityWindow(clock)
        self._stop = stop
        self._report = report
        self._opened, self._open_error = opened, open_error
        self._clock, self._wall_clock = clock, wall_clock
        self._backoff = Backoff(settings, random)
        self._rate = RateWatch(settings)
        self._last_time = 0.0  # session time of the last frame
        self._down_at: float | None = None
        self._ever_up = False

    def items(self) -> Iterator[Frame | StreamUp | StreamDown]:
        """Frames, with a `StreamUp` before the first frame of each opening and a `StreamDown`
        after the last; ends when `stop` is set."""
        frames, wait = self._opened, 0.0
        self._opened = None
        if self._open_error is not None:
            wait = self._attempt_failed(self._open_error)
        while True:
            if frames is None:
                if self._stop.wait(wait):
                    return
                self.status = replace(self.status, retry_at=None)
                try:
                    frames = self.source.frames()
                except SourceError as error:
                    wait = self._attempt_failed(error)
                    continue
            try:
                reason, detail = yield from self._stream(frames)
            finally:
                frames.close()  # type: ignore[attr-defined]
            frames = None
            if self._stop.is_set():
                return
            down, wait = self._went_down(reason, detail)
            yield down
            if wait is None:
                raise SourceError(self._given_up(detail), reason)

    def _stream(self, frames: Iterator[Frame]) -> Iterator[Frame | StreamUp]:
        """One opening's frames after its `StreamUp`; returns why and how the stream went down."""
        name = self.source.info.name
        try:
            first = next(frames)  # already read by the opening: at once
            yield self._came_up(first)
            self._arrived(first)
            yield first
            for frame in frames:
                fast = self._arrived(frame) == FPS_HIGH
                yield frame
                if fast:
                    return FPS, self._backlog(name)
        except StopIteration:
            pass
        except SourceError as error:
            return (STALL if error.reason == STALL else ERROR), str(error)
        except av.error.FFmpegError as error:  # its str() holds the URL: credentials included
            return ERROR, f"{name}: {getattr(error, 'strerror', None) or type(error).__name__}"
        except (OSError, cv2.error) as error:
            return ERROR, f"{name}: {error}"
        return ENDED, f"{name}: the stream ended"

    def _backlog(self, name: str) -> str:
        rate, window, expected = self._rate.rate(), self.settings.fps_window, self._rate.expected or 0
        return (
            f"{name}: {rate:.1f} fps for {window:g} s, it announced {expected:g} (a backlog being replayed)"
        )

    def _came_up(self, first: Frame) -> StreamUp:
        now = self._clock()
        attempt = self._backoff.attempt
        self._backoff.opened(now)
        self._rate.reset(now, self.source.info.fps)
        status = self.status
        reconnects = status.reconnects + (1 if self._ever_up else 0)
        if self._ever_up:
            self.quality.reconnected()
        if attempt:
            offline = f" ({now - self._down_at:.1f} s without frames)" if self._down_at is not None else ""
            self._report(link_line(self.camera, "up", offline, attempt))
        self.status = LinkStatus(ONLINE, 0, None, status.error, reconnects, status.stalls)
        reason = RECONNECTED if self._ever_up else CONNECTED
        self._ever_up, self._down_at = True, None
        return StreamUp(
            camera=self.camera,
            source_time=first.timestamp,
            wall_time=self._wall_clock(),
            reason=reason,
            attempt=attempt,
        )

    def _arrived(self, frame: Frame) -> str | None:
        self._last_time = frame.timestamp
        self.quality.frame()
        return self._rate.frame(self._clock())

    def _went_down(self, reason: str, detail: str) -> tuple[StreamDown, float | None]:
        now = self._clock()
        self._down_at = now
        wait = self._backoff.failed(now)
        attempt = self._backoff.attempt
        stalls = self.status.stalls + (1 if reason == STALL else 0)
        if reason == STALL:
            self.quality.stalled()
        event = StreamDown(
            camera=self.camera,
            source_time=self._last_time,
            wall_time=self._wall_clock(),
            reason=reason,
            attempt=attempt - 1,
        )
        if wait is None:
            self._give_up(detail, attempt - 1)
        else:
            self.status = LinkStatus(
                RECONNECTING, attempt, now + wait, detail, self.status.reconnects, stalls
            )
            self._report(link_line(self.camera, "down", detail, attempt, wait))
        self.status = replace(self.status, stalls=stalls)
        return event, wait

    def _attempt_failed(self, error: SourceError) -> float:
        now = self._clock()
        self._down_at = self._down_at if self._down_at is not None else now
        wait = self._backoff.failed(now)
        attempt = self._backoff.attempt
        if wait is None:
            self._give_up(str(error), attempt - 1)
            raise SourceError(self._given_up(str(error)), error.reason)
        status = self.status
        self.status = LinkStatus(
            RECONNECTING, attempt, now + wait, str(error), status.reconnects, status.stalls
        )
        self._report(link_line(self.camera, "failed", str(error), attempt, wait))
        return wait

    def _give_up(self, detail: str, attempts: int) -> None:
        status = self.status
        self.status = LinkStatus(LOST, 0, None, detail, status.reconnects, status.stalls)
        if attempts:
            self._report(link_line(self.camera, "gave_up", detail, attempts))

    def _given_up(self, detail: str) -> str:
        limit = self.settings.max_reconnects
        return f"{detail} (gave up after {limit} reconnection attempts)" if limit else detail
