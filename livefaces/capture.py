"""Frame sources: webcam, RTSP/HTTP/UDP/TCP streams, video files, images, folders and `demo`.

`open_source(spec, settings)` names the kind of source from its spec and returns a `Source`.
`Source.frames()` opens the capture, reads the first frame before it yields anything (so a bad
source fails at once, with its name in the error), and releases everything in `finally`. A
source can be opened again after its iterator ends, which is what a reconnecting stream needs.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# isort: off
# OpenCV before PyAV: both wheels bundle libxcb, and with PyAV's copy loaded first an OpenCV
# window hangs forever while connecting to the X server.
import cv2
import av

# isort: on
import numpy as np

from livefaces.demo import DemoScene
from livefaces.frames import Frame
from livefaces.redact import redact_url
from livefaces.sources.photos import count_images, decode_ahead, walk_images

LIVE_KINDS = ("stream", "camera")  # sources that never end on their own: an end means lost
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https", "udp", "tcp", "rtmp")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


ERROR, STALL = "error", "stall"  # why a source failed: a read or open error, or no frame in time


class SourceError(Exception):
    """A source cannot be opened or read; the message names the source and the reason.

    reason: `ERROR`, or `STALL` when the source stopped giving frames (no data, or data without
    a frame, for the read timeout), so a watchdog can count stalls apart from errors.
    """

    def __init__(self, message: str, reason: str = ERROR) -> None:
        super().__init__(message)
        self.reason = reason


class NothingLeft(SourceError):
    """A folder whose every image was done by an earlier run (resuming): not an error."""


@dataclass(frozen=True)
class CaptureSettings:
    """How sources are opened. `live=None` lets the kind of source decide.

    open_timeout: seconds a stream may take to open. read_timeout: seconds a stream may go
    without a frame (no data, or data that decodes to nothing) before it counts as stalled.
    """

    camera_size: tuple[int, int] | None = None
    camera_fps: float | None = None
    rtsp_transport: str = "tcp"
    open_timeout: float = 10.0
    read_timeout: float = 5.0
    live: bool | None = None
    demo_size: tuple[int, int] = (640, 480)
    demo_fps: float = 30.0


@dataclass(frozen=True)
class SourceInfo:
    """What is known of a source, as a plain value. A `Source` publishes a new one when opening
    tells more (fps, size, length): read `source.info` after `frames()` has returned."""

    name: str
    kind: str
    live: bool
    fps: float | None = None
    size: tuple[int, int] | None = None
    frame_count: int | None = None
    path: Path | None = None


class Source:
    """A source that can be opened, and opened again: `frames()` yields `Frame`s.

    One clock for the whole session: frame indices keep increasing across reopens, and so do
    timestamps (live streams and cameras are stamped on arrival against the first opening, so a
    gap shows as a gap; files, images and `demo` continue one frame after where they stopped).
    `corrupt_frames` and `skipped` count what the reader had to leave out.
    """

    def __init__(self, info: SourceInfo, reader: Callable[[Source], Iterator[Frame]], paced: bool):
        self._info = info
        self._reader = reader
        self._paced = paced
        self.corrupt_frames = 0
        self.skipped: list[str] = []  # "file: reason" for each unreadable image
        self.skip: Callable[[str], bool] | None = None  # folders: photos done already (relative paths)
        self._next_index = 0
        self._session_start: float | None = None
        self._last_time: float | None = None

    @property
    def info(self) -> SourceInfo:
        return self._info

    def publish(self, **known: object) -> None:
        """Publish what opening the source told (fps, size, frame_count) as a new `info` value."""
        self._info = dataclasses.replace(self._info, **known)  # type: ignore[arg-type]

    def frames(self) -> Iterator[Frame]:
        """Open the source and yield its frames; the first frame is read before returning.

        Raises `SourceError` (naming the source) when it cannot be opened or yields nothing.
        """
        iterator = self._reader(self)
        try:
            first = next(iterator)
        except StopIteration:
            raise SourceError(f"{self.info.name}: no frames could be read") from None
        except SourceError:
            raise
        except av.error.FFmpegError as error:  # its str() holds the URL: credentials included
            raise SourceError(f"{self.info.name}: {_ffmpeg_reason(error)}") from None
        except (OSError, cv2.error) as error:
            raise SourceError(f"{self.info.name}: {error}") from None
        if self._session_start is None:
            self._session_start = first.captured_at
        frames = self._on_session_clock(_chain(first, iterator), first)
        return self._paced_frames(frames) if self._paced else frames

    def _on_session_clock(self, frames: Iterator[Frame], first: Frame) -> Iterator[Frame]:
        """Renumber and restamp this opening's frames on the session's one clock."""
        stamped_on_arrival = self.info.kind in LIVE_KINDS
        offset = 0.0
        if self._last_time is not None and not stamped_on_arrival:
            offset = self._last_time + 1.0 / (self.info.fps or 30.0) - first.timestamp
        try:
            for frame in frames:
                if stamped_on_arrival:
                    timestamp = frame.captured_at - (self._session_start or frame.captured_at)
                else:
                    timestamp = frame.timestamp + offset
                self._last_time = timestamp
                index, self._next_index = self._next_index, self._next_index + 1
                yield dataclasses.replace(frame, index=index, timestamp=timestamp)
        finally:
            frames.close()  # type: ignore[attr-defined]

    def _paced_frames(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """Release file frames at their own timestamps, as a camera would (`--live` on a file)."""
        start: float | None = None
        first_time = 0.0
        try:
            for frame in frames:
                if start is None:
                    start, first_time = time.monotonic(), frame.timestamp
                delay = start + frame.timestamp - first_time - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                yield dataclasses.replace(frame, captured_at=time.monotonic())
        finally:
            frames.close()  # type: ignore[attr-defined]


def _chain(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    try:
        yield first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def _lower_scheme(url: str) -> str:
    """URL schemes are case-insensitive, FFmpeg's protocol names are not: `RTSP://` -> `rtsp://`."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest}"


def open_source(spec: str, settings: CaptureSettings | None = None) -> Source:
    """The `Source` for a spec: a camera index, `demo`, a URL, a file or a folder.

    Raises `SourceError` for an unknown scheme or a path that does not exist. The source is
    not opened yet: call `frames()`.
    """
    settings = settings or CaptureSettings()
    if spec.isdigit():
        info = SourceInfo(f"camera {spec}", "camera", live=True)
        return Source(info, lambda source: _read_camera(int(spec), settings, source), paced=False)
    if spec == "demo":
        live = bool(settings.live)
        info = SourceInfo("demo", "demo", live=live, fps=settings.demo_fps, size=settings.demo_size)
        return Source(info, lambda source: _read_demo(settings), paced=live)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", spec)
    if scheme:
        if scheme.group(1).lower() not in STREAM_SCHEMES:
            raise SourceError(
                f"{redact_url(spec)}: unknown scheme {scheme.group(1)!r} "
                f"(use one of {', '.join(STREAM_SCHEMES)}, a file, a folder, a camera index or 'demo')"
            )
        live = settings.live if settings.live is not None else True
        url = _lower_scheme(spec)
        info = SourceInfo(redact_url(spec), "stream", live=live)
        return Source(info, lambda source: _read_av(url, settings, source, stream=True), paced=False)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if path.is_dir():
        info = SourceInfo(str(path), "images", live=False, path=path)
        return Source(info, lambda source: _read_folder(path, source), paced=False)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        info = SourceInfo(str(path), "images", live=False, path=path)
        return Source(info, lambda source: _read_images([path], source), paced=False)
    live = bool(settings.live)
    info = SourceInfo(str(path), "file", live=live, path=path)
    return Source(info, lambda source: _read_av(str(path), settings, source, stream=False), paced=live)


def _read_folder(folder: Path, source: Source) -> Iterator[Frame]:
    """A folder's images, walked lazily in sorted order and decoded ahead by a pool of threads;
    an unreadable image is skipped, counted and named; those `source.skip` names are left out.
    Their number (for the progress bar) is counted by a second walk on a thread of its own."""
    counted: list[int] = []
    threading.Thread(
        target=lambda: counted.append(count_images(folder, IMAGE_SUFFIXES, source.skip)),
        name="count-images",
        daemon=True,
    ).start()
    index = seen = 0
    for path, image in decode_ahead(walk_images(folder, IMAGE_SUFFIXES, source.skip)):
        seen += 1
        if counted and source.info.frame_count is None:
            source.publish(frame_count=counted[0])  # on this thread, which owns `info`
        if image is None:
            source.corrupt_frames += 1
            source.skipped.append(f"{path}: not a readable image")
            continue
        _publish_size(source, image)
        yield Frame(index, float(index), time.monotonic(), image, name=str(path))
        index += 1
    if index == 0 and source.skip is not None:  # resuming: the rest, if any, cannot be read
        raise NothingLeft(f"{folder}: every readable image is done already")
    if seen == 0:
        raise SourceError(f"{folder}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if index == 0:
        raise SourceError(f"{source.info.name}: none of the images could be read")


def _read_images(files: list[Path], source: Source) -> Iterator[Frame]:
    """One image file (a source of one frame)."""
    source.publish(frame_count=len(files))
    for index, path in enumerate(files):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{path}: not a readable image")
        _publish_size(source, image)
        yield Frame(index, float(index), time.monotonic(), image, name=str(path))


def _publish_size(source: Source, image: np.ndarray) -> None:
    size = (image.shape[1], image.shape[0])
    if source.info.size != size:
        source.publish(size=size)


def _read_demo(settings: CaptureSettings) -> Iterator[Frame]:
    width, height = settings.demo_size
    scene = DemoScene(width, height, settings.demo_fps)
    index = 0
    while True:
        yield Frame(index, index / settings.demo_fps, time.monotonic(), scene.render(index))
        index += 1


def _read_camera(index: int, settings: CaptureSettings, source: Source) -> Iterator[Frame]:
    backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    capture = cv2.VideoCapture(index, backend)
    try:
        if not capture.isOpened():
            raise SourceError(f"camera {index}: cannot be opened (no such camera, or it is busy)")
        if settings.camera_size:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, settings.camera_size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.camera_size[1])
        if settings.camera_fps:
            capture.set(cv2.CAP_PROP_FPS, settings.camera_fps)
        source.publish(fps=capture.get(cv2.CAP_PROP_FPS) or None)
        start, index_read = None, 0
        while True:
            ok, image = capture.read()
            if not ok:
                if index_read == 0:
                    raise SourceError(f"camera {index}: opened but gives no frames")
                return
            now = time.monotonic()
            start = now if start is None else start
            _publish_size(source, image)
            yield Frame(index_read, now - start, now, image)
            index_read += 1
    finally:
        capture.release()


def _av_options(settings: CaptureSettings, url: str) -> dict[str, str]:
    """Streams: no demuxer buffering (`nobuffer`, `low_delay`), RTSP over TCP unless told."""
    options = {"fflags": "nobuffer", "flags": "low_delay"}
    if url.lower().startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = settings.rtsp_transport
    return options


def _read_av(url: str, settings: CaptureSettings, source: Source, stream: bool) -> Iterator[Frame]:
    """Frames decoded by PyAV/FFmpeg from a file or a network stream.

    Files carry the container's presentation times; streams are stamped on arrival. A packet
    that fails to decode in the middle is skipped and counted.
    """
    opened_at = time.monotonic()
    info = source.info
    try:
        container = av.open(
            url,
            options=_av_options(settings, url) if stream else {},
            timeout=(settings.open_timeout, settings.read_timeout) if stream else None,
        )
    except av.error.FFmpegError as error:
        # FFmpeg reports an interrupted open as ExitError or, from inside RTSP, as invalid data.
        if stream and time.monotonic() - opened_at >= settings.open_timeout:
            raise SourceError(
                f"{info.name}: no answer within {settings.open_timeout:g} s (open timeout)"
            ) from None
        if isinstance(error, av.error.HTTPUnauthorizedError):
            raise SourceError(f"{info.name}: credentials refused (401 Unauthorized)") from None
        if isinstance(error, av.error.HTTPForbiddenError):
            raise SourceError(f"{info.name}: access forbidden (403 Forbidden)") from None
        reason = "cannot be opened" if stream else "not a readable video"
        raise SourceError(f"{info.name}: {reason} ({_ffmpeg_reason(error)})") from None
    try:
        if not container.streams.video:
            raise SourceError(f"{info.name}: has no video stream")
        video = container.streams.video[0]
        configure_decoder(video, stream)
        rate = video.average_rate or video.guessed_rate
        fps = float(rate) if rate else None
        source.publish(fps=fps, frame_count=video.frames or _estimated_frames(container, video, fps))
        yield from _decode(container, video, source, stream, settings.read_timeout)
    finally:
        container.close()


MAX_PIXELS = 8192 * 8192  # beyond 8K UHD (7680x4320): what no camera or video file here needs


def configure_decoder(video: av.VideoStream, stream: bool) -> None:
    """Live streams: slice threads, which hold no decoded frame back (frame threads hold
    threads - 1 frames: two frames of latency on two cores), with `chunks`, so a picture that
    an RTP depayloader split over two packets is put together before it is shown instead of
    coming out half decoded. Files: frame threads, which decode faster.

    Both refuse pictures beyond `MAX_PIXELS` before allocating them: a few KB of garbage can
    claim 12000x12000 pixels, and the decoder would reserve 650 MB for each such frame."""
    options = {**video.codec_context.options, "max_pixels": str(MAX_PIXELS)}
    if stream:
        video.thread_type = "SLICE"
        options["flags2"] = "+chunks"
    else:
        video.thread_type = "AUTO"
    video.codec_context.options = options


def _decode(
    container: av.container.InputContainer,
    video: av.VideoStream,
    source: Source,
    stream: bool,
    read_timeout: float,
) -> Iterator[Frame]:
    """Decoded frames; a stream that sends no data (FFmpeg's interrupt after `read_timeout`) or
    only data that decodes to nothing for `read_timeout` seconds raises a `STALL` SourceError."""
    index, start, info = 0, None, source.info
    packets = container.demux(video)
    last_frame = time.monotonic()
    while True:
        if stream and time.monotonic() - last_frame > read_timeout:
            raise SourceError(f"{info.name}: no frame for {read_timeout:g} s (stalled)", STALL)
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.ExitError:
            message = f"{info.name}: no data for {read_timeout:g} s (read timeout)"
            raise SourceError(message, STALL) from None
        except av.error.FFmpegError as error:
            if stream or index == 0:
                raise SourceError(f"{info.name}: {_ffmpeg_reason(error)}") from None
            source.corrupt_frames += 1
            continue
        try:
            decoded = packet.decode()
        except av.error.FFmpegError:
            if index == 0 and packet.size == 0:
                raise SourceError(f"{info.name}: no video frame could be decoded") from None
            source.corrupt_frames += 1
            continue
        for av_frame in decoded:
            now = last_frame = time.monotonic()
            image = av_frame.to_ndarray(format="bgr24")
            _publish_size(source, image)
            if stream:
                start = now if start is None else start
                timestamp = now - start
            else:
                timestamp = _frame_time(av_frame, index, info.fps)
            yield Frame(index, timestamp, now, image)
            index += 1


def _frame_time(av_frame: av.VideoFrame, index: int, fps: float | None) -> float:
    if av_frame.time is not None:
        return float(av_frame.time)
    return index / (fps or 30.0)


def _estimated_frames(container: av.container.InputContainer, video: av.VideoStream, fps: float | None):
    duration = None
    if video.duration is not None and video.time_base is not None:
        duration = float(video.duration * video.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    return round(duration * fps) if duration and fps else None


def _ffmpeg_reason(error: av.error.FFmpegError) -> str:
    return getattr(error, "strerror", None) or str(error)
