"""The command line: argv in, exit code out. The only module that touches argv, stdout and signals.

Exit codes: 0 done (also after q, Esc, Ctrl-C or SIGTERM), 1 failure while running (a live
source lost included), 2 bad input (arguments, config file, source, output path, codec,
weights), 130 when a third interrupt aborted the finish. Errors are one line, never a traceback.
The sources and the outputs are checked before TensorFlow loads, and what native libraries
print to fd 2 is kept off the terminal (`LIVEFACES_NATIVE_LOGS=1` shows it).

What the run says goes through the `livefaces` logger (`livefaces.observe.logs`): plain lines
and the panel on a terminal; timestamped records with levels, one per state change, when stderr
is not a terminal; also `--log-file`, reopened on SIGHUP (which never stops the run).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from livefaces import native_logs
from livefaces.interrupts import EXIT_ABORTED, Hangups, Interrupts

if TYPE_CHECKING:
    from rich.console import Console

    from livefaces.app import OpenCamera, SessionOutcome
    from livefaces.fleet.link import LinkStats
    from livefaces.observe.logs import Logs
    from livefaces.options import RunConfig
    from livefaces.runtime.threaded import CameraSummary

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MAX_SKIPPED_SHOWN = 20


def main(argv: Sequence[str] | None = None) -> int:
    """Run livefaces with these arguments; returns the exit code."""
    stop, abort = threading.Event(), threading.Event()
    interrupts = Interrupts(stop, abort, recording=False)
    hangups = Hangups()
    interrupts.install()
    hangups.install()
    try:
        with native_logs.diverted():
            return _main(argv, interrupts, hangups)
    finally:
        hangups.restore()
        interrupts.restore()


def _main(argv: Sequence[str] | None, interrupts: Interrupts, hangups: Hangups) -> int:
    from livefaces.options import ConfigError, parse_command_line

    try:
        config = parse_command_line(argv)
    except ConfigError as error:
        print(f"livefaces: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    interrupts.recording = any(config.output_for(camera.name) for camera in config.cameras)
    from rich.console import Console

    from livefaces.observe.logs import Logs

    console = Console(stderr=True)
    log_file = Path(config.log_file) if config.log_file else None
    try:
        logs = Logs(console, service=not console.is_terminal, log_file=log_file)
    except OSError as error:
        print(f"livefaces: error: {log_file}: cannot write the log file: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    hangups.targets.append(logs.request_reopen)
    try:
        logs.install()
        return _run(config, console, logs, interrupts, hangups, argv)
    finally:
        hangups.targets.clear()
        logs.close()


def _run(
    config: RunConfig,
    console: Console,
    logs: Logs,
    interrupts: Interrupts,
    hangups: Hangups,
    argv: Sequence[str] | None,
) -> int:
    try:
        from livefaces.app import BadInput, SharedOutputs, open_cameras, run_session

        if config.ray is not None:
            return _run_fleet(config, console, logs, interrupts, hangups, argv)
        cameras = open_cameras(config)
        shared = SharedOutputs(config)
        hangups.targets.append(shared.reopen_event_logs)  # SIGHUP: the event files too
        outcome = run_session(config, cameras, console, interrupts.stop, interrupts.abort, shared)
    except BadInput as error:
        logs.setup_error(f"livefaces: error: {error}")
        return EXIT_BAD_INPUT
    except Exception as error:  # one line, never a traceback
        return _report_error(error, logs)
    return report(outcome, interrupts)


def _run_fleet(
    config: RunConfig,
    console: Console,
    logs: Logs,
    interrupts: Interrupts,
    hangups: Hangups,
    argv: Sequence[str] | None,
) -> int:
    """`--ray`: the cameras on a Ray cluster (`livefaces.fleet`). SIGHUP reads the command line
    and its config file again: cameras join and leave."""
    from livefaces.app import BadInput
    from livefaces.fleet.ray_fleet import FleetError, run_fleet
    from livefaces.options import parse_command_line

    hangup = threading.Event()
    hangups.targets.append(hangup.set)
    try:
        outcome = run_fleet(
            config, console, interrupts.stop, interrupts.abort, hangup, lambda: parse_command_line(argv)
        )
    except (FleetError, BadInput) as error:
        logs.setup_error(f"livefaces: error: {error}")
        return EXIT_BAD_INPUT
    except Exception as error:
        return _report_error(error, logs)
    return report(outcome, interrupts)  # type: ignore[arg-type]


def _report_error(error: Exception, logs: Logs) -> int:
    """One line for an error raised before the cameras ran. Imports nothing heavy: reporting a
    bad source must not load TensorFlow (its weights errors are ValueErrors)."""
    from livefaces.capture import SourceError

    if isinstance(error, (SourceError, ValueError)):
        logs.setup_error(f"livefaces: error: {error}")
        return EXIT_BAD_INPUT
    logs.setup_error(f"livefaces: failed: {type(error).__name__}: {error}")
    return EXIT_FAILED


def report(outcome: SessionOutcome, interrupts: Interrupts) -> int:
    """The end of a run in plain words, per camera: what ended it, what each output holds, what
    was skipped. Returns the exit code. The lines go through the `livefaces` logger (plain on a
    terminal, timestamped in service mode)."""
    several = len(outcome.cameras) > 1
    codes = [EXIT_OK]
    links = getattr(outcome, "links", None)  # a fleet run: each camera's link to its detector
    for index, (camera, summary) in enumerate(zip(outcome.cameras, outcome.summary.cameras)):
        code, head = _camera_head(camera, summary, outcome.summary.aborted, interrupts)
        codes.append(code)
        prefix = f"livefaces: [{camera.spec.name}] " if several else "livefaces: "
        _say(prefix + head, logging.ERROR if code != EXIT_OK else logging.INFO)
        for written in summary.outputs:
            _say(f"{prefix}wrote {written}")
        if links is not None:
            _say_link(prefix, links[index])
        skipped = camera.source.skipped
        for line in skipped[:MAX_SKIPPED_SHOWN]:
            _say(f"{prefix}skipped {line}", logging.WARNING)
        if len(skipped) > MAX_SKIPPED_SHOWN:
            _say(f"{prefix}skipped {len(skipped) - MAX_SKIPPED_SHOWN} more unreadable files", logging.WARNING)
    if outcome.summary.aborted:
        return EXIT_ABORTED
    return max(codes)


def _say_link(prefix: str, link: LinkStats) -> None:
    """A fleet camera's traffic to its detector, and what a failing detector cost it."""
    line = f"{prefix}detector link: {link.sent} requests, {link.sent_bytes / 1e6:.1f} MB sent"
    line += f", {link.dropped} dropped" if link.dropped else ", none dropped"
    line += f" ({link.restarts} detector restarts)" if link.restarts else ""
    _say(line, logging.WARNING if link.dropped else logging.INFO)


def _camera_head(
    camera: OpenCamera, summary: CameraSummary, aborted: bool, interrupts: Interrupts
) -> tuple[int, str]:
    from livefaces.capture import LIVE_KINDS

    info = camera.info
    code, head = EXIT_OK, f"done: {summary.frames} frames"
    if summary.error is not None and summary.error_stage == "capture":
        code, head = EXIT_FAILED, f"source lost: {summary.error}"
    elif summary.error is not None:
        code, head = EXIT_FAILED, f"failed: {summary.error_stage}: {summary.error}"
    elif aborted:
        head = f"aborted by a third interrupt after {summary.frames} frames (every output is complete)"
    elif summary.ended_by == "stop":
        who = interrupts.first or "the window (q, Esc or closed)"
        head = f"stopped by {who} after {summary.frames} frames"
    elif summary.ended_by == "limit":
        head += " (--max-frames/--duration reached)"
    elif info.kind in LIVE_KINDS:
        code, head = EXIT_FAILED, f"source lost: {info.name}: the stream ended after {summary.frames} frames"
    elif _truncated(camera, summary):
        head += f"; {info.name} ended early: {summary.captured} of {info.frame_count} announced frames"
    head += f", {summary.detections} detections"
    unwritten = summary.captured - summary.frames - summary.dropped
    if unwritten > 0:
        head += f"; {unwritten} frames read but not written (stopped before they were processed)"
    if summary.dropped:
        head += f"; {summary.dropped} dropped to keep up with the live source"
    return code, head


def _truncated(camera: OpenCamera, summary: CameraSummary) -> bool:
    """A file that delivered clearly fewer frames than its header announced (a cut-off download)."""
    info = camera.info
    if info.kind != "file" or not info.frame_count:
        return False
    return summary.captured + camera.source.corrupt_frames < 0.98 * info.frame_count - 1


def _say(line: str, level: int = logging.INFO) -> None:
    logging.getLogger("livefaces").log(level, line)


def run() -> None:
    """Console-script entry point.

    SIGINT, SIGTERM and SIGHUP are ignored outside `main` (whose handlers restore this on the way
    out), so a signal that arrives while the process exits cannot kill it mid-exit with a
    misleading status: the exit code stays the one the report announced.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    for signum in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(main())
