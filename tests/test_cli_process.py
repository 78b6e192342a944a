"""The command line as a user meets it: a real process, read at its file descriptors.

An in-process test (capsys) sees only what Python writes; TensorFlow's C++ log, libjpeg and
FFmpeg write to fd 2 behind Python's back. These tests run `python -m livefaces` and read the
raw bytes of its stdout and stderr.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import pytest

from livefaces.demo import DemoScene
from tests.conftest import ASSETS
from tests.log_lines import messages
from tests.videos import write_video

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **extra}
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "TF_CPP_MIN_LOG_LEVEL", "LIVEFACES_NATIVE_LOGS"):
        if name not in extra:
            env.pop(name, None)
    return env


def livefaces(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "livefaces", *args]
    return subprocess.run(command, capture_output=True, env=environment(), cwd=cwd, timeout=TIMEOUT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_bad_inputs(folder: Path) -> None:
    (folder / "junk.mp4").write_bytes(os.urandom(4096))
    (folder / "notes.jpg").write_text("this is a text file, not a photo\n")
    (folder / "empty").mkdir()


BAD_INPUTS = [
    (["--source", "{d}/missing.mp4"], "no such file"),
    (["--source", "{d}/junk.mp4"], "not a readable video"),
    (["--source", "{d}/notes.jpg"], "not a readable image"),
    (["--source", "{d}/empty"], "holds no images"),
    (["--source", "7"], "camera 7: cannot be opened"),
    (["--source", "rtsp://user:secret@127.0.0.1:{port}/x", "--timeout", "2"], "Connection refused"),
    (["--source", "RTSP://127.0.0.1:{port}/x", "--timeout", "2"], "Connection refused"),
    (["--source", "http://127.0.0.1:{port}/video.mjpg?pwd=secret", "--timeout", "2"], "Connection refused"),
    (["--source", "udp://127.0.0.1:{port}", "--timeout", "1"], "no answer within 1 s"),
    (["--source", "ftp://example/video"], "unknown scheme"),
    (["--source", "demo", "--codec", "bogus", "--output", "{d}/out.mp4"], "--codec bogus"),
    (["--source", "demo", "--codec", "hevc", "--output", "{d}/out.avi"], "cannot be written to a .avi"),
    (["--source", "demo", "--output", "{d}/nowhere/out.mp4"], "does not exist"),
    (["--source", "demo", "--thresholds", "2", "0.7", "0.7"], "--thresholds"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_INPUTS)
def test_bad_input_is_exactly_one_line_on_fd2_and_exit_2(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    make_bad_inputs(tmp_path)
    port = free_port()
    result = livefaces(*(arg.format(d=tmp_path, port=port) for arg in args))
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert result.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("livefaces: error: ") and needle in lines[0], err
    assert "secret" not in err


def test_bad_input_never_loads_tensorflow(tmp_path: Path) -> None:
    """Reporting an error must not cost TensorFlow's start-up (about 3 s and its C++ log)."""
    make_bad_inputs(tmp_path)
    probe = (
        "import sys; from livefaces.cli import main; code = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules); sys.exit(code)"
    )
    for source in ("missing.mp4", "junk.mp4", "notes.jpg", "empty"):
        result = subprocess.run(
            [sys.executable, "-c", probe, "--source", str(tmp_path / source), "--no-display"],
            capture_output=True,
            env=environment(),
            timeout=TIMEOUT,
        )
        assert result.returncode == 2, result.stderr
        assert result.stdout.decode().strip() == "False", source
        assert len(result.stderr.decode().splitlines()) == 1, result.stderr


def test_a_run_prints_no_native_chatter_and_names_skipped_files(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    scene = DemoScene(320, 240)
    cv2.imwrite(str(folder / "a.jpg"), scene.render(0))
    whole = (folder / "a.jpg").read_bytes()
    (folder / "b_cut.jpg").write_bytes(whole[: len(whole) // 2])  # libjpeg: "Premature end of JPEG file"
    (folder / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    result = livefaces("--source", str(folder), "--no-display", "--json", str(tmp_path / "faces.jsonl"))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert all(line.startswith("livefaces: ") for line in messages(err)), err
    assert "JPEG" not in err and "oneDNN" not in err and "cuda" not in err.lower()
    assert f"livefaces: skipped {folder / 'c_broken.png'}: not a readable image" in messages(err)
    assert "livefaces: done: 2 frames" in err  # the cut JPEG still decodes, partly grey


def test_the_library_is_quiet_and_tensorflow_logs_can_be_asked_for(tmp_path: Path) -> None:
    example = (
        "import cv2\n"
        "from livefaces import MTCNN\n"
        f"rgb = cv2.cvtColor(cv2.imread({str(ASSETS / 'astronaut.jpg')!r}), cv2.COLOR_BGR2RGB)\n"
        "detector = MTCNN()\n"
        "print(len(detector.detect_faces(rgb)), len(detector.refine(rgb, [[150, 60, 260, 200]])))\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, env=environment(), timeout=TIMEOUT
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.split()[0] != b"0"
    assert quiet.stderr == b""
    loud = subprocess.run(
        [sys.executable, "-c", example],
        capture_output=True,
        env=environment(TF_CPP_MIN_LOG_LEVEL="0"),
        timeout=TIMEOUT,
    )
    assert loud.returncode == 0 and loud.stderr != b""


def test_a_truncated_file_is_reported(tmp_path: Path) -> None:
    source = write_video(tmp_path / "in.mkv", frames=60, codec="mjpeg")
    data = source.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    with av.open(str(tmp_path / "cut.mkv")) as container:
        announced = container.streams.video[0].frames or None
    result = livefaces("--source", str(tmp_path / "cut.mkv"), "--no-display")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    if announced is None:  # mkv announces its length only in its duration
        assert "ended early" in err, err
    lines = [line for line in messages(err) if line.startswith("livefaces: done:")]
    assert len(lines) == 1 and "ended early" in lines[0] and "of 60 announced frames" in lines[0], err


def frames_in(path: Path) -> int:
    """Every frame of a recording decoded (an error fails the test): a playable file."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# Signal schedules: the delay before each signal, after the run has shown frames.
SCHEDULES = [
    ("once", [signal.SIGINT], [0.0]),
    ("twice 0.1 s apart", [signal.SIGINT, signal.SIGINT], [0.0, 0.1]),
    ("twice 0.3 s apart", [signal.SIGINT, signal.SIGINT], [0.0, 0.3]),
    ("term then int", [signal.SIGTERM, signal.SIGINT], [0.0, 0.05]),
    ("three at 0.05 s", [signal.SIGINT] * 3, [0.0, 0.05, 0.05]),
    ("six at 0.05 s", [signal.SIGINT, signal.SIGTERM] * 3, [0.0] + [0.05] * 5),
    ("three at 0.2 s", [signal.SIGTERM] * 3, [0.0, 0.2, 0.2]),
    ("two at 1 s", [signal.SIGINT, signal.SIGTERM], [0.0, 1.0]),
]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize(("name", "signals", "delays"), SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_repeated_interrupts_leave_a_playable_recording_and_an_honest_report(
    tmp_path: Path, suffix: str, name: str, signals: list[signal.Signals], delays: list[float]
) -> None:
    source = write_video(tmp_path / "in.mp4", frames=400, size=(320, 240))
    out = tmp_path / f"out{suffix}"
    command = [sys.executable, "-m", "livefaces", "--source", str(source), "--no-display"]
    process = subprocess.Popen(
        [*command, "--output", str(out), "--json", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    for _ in range(10):  # the recording is under way
        assert json.loads(process.stdout.readline())["frame"] >= 0
    for signum, delay in zip(signals, delays):
        time.sleep(delay)  # the schedule under test, not a wait for a result
        if process.poll() is None:
            process.send_signal(signum)
    shown = 10 + len(process.stdout.read().splitlines())
    err = process.stderr.read().decode()
    code = process.wait(TIMEOUT)
    assert "Traceback" not in err
    assert out.is_file(), err
    frames = frames_in(out)  # playable, whatever happened
    report = [line for line in messages(err) if line.startswith(f"livefaces: wrote {out}")]
    assert len(report) == 1, err
    # Every frame shown (logged) is in the file: an interrupt never costs a written frame.
    assert report[0].startswith(f"livefaces: wrote {out}: {frames} frames"), err
    assert frames == shown and "INCOMPLETE" not in err, err
    if code == 0:
        assert "livefaces: stopped by " in err, err
    else:  # a third interrupt cut the finish short: said in the report and in the exit code
        assert code == 130, err
        assert "livefaces: aborted by a third interrupt" in err and "every output is complete" in err, err


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_live_recording_survives_sigkill(tmp_path: Path, suffix: str) -> None:
    """kill -9 during a live recording: the file plays, and at most about 2 s are missing."""
    out = tmp_path / f"live{suffix}"
    command = [sys.executable, "-m", "livefaces", "--source", "demo", "--live", "--no-display"]
    process = subprocess.Popen(
        [*command, "--camera-size", "320x240", "--output", str(out), "--json", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment(),
    )
    assert process.stdout is not None
    shown = [json.loads(process.stdout.readline()) for _ in range(150)]  # 5 s of a 30 fps camera
    process.kill()
    process.wait(TIMEOUT)
    with av.open(str(out)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) > 30
    assert times == sorted(times)
    assert shown[-1]["time"] - times[-1] <= 2.0


def test_a_video_claiming_absurd_dimensions_is_one_line_without_a_memory_spike(tmp_path: Path) -> None:
    """Motion-JPEG frames whose headers claim 12000x12000 pixels (a few KB each): refused in one
    line, exit 2, and the process never holds anything near the 400 MB such a frame would take."""
    import struct
    from fractions import Fraction

    import numpy as np

    _, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    data = bytearray(jpeg.tobytes())
    header = data.find(b"\xff\xc0")  # start of frame: length, precision, then height and width
    struct.pack_into(">HH", data, header + 5, 12000, 12000)
    bomb = tmp_path / "bomb.avi"
    with av.open(str(bomb), "w") as container:
        stream = container.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for index in range(30):
            packet = av.Packet(bytes(data))
            packet.pts = packet.dts = index
            packet.time_base, packet.stream = Fraction(1, 30), stream
            container.mux(packet)
    # The child reports its own peak (VmHWM: this process image's, not the forking parent's).
    peak = tmp_path / "peak"
    wrapper = (
        "import runpy, sys\n"
        f"sys.argv = ['livefaces', '--source', {str(bomb)!r}, '--no-display']\n"
        "try:\n    runpy.run_module('livefaces', run_name='__main__')\n"
        "finally:\n    status = open('/proc/self/status').read()\n"
        f"    open({str(peak)!r}, 'w').write(status.split('VmHWM:')[1].split()[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, env=environment(), timeout=TIMEOUT
    )
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2 and lines == [f"livefaces: error: {bomb}: no frames could be read"]
    assert int(peak.read_text()) < 300_000  # kB: it never held one 12000x12000 frame (650 MB)
