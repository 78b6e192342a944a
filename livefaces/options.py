"""Every option of the app, spelled once: the command line, the config file and the typed settings.

Two dataclasses are the table. Each field of `CameraOptions` (per camera) and of `RunConfig`
(per run) carries an `Option` in its metadata: its flags, help, kind of value (which parses the
command line and checks the config file) and config-file key. `build_parser` builds argparse
from them, the config file is checked against them, and the result is plain frozen data. This
module imports no TensorFlow, OpenCV or PyAV, so bad input is reported before those load.

Cameras. `--source` may be repeated; `--source front=rtsp://cam/x` names a camera (a leading
`NAME=` where NAME is letters, digits, `_` or `-`; `rtsp://cam/x?a=b` and an existing file
`a=b.mp4` have no name). Unnamed cameras are named after their source: `camera0` for `0`,
`demo`, the host for a URL (`cam1` for `rtsp://user:pw@cam1:554/x`), the stem of a file or
folder; repeated names get `-2`, `-3`. Explicit names must be unique and fit in a file name
(`[A-Za-z0-9_][A-Za-z0-9_.-]*`). Cameras of `--config` come first, then those of `--source`;
with none at all the source is `demo`.

Outputs. `--output` and `--json` are patterns: `{name}` becomes the camera's name. With more
than one camera a path without `{name}` is refused (one file cannot hold two cameras);
`--json -` (stdout) is allowed with several cameras: each JSON line then says its camera.

Precedence, lowest first: built-in defaults < the config file's top-level keys < command-line
flags given explicitly < the keys of a camera's own `[[cameras]]` table (the most specific
wins). `--realtime` and `--detect-every N` given at the same level are refused; at different
levels the more specific one wins and the other returns to its default.

The config file (TOML; `--config cameras.toml`). Keys are the long option names with `_` for
`-` (`--json` is `json`, `--no-display` is `display = false`, `--lossless` is `live = false`,
`--thresholds` a list of three numbers, `--camera-size` "1280x720" or [1280, 720]). Top-level
keys, written before the first `[[cameras]]`, apply to the run and to every camera; a
`[[cameras]]` table holds `name` (optional), `url` (a camera index, URL, file, folder or `demo`)
or `url_env` (the name of an environment variable holding the URL) or `url_file` (a file whose
first line is the URL, e.g. a systemd or Docker secret), so credentials stay out of the config
file and of argv, and any per-camera key. `mqtt_env` and `mqtt_file` (`--mqtt-env`, `--mqtt-file`)
do the same for the broker's URL, `mqtt`, and `http_token_env`, `http_token_file` for
`http_token`. Relative paths in the file (`output`, `json`, a file or folder as `url`) are taken
from the file's folder. Unknown keys are errors (with a
suggestion); every error is one line naming the file, the key (cameras counted from 0) and the
problem::

    output = "rec-{name}.mp4"        # run-wide
    json = "faces-{name}.jsonl"
    display = false
    min_face_size = 24               # every camera, unless its table says otherwise

    [[cameras]]
    name = "front"
    url_env = "FRONT_URL"            # e.g. FRONT_URL=rtsp://user:pw@192.0.2.10/stream
    detect_width = 960

    [[cameras]]
    name = "desk"
    url = "0"
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livefaces.outputs.mqtt_url import FORM as MQTT_FORM
from livefaces.outputs.mqtt_url import parse_mqtt_url
from livefaces.redact import redact_url

if TYPE_CHECKING:
    from livefaces.capture import CaptureSettings
    from livefaces.outputs.anonymize import MaskSettings
    from livefaces.outputs.mqtt_url import MqttTarget
    from livefaces.sources.reconnect import ReconnectSettings

DEFAULT_SOURCE = "demo"
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
PLACEHOLDER = "{name}"
ANONYMIZE_THRESHOLDS = (0.5, 0.6, 0.6)  # --anonymize: a missed face is a leak, a false mask costs little
REALTIME_CONFLICT = "--realtime tracks faces (--detect-every auto): leave out --detect-every N"
_NAME_PREFIX = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_-]*)=(.*)", re.DOTALL)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_FIELDS = re.compile(r"\{[^{}]*\}")
_CAMERA_KEYS = ("name", "url", "url_env", "url_file")
_SOURCE_KEYS = ("url", "url_env", "url_file")


class Level(IntEnum):
    """Where a value comes from; a higher level wins."""

    DEFAULT = 0
    FILE = 1  # the config file's top-level keys
    COMMAND_LINE = 2
    CAMERA = 3  # a camera's own [[cameras]] table


class ConfigError(Exception):
    """Bad arguments or config file; the message is the one line to show."""


# Kinds of values: each parses a command-line word (`from_text`) and checks a config-file value
# (`check`), raising ValueError with the problem ("must be ..., got ...").


def _show(value: object) -> str:
    """A value as the config file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list, dict)):
        return json.dumps(value)
    return str(value)


def _bounds(low: float, high: float | None) -> str:
    return f">= {low:g}" + (f" and <= {high:g}" if high is not None else "")


class Kind:
    def describe(self) -> str:
        raise NotImplementedError

    def from_text(self, text: str) -> Any:
        return self.check(text)

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def problem(self, shown: str) -> ValueError:
        return ValueError(f"must be {self.describe()}, got {shown}")


@dataclass(frozen=True)
class Integer(Kind):
    low: int
    high: int | None = None

    def describe(self) -> str:
        return f"an integer {_bounds(self.low, self.high)}"

    def from_text(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise self.problem(repr(text)) from None
        return self._in_range(value, text)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.problem(_show(value))
        return self._in_range(value, _show(value))

    def _in_range(self, value: int, shown: str) -> int:
        if value < self.low or (self.high is not None and value > self.high):
            raise self.problem(shown)
        return value


@dataclass(frozen=True)
class Number(Kind):
    low: float
    high: float | None = None

    def describe(self) -> str:
        return f"a number {_bounds(self.low, self.high)}"

    def from_text(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise self.problem(repr(text)) from None
        return self._in_range(value, text)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.problem(_show(value))
        return self._in_range(float(value), _show(value))

    def _in_range(self, value: float, shown: str) -> float:
        if not math.isfinite(value) or value < self.low or (self.high is not None and value > self.high):
            raise self.problem(shown)
        return value


@dataclass(frozen=True)
class Choice(Kind):
    values: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(json.dumps(v) for v in self.values)

    def check(self, value: Any) -> str:
        if value not in self.values:
            raise self.problem(_show(value))
        return value


@dataclass(frozen=True)
class Text(Kind):
    what: str = "a non-empty string"

    def describe(self) -> str:
        return self.what

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.problem(_show(value))
        return value


@dataclass(frozen=True)
class Switch(Kind):
    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.problem(_show(value))
        return value


@dataclass(frozen=True)
class Size(Kind):
    def describe(self) -> str:
        return '"WIDTHxHEIGHT" such as "1280x720", or [WIDTH, HEIGHT]'

    def from_text(self, text: str) -> tuple[int, int]:
        try:
            width, height = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
        if width < 1 or height < 1:
            raise ValueError(f"width and height must be positive, got {text!r}")
        return width, height

    def check(self, value: Any) -> tuple[int, int]:
        if isinstance(value, str):
            try:
                return self.from_text(value)
            except ValueError:
                raise self.problem(_show(value)) from None
        positive = isinstance(value, list) and all(type(v) is int and v >= 1 for v in value)
        if positive and len(value) == 2:
            return value[0], value[1]
        raise self.problem(_show(value))


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]+)\s*")


@dataclass(frozen=True)
class ByteSize(Kind):
    """A size with its unit: "500MB", "2GB", "1.5GiB" (KB MB GB TB: powers of 1000; KiB MiB GiB
    TiB: of 1024). A bare number is refused (500 what?). The value is in bytes."""

    def describe(self) -> str:
        return 'a size with its unit such as "500MB" or "2GB" (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)'

    def check(self, value: Any) -> int:
        match = _SIZE.fullmatch(value) if isinstance(value, str) else None
        unit = _UNITS.get(match.group(2).upper()) if match else None
        if match is None or unit is None or float(match.group(1)) * unit < 1:
            raise self.problem(repr(value) if isinstance(value, str) else _show(value))
        return int(float(match.group(1)) * unit)


@dataclass(frozen=True)
class Address(Kind):
    """`PORT` (on 127.0.0.1) or `HOST:PORT` (`[::1]:PORT` for IPv6); port 0 takes a free one."""

    default_host: str = "127.0.0.1"

    def describe(self) -> str:
        return "PORT or HOST:PORT such as 9108 or 0.0.0.0:9108"

    def from_text(self, text: str) -> tuple[str, int]:
        host, _, port = text.strip().rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not port.isdigit() or int(port) > 65535 or any(c in host for c in "[]/@ "):
            raise self.problem("an address holding '@'" if "@" in text else repr(text))
        return host or self.default_host, int(port)

    def check(self, value: Any) -> tuple[str, int]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.problem(_show(value))
        try:
            return self.from_text(value)
        except ValueError:
            raise self.problem("an address holding '@'" if "@" in value else _show(value)) from None


@dataclass(frozen=True)
class MqttUrl(Kind):
    """A broker address, `livefaces.outputs.mqtt_url`'s form; its messages never show the password."""

    def describe(self) -> str:
        return MQTT_FORM

    def check(self, value: Any) -> MqttTarget:
        if not isinstance(value, str):
            raise self.problem(_show(value))
        return parse_mqtt_url(value)


@dataclass(frozen=True)
class HttpToken:
    """A bearer token for `--http`; its text stays out of `repr` and every message."""

    text: str = field(repr=False)


@dataclass(frozen=True)
class Token(Kind):
    """A secret of at least 16 printable characters with no spaces; never shown in a message."""

    def describe(self) -> str:
        return "a token of at least 16 printable characters, no spaces"

    def check(self, value: Any) -> HttpToken:
        if not isinstance(value, str):
            raise self.problem(_show(value))
        if len(value) < 16:
            raise self.problem("a string of under 16 characters")
        if not value.isprintable() or " " in value:
            raise self.problem("a string holding spaces or unprintable characters")
        return HttpToken(value)


@dataclass(frozen=True)
class Margin(Kind):
    """Pixels (`20`) or a percentage (`"25%"`), kept as text: `livefaces.faces.Margin` reads it."""

    def describe(self) -> str:
        return 'pixels such as 20 or a percentage such as "25%"'

    def check(self, value: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        text = value.strip() if isinstance(value, str) else ""
        try:
            number = float(text[:-1] if text.endswith("%") else text)
        except ValueError:
            raise self.problem(repr(value) if isinstance(value, str) else _show(value)) from None
        if not math.isfinite(number) or number < 0:
            raise self.problem(repr(value) if isinstance(value, str) else _show(value))
        return text


@dataclass(frozen=True)
class Every(Kind):
    """`auto` (track faces) or N (a full detection every Nth frame)."""

    def describe(self) -> str:
        return '"auto" or an integer >= 1'

    def from_text(self, text: str) -> int | str:
        if text.strip().lower() == "auto":
            return "auto"
        try:
            return Integer(1).from_text(text)
        except ValueError:
            raise self.problem(repr(text)) from None

    def check(self, value: Any) -> int | str:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            return Integer(1).check(value)
        except ValueError:
            raise self.problem(_show(value)) from None


@dataclass(frozen=True)
class Several(Kind):
    """A fixed number of values: `nargs` words on the command line, a list in the file."""

    item: Kind
    count: int

    def describe(self) -> str:
        return f"a list of {self.count} values, each {self.item.describe()}"

    def from_text(self, text: str) -> Any:
        return self.item.from_text(text)  # one word; argparse collects `count` of them

    def check(self, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list) or len(value) != self.count:
            raise self.problem(_show(value))
        try:
            return tuple(self.item.check(v) for v in value)
        except ValueError:
            raise self.problem(_show(value)) from None


@dataclass(frozen=True)
class Option:
    """One option: how it is typed, explained and spelled (the field's name is its identity)."""

    kind: Kind
    help: str
    flags: tuple[str, ...] | None = None  # None: "--" + the key with "-"; for a Switch they set True
    off: tuple[str, ...] = ()  # switches that set False (--lossless, --no-display)
    off_help: str | None = None
    metavar: str | tuple[str, ...] | None = None
    key: str | None = None  # in the config file; None: the field's name


def option(default: Any, kind: Kind, help: str, **spelling: Any) -> Any:
    """A dataclass field that is also an option."""
    return field(default=default, metadata={"option": Option(kind, help, **spelling)})


@dataclass(frozen=True)
class Entry:
    """An option of the table, resolved: its field, key, flags and default."""

    name: str
    key: str
    flags: tuple[str, ...]
    option: Option
    default: Any
    per_camera: bool

    def origin(self, value: Any) -> str:
        """The flag that sets this value on the command line (for messages)."""
        if isinstance(self.option.kind, Switch) and value is False and self.option.off:
            return self.option.off[-1]
        return self.flags[-1] if self.flags else self.option.off[-1]


def _table(cls: type, per_camera: bool) -> tuple[Entry, ...]:
    entries = []
    for f in fields(cls):
        spec = f.metadata.get("option")
        if spec is None:
            continue
        key = spec.key or f.name
        flags = spec.flags if spec.flags is not None else ("--" + key.replace("_", "-"),)
        default = None if f.default is MISSING else f.default
        entries.append(Entry(f.name, key, flags, spec, default, per_camera))
    return tuple(entries)


@dataclass(frozen=True)
class CameraOptions:
    """How one camera is read and detected. Every field is a command-line option (applying to
    every camera) and a config-file key, at the top level or in a camera's table."""

    detect_every: int | str | None = option(
        None,
        Every(),
        "auto: track faces, full scans as often as the machine affords (at least 5/s) and O-Net "
        "refinement between them; N: full detection every Nth frame, reused in between "
        "(default: auto for live sources, every frame for files)",
        metavar="N|auto",
    )
    realtime: bool = option(
        False,
        Switch(),
        "for files: track faces as for live sources (--detect-every auto) instead of the exact "
        "full detection on every frame",
    )
    detect_width: int | None = option(
        None, Integer(48), "downscale wider frames to this width for detection", metavar="W"
    )
    min_face_size: int = option(20, Integer(12), "smallest face in pixels")
    thresholds: tuple[float, float, float] = option(
        (0.6, 0.7, 0.7),
        Several(Number(0.0, 1.0), 3),
        "P-Net, R-Net, O-Net thresholds; --anonymize lowers them to 0.5 0.6 0.6 unless given",
        metavar=("P", "R", "O"),
    )
    min_confidence: float = option(0.0, Number(0.0, 1.0), "drop weaker faces everywhere")
    camera_size: tuple[int, int] | None = option(
        None, Size(), "resolution asked of a camera; frame size of 'demo' (default 640x480)", metavar="WxH"
    )
    camera_fps: float | None = option(
        None, Number(1.0), "frame rate asked of a camera; rate of 'demo' (default 30)"
    )
    rtsp_transport: str = option("tcp", Choice(("tcp", "udp")), "RTSP transport")
    timeout: float = option(10.0, Number(0.1), "seconds to wait for a stream to open")
    stall_timeout: float = option(
        5.0, Number(0.1), "seconds a live stream may go without a frame before it is reopened", metavar="S"
    )
    max_reconnects: int | None = option(
        None,
        Integer(0),
        "give up on a live camera after N reconnection attempts in a row (default: never; 0: no "
        "reconnection)",
        metavar="N",
    )
    live: bool | None = option(
        None,
        Switch(),
        "treat the source as live: pace files at their rate, newest frame wins",
        off=("--lossless",),
        off_help="never drop a frame, even from a live source",
    )

    def capture_settings(self) -> CaptureSettings:
        """The settings `livefaces.capture.open_source` takes (imports OpenCV and PyAV)."""
        from livefaces.capture import CaptureSettings

        return CaptureSettings(
            camera_size=self.camera_size,
            camera_fps=self.camera_fps,
            rtsp_transport=self.rtsp_transport,
            open_timeout=self.timeout,
            read_timeout=self.stall_timeout,
            live=self.live,
            demo_size=self.camera_size or (640, 480),
            demo_fps=self.camera_fps or 30.0,
        )

    def reconnect_settings(self) -> ReconnectSettings:
        """How a live camera is reconnected (`livefaces.sources.watchdog`); its stalls are found
        by the read timeout of `capture_settings`, which is `stall_timeout`."""
        from livefaces.sources.reconnect import ReconnectSettings

        return ReconnectSettings(max_reconnects=self.max_reconnects)


@dataclass(frozen=True)
class CameraSpec:
    """A camera to run: its unique name, its source spec (may hold credentials) and options."""

    name: str
    source: str
    options: CameraOptions = field(default_factory=CameraOptions)

    def __repr__(self) -> str:  # the source's credentials never reach a log
        return f"CameraSpec(name={self.name!r}, source={redact_url(self.source)!r}, options={self.options!r})"


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs: its cameras and the run-wide settings."""

    cameras: tuple[CameraSpec, ...]
    output: str | None = option(
        None,
        Text(),
        "annotated video (.mp4 .mkv .mov .avi); a folder for images; with several cameras a "
        "pattern such as 'rec-{name}.mp4'",
        flags=("-o", "--output"),
    )
    json_path: str | None = option(
        None,
        Text(),
        "JSON Lines of faces per frame; - for stdout; with several cameras a pattern such as "
        "'faces-{name}.jsonl' (or -)",
        key="json",
        metavar="FILE",
    )
    events: str | None = option(
        None,
        Text(),
        "JSON Lines of events (face_appeared, face_left, stream_down, stream_up), appended; - for "
        "stdout; several cameras share one file (each line names its camera) unless it has {name}",
        metavar="FILE",
    )
    snapshots: str | None = option(
        None,
        Text(),
        "folder of JPEG snapshots: a new face's crop and full frame, its best shot when it leaves "
        "(DIR/<camera>/<date>/; needs tracking)",
        metavar="DIR",
    )
    snapshot_limit: int = option(
        60, Integer(1), "at most N snapshot files per camera per minute", metavar="N"
    )
    keep_days: float | None = option(
        10.0, Number(0.01), "remove snapshots older than this many days", metavar="D"
    )
    max_disk: int | None = option(
        None, ByteSize(), "remove the oldest snapshots while they take more than SIZE (e.g. 500MB, 2GB)",
        metavar="SIZE",
    )  # fmt: skip
    save_faces: str | None = option(
        None,
        Text(),
        "folder of face crops, DIR/<camera>/ with an index.jsonl of what was saved; photo folders "
        "resume where an earlier run stopped",
        metavar="DIR",
    )
    margin: str = option(
        "0", Margin(), "face crops: space around the box, pixels or a percentage such as 25%", metavar="PX|P%"
    )
    face_size: int | None = option(None, Integer(8), "face crops: square, N x N pixels", metavar="N")
    align: bool = option(
        False, Switch(), "face crops: aligned on the eyes, nose and mouth to the ArcFace 112x112 template"
    )
    face_format: str = option("jpg", Choice(("jpg", "png")), "face crops: file format")
    save_every: float | None = option(
        None, Number(0.001), "face crops: at most one per tracked face per S seconds, the best", metavar="S"
    )
    display: bool = option(True, Switch(), "show the window", flags=(), off=("--no-display",),
                           off_help="run without a window")  # fmt: skip
    max_frames: int | None = option(None, Integer(1), "stop after this many frames", metavar="N")
    duration: float | None = option(
        None, Number(0.0), "stop after this many seconds of source time", metavar="S"
    )
    device: str = option("auto", Choice(("auto", "cpu", "gpu")), "where TensorFlow runs")
    codec: str = option("h264", Text(), "video codec of the recording")
    crf: int = option(23, Integer(0, 51), "quality of the recording (lower is better)")
    preset: str = option(
        "veryfast",
        Choice(("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")),
        "encoder speed of the recording (x264/x265): faster presets cost less CPU and make larger files",
    )
    segment_time: float | None = option(
        None,
        Number(1.0),
        "start a new recording file every S seconds of video; file names get the start time "
        "where the output pattern has {start} (else before the suffix)",
        metavar="S",
    )
    anonymize: str = option(
        "none",
        Choice(("blur", "pixelate", "solid", "none")),
        "mask every face in the recording, image folder and window (see --window-boxes); lowers "
        "--thresholds' default to 0.5 0.6 0.6 so fewer faces are missed (default: none)",
    )
    mask_scale: float = option(1.3, Number(1.0, 4.0), "size of a mask over the face box", metavar="X")
    mask_shape: str = option("ellipse", Choice(("ellipse", "box")), "shape of the masks")
    mask_hold: float = option(
        1.0, Number(0.0, 5.0), "seconds a mask stays after its face was last seen; recordings also "
        "mask a face this long before it was first found (they are written this much later)",
        metavar="S",
    )  # fmt: skip
    window_boxes: bool = option(
        False, Switch(), "with --anonymize: the window shows boxes on unmasked faces (recordings stay masked)"
    )
    metrics: tuple[str, int] | None = option(
        None,
        Address(),
        "serve Prometheus metrics at http://HOST:PORT/metrics (a PORT alone: on 127.0.0.1)",
        metavar="[HOST:]PORT",
    )
    log_file: str | None = option(
        None, Text(), "also log state changes and the report to this file (reopened on SIGHUP)",
        metavar="FILE",
    )  # fmt: skip
    mqtt: MqttTarget | None = option(  # noqa: RUF009 (a frozen dataclass, as immutable as a tuple)
        None,
        MqttUrl(),
        "publish events, camera states, faces in view and snapshots to this MQTT broker under "
        "PREFIX/ (a password here is visible to other users: prefer --mqtt-env or --mqtt-file)",
        metavar="URL",
    )
    mqtt_env: str | None = option(
        None, Text(), "--mqtt's URL from this environment variable (keeps a password out of argv)",
        metavar="VAR",
    )  # fmt: skip
    mqtt_file: str | None = option(
        None, Text(), "--mqtt's URL from the first line of this file (e.g. a systemd or Docker secret)",
        metavar="FILE",
    )  # fmt: skip
    http: tuple[str, int] | None = option(
        None,
        Address(),
        "serve the web view, the JSON API and POST /api/detect at http://HOST:PORT/ (a PORT alone: "
        "on 127.0.0.1)",
        metavar="[HOST:]PORT",
    )
    http_token: HttpToken | None = option(  # noqa: RUF009 (a frozen dataclass, as immutable as a tuple)
        None,
        Token(),
        "--http: every route but /healthz needs 'Authorization: Bearer TOKEN' (visible to other users "
        "here: prefer --http-token-env or --http-token-file)",
        metavar="TOKEN",
    )
    http_token_env: str | None = option(
        None, Text(), "--http-token from this environment variable (keeps it out of argv)", metavar="VAR"
    )
    http_token_file: str | None = option(
        None, Text(), "--http-token from the first line of this file (e.g. a systemd or Docker secret)",
        metavar="FILE",
    )  # fmt: skip
    ray: str | None = option(
        None,
        Text(),
        "run the cameras on a Ray cluster: 'auto' (the one `ray start` made), 'local' (start one "
        'in this process) or its address (needs pip install "livefaces[fleet]")',
        metavar="ADDRESS",
    )
    ray_detectors: int = option(
        1, Integer(1), "--ray: detector workers (a camera uses the one with the fewest cameras)", metavar="N"
    )
    ray_camera_cpus: float = option(1.0, Number(0.0), "--ray: CPUs each camera worker takes", metavar="N")
    ray_detector_cpus: float = option(1.0, Number(0.0), "--ray: CPUs each detector worker takes", metavar="N")
    ray_detector_gpus: float = option(0.0, Number(0.0), "--ray: GPUs each detector worker takes", metavar="N")
    config_path: Path | None = None

    def mask_settings(self) -> MaskSettings | None:
        """How faces are masked in image outputs, or None when they are not (`--anonymize none`)."""
        if self.anonymize == "none":
            return None
        from livefaces.outputs.anonymize import MaskSettings

        return MaskSettings(self.anonymize, self.mask_scale, self.mask_shape, self.mask_hold)

    def output_for(self, camera: str) -> Path | None:
        """The annotated video (or image folder) of this camera, if one is asked for."""
        return Path(self.output.replace(PLACEHOLDER, camera)) if self.output else None

    def json_for(self, camera: str) -> str | None:
        """This camera's JSON Lines path, `-` for stdout, or None."""
        return self.json_path.replace(PLACEHOLDER, camera) if self.json_path else None

    def events_for(self, camera: str) -> str | None:
        """This camera's events file (shared unless the path has `{name}`), `-` for stdout, or None."""
        return self.events.replace(PLACEHOLDER, camera) if self.events else None


CAMERA_TABLE = _table(CameraOptions, per_camera=True)
RUN_TABLE = _table(RunConfig, per_camera=False)
_BY_KEY = {entry.key: entry for entry in (*RUN_TABLE, *CAMERA_TABLE)}
_PATH_KEYS = ("output", "json_path")
_SHARED_PATH_KEYS = ("events", "snapshots", "save_faces")  # one file or folder for every camera is fine


# The command line.


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are a ConfigError (one line) instead of an exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def _argparse_type(kind: Kind) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind.from_text(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = type(kind).__name__.lower()
    return parse


def _help(entry: Entry, text: str) -> str:
    """The help line, with the default where there is one worth reading."""
    default = entry.default
    if default is not None and not isinstance(default, bool) and "default" not in text:
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        text += f" (default: {shown})"
    return text.replace("%", "%%")


def _add_options(group: argparse._ArgumentGroup, table: tuple[Entry, ...]) -> None:
    for entry in table:
        spec = entry.option
        common: dict[str, Any] = {"dest": entry.name, "default": argparse.SUPPRESS}
        if isinstance(spec.kind, Switch):
            target = group.add_mutually_exclusive_group() if entry.flags and spec.off else group
            if entry.flags:
                target.add_argument(*entry.flags, action="store_const", const=True, help=spec.help, **common)
            if spec.off:
                off_help = spec.off_help or spec.help
                target.add_argument(*spec.off, action="store_const", const=False, help=off_help, **common)
            continue
        if isinstance(spec.kind, Choice):
            common["choices"] = spec.kind.values
        else:
            common["type"] = _argparse_type(spec.kind)
        if isinstance(spec.kind, Several):
            common["nargs"] = spec.kind.count
        group.add_argument(*entry.flags, metavar=spec.metavar, help=_help(entry, spec.help), **common)


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from the option table (also for --help)."""
    parser = _Parser(
        prog="livefaces",
        description="Real-time MTCNN face detection on webcams, streams, video files, images or folders.",
        epilog="A config file (--config FILE, TOML) takes the same settings as keys named like the long "
        "options with _ for - (json, display = false, live = false), and [[cameras]] tables with "
        "name, url, url_env or url_file and per-camera settings. Precedence: defaults < the file's "
        "top-level keys < command-line flags < a camera's own table.",
    )
    cameras = parser.add_argument_group("cameras")
    cameras.add_argument(
        "-s",
        "--source",
        action="append",
        default=argparse.SUPPRESS,
        help="camera index (0), rtsp/http(s)/udp/tcp URL, video file, image, folder, or 'demo'; repeat "
        "for several cameras, NAME=SOURCE names one (default: demo)",
    )
    cameras.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML file of cameras and settings"
    )
    _add_options(parser.add_argument_group("outputs and limits (for the whole run)"), RUN_TABLE)
    _add_options(parser.add_argument_group("detection and capture (for every camera)"), CAMERA_TABLE)
    return parser


# Merging: each layer maps a field's name to a Setting (value, level, where it came from).


@dataclass(frozen=True)
class Setting:
    value: Any
    level: Level
    origin: str  # "--detect-every", "cameras.toml: min_face_size", "cameras.toml: cameras[1].timeout"


@dataclass
class _Camera:
    name: str | None
    source: str
    label: str  # for messages: "--source front=..." or "cameras.toml: cameras[0]"
    overrides: dict[str, Setting] = field(default_factory=dict)


def parse_command_line(argv: Sequence[str] | None, environ: Mapping[str, str] | None = None) -> RunConfig:
    """The run described by the command line and its `--config` file. Raises ConfigError.

    `argv` None means sys.argv[1:] (argparse's rule); `environ` (default os.environ) is where
    `url_env` looks. `--help` prints the help and raises SystemExit(0), as argparse does.
    """
    given = vars(build_parser().parse_args(argv))
    sources = given.pop("source", [])
    config_path = Path(given.pop("config")) if "config" in given else None
    command_line = {
        name: Setting(_as_value(value), Level.COMMAND_LINE, _entry(name).origin(value))
        for name, value in given.items()
    }
    _refuse_tracking_conflict(command_line)
    file_run: dict[str, Setting] = {}
    file_cameras: dict[str, Setting] = {}
    cameras: list[_Camera] = []
    if config_path is not None:
        file_run, file_cameras, cameras = _read_config(
            config_path, os.environ if environ is None else environ
        )
    cameras += [_command_line_camera(text) for text in sources]
    cameras = cameras or [_Camera(None, DEFAULT_SOURCE, "the default source")]
    per_run = _stack(RUN_TABLE, file_run, command_line)
    per_camera = _stack(CAMERA_TABLE, file_cameras, command_line)
    specs = tuple(
        CameraSpec(name, camera.source, _camera_options(per_camera, camera, per_run["anonymize"].value))
        for name, camera in zip(_names(cameras), cameras)
    )
    for name in _PATH_KEYS:
        _check_pattern(per_run[name], several=len(specs) > 1)
    _check_pattern(per_run["events"], several=False)
    environ = os.environ if environ is None else environ
    _resolve_secret(per_run, ("mqtt", "mqtt_env", "mqtt_file"), parse_mqtt_url, environ)
    _resolve_secret(per_run, ("http_token", "http_token_env", "http_token_file"), _token, environ)
    values = {name: setting.value for name, setting in per_run.items()}
    return RunConfig(cameras=specs, config_path=config_path, **values)


def _token(text: str) -> HttpToken:
    return Token().check(text)


def _resolve_secret(
    per_run: dict[str, Setting],
    keys: tuple[str, str, str],
    parse: Callable[[str], Any],
    environ: Mapping[str, str],
) -> None:
    """A secret's setting (`keys`: the value, its _env and _file forms, as `mqtt`) from whichever
    was given at the most specific level (two at one level are refused); the variable or file is
    read only when it is the one, and parsed with `parse` (whose errors never show the secret)."""
    given = [(key, per_run[key]) for key in keys if per_run[key].level != Level.DEFAULT]
    if not given:
        return
    top = max(setting.level for _, setting in given)
    chosen = [(key, setting) for key, setting in given if setting.level == top]
    if len(chosen) > 1:
        origins = " and ".join(setting.origin for _, setting in chosen)
        flags = ", ".join("--" + key.replace("_", "-") for key in keys)
        raise ConfigError(f"{origins}: give only one of {flags}")
    key, setting = chosen[0]
    if key == keys[0]:
        return
    if key == keys[1]:
        text = environ.get(setting.value)
        if text is None or not text.strip():
            state = "is not set" if text is None else "is empty"
            raise ConfigError(f"{setting.origin}: environment variable {setting.value} {state}")
    else:
        text = _first_line(setting.value, setting.origin)
    try:
        per_run[keys[0]] = Setting(parse(text.strip()), setting.level, setting.origin)
    except ValueError as error:
        raise ConfigError(f"{setting.origin} {setting.value}: {error}") from None


def _first_line(path: str, origin: str) -> str:
    """The first non-empty line of a secrets file; errors never show the file's text."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{origin}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not readable text"
        raise ConfigError(f"{origin}: {path}: {reason}") from None
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not line:
        raise ConfigError(f"{origin}: {path} is empty")
    return line


def _stack(table: tuple[Entry, ...], *layers: dict[str, Setting]) -> dict[str, Setting]:
    """The table's defaults, overridden by each layer in turn (its settings for this table)."""
    merged = _defaults(table)
    for layer in layers:
        merged.update((name, setting) for name, setting in layer.items() if name in merged)
    return merged


def _entry(name: str) -> Entry:
    return next(entry for entry in (*RUN_TABLE, *CAMERA_TABLE) if entry.name == name)


def _as_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _defaults(table: tuple[Entry, ...]) -> dict[str, Setting]:
    return {entry.name: Setting(entry.default, Level.DEFAULT, "default") for entry in table}


def _command_line_camera(text: str) -> _Camera:
    """`--source SPEC` or `--source NAME=SPEC` (a file that exists under the whole text wins)."""
    if not text.strip():
        raise ConfigError("--source: the source is empty")
    match = _NAME_PREFIX.fullmatch(text)
    if match is None or _exists(text):
        return _Camera(None, text, f"--source {redact_url(text)}")
    name, spec = match.groups()
    if not spec.strip():
        raise ConfigError(f"--source {name}=: no source after the camera's name")
    return _Camera(name, spec, f"--source {name}=...")


def _exists(text: str) -> bool:
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _camera_options(
    per_camera: dict[str, Setting], camera: _Camera, anonymize: str = "none"
) -> CameraOptions:
    merged = {**per_camera, **camera.overrides}
    if anonymize != "none" and merged["thresholds"].level == Level.DEFAULT:  # privacy: fewer misses
        merged["thresholds"] = Setting(ANONYMIZE_THRESHOLDS, Level.DEFAULT, "default")
    realtime, every = merged["realtime"], merged["detect_every"]
    if realtime.value and isinstance(every.value, int):  # set at different levels: the specific wins
        loser = "detect_every" if realtime.level > every.level else "realtime"
        merged[loser] = _defaults(CAMERA_TABLE)[loser]
    return CameraOptions(**{name: setting.value for name, setting in merged.items()})


def _refuse_tracking_conflict(layer: dict[str, Setting]) -> None:
    """`realtime` (which tracks) and `detect_every N` in one place contradict each other."""
    realtime, every = layer.get("realtime"), layer.get("detect_every")
    if realtime is None or every is None or not realtime.value or not isinstance(every.value, int):
        return
    if every.level == Level.COMMAND_LINE:
        raise ConfigError(REALTIME_CONFLICT)
    raise ConfigError(
        f"{every.origin}: {every.value} contradicts realtime = true, which tracks faces "
        '(detect_every = "auto"); leave one out'
    )


def _check_pattern(setting: Setting, several: bool) -> None:
    """Only `{name}` may be replaced, and several cameras need it."""
    value = setting.value
    if value is None:
        return
    where = f"{setting.origin} {value}" if setting.level == Level.COMMAND_LINE else setting.origin
    unknown = [found for found in _FIELDS.findall(value) if found != PLACEHOLDER]
    if unknown:
        raise ConfigError(f"{where}: unknown placeholder {unknown[0]}; the only one is {PLACEHOLDER}")
    if several and value != "-" and PLACEHOLDER not in value:
        path = Path(value)
        example = str(path.with_name(f"{path.stem}-{PLACEHOLDER}{path.suffix}"))
        raise ConfigError(f"{where}: several cameras would write one file; use a pattern such as '{example}'")


# Names.


def _names(cameras: list[_Camera]) -> list[str]:
    """Explicit names (unique, file-name safe) first, then derived ones, de-duplicated."""
    owners: dict[str, _Camera] = {}
    for camera in cameras:
        if camera.name is None:
            continue
        if camera.name in owners:
            first = owners[camera.name].label
            raise ConfigError(f"{_name_origin(camera)}: {camera.name!r} is already the name of {first}")
        owners[camera.name] = camera
    names = []
    for camera in cameras:
        name = camera.name
        if name is None:
            base = name = derived_name(camera.source)
            number = 2
            while name in owners:
                name, number = f"{base}-{number}", number + 1
            owners[name] = camera
        names.append(name)
    return names


def _name_origin(camera: _Camera) -> str:
    return camera.label if camera.label.startswith("--source") else f"{camera.label}.name"


def derived_name(spec: str) -> str:
    """A file-name-safe name for a source: camera0, demo, the URL's host, a file's stem."""
    if spec.isdigit():
        return f"camera{spec}"
    if spec == DEFAULT_SOURCE:
        return spec
    scheme = _SCHEME.match(spec)
    base = _host(spec[scheme.end() :]) if scheme else Path(spec).stem
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip(".-")
    return safe or ("stream" if scheme else "source")


def _host(rest: str) -> str:
    """The host of a URL's remainder after `scheme://`: after the last `@`, before the port."""
    authority = re.split(r"[?#]", rest, maxsplit=1)[0]
    authority = authority[authority.rindex("@") + 1 :] if "@" in authority else authority
    authority = authority.split("/", 1)[0]
    if authority.startswith("["):  # [IPv6]:port
        return authority[1:].split("]", 1)[0]
    return authority.split(":", 1)[0]


# The config file.


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(f"{path}: reading it on Python 3.10 needs tomli (pip install tomli)") from None
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, the config must be a file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"{path}: not valid TOML: {reason}") from None


def _read_config(
    path: Path, environ: Mapping[str, str]
) -> tuple[dict[str, Setting], dict[str, Setting], list[_Camera]]:
    """The file's run-wide settings, its settings for every camera, and its cameras."""
    data = _load_toml(path)
    run: dict[str, Setting] = {}
    every_camera: dict[str, Setting] = {}
    for key, value in data.items():
        if key == "cameras":
            continue
        entry = _BY_KEY.get(key)
        if entry is None:
            raise ConfigError(f"{path}: {key}: {_unknown(key, value, [*_BY_KEY, 'cameras'])}")
        setting = _file_setting(entry, value, path, key, Level.FILE)
        (every_camera if entry.per_camera else run)[entry.name] = setting
    _refuse_tracking_conflict(every_camera)
    tables = data.get("cameras", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: cameras: must be a list of tables, written [[cameras]]")
    cameras = [_file_camera(table, path, f"cameras[{i}]", environ) for i, table in enumerate(tables)]
    return run, every_camera, cameras


def _file_setting(entry: Entry, value: Any, path: Path, where: str, level: Level) -> Setting:
    try:
        checked = entry.option.kind.check(value)
    except ValueError as error:
        raise ConfigError(f"{path}: {where}: {error}") from None
    if (
        entry.name in (*_PATH_KEYS, *_SHARED_PATH_KEYS, "log_file", "mqtt_file", "http_token_file")
        and checked != "-"
    ):
        checked = _beside(path, checked)
    return Setting(checked, level, f"{path}: {where}")


def _beside(config: Path, relative: str) -> str:
    """A path written in the config file, taken relative to the file's folder."""
    return relative if Path(relative).is_absolute() else str(config.parent / relative)


def _unknown(key: str, value: Any, known: list[str]) -> str:
    message = "unknown key"
    if key in _CAMERA_KEYS:
        return message + " here: it belongs in a [[cameras]] table"
    if isinstance(value, dict):
        return message + " (settings go at the top of the file, before the first [[cameras]])"
    guess = difflib.get_close_matches(key.replace("-", "_").lower(), known, n=1, cutoff=0.6)
    return message + (f" (did you mean {guess[0]}?)" if guess else "")


def _file_camera(table: Any, path: Path, where: str, environ: Mapping[str, str]) -> _Camera:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {where}: must be a table, written [[cameras]] with url = ...")
    known = [*_CAMERA_KEYS, *(entry.key for entry in CAMERA_TABLE)]
    overrides: dict[str, Setting] = {}
    for key, value in table.items():
        if key in _CAMERA_KEYS:
            continue
        entry = _BY_KEY.get(key)
        if entry is not None and not entry.per_camera:
            raise ConfigError(
                f"{path}: {where}.{key}: applies to the whole run; set it at the top of the file, before "
                "the first [[cameras]]"
            )
        if entry is None:
            raise ConfigError(f"{path}: {where}.{key}: {_unknown(key, value, known)}")
        overrides[entry.name] = _file_setting(entry, value, path, f"{where}.{key}", Level.CAMERA)
    _refuse_tracking_conflict(overrides)
    name = table.get("name")
    if name is not None and (not isinstance(name, str) or not NAME.fullmatch(name)):
        raise ConfigError(
            f"{path}: {where}.name: must be letters, digits, '_', '.' or '-' (it goes into file names), "
            f"not starting with '.' or '-', got {_show(name)}"
        )
    return _Camera(name, _file_source(table, path, where, environ), f"{path}: {where}", overrides)


def _url_from_file(name: Any, path: Path, where: str) -> str:
    """The URL in a secrets file: its first non-empty line. Errors never show the file's text."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: {where}.url_file: must be the path of a file holding the URL")
    secret = _beside(path, name)
    try:
        text = Path(secret).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {where}.url_file: {secret} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not readable text"
        raise ConfigError(f"{path}: {where}.url_file: {secret}: {reason}") from None
    url = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not url:
        raise ConfigError(f"{path}: {where}.url_file: {secret} is empty")
    return url


def _file_source(table: dict[str, Any], path: Path, where: str, environ: Mapping[str, str]) -> str:
    """A camera's `url` (index, URL, file, folder, demo), the variable `url_env` names, or the
    first line of the file `url_file` names (a secrets file, e.g. systemd's or Docker's)."""
    given = [key for key in _SOURCE_KEYS if key in table]
    if len(given) != 1:
        problem = (
            f"give one of url, url_env, url_file, not {' and '.join(given)}"
            if given
            else ("needs url, url_env or url_file")
        )
        raise ConfigError(f"{path}: {where}: {problem}")
    if "url_env" in table:
        variable = table["url_env"]
        if not isinstance(variable, str) or not variable:
            raise ConfigError(f"{path}: {where}.url_env: must be the name of an environment variable")
        url = environ.get(variable)
        if url is None:
            raise ConfigError(f"{path}: {where}.url_env: environment variable {variable} is not set")
        if not url.strip():
            raise ConfigError(f"{path}: {where}.url_env: environment variable {variable} is empty")
        return url
    if "url_file" in table:
        return _url_from_file(table["url_file"], path, where)
    url = table["url"]
    if isinstance(url, int) and not isinstance(url, bool) and url >= 0:
        return str(url)
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f'{path}: {where}.url: must be a camera index, URL, file, folder or "demo", got '
            f"{redact_url(url) if isinstance(url, str) else _show(url)}"
        )
    if url.isdigit() or url == DEFAULT_SOURCE or _SCHEME.match(url):
        return url
    return _beside(path, url)
