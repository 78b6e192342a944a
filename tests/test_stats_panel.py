"""Rates on a fake clock, and the panel rendered to a captured console."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from livefaces.capture import SourceInfo
from livefaces.panel import StatusReporter, render_line, render_panel
from livefaces.stats import PipelineStats, RateMeter, RollingMedian


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_is_events_minus_one_over_elapsed() -> None:
    clock = FakeClock()
    meter = RateMeter(window=5, clock=clock)
    assert meter.rate() == 0.0
    for _ in range(10):
        meter.tick()
        clock.now += 0.04
    assert meter.rate() == pytest.approx(25.0)
    with pytest.raises(ValueError, match="window"):
        RateMeter(window=1)


def test_same_instant_ticks_do_not_inflate_the_rate() -> None:
    clock = FakeClock()
    meter = RateMeter(clock=clock)
    for _ in range(5):
        meter.tick()
    assert meter.rate() == 0.0


def test_rolling_median() -> None:
    median = RollingMedian(window=3)
    assert median.median() == 0.0
    for value in (10, 1, 5, 7):
        median.add(value)
    assert median.median() == 5


def test_stats_snapshot() -> None:
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    for _ in range(4):
        stats.captured_frame()
        stats.detected_frame(0.02)
        stats.displayed_frame(0.001, 0.05, faces=2, queue_depth=1)
        clock.now += 0.1
    stats.dropped_frame()
    snap = stats.snapshot()
    assert (snap.captured, snap.detected, snap.displayed, snap.dropped) == (4, 4, 4, 1)
    assert snap.capture_fps == pytest.approx(10.0) and snap.detect_ms == pytest.approx(20.0)
    assert snap.latency_ms == pytest.approx(50.0) and snap.faces == 2


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
