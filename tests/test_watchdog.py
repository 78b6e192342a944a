"""The reconnect policy, the link quality window and the watchdog, on fake clocks and scripted
sources (a real `Source` whose openings follow a script), then through the threaded runtime.

Nothing sleeps: backoff waits are a few milliseconds of `stop.wait`, and everything else is
driven by the fake clock or by events.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from livefaces.capture import STALL, Source, SourceError, SourceInfo
from livefaces.events import StreamDown, StreamUp
from livefaces.frames import Frame
from livefaces.runtime.camera_runner import RunnerSettings
from livefaces.runtime.threaded import run_camera
from livefaces.sources.quality import HOUR, QualityWindow
from livefaces.sources.reconnect import FPS_HIGH, FPS_LOW, Backoff, RateWatch, ReconnectSettings
from livefaces.sources.watchdog import Watchdog, link_line
from tests.test_pipeline import EventCollector, OneFace

QUICK = ReconnectSettings(first_delay=0.001, max_delay=0.002)  # waits of a few milliseconds


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fixed(value: float):
    return lambda: value


# The backoff.

STEPS = ReconnectSettings(first_delay=0.5, max_delay=10.0, factor=2.0, jitter=0.2)


@pytest.mark.parametrize(
    ("attempt", "random", "delay"),
    [
        (1, 0.0, 0.5),
        (2, 0.0, 1.0),
        (3, 0.0, 2.0),
        (4, 0.0, 4.0),
        (5, 0.0, 8.0),
        (6, 0.0, 10.0),  # capped
        (10_000, 0.0, 10.0),  # no overflow however long it has been down
        (1, 0.5, 0.45),  # jitter takes up to 20 % off, never adds
        (4, 1.0, 3.2),
        (6, 0.5, 9.0),
    ],
)
def test_backoff_is_capped_exponential_less_jitter(attempt: int, random: float, delay: float) -> None:
    assert Backoff(STEPS, fixed(random)).delay(attempt) == pytest.approx(delay)


def test_attempts_keep_growing_until_a_stream_gives_frames_then_start_over() -> None:
    clock, backoff = FakeClock(), Backoff(STEPS, fixed(0.0))
    assert [backoff.failed(clock()) for _ in range(3)] == [0.5, 1.0, 2.0]
    backoff.opened(clock())  # its first frame came
    clock.advance(1.5)
    assert backoff.failed(clock()) == 0.5 and backoff.attempt == 1


def test_with_stable_after_a_stream_must_stay_up_that_long() -> None:
    clock = FakeClock()
    backoff = Backoff(dataclasses.replace(STEPS, stable_after=30.0), fixed(0.0))
    assert [backoff.failed(clock()) for _ in range(3)] == [0.5, 1.0, 2.0]
    backoff.opened(clock())
    clock.advance(29.9)  # up, but not for stable_after: it keeps backing off
    assert backoff.failed(clock()) == 4.0 and backoff.attempt == 4
    backoff.opened(clock())
    clock.advance(30.0)
    assert backoff.failed(clock()) == 0.5 and backoff.attempt == 1


@pytest.mark.parametrize("max_reconnects", [0, 1, 3])
def test_gives_up_after_max_reconnects_attempts_in_a_row(max_reconnects: int) -> None:
    backoff = Backoff(ReconnectSettings(max_reconnects=max_reconnects), fixed(0.0))
    waits = [backoff.failed(0.0) for _ in range(max_reconnects + 1)]
    assert all(wait is not None for wait in waits[:-1]) and waits[-1] is None


def test_never_gives_up_by_default() -> None:
    backoff = Backoff(ReconnectSettings(), fixed(0.0))
    waits = [backoff.failed(float(k)) for k in range(1000)]
    assert None not in waits and max(waits) == 10.0  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"max_reconnects": -1}, "max_reconnects"),
        ({"first_delay": 20.0}, "first_delay"),
        ({"jitter": 1.0}, "jitter"),
    ],
)
def test_settings_refuse_nonsense(changes: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ReconnectSettings(**changes)


# The frame rate against the announced one.


def verdicts(watch: RateWatch, fps: float, seconds: float) -> list[tuple[float, str | None]]:
    """(time, verdict) of arrivals at `fps` for `seconds`, from t=0 (after `reset(0)`)."""
    watch.reset(0.0, watch.expected)
    count = int(fps * seconds)
    return [(k / fps, watch.frame(k / fps)) for k in range(count + 1)]


@pytest.mark.parametrize(
    ("announced", "received", "verdict"),
    [
        (15.0, 15.0, None),
        (15.0, 25.0, None),
        (15.0, 31.0, FPS_HIGH),  # a backlog replayed: more than twice the announced rate
        (15.0, 4.0, None),
        (15.0, 3.0, FPS_LOW),  # below a quarter: reported, not reconnected
        (None, 100.0, None),  # nothing announced: nothing to judge
        (0.0, 100.0, None),
        (90000.0, 25.0, None),  # a time base, not a rate
    ],
)
def test_rate_is_judged_against_the_announced_one(announced, received, verdict) -> None:
    watch = RateWatch(ReconnectSettings(fps_window=10.0), announced)
    seen = verdicts(watch, received, 12.0)
    assert all(v is None for t, v in seen if t < 10.0)  # a whole window first: FFmpeg's bursts
    assert seen[-1][1] == verdict


# The link quality over the last hour.


def test_quality_counts_the_last_hour_and_forgets_older_minutes() -> None:
    clock = FakeClock(0.0)
    window = QualityWindow(clock)
    for _ in range(150):
        window.frame()
        clock.advance(1 / 15)
    window.reconnected()
    window.stalled()
    now = window.summary(15.0)
    assert (now.reconnects, now.stalls, now.frames, now.expected_fps) == (1, 1, 150, 15.0)
    assert now.seconds == pytest.approx(10.0) and now.fps == pytest.approx(15.0)
    clock.advance(2 * HOUR)
    later = window.summary(15.0)
    assert (later.reconnects, later.stalls, later.frames) == (0, 0, 0)
    assert HOUR - 60 <= later.seconds <= HOUR and later.fps == 0.0


# The watchdog on scripted sources.


class Script:
    """A live stream whose openings follow `steps`: an exception (the opening fails) or
    (frames, end): that many frames, one every 1/fps on the fake clock, then `end` (None: the
    stream ends; an exception: raised). After the last step every opening gives endless frames."""

    def __init__(
        self,
        steps: list,
        clock: FakeClock,
        fps: float = 15.0,
        live: bool = True,
        announced: float | None = None,
    ) -> None:
        self.steps = iter(steps)
        self.clock = clock
        self.fps = fps
        self.announced = announced or fps
        self.source = Source(SourceInfo("cam", "stream", live=live), self._read, paced=False)

    def _read(self, source: Source) -> Iterator[Frame]:
        step = next(self.steps, (None, None))
        if isinstance(step, BaseException):
            raise step
        count, end = step
        source.publish(fps=self.announced)
        image = np.zeros((24, 32, 3), np.uint8)
        for local in itertools.count() if count is None else range(count):
            yield Frame(local, local / self.fps, self.clock(), image)
            self.clock.advance(1 / self.fps)
        if end is not None:
            raise end


def watch(script: Script, settings: ReconnectSettings = QUICK, **options) -> tuple[Watchdog, list[str]]:
    lines: list[str] = []
    dog = Watchdog(
        "cam", script.source, settings, threading.Event(), lines.append, clock=script.clock, **options
    )
    return dog, lines


def summary(items: list) -> list:
    """Frames as their index, link events as (kind, reason, attempt)."""
    return [
        item.index if isinstance(item, Frame) else (item.kind, item.reason, item.attempt) for item in items
    ]


def test_a_dropped_stream_is_reopened_and_the_session_clock_goes_on() -> None:
    clock = FakeClock()
    refused = SourceError("cam: cannot be opened (Connection refused)")
    script = Script([(3, OSError("connection reset by peer")), refused, (2, None)], clock)
    dog, lines = watch(script)
    items = list(itertools.islice(dog.items(), 11))
    assert summary(items) == [
        ("stream_up", "connected", 0),
        0,
        1,
        2,
        ("stream_down", "error", 0),
        ("stream_up", "reconnected", 2),  # attempt 1 was refused
        3,
        4,
        ("stream_down", "ended", 0),  # it gave frames: the backoff starts over
        ("stream_up", "reconnected", 1),
        5,
    ]
    times = [item.timestamp for item in items if isinstance(item, Frame)]
    assert times == sorted(times) and len(set(times)) == len(times)
    down = items[4]
    assert isinstance(down, StreamDown) and down.source_time == items[3].timestamp
    up = items[5]
    assert isinstance(up, StreamUp) and up.source_time == items[6].timestamp
    assert lines[0].startswith(
        "livefaces: [cam] stream down: cam: connection reset by peer; reconnecting in "
    )
    assert lines[0].endswith(" s (attempt 1)")
    assert lines[1].startswith("livefaces: [cam] reconnection attempt 1 failed: cam: cannot be opened")
    assert lines[2] == "livefaces: [cam] stream up after 2 attempts (0.0 s without frames)"
    assert dog.status.state == "online" and dog.status.reconnects == 2 and dog.status.attempt == 0
    assert dog.status.error == "cam: the stream ended"  # the last error stays on show
    assert dog.quality.summary().reconnects == 2


def test_a_stall_is_counted_apart_from_errors() -> None:
    clock = FakeClock()
    stall = SourceError("cam: no data for 5 s (read timeout)", STALL)
    dog, lines = watch(Script([(2, stall), (1, None)], clock))
    items = list(itertools.islice(dog.items(), 5))
    assert summary(items)[3] == ("stream_down", "stall", 0)
    assert dog.status.stalls == 1 and dog.quality.summary().stalls == 1
    assert "stream down: cam: no data for 5 s (read timeout); reconnecting in" in lines[0]


def test_it_gives_up_after_max_reconnects_with_one_line_per_attempt() -> None:
    clock = FakeClock()
    refused = SourceError("cam: cannot be opened (Connection refused)")
    settings = ReconnectSettings(max_reconnects=2, first_delay=0.001, max_delay=0.002)
    dog, lines = watch(Script([(1, OSError("reset")), refused, refused], clock), settings)
    items = []
    with pytest.raises(SourceError) as raised:
        items.extend(dog.items())
    assert summary(items) == [("stream_up", "connected", 0), 0, ("stream_down", "error", 0)]
    assert (
        str(raised.value)
        == "cam: cannot be opened (Connection refused) (gave up after 2 reconnection attempts)"
    )
    assert len(lines) == 3  # the drop, attempt 1, and attempt 2 which gives up
    assert "stream down" in lines[0] and "reconnection attempt 1 failed" in lines[1]
    assert lines[2].startswith(
        "livefaces: [cam] giving up after 2 reconnection attempts: cam: cannot be opened"
    )
    assert dog.status.state == "lost"


def test_without_reconnection_a_drop_ends_it_at_once() -> None:
    dog, lines = watch(Script([(2, None)], FakeClock()), ReconnectSettings(max_reconnects=0))
    items = []
    with pytest.raises(SourceError, match=r"^cam: the stream ended$"):
        items.extend(dog.items())
    assert summary(items)[-1] == ("stream_down", "ended", 0) and lines == []


def test_a_camera_down_at_start_up_waits_and_retries() -> None:
    """Service mode: the app's opening failed; the watchdog starts with the first retry."""
    clock = FakeClock()
    error = SourceError("cam: cannot be opened (Connection refused)")
    dog, lines = watch(Script([(None, None)], clock), open_error=error)
    items = list(itertools.islice(dog.items(), 2))
    assert summary(items) == [("stream_up", "connected", 1), 0]
    assert lines[0].startswith(
        "livefaces: [cam] cannot connect: cam: cannot be opened (Connection refused); "
    )
    assert lines[0].endswith("(attempt 1)")
    assert lines[1].startswith("livefaces: [cam] stream up after 1 attempt")
    assert dog.status.reconnects == 0  # the first connection is no reconnection


def test_a_rate_far_above_the_announced_one_is_a_backlog_and_reopened() -> None:
    script = Script([(300, None)], FakeClock(), fps=60.0, announced=15.0)
    settings = ReconnectSettings(first_delay=0.001, max_delay=0.002, fps_window=1.0)
    dog, lines = watch(script, settings)
    items = list(itertools.takewhile(lambda item: not isinstance(item, StreamDown), dog.items()))
    frames = [item for item in items if isinstance(item, Frame)]
    assert 60 <= len(frames) <= 70  # judged once a whole window (1 s) had passed
    assert "fps for 1 s, it announced 15 (a backlog being replayed)" in lines[0]


def test_stop_interrupts_the_wait_between_attempts() -> None:
    """A backoff of a minute: the stop ends the wait at once (the reader never sleeps it out)."""
    stop = threading.Event()
    script = Script([(1, OSError("reset"))], FakeClock())
    dog = Watchdog(
        "cam", script.source, ReconnectSettings(first_delay=60, max_delay=60), stop, lambda _: stop.set()
    )
    items = list(dog.items())
    assert summary(items) == [("stream_up", "connected", 0), 0, ("stream_down", "error", 0)]
    assert dog.status.state == "reconnecting" and dog.status.retry_at is not None


def test_link_lines_are_worded_in_one_place() -> None:
    assert (
        link_line("a", "down", "x: boom", 1, 0.5)
        == "livefaces: [a] stream down: x: boom; reconnecting in 0.5 s (attempt 1)"
    )
    assert (
        link_line("a", "failed", "x: no", 1, 1.0)
        == "livefaces: [a] cannot connect: x: no; next try in 1.0 s (attempt 1)"
    )
    assert link_line("a", "failed", "x: no", 3, 2.0) == (
        "livefaces: [a] reconnection attempt 2 failed: x: no; next try in 2.0 s (attempt 3)"
    )
    assert (
        link_line("a", "up", " (3.2 s without frames)", 2)
        == "livefaces: [a] stream up after 2 attempts (3.2 s without frames)"
    )
    assert (
        link_line("a", "gave_up", "x: no", 5)
        == "livefaces: [a] giving up after 5 reconnection attempts: x: no"
    )


# Through the threaded runtime.


def test_the_runner_ends_tracks_at_a_drop_and_outputs_get_the_link_events_in_order() -> None:
    """A stream read losslessly (`--lossless`) drops after 12 frames and comes back: the face seen
    before ends with the drop (face_left "stream_down", right after stream_down), a new track
    starts after stream_up, and frame indices keep increasing."""
    stop = threading.Event()
    script = Script([(12, OSError("reset")), (None, None)], FakeClock(), live=False)
    sink = EventCollector()
    original = sink.write

    def write(item, canvas) -> None:
        original(item, canvas)
        if item.frame.index == 23:
            stop.set()

    sink.write = write  # type: ignore[method-assign]
    settings = RunnerSettings(tracking=True, live=False, detect_every=1)
    result = run_camera(
        script.source, OneFace(), [sink], settings, stop=stop, reconnect=QUICK, report=lambda _: None
    )
    assert result.ended_by == "stop" and result.error is None
    log = sink.log
    frames = [index for kind, index in log if kind == "frame"]
    assert frames == list(range(len(frames))) and len(frames) >= 24  # one more may be under way
    down = log.index(("stream_down", "error"))
    assert log[down - 1] == ("frame", 11)
    assert log[down + 1] == ("face_left", "stream_down")
    assert log[down + 2] == ("stream_up", "reconnected")
    assert log[down + 3] == ("frame", 12)
    assert log[0] == ("stream_up", "connected")
    assert log.count(("face_appeared", None)) == 2  # one track before the drop, a new one after
