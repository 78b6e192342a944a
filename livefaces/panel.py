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


def clock_time(seconds: float) -> str:
    """Seconds as h:mm:ss, or m:ss under an hour."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _fps(rate: float | None) -> str:
    return f"{rate:5.1f}" if rate is not None else "    -"


def progress_text(info: SourceInfo, snap: StatsSnapshot) -> str | None:
    """Progress such as `120/275 frames  44%  elapsed 0:04  ETA 0:05`, for sources of known length.

    The ETA comes from the average rate of the whole run so far, and is left out until a
    second of work stands behind it. None for live sources and sources of unknown length.
    """
    if not info.frame_count or info.live:
        return None
    done = min(snap.displayed, info.frame_count)
    text = f"{done}/{info.frame_count} frames  {100 * done / info.frame_count:3.0f}%  "
    text += f"elapsed {clock_time(snap.elapsed)}"
    if done and snap.elapsed >= 1.0:
        remaining = (info.frame_count - done) * snap.elapsed / done
        text += f"  ETA {clock_time(remaining)}"
    return text


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
    table.add_row("uptime", clock_time(snap.elapsed))
    table.add_row(
        "fps",
        f"capture {_fps(snap.capture_fps)}   detect {_fps(snap.detect_fps)}   "
        f"display {_fps(snap.display_fps)}",
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
    progress = progress_text(info, snap)
    if progress is not None and info.frame_count:
        parts.append(ProgressBar(total=info.frame_count, completed=min(snap.displayed, info.frame_count)))
        parts.append(progress)
    return Panel(Group(*parts), title="livefaces", border_style="green")


def render_line(info: SourceInfo, snap: StatsSnapshot) -> str:
    """The same health as one plain line, for logs."""
    progress = progress_text(info, snap)
    where = f" {progress}" if progress else f" up {clock_time(snap.elapsed)}"

    def rate(name: str, value: float | None) -> str:
        return f"{name}={value:.1f}fps" if value is not None else f"{name}=-"

    return (
        f"livefaces:{where} frames={snap.displayed} {rate('capture', snap.capture_fps)} "
        f"{rate('detect', snap.detect_fps)} {rate('display', snap.display_fps)} "
        f"detect_ms={snap.detect_ms:.1f} latency_ms={snap.latency_ms:.0f} dropped={snap.dropped} "
        f"corrupt={snap.corrupt} faces={snap.faces}"
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
