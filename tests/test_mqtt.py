"""The MQTT output in this process against a real Mosquitto broker: the broker address and its
secret forms, the publisher's queue, retained state, reconnection and last words. The app as a
whole (a subprocess publishing the demo's faces) is in test_mqtt_app.py."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefaces.detections import Detections
from livefaces.events import FaceAppeared, FaceLeft, StreamDown
from livefaces.frames import Frame, FrameResult
from livefaces.options import ConfigError, parse_command_line
from livefaces.outputs.mqtt import Message, MqttPublisher, _json
from livefaces.outputs.mqtt_url import MqttTarget, parse_mqtt_url
from livefaces.tracker import TrackedFaces
from tests.mqtt_broker import Broker, Subscriber, free_port, wait_until

SECRET = "s3cr3t-pa55"


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("mqtt://127.0.0.1", MqttTarget("127.0.0.1", 1883, "livefaces")),
        ("mqtt://broker:1884/home/faces/", MqttTarget("broker", 1884, "home/faces")),
        (f"mqtt://ha:{SECRET}@broker/lf", MqttTarget("broker", 1883, "lf", "ha", SECRET)),
        ("mqtt://ha:p%40ss@broker/lf", MqttTarget("broker", 1883, "lf", "ha", "p@ss")),
        ("mqtt://ha:p@ss@broker/lf", MqttTarget("broker", 1883, "lf", "ha", "p@ss")),
        ("MQTT://[::1]:1883/lf", MqttTarget("::1", 1883, "lf")),
    ],
)
def test_broker_urls(url: str, target: MqttTarget) -> None:
    assert parse_mqtt_url(url) == target


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"http://ha:{SECRET}@broker/lf", "must be mqtt://"),
        (f"mqtt://ha:{SECRET}@broker:99999/lf", "the port must be a number from 1 to 65535"),
        (f"mqtt://ha:{SECRET}@broker:0/lf", "the port must be a number from 1 to 65535"),
        (f"mqtt://ha:{SECRET}@broker:x/lf", "the port must be a number from 1 to 65535"),
        (f"mqtt://ha:{SECRET}@/lf", "no host"),
        (f"mqtt://ha:{SECRET}@broker/lf/+", "may not hold '+', '#'"),
        (f"mqtt://ha:{SECRET}@broker/a//b", "empty levels"),
        (f"mqtt://ha:{SECRET}@broker/lf?qos=1", "query"),
    ],
)
def test_bad_broker_urls_say_why_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_mqtt_url(url)
    assert problem in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_password_stays_out_of_repr_and_shown() -> None:
    target = parse_mqtt_url(f"mqtt://ha:{SECRET}@broker:1884/lf")
    assert SECRET not in repr(target) and SECRET not in repr(parse_command_line(["--mqtt", "mqtt://x"]))
    assert target.shown() == "mqtt://***@broker:1884/lf"


def test_the_url_from_an_environment_variable_or_a_secrets_file(tmp_path: Path) -> None:
    url = f"mqtt://ha:{SECRET}@broker/lf"
    from_env = parse_command_line(["--mqtt-env", "BROKER"], environ={"BROKER": url})
    (tmp_path / "secret").write_text(f"\n{url}\n")
    (tmp_path / "run.toml").write_text('mqtt_file = "secret"\n')  # beside the config file
    from_file = parse_command_line(["--config", str(tmp_path / "run.toml")], environ={})
    assert from_env.mqtt == from_file.mqtt == parse_mqtt_url(url)
    # the command line is more specific than the file
    config = parse_command_line(["--config", str(tmp_path / "run.toml"), "--mqtt", "mqtt://other/x"])
    assert config.mqtt == MqttTarget("other", 1883, "x")


@pytest.mark.parametrize(
    ("args", "environ", "message"),
    [
        (["--mqtt-env", "BROKER"], {}, "--mqtt-env: environment variable BROKER is not set"),
        (["--mqtt-env", "BROKER"], {"BROKER": " "}, "--mqtt-env: environment variable BROKER is empty"),
        (["--mqtt-env", "BROKER"], {"BROKER": f"tcp://u:{SECRET}@b"}, "--mqtt-env BROKER: must be mqtt://"),
        (["--mqtt-file", "/no/such/file"], {}, "--mqtt-file: /no/such/file does not exist"),
        (["--mqtt", "mqtt://b", "--mqtt-env", "B"], {"B": "mqtt://c"}, "give only one of --mqtt"),
    ],
)
def test_bad_secret_forms_are_one_clear_error(args: list[str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_command_line(args, environ=environ)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_event_payloads_are_json_with_urls_redacted() -> None:
    down = StreamDown(
        camera="door", source_time=1.0, wall_time=0.0, reason=f"rtsp://u:{SECRET}@cam/x", attempt=1
    )
    payload = json.loads(_json(down))
    assert payload["event"] == "stream_down" and payload["camera"] == "door"
    assert payload["reason"] == "rtsp://***@cam/x"


class Lines:
    """What the publisher says, kept (warnings and the rest apart)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.info: list[str] = []


def publisher(target: str, lines: Lines, queue_limit: int = 1000) -> MqttPublisher:
    return MqttPublisher(parse_mqtt_url(target), queue_limit, lines.warnings.append, lines.info.append)


def event(number: int, prefix: str = "t") -> Message:
    return Message(f"{prefix}/events", json.dumps({"n": number}))


def test_events_and_retained_state_reach_the_broker_and_offline_is_said_at_the_end(tmp_path: Path) -> None:
    broker = Broker(tmp_path).start()
    watcher = Subscriber(broker.port, "t/#")
    lines = Lines()
    try:
        sender = publisher(broker.url("t"), lines).start()
        sender.put(Message("t/door/status", "online", retain=True))
        sender.put(event(1))
        watcher.wait_for(lambda m: m.topic == "t/events" and json.loads(m.payload) == {"n": 1}, "the event")
        watcher.wait_for(lambda m: m.topic == "t/available" and m.text == "online", "available online")
        late = Subscriber(broker.port, "t/#")  # retained: a subscriber that comes later gets the state
        late.wait_for(lambda m: m.topic == "t/door/status" and m.text == "online" and m.retain, "retained")
        late.close()
        sender.stop()
        watcher.wait_for(lambda m: m.topic == "t/available" and m.text == "offline", "available offline")
        assert sender.published == 4 and not sender.dropped and not lines.warnings
        assert lines.info == [
            f"livefaces: MQTT publishing to {broker.url('t')}",
            f"livefaces: MQTT {broker.url('t')}: 4 messages published",
        ]
    finally:
        watcher.close()
        broker.kill()


def test_while_the_broker_is_away_the_oldest_events_are_dropped_the_rest_delivered(
    tmp_path: Path,
) -> None:
    """A persistent broker keeps the test subscriber's session across its restart, so what the
    publisher sends once the broker is back waits for the subscriber: nothing depends on timing."""
    broker = Broker(tmp_path, persistent=True).start()
    Subscriber(broker.port, "q/#", client_id="watcher", clean=False).close()
    broker.terminate()  # saves the subscriber's session
    lines = Lines()
    sender = publisher(broker.url("q"), lines, queue_limit=3).start()
    try:
        wait_until(lambda: lines.warnings, 30, "the warning that the broker is unreachable")
        for number in range(1, 6):
            sender.put(event(number, "q"))
        assert sender.dropped == 2  # the pipeline never waited: it was told at once
        broker.start()
        wait_until(lambda: sender.published == 4, 60, "the queue to be delivered (3 events, available)")
        watcher = Subscriber(broker.port, "q/#", client_id="watcher", clean=False)
        try:
            watcher.wait_for(lambda m: m.topic == "q/events" and json.loads(m.payload) == {"n": 5}, "event 5")
            got = [json.loads(m.payload)["n"] for m in watcher.on("q/events")]
            assert got == [3, 4, 5]
        finally:
            watcher.close()
        assert len(lines.warnings) == 1 and "unreachable" in lines.warnings[0], lines.warnings
        assert lines.info == [f"livefaces: MQTT broker {broker.url('q')} connected again"]
    finally:
        sender.stop()
        broker.kill()
    assert "2 events dropped while the broker was away" in lines.warnings[-1]


def test_after_a_broker_restart_the_retained_state_is_published_again(tmp_path: Path) -> None:
    broker = Broker(tmp_path).start()  # not persistent: a restart forgets every retained message
    lines = Lines()
    sender = publisher(broker.url("r"), lines).start()
    try:
        sender.put(Message("r/door/faces", "2", retain=True))
        wait_until(lambda: sender.published == 2, 30, "the first messages")
        broker.kill()
        wait_until(lambda: lines.warnings, 30, "the warning that the connection was lost")
        sender.put(Message("r/door/faces", "1", retain=True))  # the latest value wins
        broker.start()
        watcher = Subscriber(broker.port, "r/#")
        try:
            watcher.wait_for(lambda m: m.topic == "r/door/faces" and m.text == "1", "the latest faces count")
            watcher.wait_for(lambda m: m.topic == "r/available" and m.text == "online", "available online")
            assert [m.text for m in watcher.on("r/door/faces")] in (["1"], ["1", "1"])
        finally:
            watcher.close()
        assert len(lines.warnings) == 1 and "connection lost" in lines.warnings[0], lines.warnings
    finally:
        sender.stop()
        broker.kill()


def test_stopping_while_the_broker_is_unreachable_ends_and_says_what_was_lost() -> None:
    lines = Lines()
    sender = publisher(f"mqtt://127.0.0.1:{free_port()}/x", lines).start()
    wait_until(lambda: lines.warnings, 30, "the warning that the broker is unreachable")
    sender.put(event(1))
    sender.stop()
    assert len(lines.warnings) == 2
    assert "unreachable" in lines.warnings[0]
    assert "0 messages published" in lines.warnings[1] and "2 not delivered at the end" in lines.warnings[1]


def test_a_face_event_keeps_its_snapshot_path_in_the_json(tmp_path: Path) -> None:
    appeared = FaceAppeared(
        camera="door", source_time=1.0, wall_time=0.0, track_id=3, box=(1, 2, 3, 4), confidence=0.9,
        snapshots=(str(tmp_path / "door_track3_face.jpg"),),
    )  # fmt: skip
    payload = json.loads(_json(appeared))
    assert payload["snapshots"] == [str(tmp_path / "door_track3_face.jpg")] and payload["track_id"] == 3


def frame_result(camera: str, index: int, boxes: list[tuple[float, ...]], ids: list[int],
                 confirmed: list[bool], image: np.ndarray) -> FrameResult:  # fmt: skip
    n = len(boxes)
    detections = Detections(
        np.array(boxes, np.float32).reshape(n, 4),
        np.full(n, 0.99, np.float32),
        np.zeros((n, 5, 2), np.float32),
        np.array(ids, np.int64),
    )
    faces = TrackedFaces(detections, np.array(confirmed, bool), np.ones(n, bool))
    return FrameResult(camera, Frame(index, index / 10, 0.0, image), faces, fresh=True)


def test_each_camera_says_its_state_faces_and_snapshots_on_its_own_topics(tmp_path: Path) -> None:
    """Two cameras' outputs on one publisher: status offline until the first frame, faces on
    change (confirmed tracks only), a face's crop when it appears and its best shot when it
    leaves (no --snapshots: the output crops them itself), offline when the stream drops."""
    broker = Broker(tmp_path).start()
    watcher = Subscriber(broker.port, "s/#")
    lines = Lines()
    sender = publisher(broker.url("s"), lines)
    door, yard = sender.sink("door"), sender.sink("yard")
    sender.start()
    try:
        watcher.wait_for(
            lambda m: m.topic == "s/door/status" and m.text == "offline", "door offline at first"
        )
        image = np.zeros((120, 160, 3), np.uint8)
        image[20:60, 30:70] = 200
        for index, confirmed in enumerate([[False], [True], [True]]):
            door.write(frame_result("door", index, [(30, 20, 70, 60)], [4], confirmed, image), None)
        yard.write(frame_result("yard", 0, [], [], [], image), None)
        box = (30.0, 20.0, 70.0, 60.0)
        appeared = FaceAppeared(
            camera="door", source_time=0.1, wall_time=0.0, track_id=4, box=box, confidence=0.99
        )
        door.on_events([appeared])
        watcher.wait_for(lambda m: m.topic == "s/door/faces" and m.text == "1", "door: 1 face")
        face = watcher.wait_for(lambda m: m.topic == "s/door/snapshot", "the face's crop").payload
        decoded = cv2.imdecode(np.frombuffer(face, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape == (64, 64, 3)  # the 40 x 40 box with a 30 % margin on every side
        watcher.wait_for(lambda m: m.topic == "s/yard/status" and m.text == "online", "yard online")
        watcher.wait_for(lambda m: m.topic == "s/yard/faces" and m.text == "0", "yard: no face")
        seen = len(watcher.messages)
        down = StreamDown(camera="door", source_time=0.3, wall_time=0.0, reason="stall", attempt=1)
        door.on_events([down])
        watcher.wait_for(
            lambda m: m.topic == "s/door/status" and m.text == "offline", "door down", after=seen
        )
        watcher.wait_for(
            lambda m: m.topic == "s/door/faces" and m.text == "0", "no face while down", after=seen
        )
        left = FaceLeft(camera="door", source_time=0.3, wall_time=0.0, track_id=4, seconds_in_view=0.2,
                        best_confidence=0.99, reason="stream_down")  # fmt: skip
        door.on_events([left])
        watcher.wait_for(lambda m: m.topic == "s/door/snapshot", "the best shot", after=seen)
        kinds = [json.loads(m.payload)["event"] for m in watcher.on("s/events")]
        assert kinds[:1] == ["face_appeared"]
        watcher.wait_for(lambda m: m.topic == "s/events" and b"face_left" in m.payload, "face_left")
        # retained topics: the latest value wins, so a "0" quickly replaced by "1" may never be sent
        assert [m.text for m in watcher.on("s/door/faces")][-2:] == ["1", "0"]
        door.close()
        yard.close()
    finally:
        sender.stop()
        watcher.close()
        broker.kill()
    assert not lines.warnings


def test_a_refused_login_is_one_warning_without_the_password(tmp_path: Path) -> None:
    broker = Broker(tmp_path, users={"ha": SECRET}).start()
    lines = Lines()
    sender = publisher(broker.url("x", "ha:wrong-password@"), lines).start()
    try:
        wait_until(lambda: lines.warnings, 30, "the warning")
    finally:
        sender.stop()
        broker.kill()
    assert "refused the connection" in lines.warnings[0] and "wrong-password" not in " ".join(lines.warnings)
    assert sender.published == 0
