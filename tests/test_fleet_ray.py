"""The fleet on a real local Ray cluster (started by the test with `ray.init(num_cpus=...)`):
two cameras (a loopback RTSP stream from the GStreamer server and `demo`) sharing one detector
actor; a camera actor killed and restarted (the events show the gap, both segments play); a
detector actor killed and restarted (no camera hangs); and the command line with `--ray local`
stopped by SIGTERM. Every wait is for a state the fleet reports, with a deadline."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "livefaces[fleet]")')

from livefaces.fleet.ray_fleet import Fleet  # noqa: E402
from livefaces.options import parse_command_line  # noqa: E402
from tests.test_cli_process import REPO, environment  # noqa: E402
from tests.test_reconnect_rtsp import demo_clip, server_on  # noqa: E402, F401
from tests.test_rtsp import free_port, gst_python  # noqa: E402, F401

WAIT = 120.0  # the most a step may take before the test fails (normally seconds)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=6, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


def until(condition: Callable[[], bool], what: str, fleet: Fleet | None = None) -> None:
    """Poll (the fleet's status, when given) until `condition` holds; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if fleet is not None:
            fleet.poll()
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"not within {WAIT:.0f} s: {what}")


def frames_shown(fleet: Fleet, name: str) -> int:
    status = next(camera for camera in fleet.status().cameras if camera.name == name)
    return status.stats.displayed


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def events_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def demo_config(tmp_path: Path, *extra: str):
    return parse_command_line(
        ["--source", "demo=demo", "--live", "--no-display", "-o", str(tmp_path / "rec-{name}.mp4"),
         "--events", str(tmp_path / "events.jsonl"), "--preset", "ultrafast", *extra]
    )  # fmt: skip


def test_two_cameras_share_one_detector_worker_and_record_with_events(
    cluster: None,
    server_on,  # noqa: F811
    tmp_path: Path,
) -> None:
    clip = demo_clip(tmp_path / "faces.mp4", (320, 240), 20.0)
    port = free_port()
    server_on(port, "--file", str(clip))
    config = demo_config(tmp_path, "--source", f"front=rtsp://127.0.0.1:{port}/test")
    fleet = Fleet(config)
    fleet.start()
    try:
        until(lambda: min(frames_shown(fleet, n) for n in ("demo", "front")) >= 60, "60 frames each", fleet)
        until(lambda: all(c.stats.detected >= 10 for c in fleet.status().cameras), "detections", fleet)
        assert fleet.status().detector is not None and fleet.status().detector.calls > 0
    finally:
        reports = [report for _, report in fleet.finish()]
    assert len(reports) == 2 and all(report is not None for report in reports)
    for report in reports:
        assert report.summary.error is None, report.summary
        assert report.link.sent > 0 and report.link.replies > 0
    for name in ("demo", "front"):
        assert decoded_frames(tmp_path / f"rec-{name}.mp4") >= 60
    events = events_of(tmp_path / "events.jsonl")
    kinds = {(e["camera"], e["event"]) for e in events}
    assert ("front", "stream_up") in kinds
    assert ("demo", "face_appeared") in kinds and ("front", "face_appeared") in kinds


def test_a_killed_camera_worker_is_restarted_and_records_a_new_segment(cluster: None, tmp_path: Path) -> None:
    fleet = Fleet(demo_config(tmp_path))
    fleet.start()
    try:
        until(lambda: frames_shown(fleet, "demo") >= 45, "45 frames", fleet)
        actor = fleet.members[0].actor
        first_pid = ray.get(actor.pid.remote(), timeout=30)
        ray.kill(actor, no_restart=False)

        def restarted() -> bool:
            try:
                return ray.get(actor.pid.remote(), timeout=5) != first_pid
            except Exception:
                return False

        until(restarted, "the camera actor restarted")
        until(lambda: (tmp_path / "rec-demo-2.mp4").exists(), "a second segment")
        until(lambda: frames_shown(fleet, "demo") >= 45, "45 frames after the restart", fleet)
    finally:
        ((_, report),) = fleet.finish()
    assert report is not None and report.segment == 2
    assert decoded_frames(tmp_path / "rec-demo.mp4") >= 30  # the killed worker's, crash-safe
    assert decoded_frames(tmp_path / "rec-demo-2.mp4") >= 45
    gap = [e for e in events_of(tmp_path / "events.jsonl") if e["event"] in ("stream_down", "stream_up")]
    assert [(e["event"], e["reason"]) for e in gap] == [
        ("stream_down", "worker_restart"),
        ("stream_up", "worker_restart"),
    ]


def test_a_killed_detector_worker_is_restarted_and_no_camera_hangs(cluster: None, tmp_path: Path) -> None:
    fleet = Fleet(demo_config(tmp_path))
    fleet.start()
    try:
        until(lambda: fleet.status().cameras[0].stats.detected >= 10, "detections", fleet)
        shown = frames_shown(fleet, "demo")
        ray.kill(fleet.detectors[0], no_restart=False)
        until(lambda: frames_shown(fleet, "demo") >= shown + 60, "frames while the detector restarts", fleet)
        detected = fleet.status().cameras[0].stats.detected
        until(lambda: fleet.status().cameras[0].stats.detected >= detected + 10, "detections again", fleet)
    finally:
        started = time.monotonic()
        ((_, report),) = fleet.finish()
        finish_seconds = time.monotonic() - started
    assert report is not None and report.summary.error is None
    assert report.link.restarts + report.link.failures >= 1  # the link saw the detector go
    assert finish_seconds < 60
    assert decoded_frames(tmp_path / "rec-demo.mp4") >= 100


def test_the_command_line_on_ray_local_finishes_its_recordings_on_sigterm(tmp_path: Path) -> None:
    outputs = ["-o", str(tmp_path / "rec.mp4"), "--events", str(tmp_path / "events.jsonl")]
    command = [sys.executable, "-m", "livefaces", "--source", "demo", "--live", "--ray", "local"]
    command += ["--no-display"]
    command += outputs
    process = subprocess.Popen(
        command, cwd=REPO, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    events = tmp_path / "events.jsonl"
    try:
        deadline = time.monotonic() + WAIT
        while not (events.exists() and events.stat().st_size > 0):  # a face found: the fleet runs
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no event within the deadline"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert re.search(r"livefaces: detector link: [1-9]\d* requests, \d+\.\d MB sent", err), err
    assert decoded_frames(tmp_path / "rec.mp4") > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--source", "missing.mp4", "--ray", "local"],
            "livefaces: error: missing.mp4: no such file or folder",
        ),
        (["--ray", "127.0.0.1:1"], "livefaces: error: --ray 127.0.0.1:1: cannot reach a Ray cluster there: "),
    ],
    ids=["missing-file", "closed-port"],
)
def test_bad_input_on_ray_is_one_line_on_fd_2_before_any_cluster_starts(
    args: list[str], message: str, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "livefaces", "--no-display", *args]
    result = subprocess.run(
        command, cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=WAIT
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def names_of(fleet: Fleet) -> list[str]:
    return [camera.name for camera in fleet.status().cameras]


def test_cameras_join_and_leave_through_apply_and_a_restarted_camera_records_a_new_segment(
    cluster: None, tmp_path: Path
) -> None:
    one = demo_config(tmp_path)
    both = demo_config(tmp_path, "--source", "side=demo")
    fleet = Fleet(one)
    fleet.start()
    try:
        until(lambda: frames_shown(fleet, "demo") >= 15, "15 frames", fleet)
        assert fleet.apply(both) == ["camera side joined"]
        until(lambda: frames_shown(fleet, "side") >= 15, "the joined camera's frames", fleet)
        assert fleet.apply(both) == []
        assert fleet.apply(demo_config(tmp_path, "--source", "side=demo", "--min-face-size", "30")) == [
            "camera demo changed: restarting it",
            "camera side changed: restarting it",
        ]
        until(lambda: frames_shown(fleet, "side") >= 15, "the restarted camera's frames", fleet)
        crowd = [arg for k in range(8) for arg in ("--source", f"extra{k}=demo")]
        refused = fleet.apply(demo_config(tmp_path, "--source", "side=demo", "--min-face-size", "30", *crowd))
        assert len(refused) == 8 and all(
            "free CPUs and 8 camera worker(s) need 8" in line for line in refused
        )
        assert names_of(fleet) == ["demo", "side"]  # more than the cluster holds: none joined
        assert fleet.apply(demo_config(tmp_path, "--min-face-size", "30")) == ["camera side left"]
        assert names_of(fleet) == ["demo"]
        until(lambda: frames_shown(fleet, "demo") >= 15, "frames after the others left", fleet)
    finally:
        reports = fleet.finish()
    assert [(spec.name, report is not None and report.segment) for spec, report in reports] == [
        ("demo", 1), ("side", 1), ("side", 2), ("demo", 2),
    ]  # fmt: skip
    for name in ("rec-demo.mp4", "rec-side.mp4", "rec-demo-2.mp4", "rec-side-2.mp4"):
        assert decoded_frames(tmp_path / name) >= 15, name


def test_sighup_reloads_the_config_file_cameras_join_and_leave_without_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "cameras.toml"
    head = 'output = "rec-{name}.mp4"\nlive = true\npreset = "ultrafast"\n'
    camera_a, camera_b = '[[cameras]]\nname = "a"\nurl = "demo"\n', '[[cameras]]\nname = "b"\nurl = "demo"\n'
    config.write_text(head + camera_a)
    command = [sys.executable, "-m", "livefaces", "--config", str(config), "--ray", "local", "--no-display"]
    process = subprocess.Popen(
        command, cwd=REPO, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()

    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, f"not within {WAIT:.0f} s: {what}: {''.join(lines)}"
            time.sleep(0.2)

    def logged(text: str) -> Callable[[], bool]:
        return lambda: any(text in line for line in lines)

    try:
        wait_for(lambda: decodable(tmp_path / "rec-a.mp4"), "camera a recording")
        config.write_text(head + camera_a + camera_b)
        process.send_signal(signal.SIGHUP)
        wait_for(logged("livefaces: SIGHUP: camera b joined"), "camera b joined")
        wait_for(lambda: decodable(tmp_path / "rec-b.mp4"), "camera b recording")
        config.write_text(head + camera_b + "min_face_size = 8\n")
        process.send_signal(signal.SIGHUP)
        wait_for(logged("the cameras stay as they are"), "a broken file refused")
        config.write_text(head + camera_b)
        process.send_signal(signal.SIGHUP)
        wait_for(logged("livefaces: SIGHUP: camera a left"), "camera a left")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT)
        reader.join(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
    err = "".join(lines)
    assert process.returncode == 0, err
    refused = [line for line in lines if "the cameras stay as they are" in line]
    assert len(refused) == 1 and "cameras[0].min_face_size" in refused[0], err
    assert "Traceback" not in err
    assert decoded_frames(tmp_path / "rec-a.mp4") > 0 and decoded_frames(tmp_path / "rec-b.mp4") > 0


def decodable(path: Path) -> bool:
    """A recording that exists and holds a decodable frame (it is being written)."""
    try:
        return path.exists() and decoded_frames(path) > 0
    except av.error.FFmpegError:
        return False
