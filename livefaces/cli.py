"""The command line: argv in, exit code out. The only module that touches argv, stdout and signals.

Exit codes: 0 done (also after q, Esc, Ctrl-C or SIGTERM), 1 failure while running (a live
source lost included), 2 bad input (arguments, source, output path, codec, weights), 130 when a
third interrupt aborted the finish. Errors are one line, never a traceback. The source and the
outputs are checked before TensorFlow loads, and what native libraries print to fd 2 is kept
off the terminal (`LIVEFACES_NATIVE_LOGS=1` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from livefaces import native_logs

if TYPE_CHECKING:
    from rich.console import Console

    from livefaces.capture import SourceInfo
    from livefaces.pipeline import RunSummary, Sink

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ABORTED = 0, 1, 2, 130
ABORT_GRACE_SECONDS = 10.0
LIVE_KINDS = ("stream", "camera")


class BadInput(Exception):
    """An argument or path the run cannot start with (exit code 2)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(message)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return width, height


def _bounded(kind: type, low: float, high: float | None = None):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            upper = f" and <= {high}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"must be >= {low}{upper}, got {text}")
        return value

    return parse


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth reading (not None, not a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _every(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    return _bounded(int, 1)(text)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="livefaces",
        description="Real-time MTCNN face detection on a webcam, stream, video file, image or folder.",
        formatter_class=_DefaultsFormatter,
    )
    parser.add_argument(
        "-s",
        "--source",
        default="demo",
        help="camera index (0), rtsp/http(s)/udp/tcp URL, video file, image, folder, or 'demo'",
    )
    parser.add_argument("-o", "--output", help="annotated video (.mp4 .mkv .mov .avi); a folder for images")
    parser.add_argument(
        "--json", dest="json_path", metavar="FILE", help="JSON Lines of faces per frame; - for stdout"
    )
    parser.add_argument("--no-display", action="store_true", help="run without a window")
    parser.add_argument("--max-frames", type=_bounded(int, 1), help="stop after this many frames")
    parser.add_argument(
        "--duration", type=_bounded(float, 0.0), help="stop after this many seconds of source time"
    )
    parser.add_argument(
        "--detect-every",
        type=_every,
        metavar="N|auto",
        help="auto: track faces, full scans as often as the machine affords (at least 5/s) and O-Net "
        "refinement between them; N: full detection every Nth frame, reused in between "
        "(default: auto for live sources, every frame for files)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="for files: track faces as for live sources (--detect-every auto) instead of the exact "
        "full detection on every frame",
    )
    parser.add_argument(
        "--detect-width", type=_bounded(int, 48), help="downscale wider frames to this width for detection"
    )
    parser.add_argument("--min-face-size", type=_bounded(int, 12), default=20, help="smallest face in pixels")
    parser.add_argument(
        "--thresholds",
        type=_bounded(float, 0.0, 1.0),
        nargs=3,
        metavar=("P", "R", "O"),
        default=[0.6, 0.7, 0.7],
        help="P-Net, R-Net, O-Net thresholds",
    )
    parser.add_argument(
        "--min-confidence", type=_bounded(float, 0.0, 1.0), default=0.0, help="drop weaker faces everywhere"
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "gpu"), default="auto", help="where TensorFlow runs"
    )
    parser.add_argument(
        "--camera-size",
        type=_size,
        metavar="WxH",
        help="resolution asked of a camera; frame size of 'demo' (default 640x480)",
    )
    parser.add_argument(
        "--camera-fps",
        type=_bounded(float, 1.0),
        help="frame rate asked of a camera; rate of 'demo' (default 30)",
    )
    parser.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp", help="RTSP transport")
    parser.add_argument(
        "--timeout",
        type=_bounded(float, 0.1),
        default=10.0,
        help="seconds to wait when opening or reading a stream",
    )
    parser.add_argument("--codec", default="h264", help="video codec of the recording")
    parser.add_argument(
        "--crf", type=_bounded(int, 0, 51), default=23, help="quality of the recording (lower is better)"
    )
    policy = parser.add_mutually_exclusive_group()
    policy.add_argument(
        "--live",
        dest="live",
        action="store_true",
        default=None,
        help="treat the source as live: pace files at their rate, newest frame wins",
    )
    policy.add_argument(
        "--lossless", dest="live", action="store_false", help="never drop a frame, even from a live source"
    )
    return parser  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Everything a run needs, taken from the command line."""

    source: str
    output: Path | None
    json_path: str | None
    display: bool
    max_frames: int | None
    duration: float | None
    detect_every: int | str | None
    realtime: bool
    detect_width: int | None
    min_face_size: int
    thresholds: tuple[float, float, float]
    min_confidence: float
    device: str
    camera_size: tuple[int, int] | None
    camera_fps: float | None
    rtsp_transport: str
    timeout: float
    codec: str
    crf: int
    live: bool | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Config:
        if args.realtime and isinstance(args.detect_every, int):
            raise BadInput("--realtime tracks faces (--detect-every auto): leave out --detect-every N")
        return cls(
            source=args.source,
            output=Path(args.output) if args.output else None,
            json_path=args.json_path,
            display=not args.no_display,
            max_frames=args.max_frames,
            duration=args.duration,
            detect_every=args.detect_every,
            realtime=args.realtime,
            detect_width=args.detect_width,
            min_face_size=args.min_face_size,
            thresholds=tuple(args.thresholds),
            min_confidence=args.min_confidence,
            device=args.device,
            camera_size=args.camera_size,
            camera_fps=args.camera_fps,
            rtsp_transport=args.rtsp_transport,
            timeout=args.timeout,
            codec=args.codec,
            crf=args.crf,
            live=args.live,
        )


def _check_writable(path: Path, what: str) -> None:
    parent = path.parent if path.parent != Path("") else Path(".")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, {what} must be a file")
    if not parent.is_dir():
        raise BadInput(f"{path}: cannot write {what}, folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadInput(f"{path}: cannot write {what}, permission denied")


def check_outputs(config: Config, source_kind: str) -> None:
    """Refuse output paths that cannot be written and codecs that cannot record to them,
    before anything starts."""
    from livefaces.recorder import VIDEO_SUFFIXES, check_codec

    if config.output is not None:
        if source_kind == "images":
            if config.output.exists() and not config.output.is_dir():
                raise BadInput(f"{config.output}: for image sources --output must be a folder")
            parent = config.output.parent if config.output.parent != Path("") else Path(".")
            if not config.output.exists() and not parent.is_dir():
                raise BadInput(f"{config.output}: cannot create the folder, {parent} does not exist")
            target = config.output if config.output.exists() else parent
            if not os.access(target, os.W_OK):
                raise BadInput(f"{config.output}: cannot write there, permission denied")
        else:
            if config.output.suffix.lower() not in VIDEO_SUFFIXES:
                raise BadInput(
                    f"{config.output}: the output video must end in one of {', '.join(VIDEO_SUFFIXES)}"
                )
            _check_writable(config.output, "the video")
            try:
                check_codec(config.codec, config.output)
            except ValueError as error:
                raise BadInput(str(error)) from None
    if config.json_path and config.json_path != "-":
        _check_writable(Path(config.json_path), "the JSON log")


def wants_tracking(detect_every: int | str | None, live: bool, realtime: bool) -> bool:
    """Tracking for `--detect-every auto`, and by default for live sources and `--realtime` files."""
    return detect_every == "auto" or (detect_every is None and (live or realtime))


class Interrupts:
    """SIGINT and SIGTERM during a run, counted.

    The first stops the run cleanly: every output is finished and playable. The second only
    says that the app is finishing. The third aborts the finish: the threads are no longer
    waited for, the outputs are closed with what they hold (frames read but not yet processed
    are left out) and the exit code is 130. Should even closing hang, the process exits after
    `ABORT_GRACE_SECONDS` and says that the recording is incomplete. The handler never
    raises, so no signal can cut a file's finalization in half; its messages go straight to
    the stderr descriptor (printing is not re-entrant).
    """

    def __init__(self, stop: threading.Event, abort: threading.Event, recording: bool) -> None:
        self.stop, self.abort = stop, abort
        self.recording = recording
        self.count = 0
        self.first: str | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.first = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self.stop.set()
        elif self.count == 2:
            what = "the recording" if self.recording else "the outputs"
            _say(f"livefaces: finishing {what}... (interrupt once more to abort)")
        elif self.count == 3:
            self.abort.set()
            _say("livefaces: aborting: closing the outputs with what they hold, without waiting")
            timer = threading.Timer(ABORT_GRACE_SECONDS, _give_up)
            timer.daemon = True
            timer.start()


def _say(line: str) -> None:
    """One line straight to the stderr descriptor: safe inside a signal handler."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        os.write(sys.stderr.fileno(), (line + "\n").encode())


def _give_up() -> None:
    _say("livefaces: aborted: the finish hung; the recording is incomplete and may not play")
    os._exit(EXIT_ABORTED)


def run_pipeline(config: Config, stop: threading.Event, interrupts: Interrupts) -> int:
    """Open the source, build the detector and sinks, run, report. Returns the exit code.

    The source is opened (its first frame read) and the outputs checked before TensorFlow is
    imported: bad input fails in a fraction of a second, with one line.
    """
    from rich.console import Console

    from livefaces.capture import CaptureSettings, open_source
    from livefaces.display import display_available
    from livefaces.panel import StatusReporter
    from livefaces.pipeline import Pipeline, PipelineError, PipelineSettings
    from livefaces.stats import PipelineStats

    console = Console(stderr=True)
    settings = CaptureSettings(
        camera_size=config.camera_size,
        camera_fps=config.camera_fps,
        rtsp_transport=config.rtsp_transport,
        open_timeout=config.timeout,
        read_timeout=config.timeout,
        live=config.live,
        demo_size=config.camera_size or (640, 480),
        demo_fps=config.camera_fps or 30.0,
    )
    source = open_source(config.source, settings)
    check_outputs(config, source.info.kind)
    every = config.detect_every
    tracking = wants_tracking(every, source.info.live, config.realtime)
    if tracking and source.info.kind == "images":
        raise BadInput("--detect-every auto and --realtime track faces across video frames, not images")
    frames = source.frames()  # reads the first frame: a bad source fails here, before any output exists
    show = config.display and display_available()
    if config.display and not show:
        _print(console, "livefaces: no display available, running headless (--no-display)")
    try:
        from livefaces.detector import MTCNN

        detector = MTCNN(
            min_face_size=config.min_face_size, thresholds=config.thresholds, device=config.device
        )
        stats = PipelineStats()
        sinks = _sinks(config, source.info, show, stop)
    except BaseException:
        frames.close()
        raise
    pipeline_settings = PipelineSettings(
        detect_every=every if isinstance(every, int) else None,
        tracking=tracking,
        detect_width=config.detect_width,
        min_confidence=config.min_confidence,
        max_frames=config.max_frames,
        duration=config.duration,
    )
    pipeline = Pipeline(source, detector, sinks, pipeline_settings, stats)
    reporter = StatusReporter(source.info, stats.snapshot, detector.device, console)
    reporter.start()
    try:
        summary = pipeline.run(stop, frames, interrupts.abort)
    except PipelineError as error:
        reporter.stop()
        return _report_failure(console, error, source.info, sinks)
    reporter.stop()
    return _report_run(console, summary, source.info, sinks, interrupts)


def _print(console: Console, line: str) -> None:
    console.print(line, highlight=False, soft_wrap=True, markup=False)


def _report_run(
    console: Console, summary: RunSummary, info: SourceInfo, sinks: list[Sink], interrupts: Interrupts
) -> int:
    """The end of a run in plain words: what ended it, what each output holds, what was skipped."""
    code, head = EXIT_OK, f"done: {summary.frames} frames"
    if summary.aborted:
        complete = all(getattr(sink, "complete", True) for sink in sinks)
        state = "every output is complete" if complete else "the recording is INCOMPLETE"
        code, head = EXIT_ABORTED, f"aborted by a third interrupt after {summary.frames} frames ({state})"
    elif summary.ended_by == "stop":
        who = interrupts.first or "the window (q, Esc or closed)"
        head = f"stopped by {who} after {summary.frames} frames"
    elif summary.ended_by == "limit":
        head += " (--max-frames/--duration reached)"
    elif info.kind in LIVE_KINDS:
        code, head = EXIT_FAILED, f"source lost: {info.name}: the stream ended after {summary.frames} frames"
    elif _truncated(info, summary):
        head += f"; {info.name} ended early: {summary.captured} of {info.frame_count} announced frames"
    head += f", {summary.detections} detections"
    unwritten = summary.captured - summary.frames - summary.dropped
    if unwritten > 0:
        head += f"; {unwritten} frames read but not written (stopped before they were processed)"
    if summary.dropped:
        head += f"; {summary.dropped} dropped to keep up with the live source"
    _print(console, f"livefaces: {head}")
    _print_outputs(console, info, sinks)
    return code


def _truncated(info: SourceInfo, summary: RunSummary) -> bool:
    """A file that delivered clearly fewer frames than its header announced (a cut-off download)."""
    if info.kind != "file" or not info.frame_count:
        return False
    return summary.captured + info.corrupt_frames < 0.98 * info.frame_count - 1


def _report_failure(console: Console, error: Exception, info: SourceInfo, sinks: list[Sink]) -> int:
    from livefaces.capture import SourceError

    reason = getattr(error, "reason", str(error))
    if getattr(error, "stage", "") == "capture" and isinstance(error.__cause__, SourceError):
        _print(console, f"livefaces: source lost: {reason}")
    else:
        _print(console, f"livefaces: failed: {error}")
    _print_outputs(console, info, sinks)
    return EXIT_FAILED


def _print_outputs(console: Console, info: SourceInfo, sinks: list[Sink]) -> None:
    for sink in sinks:
        described = sink.summary()
        if described:
            _print(console, f"livefaces: wrote {described}")
    for skipped in info.skipped[:20]:
        _print(console, f"livefaces: skipped {skipped}")
    if len(info.skipped) > 20:
        _print(console, f"livefaces: skipped {len(info.skipped) - 20} more unreadable files")


def _sinks(config: Config, info: SourceInfo, show: bool, stop: threading.Event) -> list[Sink]:
    """The outputs asked for: window, annotated video or images, JSON Lines."""
    from livefaces.display import WindowSink
    from livefaces.recorder import VideoRecorder
    from livefaces.sinks import ImageFolderSink, JsonLinesSink

    sinks: list[Sink] = []
    if show:
        sinks.append(WindowSink(f"livefaces - {info.name}", stop))
    if config.output is not None and info.kind == "images":
        sinks.append(ImageFolderSink(config.output, info.path))
    elif config.output is not None:
        audio = info.path if info.kind == "file" else None
        sinks.append(VideoRecorder(config.output, info.fps, config.codec, config.crf, audio_from=audio))
    if config.json_path:
        sinks.append(JsonLinesSink(config.json_path))
    return sinks


def main(argv: Sequence[str] | None = None) -> int:
    """Run livefaces with these arguments; returns the exit code."""
    stop, abort = threading.Event(), threading.Event()
    interrupts = Interrupts(stop, abort, recording=False)
    interrupts.install()
    try:
        with native_logs.diverted():
            return _main(argv, stop, interrupts)
    finally:
        interrupts.restore()


def _main(argv: Sequence[str] | None, stop: threading.Event, interrupts: Interrupts) -> int:
    try:
        config = Config.from_args(build_parser().parse_args(argv))
    except BadInput as error:
        print(f"livefaces: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    interrupts.recording = config.output is not None
    try:
        return run_pipeline(config, stop, interrupts)
    except BadInput as error:
        print(f"livefaces: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # one line, never a traceback
        return _report(error)


def _report(error: Exception) -> int:
    """One line for an error raised before the pipeline ran. Imports nothing heavy: reporting a
    bad source must not load TensorFlow (its weights errors are ValueErrors)."""
    from livefaces.capture import SourceError

    if isinstance(error, (SourceError, ValueError)):
        print(f"livefaces: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"livefaces: failed: {type(error).__name__}: {error}", file=sys.stderr)
    return EXIT_FAILED


def run() -> None:
    """Console-script entry point.

    SIGINT and SIGTERM are ignored outside `main` (whose handlers restore this on the way out),
    so an interrupt that arrives while the process exits cannot kill it mid-exit with a
    misleading status: the exit code stays the one the report announced.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(main())
