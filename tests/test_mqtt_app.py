"""`livefaces --mqtt` as a user runs it: the real app in a subprocess, publishing the demo's faces
to a real Mosquitto on a loopback port, read by a real paho subscriber. Every wait is on a message
or the process, with a deadline."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.log_lines import messages
from tests.mqtt_broker import Broker, Received, Subscriber, free_port
from tests.test_cli_process import environment

SECRET = "pa55-w0rd-xyz"
TIMEOUT = 180  # a process's whole run (TensorFlow loads first)
FIRST = 120  # seconds to the first messages (TensorFlow loads first)
CYCLE = 60  # the demo's crossing face comes and goes every 8 s: a later event within this


def start_app(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "livefaces", "--source", "demo", "--live", "--no-display", *args]
    err = (tmp_path / "err.log").open("wb")
    out = (tmp_path / "out.log").open("wb")
    return subprocess.Popen(command, stdout=out, stderr=err, env=environment(**env))


def said(tmp_path: Path) -> str:
    return (tmp_path / "out.log").read_text() + (tmp_path / "err.log").read_text()


def is_event(kind: str) -> object:
    def accept(message: Received) -> bool:
        return message.topic.endswith("/events") and json.loads(message.payload)["event"] == kind

    return accept


def raised_after(message: Received, moment: float) -> bool:
    """A face event raised after `moment` (Unix seconds)."""
    if not message.topic.endswith("/events"):
        return False
    event = json.loads(message.payload)
    wall = datetime.fromisoformat(event["wall_time"]).timestamp()
    return event["event"] in ("face_appeared", "face_left") and wall > moment


def jpeg(payload: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.size > 0, "the snapshot is not a JPEG"
    return image


def test_events_state_and_snapshots_survive_a_broker_restart_and_end_offline(tmp_path: Path) -> None:
    broker = Broker(tmp_path).start()
    watcher = Subscriber(broker.port, "livefaces/#")
    snapshots = tmp_path / "snapshots"
    app = start_app(tmp_path, "--mqtt", broker.url("livefaces"), "--snapshots", str(snapshots))
    try:
        appeared = json.loads(watcher.wait_for(is_event("face_appeared"), "face_appeared", FIRST).payload)
        assert appeared["camera"] == "demo" and appeared["snapshots"], appeared
        picture = watcher.wait_for(lambda m: m.topic == "livefaces/demo/snapshot", "a snapshot").payload
        jpeg(picture)
        files = {path.read_bytes() for path in snapshots.rglob("*.jpg")}
        assert picture in files  # the very snapshot --snapshots wrote
        watcher.wait_for(lambda m: m.topic == "livefaces/demo/faces" and int(m.text) > 0, "faces in view")

        late = Subscriber(broker.port, "livefaces/#")  # retained: a subscriber after the fact
        late.wait_for(
            lambda m: m.topic == "livefaces/demo/status" and m.text == "online" and m.retain, "status"
        )
        late.wait_for(
            lambda m: m.topic == "livefaces/available" and m.text == "online" and m.retain, "online"
        )
        late.close()

        broker.kill()  # the broker forgets everything it held (no persistence)
        broker.start()
        restarted = time.time()
        again = Subscriber(broker.port, "livefaces/#")
        again.wait_for(
            lambda m: m.topic == "livefaces/demo/status" and m.text == "online", "status again", CYCLE
        )
        again.wait_for(lambda m: m.topic == "livefaces/available" and m.text == "online", "available again")
        again.wait_for(lambda m: raised_after(m, restarted), "an event raised after the restart", CYCLE)
        assert app.poll() is None  # the app kept running through the outage

        app.send_signal(signal.SIGINT)
        assert app.wait(TIMEOUT) == 0, said(tmp_path)
        again.wait_for(lambda m: m.topic == "livefaces/demo/status" and m.text == "offline", "status offline")
        again.wait_for(
            lambda m: m.topic == "livefaces/available" and m.text == "offline", "available offline"
        )
        again.close()
    finally:
        app.kill()
        app.wait(TIMEOUT)
        watcher.close()
        broker.kill()
    lines = messages(said(tmp_path))
    assert "Traceback" not in said(tmp_path)
    assert len([line for line in lines if "MQTT broker" in line and "connection lost" in line]) == 1, lines
    assert len([line for line in lines if "MQTT broker" in line and "connected again" in line]) == 1, lines
    assert any(line.startswith(f"livefaces: MQTT {broker.url('livefaces')}: ") for line in lines), lines


def test_a_killed_app_leaves_its_last_will_and_the_password_stays_secret(tmp_path: Path) -> None:
    broker = Broker(tmp_path, users={"ha": SECRET}).start()
    watcher = Subscriber(broker.port, "home/faces/#", username="ha", password=SECRET)
    url = broker.url("home/faces", f"ha:{SECRET}@")
    app = start_app(tmp_path, "--mqtt-env", "FACES_MQTT", FACES_MQTT=url)
    try:
        watcher.wait_for(lambda m: m.topic == "home/faces/available" and m.text == "online", "online", FIRST)
        appeared = json.loads(watcher.wait_for(is_event("face_appeared"), "face_appeared").payload)
        assert appeared["snapshots"] == []  # no --snapshots: the output crops the face itself
        jpeg(watcher.wait_for(lambda m: m.topic == "home/faces/demo/snapshot", "a snapshot").payload)
        seen = len(watcher.messages)
        app.kill()
        app.wait(TIMEOUT)
        will = watcher.wait_for(lambda m: m.topic == "home/faces/available", "the last will", after=seen)
        assert will.text == "offline"
    finally:
        app.kill()
        app.wait(TIMEOUT)
        watcher.close()
        broker.kill()
    assert SECRET not in " ".join(app.args)  # type: ignore[arg-type]
    assert SECRET not in said(tmp_path)


def test_a_broker_down_from_the_start_never_holds_the_pipeline(tmp_path: Path) -> None:
    url = f"mqtt://ha:{SECRET}@127.0.0.1:{free_port()}/livefaces"
    app = start_app(tmp_path, "--duration", "3", "--mqtt", url)
    assert app.wait(TIMEOUT) == 0, said(tmp_path)
    lines = messages(said(tmp_path))
    assert len([line for line in lines if "warning: MQTT broker" in line]) == 1, lines
    assert any("unreachable" in line for line in lines), lines
    assert any("not delivered at the end" in line for line in lines), lines
    assert any(line.startswith("livefaces: done: ") for line in lines), lines
    assert SECRET not in said(tmp_path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--mqtt", f"mqtt://ha:{SECRET}@broker:70000/x"], "the port must be a number"),
        (["--mqtt", f"http://ha:{SECRET}@broker/x"], "must be mqtt://"),
        (["--mqtt-env", "NO_SUCH_VARIABLE_HERE"], "NO_SUCH_VARIABLE_HERE is not set"),
    ],
)
def test_a_bad_broker_is_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    command = [sys.executable, "-m", "livefaces", "--source", "demo", "--no-display", *args]
    run = subprocess.run(command, capture_output=True, env=environment(), timeout=TIMEOUT)
    err = run.stderr.decode()
    assert run.returncode == 2
    assert err.count("\n") == 1 and needle in err and err.startswith("livefaces: error: "), err
    assert SECRET not in err and not run.stdout
