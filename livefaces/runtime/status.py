"""What the panel, the logs and (later) the web view and metrics read about each camera.

A `CameraStatus` is a plain value published by the camera's runner a few times a second; readers
never touch the runner. `SessionStatus` is every camera plus the shared detector's load.
"""

from __future__ import annotations

from dataclasses import dataclass

from livefaces.runtime.detector_service import ServiceLoad
from livefaces.sources.quality import LinkQuality
from livefaces.stats import StatsSnapshot

CONNECTING, ONLINE, RECONNECTING, ENDED = "connecting", "online", "reconnecting", "ended"
LOST, STOPPED, FAILED = "lost", "stopped", "failed"
RUNNING = (CONNECTING, ONLINE, RECONNECTING)


@dataclass(frozen=True)
class CameraStatus:
    """One camera's state and health.

    name: the camera's name (as given with `--source NAME=...` or in the config file).
    source: the source as it may be shown (credentials masked). kind: camera | stream | file |
    images | demo. live: newest frame wins (drops counted) rather than lossless.
    state: connecting | online | reconnecting (a live camera dropped and is being reopened) |
    ended (the source finished) | lost (a live source went away for good) | stopped (asked to
    stop) | failed. size, fps, frame_count: as the source reports them, None
    while unknown. stats: counters and rates of this camera's pipeline. error: the last error.
    reconnects: reconnections that succeeded in this run; stalls: times the stream stopped giving
    frames; attempt: the reconnection being tried now (0 when online); next_try_in: seconds until
    that attempt, while waiting for it. quality: live cameras' connection over the last hour.
    """

    name: str
    source: str
    kind: str
    live: bool
    state: str
    size: tuple[int, int] | None
    fps: float | None
    frame_count: int | None
    stats: StatsSnapshot
    error: str | None = None
    reconnects: int = 0
    stalls: int = 0
    attempt: int = 0
    next_try_in: float | None = None
    quality: LinkQuality | None = None


@dataclass(frozen=True)
class SessionStatus:
    """Every camera, in the order they were given, and the shared detector (device and load)."""

    cameras: tuple[CameraStatus, ...]
    device: str
    detector: ServiceLoad | None
