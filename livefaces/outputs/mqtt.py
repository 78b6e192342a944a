"""The MQTT output (`--mqtt mqtt://[USER:PASSWORD@]HOST[:PORT]/PREFIX`): events, camera states,
faces in view and snapshots for home automation (Home Assistant, Node-RED), in Frigate's manner.

Topics (PREFIX defaults to `livefaces`):

- `PREFIX/available`: `online` while the app runs, `offline` after it (retained; also the
  connection's last will, so a crash or a kill says `offline` too).
- `PREFIX/events`: every event as the JSON of `Event.to_dict` (not retained), with its snapshot
  paths when `--snapshots` writes them; URLs in it are redacted.
- `PREFIX/<camera>/status`: `online` while the camera gives frames, `offline` before its first
  frame, while its stream is down and after it has ended (retained).
- `PREFIX/<camera>/faces`: the number of confirmed faces in view, on change (retained).
- `PREFIX/<camera>/snapshot`: JPEG bytes: the face when it appears, its best shot when it leaves
  (retained): the very files `--snapshots` wrote when it did, else this output's own crops.

One `MqttPublisher` per session owns the paho client, whose network thread connects, keeps the
connection alive and reconnects with backoff (1 s doubling to 30 s), and one publishing thread,
which hands messages to paho while the broker is connected. Each camera's `MqttSink` only puts
messages into the publisher's memory and returns: the pipeline never waits for the broker.
What waits while the broker is away: the latest value of every retained topic (sent again on
every connection, as a restarted broker may have forgotten them), and at most `queue_limit`
events, the oldest dropped (and counted) beyond that. Messages are sent with QoS 1, so one that
paho handed over just before the connection broke is sent again after it is back.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livefaces.events import Event, FaceAppeared, FaceLeft, StreamDown, StreamUp
from livefaces.frames import FrameResult
from livefaces.outputs.mqtt_url import MqttTarget
from livefaces.outputs.snapshots import QUALITY, EventPictures, safe_name
from livefaces.redact import redact_values

ONLINE, OFFLINE = "online", "offline"
QUEUE_LIMIT = 1000  # events kept while the broker is away; the oldest go first beyond that
IN_FLIGHT = 100  # messages handed to paho and not yet acknowledged by the broker
RECONNECT_SECONDS = (1, 30)  # paho's backoff between connection attempts: first, longest
KEEPALIVE = 30  # seconds
CONNECT_TIMEOUT = 5.0  # seconds for one TCP connection attempt (stop may wait this long)
STOP_SECONDS = 3.0  # at the end: how long what is left may take to reach a connected broker
POLL = 0.5  # seconds: the publishing thread's longest wait

Payload = bytes | str | Path | np.ndarray  # a file is read, an image encoded, on the publishing thread


@dataclass(frozen=True)
class Message:
    """One message to publish; retained ones are kept as the latest value of their topic."""

    topic: str
    payload: Payload
    retain: bool = False


def _say_warning(line: str) -> None:
    from livefaces.observe.logs import log

    log().warning(line)


def _say_info(line: str) -> None:
    from livefaces.observe.logs import log

    log().info(line)


class MqttPublisher:
    """The session's connection to the broker; `sink(camera)` makes each camera's output.

    `start()` connects in the background (an unreachable broker is one warning line, then retried);
    `stop()` publishes `available` `offline`, waits at most `STOP_SECONDS` for what is left while
    the broker is connected, and disconnects (with the last will if `offline` was not delivered).
    """

    def __init__(
        self,
        target: MqttTarget,
        queue_limit: int = QUEUE_LIMIT,
        warn: Callable[[str], None] = _say_warning,
        inform: Callable[[str], None] = _say_info,
    ) -> None:
        self.target = target
        self.available = f"{target.prefix}/available"
        self.published = self.dropped = self.failed = 0
        self._warn, self._inform = warn, inform
        self._events: deque[Message] = deque()
        self._queue_limit = queue_limit
        self._retained: dict[str, Message] = {}  # latest value per topic, in first-set order
        self._dirty: dict[str, None] = {}  # retained topics to send (again), in order
        self._in_flight = 0
        self._connected = self._closing = self._outage = self._ever_connected = False
        self._state = threading.Condition()
        self._client = self._make_client()
        self._thread = threading.Thread(target=self._publish_loop, name="mqtt-publisher", daemon=True)

    def _make_client(self) -> Any:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"livefaces-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        if self.target.username is not None:
            client.username_pw_set(self.target.username, self.target.password)
        client.will_set(self.available, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(*RECONNECT_SECONDS)
        client.connect_timeout = CONNECT_TIMEOUT
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def topic(self, camera: str, leaf: str) -> str:
        """`PREFIX/<camera>/<leaf>`, the camera's name made topic- and file-name safe."""
        return f"{self.target.prefix}/{safe_name(camera)}/{leaf}"

    def sink(self, camera: str) -> MqttSink:
        return MqttSink(self, camera)

    def start(self) -> MqttPublisher:
        """Connect in the background and start publishing; `available` is `online` meanwhile."""
        self.put(Message(self.available, ONLINE, retain=True))
        self._client.connect_async(self.target.host, self.target.port, keepalive=KEEPALIVE)
        self._client.loop_start()
        self._thread.start()
        return self

    def put(self, message: Message) -> None:
        """Queue a message for the broker; never blocks (any thread)."""
        with self._state:
            if message.retain:
                self._retained[message.topic] = message
                self._dirty[message.topic] = None
            else:
                if len(self._events) >= self._queue_limit:
                    self._events.popleft()
                    self.dropped += 1
                self._events.append(message)
            self._state.notify_all()

    def stop(self, seconds: float = STOP_SECONDS) -> None:
        """Say `offline`, deliver what is left while connected (bounded), disconnect, report."""
        if not self._thread.is_alive():
            return
        self.put(Message(self.available, OFFLINE, retain=True))
        with self._state:
            self._state.wait_for(lambda: not self._connected or not self._pending(), timeout=seconds)
            delivered_offline = self._connected and self.available not in self._dirty and not self._in_flight
            unsent = self._pending()
            self._closing = True
            self._state.notify_all()
        self._thread.join(POLL * 4)
        self._disconnect(with_will=not delivered_offline)
        self._report(unsent)

    def _pending(self) -> int:
        return len(self._events) + len(self._dirty) + self._in_flight

    def _disconnect(self, with_will: bool) -> None:
        """A clean disconnect drops the last will: send it along when `offline` did not get through."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.reasoncodes import ReasonCode

        reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message") if with_will else None
        self._client.disconnect(reasoncode=reason)
        self._client.loop_stop()

    def _report(self, unsent: int) -> None:
        text = f"livefaces: MQTT {self.target.shown()}: {self.published} messages published"
        lost = []
        if self.dropped:
            lost.append(f"{self.dropped} events dropped while the broker was away")
        if self.failed:
            lost.append(f"{self.failed} could not be published")
        if unsent:
            lost.append(f"{unsent} not delivered at the end (the broker was unreachable)")
        (self._warn if lost else self._inform)(text + ("; " + "; ".join(lost) if lost else ""))

    # The publishing thread: memory -> paho, while connected.
    def _publish_loop(self) -> None:
        while True:
            with self._state:
                self._state.wait_for(lambda: self._closing or self._ready(), timeout=POLL)
                if self._closing:
                    return
                if not self._ready():
                    continue
                message = self._next()
                self._in_flight += 1
            self._send(message)

    def _ready(self) -> bool:
        return self._connected and self._in_flight < IN_FLIGHT and bool(self._dirty or self._events)

    def _next(self) -> Message:
        if self._dirty:
            topic = next(iter(self._dirty))
            del self._dirty[topic]
            return self._retained[topic]
        return self._events.popleft()

    def _send(self, message: Message) -> None:
        import paho.mqtt.client as mqtt

        payload = _encoded(message.payload)
        info = None
        if payload is not None:
            info = self._client.publish(message.topic, payload, qos=1, retain=message.retain)
        # MQTT_ERR_NO_CONN: paho keeps the message and sends it once connected again
        if info is None or info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            with self._state:
                self._in_flight -= 1
                self.failed += 1
                self._state.notify_all()

    # paho's network thread.
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._lost(f"it refused the connection: {reason}")
            return
        with self._state:
            self._connected = True
            self._dirty = dict.fromkeys(self._retained)  # a restarted broker may have lost them
            self._state.notify_all()
            outage, self._outage = self._outage, False
            first, self._ever_connected = not self._ever_connected, True
        if outage:
            self._inform(f"livefaces: MQTT broker {self.target.shown()} connected again")
        elif first:
            self._inform(f"livefaces: MQTT publishing to {self.target.shown()}")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._lost("unreachable")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._state:
            closing = self._closing
        if not closing:
            self._lost(f"connection lost: {reason}")

    def _lost(self, why: str) -> None:
        """One warning per outage, however many attempts fail."""
        with self._state:
            self._connected = False
            self._state.notify_all()
            if self._outage:
                return
            self._outage = True
        self._warn(
            f"livefaces: warning: MQTT broker {self.target.shown()}: {why}; retrying with backoff, "
            f"keeping the latest {self._queue_limit} events meanwhile"
        )

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._state:
            self._in_flight -= 1
            if reason.is_failure:
                self.failed += 1
            else:
                self.published += 1
            self._state.notify_all()


def _encoded(payload: Payload) -> bytes | str | None:
    """The bytes to send: a snapshot file read, an image encoded as JPEG; None if that failed."""
    if isinstance(payload, Path):
        try:
            return payload.read_bytes()
        except OSError:
            return None
    if isinstance(payload, np.ndarray):
        ok, data = cv2.imencode(".jpg", payload, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        return data.tobytes() if ok else None
    return payload


class MqttSink:
    """One camera's messages: its status, faces in view, events and snapshots. Needs no rendered
    image (it crops the raw frame the result carries); only queues, never waits."""

    render: str | None = None

    def __init__(self, publisher: MqttPublisher, camera: str) -> None:
        self.publisher = publisher
        self.camera = camera
        self._status = self._faces = None  # what was last said
        self._pictures = EventPictures()
        self.events = self.snapshots = 0
        self._say_status(OFFLINE)  # until its first frame: a camera down at start-up says so

    def write(self, result: FrameResult, image: np.ndarray | None) -> None:
        self._say_status(ONLINE)
        self._say_faces(int(np.count_nonzero(result.faces.confirmed)))
        self._pictures.update(result)

    def on_events(self, events: Sequence[Event]) -> None:
        for event in events:
            self.publisher.put(Message(f"{self.publisher.target.prefix}/events", _json(event)))
            self.events += 1
            if isinstance(event, StreamDown):
                self._say_status(OFFLINE)
                self._say_faces(0)
            elif isinstance(event, StreamUp):
                self._say_status(ONLINE)
            elif isinstance(event, (FaceAppeared, FaceLeft)):
                self._snapshot(event)

    def close(self) -> None:
        self._say_faces(0)
        self._say_status(OFFLINE)
        self._pictures.clear()

    def summary(self) -> None:
        """The publisher reports for every camera at the end."""

    def _say_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self.publisher.put(Message(self.publisher.topic(self.camera, "status"), status, retain=True))

    def _say_faces(self, count: int) -> None:
        if count != self._faces:
            self._faces = count
            self.publisher.put(Message(self.publisher.topic(self.camera, "faces"), str(count), retain=True))

    def _snapshot(self, event: FaceAppeared | FaceLeft) -> None:
        picture = self._pictures.picture(event)
        if picture is not None:
            self.publisher.put(Message(self.publisher.topic(self.camera, "snapshot"), picture, retain=True))
            self.snapshots += 1


def _json(event: Event) -> str:
    """The event's JSON, with any URL in it redacted (a reason quoting a source's address)."""
    return json.dumps(redact_values(event.to_dict()))
