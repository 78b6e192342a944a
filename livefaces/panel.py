"""The terminal status: a rich live panel on a terminal, plain lines every few seconds otherwise.

The panel pulls a `SessionStatus` (every camera plus the shared detector's load) at about 4 Hz,
independently of the frame rates. One camera gets the detailed layout users know; several get a
header with the detector's load and one table row per camera, with progress bars for cameras of
known length (files, folders). Rates may be None (not enough data yet) and show as "-". Live
cameras also show their link: reconnecting (attempt n, next try in s), the last error, and the
last hour's reconnects, stalls and frame rate against the announced one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from livefaces.runtime.detector_service import ServiceLoad
from livefaces.runtime.status import ONLINE, RECONNECTING, CameraStatus, SessionStatus
from livefaces.sources.quality import HOUR, MINUTE, LinkQuality
from livefaces.stats import StatsSnapshot

PREFIX = "livefaces:"


def clock_time(seconds: float) -> str:
    """Seconds as h:mm:ss, or m:ss under an hour."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _fps(rate: float | None) -> str:
    return f"{rate:5.1f}" if rate is not None else "    -"


def _short_fps(rate: float | None) -> str:
    return f"{rate:.1f}" if rate is not None else "-"


def _progress(frame_count: int | None, live: bool, snap: StatsSnapshot) -> str | None:
    if not frame_count or live:
        return None
    done = min(snap.displayed, frame_count)
    text = f"{done}/{frame_count} frames  {100 * done / frame_count:3.0f}%  "
    text += f"elapsed {clock_time(snap.elapsed)}"
    if done and snap.elapsed >= 1.0:
        remaining = (frame_count - done) * snap.elapsed / done
        text += f"  ETA {clock_time(remaining)}"
    return text


def camera_progress_text(camera: CameraStatus) -> str | None:
    """Progress such as `120/275 frames  44%  elapsed 0:04  ETA 0:05`, for cameras of known length.

    The ETA comes from the average rate of the whole run so far, and is left out until a
    second of work stands behind it. None for live cameras and sources of unknown length.
    """
    return _progress(camera.frame_count, camera.live, camera.stats)


def _resolution(size: tuple[int, int] | None, fps: float | None, short: bool = False) -> str:
    text = f"{size[0]}x{size[1]}" if size else "-"
    if not fps:
        return text
    return f"{text} @ {fps:.4g}" if short else f"{text} @ {fps:.2f} fps"


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def state_text(camera: CameraStatus, short: bool = False) -> str:
    """The camera's state; while reconnecting, the attempt and when it comes:
    `reconnecting (attempt 3, next try in 4.0 s)`, or `reconnecting #3 in 4.0s` when short."""
    if camera.state != RECONNECTING:
        return camera.state
    if camera.next_try_in is None:
        return (
            f"reconnecting #{camera.attempt} now"
            if short
            else f"reconnecting (attempt {camera.attempt}, now)"
        )
    wait = _seconds(camera.next_try_in)
    if short:
        return f"reconnecting #{camera.attempt} in {wait}s"
    return f"reconnecting (attempt {camera.attempt}, next try in {wait} s)"


def quality_text(quality: LinkQuality, short: bool = False) -> str:
    """The connection over the last hour (or since start): `last hour: 2 reconnects, 1 stall,
    14.8 of 15 fps`; short: `2 rc 1 st 99%` (the frame rate as a share of the announced one)."""
    fps = f"{quality.fps:.1f}" if quality.fps is not None else "-"
    expected = f"{quality.expected_fps:.4g}" if quality.expected_fps else "?"
    if short:
        share = f"{fps} fps"
        if quality.fps is not None and quality.expected_fps:
            share = f"{100 * quality.fps / quality.expected_fps:.0f}%"
        return f"{quality.reconnects} rc {quality.stalls} st {share}"
    span = "last hour" if quality.seconds >= HOUR - MINUTE else f"last {clock_time(quality.seconds)}"
    stalls = f"{quality.stalls} stall{'s' if quality.stalls != 1 else ''}"
    reconnects = f"{quality.reconnects} reconnect{'s' if quality.reconnects != 1 else ''}"
    return f"{span}: {reconnects}, {stalls}, {fps} of {expected} fps"


def _progress_bar(camera: CameraStatus) -> ProgressBar | None:
    """A bar of frames shown against the announced length, for cameras of known length."""
    if camera_progress_text(camera) is None or not camera.frame_count:
        return None
    return ProgressBar(total=camera.frame_count, completed=min(camera.stats.displayed, camera.frame_count))


def _detail(camera: CameraStatus, device: str, load: ServiceLoad | None) -> RenderableType:
    """One camera in full: every fact of the single-camera panel, plus its state and the detector."""
    snap = camera.stats
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    table.add_row("source", Text(f"{camera.source} ({camera.kind}{', live' if camera.live else ''})"))
    if camera.state != ONLINE:
        table.add_row("state", Text(state_text(camera) + (f": {camera.error}" if camera.error else "")))
    elif camera.error:
        table.add_row("last error", Text(camera.error))
    if camera.quality is not None:
        table.add_row("link", quality_text(camera.quality))
    table.add_row("resolution", _resolution(camera.size, camera.fps))
    table.add_row("device", device)
    if load is not None:
        table.add_row("detector", load_text(load))
    table.add_row("uptime", clock_time(snap.elapsed))
    table.add_row(
        "fps",
        f"capture {_fps(snap.capture_fps)}   detect {_fps(snap.detect_fps)}   "
        f"display {_fps(snap.display_fps)}",
    )
    table.add_row("detection", Text(f"{snap.detect_ms:6.1f} ms   {snap.detect_every}"))
    table.add_row("latency", f"{snap.latency_ms:6.1f} ms capture to display")
    table.add_row(
        "frames",
        f"{snap.captured} captured   {snap.displayed} shown   {snap.dropped} dropped   "
        f"{snap.corrupt} corrupt   queue {snap.queue_depth}",
    )
    table.add_row("faces", str(snap.faces))
    parts: list[RenderableType] = [table]
    progress = _progress_rows([camera], named=False)
    if progress is not None:
        parts.append(progress)
    return Panel(Group(*parts), title="livefaces", border_style="green")


def load_text(load: ServiceLoad) -> str:
    """The shared detector's load: calls per second, mean batch, ms per call, busy share, backlog."""
    text = (
        f"{load.calls_per_second:.1f} calls/s   {load.mean_batch:.1f} per call   "
        f"{load.ms_per_call:.0f} ms/call   busy {load.busy_percent:.0f}%   {load.pending} pending"
    )
    return text + (f"   {load.errors} errors" if load.errors else "")


def _progress_rows(cameras: list[CameraStatus], named: bool) -> Table | None:
    """A bar and its text on one line for each camera of known length; None when there is none."""
    grid = Table.grid(padding=(0, 2))
    if named:
        grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(width=30)
    grid.add_column()
    for camera in cameras:
        bar = _progress_bar(camera)
        if bar is not None:
            name = [Text(camera.name)] if named else []
            grid.add_row(*name, bar, Text(camera_progress_text(camera) or ""))
    return grid if grid.row_count else None


def _header(status: SessionStatus) -> Text:
    elapsed = max((camera.stats.elapsed for camera in status.cameras), default=0.0)
    online = sum(camera.state == ONLINE for camera in status.cameras)
    text = Text(f"device {status.device}   uptime {clock_time(elapsed)}   ")
    text.append(f"{online}/{len(status.cameras)} cameras online")
    if status.detector is not None:
        text.append(f"\ndetector {load_text(status.detector)}")
    return text


_STATE_STYLE = {
    ONLINE: "green",
    "connecting": "yellow",
    RECONNECTING: "yellow",
    "ended": "blue",
    "stopped": "blue",
}


def _overview(status: SessionStatus) -> RenderableType:
    """Several cameras: a header with the detector's load, one row per camera, progress below."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("camera", style="bold cyan", no_wrap=True)
    table.add_column("source", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("resolution @ fps", no_wrap=True)
    table.add_column("fps in/shown", justify="right", no_wrap=True)
    table.add_column("drops", justify="right")
    table.add_column("faces", justify="right")
    table.add_column("cadence", overflow="fold", max_width=18)
    table.add_column("latency", justify="right", no_wrap=True)
    links = any(camera.quality is not None for camera in status.cameras)
    if links:
        table.add_column("link 1h", no_wrap=True)
    for camera in status.cameras:
        snap = camera.stats
        link = [quality_text(camera.quality, short=True) if camera.quality is not None else "-"]
        table.add_row(
            Text(camera.name),
            Text(camera.source),
            Text(state_text(camera, short=True), style=_STATE_STYLE.get(camera.state, "red")),
            _resolution(camera.size, camera.fps, short=True),
            f"{_short_fps(snap.capture_fps)} / {_short_fps(snap.display_fps)}",
            str(snap.dropped),
            str(snap.faces),
            Text(snap.detect_every),
            f"{snap.latency_ms:.0f} ms",
            *(link if links else []),
        )
    parts: list[RenderableType] = [_header(status), table]
    progress = _progress_rows(list(status.cameras), named=True)
    if progress is not None:
        parts.append(progress)
    for camera in status.cameras:
        if camera.error and camera.state == ONLINE:
            parts.append(Text(f"{camera.name}: last error: {camera.error}", style="dim"))
        elif camera.error:
            parts.append(Text(f"{camera.name}: {camera.error}", style="red"))
    return Panel(Group(*parts), title="livefaces", border_style="green")


def render_session(status: SessionStatus) -> RenderableType:
    """The session's health as a rich renderable.

    One camera: the detailed panel (source, state when not online, resolution, device, detector
    load, uptime, capture/detect/display fps, ms per detection and cadence, latency, frame
    counters, queue, faces, progress). Several: a header (device, detector load, cameras online)
    and a table with one row per camera in the order given, then progress bars for files.
    """
    if len(status.cameras) == 1:
        return _detail(status.cameras[0], status.device, status.detector)
    return _overview(status)


def _camera_line(camera: CameraStatus, prefix: str, with_state: bool) -> str:
    snap = camera.stats
    progress = camera_progress_text(camera)
    where = f" {progress}" if progress else f" up {clock_time(snap.elapsed)}"
    state = f" state={camera.state}" if with_state or camera.state != ONLINE else ""

    def rate(name: str, value: float | None) -> str:
        return f"{name}={value:.1f}fps" if value is not None else f"{name}=-"

    line = (
        f"{prefix}{state}{where} frames={snap.displayed} {rate('capture', snap.capture_fps)} "
        f"{rate('detect', snap.detect_fps)} {rate('display', snap.display_fps)} "
        f"detect_ms={snap.detect_ms:.1f} latency_ms={snap.latency_ms:.0f} dropped={snap.dropped} "
        f"corrupt={snap.corrupt} faces={snap.faces}"
    )
    return line + _link_fields(camera) + (f" error={camera.error}" if camera.error else "")


def _link_fields(camera: CameraStatus) -> str:
    """` attempt=3 next_try_in=4.0` while reconnecting; the last hour's link for live cameras."""
    fields = ""
    if camera.state == RECONNECTING:
        fields += f" attempt={camera.attempt}"
        if camera.next_try_in is not None:
            fields += f" next_try_in={camera.next_try_in:.1f}"
    quality = camera.quality
    if quality is not None:
        fps = f"{quality.fps:.1f}" if quality.fps is not None else "-"
        expected = f"{quality.expected_fps:.4g}" if quality.expected_fps else "-"
        fields += f" reconnects_1h={quality.reconnects} stalls_1h={quality.stalls} fps_1h={fps}/{expected}"
    return fields


def render_session_lines(status: SessionStatus) -> list[str]:
    """Plain lines for logs (stderr not a terminal): one per camera, in the order given.

    One camera keeps the single-camera line (`livefaces: 31/275 frames ... frames=31 ...`, with
    `state=` only when not online). Several cameras: each line starts `livefaces: [name]
    state=...`, and a last line gives the detector's load when known.
    """
    if len(status.cameras) == 1:
        return [_camera_line(status.cameras[0], PREFIX, with_state=False)]
    lines = [_camera_line(camera, f"{PREFIX} [{camera.name}]", with_state=True) for camera in status.cameras]
    if status.detector is not None:
        lines.append(f"{PREFIX} {status.detector.describe()}")
    return lines


class SessionReporter:
    """Shows a session's status while it runs; `start` and `stop` are idempotent and locked.

    On a terminal a rich `Live` pulls `status()` at 4 Hz and leaves the last panel on screen
    at `stop`. Elsewhere a thread prints `render_session_lines` every `plain_interval` seconds
    (waiting on an event, so `stop` is immediate), and `stop` prints the final lines once.
    """

    def __init__(
        self, status: Callable[[], SessionStatus], console: Console, plain_interval: float = 5.0
    ) -> None:
        self._status = status
        self._console = console
        self._plain_interval = plain_interval
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def start(self) -> None:
        """Begin showing the status (a second call, or a call after `stop`, does nothing)."""
        with self._lock:
            if self._live is not None or self._thread is not None or self._done.is_set():
                return
            if self._console.is_terminal:
                self._live = Live(get_renderable=self._render, console=self._console, refresh_per_second=4)
                self._live.start()
            else:
                self._thread = threading.Thread(target=self._print_lines, name="status", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop showing it: the last panel stays on screen, or the final plain lines are printed."""
        with self._lock:
            self._done.set()
            if self._live is not None:
                self._live.stop()
                self._live = None
            if self._thread is not None:
                self._thread.join(2.0)
                self._thread = None
                self._print(self._lines())

    def _render(self) -> RenderableType:
        try:
            return render_session(self._status())
        except Exception as error:  # the refresh thread must outlive a failing status reader
            return Text(f"livefaces: status unavailable: {error!r}")

    def _lines(self) -> list[str]:
        try:
            return render_session_lines(self._status())
        except Exception as error:
            return [f"{PREFIX} status unavailable: {error!r}"]

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            self._console.print(line, highlight=False, soft_wrap=True, markup=False)

    def _print_lines(self) -> None:
        while not self._done.wait(self._plain_interval):
            self._print(self._lines())
