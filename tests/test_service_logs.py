"""Service-mode logging: one timestamped line per state change, never per frame; the log file
reopened on a real SIGHUP after logrotate's rename; plain terminal lines unchanged."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from livefaces.observe.logs import STATE_LOGGER, Logs, ReopeningFileHandler, TimestampFormatter, log
from livefaces.observe.state_log import StateLog, StatusWatcher
from livefaces.runtime.status import CameraStatus, SessionStatus
from livefaces.stats import StatsSnapshot
from tests.log_lines import RECORD, messages
from tests.test_cli_process import environment

TIMEOUT = 120


class Keep(logging.Handler):
    """A real handler that keeps (level, message) of every record."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.getMessage()))


@pytest.fixture
def kept() -> Keep:
    logger = logging.getLogger("tests.state")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = Keep()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def stats(shown: int, faces: int = 0) -> StatsSnapshot:
    return StatsSnapshot(
        elapsed=shown / 30,
        captured=shown + 1,
        detected=shown // 3,
        displayed=shown,
        capture_fps=30.0,
        detect_fps=10.0,
        display_fps=30.0,
        detect_ms=20.0,
        draw_ms=1.0,
        latency_ms=float(shown % 7),
        dropped=0,
        queue_depth=shown % 3,
        faces=faces,
        corrupt=0,
        detect_every="auto",
    )


FRONT = CameraStatus(
    "front", "rtsp://***@cam/x", "stream", True, "connecting", (1280, 720), 25.0, None, stats(0)
)


def session(*cameras: CameraStatus) -> SessionStatus:
    return SessionStatus(cameras, "/CPU:0", None)


def test_one_line_per_state_change_and_none_per_frame(kept: Keep) -> None:
    state_log = StateLog(logging.getLogger("tests.state"), clock=lambda: 0.0)
    online = dataclasses.replace(FRONT, state="online")
    timeline = [
        FRONT,
        *(dataclasses.replace(online, stats=stats(n, faces=n % 4)) for n in range(1, 300)),  # frames flow
        dataclasses.replace(
            online, state="reconnecting", attempt=1, next_try_in=1.0, error="Connection refused"
        ),
        dataclasses.replace(
            online, state="reconnecting", attempt=1, next_try_in=0.5, error="Connection refused"
        ),
        dataclasses.replace(
            online, state="reconnecting", attempt=2, next_try_in=2.0, error="Connection refused"
        ),
        dataclasses.replace(online, reconnects=1, stats=stats(301)),
        dataclasses.replace(online, reconnects=1, stats=stats(302)),
        dataclasses.replace(online, state="lost", reconnects=1, error="the stream ended"),
    ]
    for camera in timeline:
        state_log.observe(session(camera))
    state_log.finish(session(timeline[-1]))
    state_log.finish(session(timeline[-1]))  # once
    assert kept.lines == [
        ("INFO", "livefaces: session started: 1 camera (front) on /CPU:0"),
        ("INFO", "livefaces: [front] connecting to rtsp://***@cam/x"),
        ("INFO", "livefaces: [front] online: rtsp://***@cam/x, 1280x720 @ 25 fps"),
        ("INFO", "livefaces: [front] online (reconnect 1): rtsp://***@cam/x, 1280x720 @ 25 fps"),
        ("ERROR", "livefaces: [front] lost: the stream ended"),
        ("INFO", "livefaces: session ended: front lost"),
    ]


def test_several_cameras_end_and_files_log_their_progress_now_and_then(kept: Keep) -> None:
    now = [0.0]
    state_log = StateLog(logging.getLogger("tests.state"), clock=lambda: now[0], progress_seconds=60)
    clip = CameraStatus("clip", "clip.mp4", "file", False, "online", (640, 360), 29.97, 275, stats(31))
    desk = dataclasses.replace(FRONT, name="desk", state="online")
    for second in range(0, 150, 5):  # 2.5 minutes of polls: progress at 60 s and 120 s only
        now[0] = float(second)
        state_log.observe(session(clip, desk))
    state_log.finish(
        session(dataclasses.replace(clip, state="ended"), dataclasses.replace(desk, state="stopped"))
    )
    lines = [line for _, line in kept.lines]
    assert lines[0] == "livefaces: session started: 2 cameras (clip, desk) on /CPU:0"
    assert [line for line in lines if "progress" in line] == [
        "livefaces: [clip] progress: 31/275 frames 11% elapsed 0:01 ETA 0:08",
        "livefaces: [clip] progress: 31/275 frames 11% elapsed 0:01 ETA 0:08",
    ]
    assert "livefaces: [clip] ended after 32 frames captured, 31 shown" in lines
    assert "livefaces: [desk] stopped after 1 frames captured, 0 shown" in lines
    assert lines[-1] == "livefaces: session ended: clip ended, desk stopped"


def test_the_watcher_hands_over_the_first_and_the_final_status(kept: Keep) -> None:
    statuses = iter([session(FRONT), session(dataclasses.replace(FRONT, state="stopped"))])
    watcher = StatusWatcher(lambda: next(statuses), StateLog(logging.getLogger("tests.state")), interval=3600)
    watcher.start()
    watcher.stop()
    watcher.stop()
    assert [line for _, line in kept.lines] == [
        "livefaces: session started: 1 camera (front) on /CPU:0",
        "livefaces: [front] connecting to rtsp://***@cam/x",
        "livefaces: [front] stopped after 1 frames captured, 0 shown",
        "livefaces: session ended: front stopped",
    ]


def test_a_failing_status_reader_is_skipped(kept: Keep) -> None:
    def broken() -> SessionStatus:
        raise RuntimeError("runner gone")

    watcher = StatusWatcher(broken, StateLog(logging.getLogger("tests.state")), interval=3600)
    watcher.start()
    watcher.stop()
    assert kept.lines == []


def test_timestamped_records_carry_time_level_and_the_terminal_line() -> None:
    record = logging.makeLogRecord({"msg": "livefaces: [front] lost: gone\nfor good", "levelname": "ERROR"})
    line = TimestampFormatter().format(record)
    match = RECORD.match(line)
    assert match is not None, line
    assert (
        match.group("level") == "ERROR" and match.group("message") == "livefaces: [front] lost: gone for good"
    )


def test_on_a_terminal_lines_stay_plain_and_state_changes_are_left_to_the_panel(tmp_path: Path) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=200)
    logs = Logs(console, service=False, log_file=tmp_path / "run.log").install()
    try:
        logging.getLogger(STATE_LOGGER).info("livefaces: [front] online: demo")
        log().info("livefaces: wrote out.mp4: 12 frames")
    finally:
        logs.close()
    assert console.file.getvalue() == "livefaces: wrote out.mp4: 12 frames\n"
    in_file = messages((tmp_path / "run.log").read_text())
    assert in_file == ["livefaces: [front] online: demo", "livefaces: wrote out.mp4: 12 frames"]
    assert all(RECORD.match(line) for line in (tmp_path / "run.log").read_text().splitlines())
    log().info("after close: nowhere")
    assert "nowhere" not in (tmp_path / "run.log").read_text()


def test_the_log_file_is_reopened_after_a_rename(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    handler = ReopeningFileHandler(path)
    handler.setFormatter(TimestampFormatter())
    logger = logging.getLogger("tests.reopen")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("first")
        path.rename(tmp_path / "run.log.1")
        logger.warning("second, still in the renamed file")
        handler.request_reopen()
        logger.warning("third, in a new file")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert messages((tmp_path / "run.log.1").read_text()) == ["first", "second, still in the renamed file"]
    assert messages(path.read_text()) == ["third, in a new file"]


def livefaces(*args: str) -> list[str]:
    return [sys.executable, "-m", "livefaces", *args]


def test_a_service_run_logs_state_changes_with_times_and_nothing_per_frame(tmp_path: Path) -> None:
    err_path = tmp_path / "stderr.log"
    with err_path.open("wb") as err:
        code = subprocess.run(
            livefaces("--source", "demo", "--no-display", "--camera-size", "320x240", "--max-frames", "90"),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=environment(),
            timeout=TIMEOUT,
        ).returncode
    text = err_path.read_text()
    assert code == 0, text
    lines = text.splitlines()
    assert all(RECORD.match(line) for line in lines), text
    said = messages(text)
    assert said[0] == "livefaces: session started: 1 camera (demo) on /CPU:0", text
    assert "livefaces: [demo] online: demo, 320x240 @ 30 fps" in said
    assert "livefaces: [demo] ended after 90 frames captured, 90 shown" in said
    assert "livefaces: session ended: demo ended" in said
    assert "livefaces: done: 90 frames (--max-frames/--duration reached), 90 detections" in said
    assert len(lines) <= 7, text  # 90 frames, a handful of lines: nothing per frame or per poll
    assert not any("frames=" in line for line in said)  # the old periodic status lines are gone


def test_sighup_reopens_the_log_and_event_files_and_never_stops_the_run(tmp_path: Path) -> None:
    path, events = tmp_path / "livefaces.log", tmp_path / "events.jsonl"
    args = ["--source", "demo", "--live", "--no-display", "--camera-size", "320x240", "--json", "-"]
    process = subprocess.Popen(
        livefaces(*args, "--metrics", "127.0.0.1:0", "--log-file", str(path), "--events", str(events)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        for _ in range(600):  # until a face is confirmed: its face_left must land after the hang-up
            json.loads(process.stdout.readline())
            if events.exists() and "face_appeared" in events.read_text():
                break
        path.rename(tmp_path / "livefaces.log.1")  # what logrotate does, then it signals
        events.rename(tmp_path / "events.jsonl.1")
        process.send_signal(signal.SIGHUP)
        for _ in range(30):  # still running after the hang-up
            assert json.loads(process.stdout.readline())["camera"] == "demo"
    finally:
        process.send_signal(signal.SIGTERM)
    process.stdout.read()
    err = process.stderr.read().decode()
    assert process.wait(TIMEOUT) == 0, err
    rotated, fresh = (tmp_path / "livefaces.log.1").read_text(), path.read_text()
    assert all(RECORD.match(line) for line in (rotated + fresh).splitlines())
    assert re.search(r"livefaces: metrics at http://127\.0\.0\.1:\d+/metrics", rotated), rotated
    assert "stopped by SIGTERM" not in rotated
    said = messages(fresh)
    assert any(line.startswith("livefaces: stopped by SIGTERM after ") for line in said), fresh
    assert said[-1].startswith("livefaces: wrote ")
    assert messages(err)[-1] == said[-1]  # stderr holds the same records
    before = [json.loads(line) for line in (tmp_path / "events.jsonl.1").read_text().splitlines()]
    after = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e["event"] == "face_appeared" for e in before), "a face was confirmed before the hang-up"
    assert any(e["event"] == "face_left" for e in after), "the events after the hang-up go to a new file"
    appeared = {e["track_id"] for e in before + after if e["event"] == "face_appeared"}
    assert {e["track_id"] for e in before + after if e["event"] == "face_left"} <= appeared


def test_an_unwritable_log_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        livefaces("--source", "demo", "--no-display", "--log-file", str(tmp_path / "missing" / "x.log")),
        capture_output=True,
        env=environment(),
        timeout=TIMEOUT,
    )
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith(f"livefaces: error: {tmp_path / 'missing' / 'x.log'}: "), (
        err
    )


def test_errors_before_the_run_stay_one_plain_line_and_reach_the_log_file(tmp_path: Path) -> None:
    path = tmp_path / "livefaces.log"
    missing = tmp_path / "missing.mp4"
    result = subprocess.run(
        livefaces("--source", str(missing), "--no-display", "--log-file", str(path)),
        capture_output=True,
        env=environment(),
        timeout=TIMEOUT,
    )
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("livefaces: error: ") and "no such file" in err, err
    (line,) = path.read_text().splitlines()
    assert RECORD.match(line) and messages(line) == [err.strip()]
