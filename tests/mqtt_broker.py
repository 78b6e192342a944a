"""A real Mosquitto broker on a loopback port for the MQTT tests, and a real paho subscriber.

`Broker` writes its own config (one listener on 127.0.0.1, anonymous or with a password file,
persistence in its own folder or none), starts `mosquitto -c`, and waits until the port accepts
connections; `kill()` (SIGKILL) and `start()` again on the same port make a broker restart.
`Subscriber` records every message it receives and waits on conditions with a deadline.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.02)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """Mosquitto on 127.0.0.1:`port`, configured in `folder`."""

    def __init__(self, folder: Path, port: int | None = None, users: dict[str, str] | None = None,
                 persistent: bool = False) -> None:  # fmt: skip
        if not Path(MOSQUITTO).exists():
            pytest.skip(f"no MQTT test broker: {MOSQUITTO} is not installed (apt-get install mosquitto)")
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        # run as whoever runs the tests (as root, mosquitto would become "mosquitto" and could not
        # write its persistence file into the test's folder)
        lines = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}"]
        if users:
            passwords = folder / "passwords"
            passwords.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run([PASSWD, "-b", str(passwords), user, password], check=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if persistent:
            lines += ["persistence true", f"persistence_location {folder}/"]
        else:
            lines.append("persistence false")
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = folder / "mosquitto.log"

    def start(self) -> Broker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=log)
        wait_until(lambda: accepts(self.port) or self.process.poll() is not None, DEADLINE, "the broker")
        if self.process.poll() is not None:
            raise AssertionError(f"mosquitto exited: {self.log.read_text()}")
        return self

    def kill(self) -> None:
        """SIGKILL: the broker vanishes with its in-memory state (retained messages included)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(DEADLINE)

    def terminate(self) -> None:
        """SIGTERM: a persistent broker saves its state first."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(DEADLINE)

    def url(self, prefix: str, credentials: str = "") -> str:
        return f"mqtt://{credentials}127.0.0.1:{self.port}/{prefix}"


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")


class Subscriber:
    """A paho client subscribed to `topic` (QoS 1) that keeps every message it gets."""

    def __init__(self, port: int, topic: str, username: str | None = None, password: str | None = None,
                 client_id: str | None = None, clean: bool = True) -> None:  # fmt: skip
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._topic = topic
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
            clean_session=clean,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(DEADLINE):
            raise AssertionError("the test subscriber could not subscribe")

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object) -> None:  # fmt: skip
        client.subscribe(self._topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain)))
            self._changed.notify_all()

    def wait_for(self, accept: Callable[[Received], bool], what: str, seconds: float = DEADLINE,
                 after: int = 0) -> Received:  # fmt: skip
        """The first message (from index `after`) that `accept`s; fails naming `what` at the deadline."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while True:
                found = next((m for m in self.messages[after:] if accept(m)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages})
                    raise AssertionError(
                        f"timed out after {seconds:g} s waiting for {what}; topics seen: {seen}"
                    )
                self._changed.wait(left)

    def on(self, topic: str) -> list[Received]:
        with self._changed:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
