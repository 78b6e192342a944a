"""Rates on a fake clock, and the panel rendered to a captured console."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

from livefaces.capture import SourceInfo
from livefaces.panel import (
    SessionReporter,
    camera_progress_text,
    quality_text,
    render_session,
    render_session_lines,
)
from livefaces.runtime.detector_service import ServiceLoad
from livefaces.runtime.status import CameraStatus, SessionStatus
from livefaces.sources.quality import HOUR, LinkQuality
from livefaces.stats import PipelineStats, RateMeter, RollingMedian, StatsSnapshot


def one_camera(info: SourceInfo, snap: StatsSnapshot, device: str = "/CPU:0") -> SessionStatus:
    """A session of the single source `info`, online, with these figures."""
    camera = CameraStatus(
        name=info.name,
        source=info.name,
        kind=info.kind,
        live=info.live,
        state="online",
        size=info.size,
        fps=info.fps,
        frame_count=info.frame_count,
        stats=snap,
    )
    return SessionStatus((camera,), device, None)


def line(info: SourceInfo, snap: StatsSnapshot) -> str:
    [only] = render_session_lines(one_camera(info, snap))
    return only


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_is_events_minus_one_over_elapsed() -> None:
    clock = FakeClock()
    meter = RateMeter(window=5, clock=clock, min_events=2, min_seconds=0.0)
    assert meter.rate() is None
    for _ in range(10):
        meter.tick()
        clock.now += 0.04
    assert meter.rate() == pytest.approx(25.0)
    with pytest.raises(ValueError, match="window"):
        RateMeter(window=1)
    with pytest.raises(ValueError, match="min_events"):
        RateMeter(window=5, min_events=6)


def test_same_instant_ticks_do_not_inflate_the_rate() -> None:
    clock = FakeClock()
    meter = RateMeter(clock=clock)
    for _ in range(5):
        meter.tick()
    assert meter.rate() is None


@pytest.mark.parametrize(
    ("events", "spacing", "expected"),
    [
        (2, 0.0001, None),  # two images a tenth of a millisecond apart: no "25126 fps"
        (4, 0.2, None),  # too few events
        (5, 0.1, None),  # 0.4 s: too little time
        (7, 0.1, 10.0),  # 0.6 s and 7 events: enough
        (40, 1 / 30, 30.0),
    ],
)
def test_a_rate_needs_enough_data_behind_it(events: int, spacing: float, expected: float | None) -> None:
    clock = FakeClock()
    meter = RateMeter(clock=clock)
    for _ in range(events):
        meter.tick()
        clock.now += spacing
    rate = meter.rate()
    assert rate is None if expected is None else rate == pytest.approx(expected)


def test_rolling_median() -> None:
    median = RollingMedian(window=3)
    assert median.median() == 0.0
    for value in (10, 1, 5, 7):
        median.add(value)
    assert median.median() == 5


def test_stats_snapshot() -> None:
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    for _ in range(8):
        stats.captured_frame()
        stats.detected_frame(0.02)
        stats.displayed_frame(0.001, 0.05, faces=2, queue_depth=1)
        clock.now += 0.1
    stats.dropped_frame()
    snap = stats.snapshot()
    assert (snap.captured, snap.detected, snap.displayed, snap.dropped) == (8, 8, 8, 1)
    assert snap.capture_fps == pytest.approx(10.0) and snap.detect_ms == pytest.approx(20.0)
    assert snap.latency_ms == pytest.approx(50.0) and snap.faces == 2


def test_progress_shows_counts_percent_elapsed_and_eta() -> None:
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    info = SourceInfo("clip.mp4", "file", live=False, fps=30.0, frame_count=300)
    for _ in range(100):
        stats.displayed_frame(0.001, 0.01, faces=1, queue_depth=0)
    clock.now += 10.0
    [camera] = one_camera(info, stats.snapshot()).cameras
    assert camera_progress_text(camera) == "100/300 frames   33%  elapsed 0:10  ETA 0:20"
    live = SourceInfo("rtsp://cam/x", "stream", live=True)
    [camera] = one_camera(live, stats.snapshot()).cameras
    assert camera_progress_text(camera) is None
    assert "up 0:10" in line(live, stats.snapshot())


def test_panel_shows_uptime_and_no_rate_before_there_is_data() -> None:
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    stats.captured_frame()
    stats.displayed_frame(0.001, 0.01, faces=0, queue_depth=0)
    clock.now += 3725.0
    info = SourceInfo("rtsp://cam/x", "stream", live=True)
    console = Console(file=io.StringIO(), width=100, force_terminal=False, color_system=None)
    console.print(render_session(one_camera(info, stats.snapshot())))
    text = console.file.getvalue()
    assert "uptime" in text and "1:02:05" in text
    assert "display     -" in text
    assert "display=-" in line(info, stats.snapshot())


def sample() -> tuple[SourceInfo, PipelineStats]:
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    for _ in range(31):
        stats.captured_frame()
        stats.displayed_frame(0.002, 0.04, faces=3, queue_depth=2)
        clock.now += 1 / 30
    info = SourceInfo(
        "rtsp://***@cam/stream", "file", live=False, fps=29.97, size=(640, 360), frame_count=275
    )
    return info, stats


def test_panel_shows_health_and_progress() -> None:
    info, stats = sample()
    console = Console(file=io.StringIO(), width=100, force_terminal=False, color_system=None)
    console.print(render_session(one_camera(info, stats.snapshot())))
    text = console.file.getvalue()
    for needle in (
        "rtsp://***@cam/stream",
        "640x360 @ 29.97 fps",
        "/CPU:0",
        "display  30.0",
        "31/275 frames",
        "ETA",
    ):
        assert needle in text
    assert "faces" in text and "3" in text


def test_plain_line_and_reporter_off_a_terminal() -> None:
    info, stats = sample()
    assert "frames=31" in line(info, stats.snapshot())
    console = Console(file=io.StringIO(), width=300, force_terminal=False)
    reporter = SessionReporter(lambda: one_camera(info, stats.snapshot()), console, plain_interval=3600)
    reporter.start()
    reporter.start()
    reporter.stop()
    reporter.stop()
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livefaces:") and "31/275" in lines[0]


LOAD = ServiceLoad(
    calls_per_second=12.5,
    mean_batch=2.4,
    ms_per_call=31.0,
    busy_percent=77.0,
    pending=1,
    served=300,
    errors=0,
    replaced=4,
)


def snapshot(**changes: object) -> StatsSnapshot:
    values: dict[str, object] = dict(
        elapsed=12.0,
        captured=40,
        detected=38,
        displayed=31,
        capture_fps=30.0,
        detect_fps=7.5,
        display_fps=29.5,
        detect_ms=21.3,
        draw_ms=1.0,
        latency_ms=48.0,
        dropped=2,
        queue_depth=1,
        faces=3,
        corrupt=1,
        detect_every="tracking, 7.5 full scans/s",
    )
    values.update(changes)
    return StatsSnapshot(**values)  # type: ignore[arg-type]


FRONT = CameraStatus(
    "front", "rtsp://***@cam/stream", "stream", True, "online", (1280, 720), 25.0, None, snapshot()
)
YARD = CameraStatus(
    "yard",
    "http://cam2/v.mjpg?pwd=***",
    "stream",
    True,
    "connecting",
    None,
    None,
    None,
    snapshot(capture_fps=None, detect_fps=None, display_fps=None, displayed=0, faces=0, dropped=0),
    error="timed out",
)
CLIP = CameraStatus(
    "clip",
    "clip.mp4",
    "file",
    False,
    "online",
    (640, 360),
    29.97,
    275,
    snapshot(detect_every="every frame", dropped=0, faces=5),
)


def rendered(status: SessionStatus, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(render_session(status))
    return console.file.getvalue()


def test_one_camera_keeps_every_fact_of_the_detailed_panel() -> None:
    text = rendered(SessionStatus((CLIP,), "/CPU:0", LOAD))
    for needle in (
        "clip.mp4 (file)",
        "640x360 @ 29.97 fps",
        "/CPU:0",
        "uptime  0:12",
        "capture  30.0   detect   7.5   display  29.5",
        "21.3 ms   every frame",
        "48.0 ms capture to display",
        "40 captured   31 shown   0 dropped   1 corrupt   queue 1",
        "faces  5",
        "31/275 frames   11%  elapsed 0:12  ETA 1:34",
        "12.5 calls/s   2.4 per call   31 ms/call   busy 77%",
    ):
        assert needle in text, needle
    assert "━" in text  # the progress bar
    assert "state" not in text  # an online camera needs no state row


def test_one_camera_that_is_not_online_says_so_and_shows_no_rates() -> None:
    text = rendered(SessionStatus((YARD,), "/CPU:0", None))
    assert "connecting: timed out" in text and "http://cam2/v.mjpg?pwd=***" in text
    assert "capture     -   detect     -   display     -" in text
    assert "detector" not in text and "━" not in text
    (line,) = render_session_lines(SessionStatus((YARD,), "/CPU:0", None))
    assert line.startswith("livefaces: state=connecting up 0:12 frames=0 capture=- detect=- display=-")
    assert line.endswith("error=timed out")


def test_three_cameras_one_row_each_in_order_with_the_detector_load() -> None:
    text = rendered(SessionStatus((FRONT, YARD, CLIP), "/CPU:0", LOAD))
    lines = text.splitlines()
    assert "device /CPU:0" in text and "2/3 cameras online" in text
    assert "detector 12.5 calls/s   2.4 per call   31 ms/call   busy 77%" in text
    header = next(i for i, line in enumerate(lines) if "camera" in line and "source" in line)
    for column in ("state", "resolution @ fps", "fps in/shown", "drops", "faces", "cadence", "latency"):
        assert column in lines[header]
    rows = [
        next(i for i, line in enumerate(lines) if f" {name} " in line) for name in ("front", "yard", "clip")
    ]
    assert header < rows[0] < rows[1] < rows[2]
    front, yard, clip = (lines[i] for i in rows)
    assert "rtsp://***@cam/stream" in front and "online" in front and "1280x720 @ 25" in front
    assert "30.0 / 29.5" in front and "48 ms" in front and "tracking, 7.5" in front
    assert "connecting" in yard and "- / -" in yard
    assert "640x360 @ 29.97" in clip and "every frame" in clip
    progress = next(line for line in lines if "31/275 frames" in line)
    assert "clip" in progress and "━" in progress and "ETA 1:34" in progress
    assert "yard: timed out" in text


def test_without_a_detector_load_the_header_leaves_it_out() -> None:
    text = rendered(SessionStatus((FRONT, CLIP), "/GPU:0", None))
    assert "device /GPU:0" in text and "2/2 cameras online" in text and "calls/s" not in text


def test_plain_lines_one_per_camera_prefixed_by_name() -> None:
    lines = render_session_lines(SessionStatus((FRONT, YARD, CLIP), "/CPU:0", LOAD))
    assert [line.split()[1] for line in lines[:3]] == ["[front]", "[yard]", "[clip]"]
    assert all(line.startswith("livefaces: [") for line in lines[:3])
    assert "state=online up 0:12 frames=31 capture=30.0fps" in lines[0]
    assert "capture=- detect=- display=-" in lines[1]
    assert "31/275 frames" in lines[2] and "faces=5" in lines[2]
    assert lines[3] == f"livefaces: {LOAD.describe()}"
    (single,) = render_session_lines(SessionStatus((CLIP,), "/CPU:0", LOAD))
    assert single.startswith("livefaces: 31/275 frames") and "frames=31" in single


def test_session_reporter_off_a_terminal_prints_final_lines_once() -> None:
    console = Console(file=io.StringIO(), width=300, force_terminal=False)
    status = SessionStatus((FRONT, YARD, CLIP), "/CPU:0", None)
    reporter = SessionReporter(lambda: status, console, plain_interval=3600)
    reporter.start()
    reporter.start()
    reporter.stop()
    reporter.stop()
    reporter.start()  # after stop: nothing
    reporter.stop()
    lines = console.file.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["[front]", "[yard]", "[clip]"]


def test_session_reporter_on_a_terminal_draws_the_panel() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    calls: list[int] = []

    def status() -> SessionStatus:
        calls.append(1)
        return SessionStatus((FRONT, CLIP), "/CPU:0", LOAD)

    reporter = SessionReporter(status, console)
    reporter.start()
    reporter.stop()
    reporter.stop()
    text = console.file.getvalue()
    assert calls and "front" in text and "31/275 frames" in text and "busy 77%" in text


def test_a_failing_status_reader_does_not_kill_the_reporter() -> None:
    console = Console(file=io.StringIO(), width=300, force_terminal=False)

    def broken() -> SessionStatus:
        raise RuntimeError("runner gone")

    reporter = SessionReporter(broken, console, plain_interval=3600)
    reporter.start()
    reporter.stop()
    assert "status unavailable: RuntimeError('runner gone')" in console.file.getvalue()


# A live camera's link: reconnecting, its last error, the last hour's quality.

FLAKY = dataclasses.replace(
    FRONT,
    name="gate",
    state="reconnecting",
    error="rtsp://***@gate/stream: no data for 5 s (read timeout)",
    reconnects=2,
    stalls=1,
    attempt=3,
    next_try_in=4.2,
    quality=LinkQuality(seconds=HOUR, reconnects=2, stalls=1, frames=86_400, expected_fps=25.0),
)
RECOVERED = dataclasses.replace(FLAKY, state="online", attempt=0, next_try_in=None)


def test_a_reconnecting_camera_shows_its_attempt_next_try_last_error_and_link_quality() -> None:
    text = rendered(SessionStatus((FLAKY,), "/CPU:0", None))
    assert "reconnecting (attempt 3, next try in 4.2 s): rtsp://***@gate/stream: no data for 5 s" in text
    assert "last hour: 2 reconnects, 1 stall, 24.0 of 25 fps" in text
    (line,) = render_session_lines(SessionStatus((FLAKY,), "/CPU:0", None))
    assert " state=reconnecting " in line
    link = "attempt=3 next_try_in=4.2 reconnects_1h=2 stalls_1h=1 fps_1h=24.0/25"
    assert f"{link} error=rtsp://***@gate" in line


def test_back_online_the_last_error_stays_on_show_apart_from_the_state() -> None:
    text = rendered(SessionStatus((RECOVERED,), "/CPU:0", None))
    assert "last error  rtsp://***@gate/stream: no data for 5 s (read timeout)" in text
    assert "state" not in text and "reconnecting" not in text


def test_several_cameras_show_the_link_in_a_compact_column() -> None:
    early = dataclasses.replace(
        FLAKY, name="door", next_try_in=None, quality=LinkQuality(90.0, 0, 3, 1800, 25.0)
    )
    text = rendered(SessionStatus((FLAKY, RECOVERED, early, CLIP), "/CPU:0", LOAD), width=150)
    lines = text.splitlines()
    header = next(line for line in lines if "camera" in line and "source" in line)
    assert "link 1h" in header
    gate = next(line for line in lines if " gate " in line)
    assert "reconnecting #3 in 4.2s" in gate and "2 rc 1 st 96%" in gate
    door = next(line for line in lines if " door " in line)
    assert "reconnecting #3 now" in door and "0 rc 3 st 80%" in door
    clip = next(line for line in lines if " clip " in line)
    assert clip.rstrip("│ ").endswith("48 ms  -")  # a file has no link
    assert "gate: rtsp://***@gate/stream: no data for 5 s (read timeout)" in text
    assert "gate: last error: rtsp://***@gate/stream" in text  # the one back online


def test_link_quality_over_less_than_an_hour_says_so() -> None:
    quality = LinkQuality(seconds=754.0, reconnects=1, stalls=0, frames=7540, expected_fps=None)
    assert quality_text(quality) == "last 12:34: 1 reconnect, 0 stalls, 10.0 of ? fps"
    assert quality_text(quality, short=True) == "1 rc 0 st 10.0 fps"
    assert LinkQuality(0.5, 0, 0, 3, 25.0).fps is None
