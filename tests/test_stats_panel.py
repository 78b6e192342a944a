"""Rates on a fake clock, and the panel rendered to a captured console."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from livefaces.capture import SourceInfo
from livefaces.panel import StatusReporter, progress_text, render_line, render_panel
from livefaces.stats import PipelineStats, RateMeter, RollingMedian


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
    assert progress_text(info, stats.snapshot()) == "100/300 frames   33%  elapsed 0:10  ETA 0:20"
    live = SourceInfo("rtsp://cam/x", "stream", live=True)
    assert progress_text(live, stats.snapshot()) is None
    assert "up 0:10" in render_line(live, stats.snapshot())


def test_panel_shows_uptime_and_no_rate_before_there_is_data() -> None:
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    stats.captured_frame()
    stats.displayed_frame(0.001, 0.01, faces=0, queue_depth=0)
    clock.now += 3725.0
    info = SourceInfo("rtsp://cam/x", "stream", live=True)
    console = Console(file=io.StringIO(), width=100, force_terminal=False, color_system=None)
    console.print(render_panel(info, stats.snapshot(), "/CPU:0"))
    text = console.file.getvalue()
    assert "uptime" in text and "1:02:05" in text
    assert "display     -" in text
    assert "display=-" in render_line(info, stats.snapshot())


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
    console.print(render_panel(info, stats.snapshot(), "/CPU:0"))
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
    assert "frames=31" in render_line(info, stats.snapshot())
    console = Console(file=io.StringIO(), width=300, force_terminal=False)
    reporter = StatusReporter(info, stats.snapshot, "/CPU:0", console, plain_interval=3600)
    reporter.start()
    reporter.start()
    reporter.stop()
    reporter.stop()
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livefaces:") and "31/275" in lines[0]
