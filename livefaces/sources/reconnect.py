"""When to reconnect a live camera, as plain computation on a clock the caller gives.

`Backoff` says how long to wait before the next attempt (capped exponential backoff with jitter,
so cameras that went down together do not all knock again at the same instant) and when to give
up (`max_reconnects` attempts in a row). A stream that gave frames for `stable_after` seconds
(by default: any frame) starts the sequence over when it drops, so a camera that reboots or a
server that restarts is reconnected within a second of answering again; one that accepts and
hangs up before giving a frame keeps backing off, so it is not hammered. `RateWatch` compares
the frame rate received with the announced one. No threads, no sleeping: tests drive both with a
fake clock and a fake random source.
"""

from __future__ import annotations

import random as _random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

FPS_HIGH, FPS_LOW = "fps_high", "fps_low"
MAX_BELIEVED_FPS = 240.0  # an announced rate above this (FFmpeg's 90000 time bases) is no rate


@dataclass(frozen=True)
class ReconnectSettings:
    """How a live camera (stream or device) is kept connected.

    max_reconnects: attempts in a row before giving up (None: never; 0: no reconnection at all).
    (A stall, no frame for `--stall-timeout`, is found by the source's own read timeout,
    `CaptureSettings.read_timeout`, which reports it as a `STALL` SourceError.)
    first_delay, max_delay, factor, jitter: the wait before attempt n is
        min(max_delay, first_delay * factor ** (n - 1)), less up to `jitter` of itself at random.
    stable_after: seconds a reopened stream must give frames before the backoff starts over (0:
        its first frame proves it works; churn against a server restarted every 1-4 s lost
        seconds per restart to waits grown to the cap when this was 30).
    fps_window: seconds of arrivals the frame rate is measured over (and the wait after each
        opening before it is judged: FFmpeg hands over what it buffered while probing at once).
    fps_high, fps_low: a rate above `fps_high` times the announced one is a backlog being
        replayed (reconnect, as Frigate does); below `fps_low` times it is reported only.
    """

    max_reconnects: int | None = None
    first_delay: float = 0.5
    max_delay: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2
    stable_after: float = 0.0
    fps_window: float = 10.0
    fps_high: float = 2.0
    fps_low: float = 0.25

    def __post_init__(self) -> None:
        if self.max_reconnects is not None and self.max_reconnects < 0:
            raise ValueError(f"max_reconnects must be >= 0 or None, got {self.max_reconnects}")
        if not 0 < self.first_delay <= self.max_delay:
            raise ValueError(f"need 0 < first_delay <= max_delay, got {self.first_delay}, {self.max_delay}")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"need factor >= 1 and 0 <= jitter < 1, got {self.factor}, {self.jitter}")


class Backoff:
    """Counts the attempts since the stream was last stably up and says how long to wait.

    `failed(now)` is called when the stream goes down or an attempt fails; `opened(now)` when an
    attempt succeeds. `attempt` is the number of the attempt that comes next (0: the first open).
    """

    def __init__(self, settings: ReconnectSettings, random: Callable[[], float] = _random.random) -> None:
        self.settings = settings
        self.attempt = 0
        self._random = random
        self._up_since: float | None = None

    def opened(self, now: float) -> None:
        self._up_since = now

    def failed(self, now: float) -> float | None:
        """Seconds to wait before the next attempt, or None: give up (`max_reconnects` reached)."""
        settings = self.settings
        if self._up_since is not None and now - self._up_since >= settings.stable_after:
            self.attempt = 0
        self._up_since = None
        self.attempt += 1
        if settings.max_reconnects is not None and self.attempt > settings.max_reconnects:
            return None
        return self.delay(self.attempt)

    def delay(self, attempt: int) -> float:
        """The wait before attempt `attempt` (>= 1): capped exponential, less random jitter."""
        settings = self.settings
        exponent = min(attempt - 1, 64)  # past the cap long before; keeps the power finite
        base = min(settings.max_delay, settings.first_delay * settings.factor**exponent)
        return base * (1.0 - settings.jitter * self._random())


class RateWatch:
    """Frame arrivals over the last `fps_window` seconds against the announced rate.

    `frame(now)` records an arrival and returns `FPS_HIGH` or `FPS_LOW` while the rate is far
    off (judged only once a whole window has passed since `reset`), else None. Rates announced
    as 0, None or absurdly high are not judged.
    """

    def __init__(self, settings: ReconnectSettings, expected: float | None = None) -> None:
        self.settings = settings
        self.expected = _believed(expected)
        self._arrivals: deque[float] = deque()
        self._since: float | None = None

    def reset(self, now: float, expected: float | None) -> None:
        """A new opening: forget the arrivals, take the newly announced rate."""
        self.expected = _believed(expected)
        self._arrivals.clear()
        self._since = now

    def frame(self, now: float) -> str | None:
        window = self.settings.fps_window
        self._since = now if self._since is None else self._since
        self._arrivals.append(now)
        while self._arrivals[0] < now - window:
            self._arrivals.popleft()
        if self.expected is None or now - self._since < window:
            return None
        rate = self.rate()
        if rate > self.settings.fps_high * self.expected:
            return FPS_HIGH
        if rate < self.settings.fps_low * self.expected:
            return FPS_LOW
        return None

    def rate(self) -> float:
        """Frames per second received over the window (arrivals in it / its length)."""
        return len(self._arrivals) / self.settings.fps_window


def _believed(fps: float | None) -> float | None:
    return fps if fps is not None and 0 < fps <= MAX_BELIEVED_FPS else None
