"""The terminal status: a rich live panel on a terminal, a plain line every few seconds otherwise.

The panel pulls a `StatsSnapshot` at about 4 Hz, independently of the frame rate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from livefaces.capture import SourceInfo
from livefaces.stats import StatsSnapshot


def _eta(info: SourceInfo, snap: StatsSnapshot) -> str | None:
    if not info.frame_count or info.live or snap.display_fps <= 0:
        return None
    remaining = max(info.frame_count - snap.displayed, 0) / snap.display_fps
    return f"{int(remaining // 60):d}:{int(remaining % 60):02d}"


def render_panel(info: SourceInfo, snap: StatsSnapshot, device: str) -> RenderableType:
    """The pipeline's health as a rich renderable."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    size = f"{info.size[0]}x{info.size[1]}" if info.size else "-"
    source_fps = f" @ {info.fps:.2f} fps" if info.fps else ""
    table.add_row("source", f"{info.name} ({info.kind}{', live' if info.live else ''})")
    table.add_row("resolution", f"{size}{source_fps}")
    table.add_row("device", device)
    table.add_row(
        "fps",
        f"capture {snap.capture_fps:5.1f}   detect {snap.detect_fps:5.1f}   display {snap.display_fps:5.1f}",
    )
    table.add_row("detection", f"{snap.detect_ms:6.1f} ms   {snap.detect_every}")
    table.add_row("latency", f"{snap.latency_ms:6.1f} ms capture to display")
    table.add_row(
        "frames",
        f"{snap.captured} captured   {snap.displayed} shown   {snap.dropped} dropped   "
        f"{snap.corrupt} corrupt   queue {snap.queue_depth}",
    )
    table.add_row("faces", str(snap.faces))
    parts: list[RenderableType] = [table]
    if info.frame_count and not info.live:
        eta = _eta(info, snap)
        parts.append(ProgressBar(total=info.frame_count, completed=min(snap.displayed, info.frame_count)))
        parts.append(f"{snap.displayed}/{info.frame_count} frames" + (f"   ETA {eta}" if eta else ""))
    return Panel(Group(*parts), title="livefaces", border_style="green")


def render_line(info: SourceInfo, snap: StatsSnapshot) -> str:
    """The same health as one plain line, for logs."""
    progress = f" {snap.displayed}/{info.frame_count}" if info.frame_count and not info.live else ""
    return (
        f"livefaces: {snap.elapsed:7.1f}s{progress} frames={snap.displayed} "
        f"capture={snap.capture_fps:.1f}fps detect={snap.detect_fps:.1f}fps "
        f"display={snap.display_fps:.1f}fps detect_ms={snap.detect_ms:.1f} "
        f"latency_ms={snap.latency_ms:.0f} dropped={snap.dropped} corrupt={snap.corrupt} faces={snap.faces}"
    )


class StatusReporter:
    """Shows the status while the pipeline runs; `start` and `stop` are idempotent."""

    def __init__(
        self,
        info: SourceInfo,
        snapshot: Callable[[], StatsSnapshot],
        device: str,
        console: Console,
        plain_interval: float = 5.0,
    ) -> None:
        self._info, self._snapshot, self._device = info, snapshot, device
        self._console = console
        self._plain_interval = plain_interval
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._live is not None or self._thread is not None:
                return
            if self._console.is_terminal:
                self._live = Live(
                    get_renderable=lambda: render_panel(self._info, self._snapshot(), self._device),
                    console=self._console,
                    refresh_per_second=4,
                )
                self._live.start()
            else:
                self._thread = threading.Thread(target=self._print_lines, name="status", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._done.set()
            if self._live is not None:
                self._live.stop()
                self._live = None
            if self._thread is not None:
                self._thread.join(2.0)
                self._thread = None
                self._console.print(
                    render_line(self._info, self._snapshot()), highlight=False, soft_wrap=True
                )

    def _print_lines(self) -> None:
        while not self._done.wait(self._plain_interval):
            self._console.print(render_line(self._info, self._snapshot()), highlight=False, soft_wrap=True)
