"""Annotated video recording with PyAV: source timestamps kept, audio copied through.

Frames are encoded with the timestamps they had in the source, so the recording's timing and
duration match it; for a file source, its audio packets are copied (not re-encoded) alongside,
up to the last recorded frame. `close()` always flushes the encoder and finalizes the
container, so a recording stopped by Ctrl-C, SIGTERM or a dying source stays playable.

A camera that comes back from a reconnection at another resolution keeps its one file: its
frames are scaled, aspect kept, into the size the file started with (a size change inside one
H.264 stream plays badly or not at all in common players), and the summary says how many.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

# isort: off
# OpenCV before PyAV: both wheels bundle libxcb, and with PyAV's copy loaded first an OpenCV
# window hangs forever while connecting to the X server.
import cv2
import av

# isort: on
import numpy as np

from livefaces.detections import Detections
from livefaces.frames import Frame, FrameResult
from livefaces.tiles import letterbox
from livefaces.tracker import TrackedFaces

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi")
# The codecs offered in messages, best first; `--codec` takes any encoder FFmpeg has.
SUGGESTED_CODECS = ("h264", "hevc", "mpeg4", "mjpeg", "libvpx-vp9", "libsvtav1")
FINE_TIME_BASE = Fraction(1, 90000)
CRF_CODECS = ("h264", "libx264", "hevc", "libx265", "libvpx-vp9")


# Live recordings must survive a hard kill (SIGKILL, power cut, OOM): fragmented MP4 (a moov
# up front, then a self-contained fragment about every second) and Matroska clusters of at most
# a second, each pushed to the file as soon as it is complete.
CRASH_SAFE_OPTIONS = {
    ".mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"},
    ".mov": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"},
    ".mkv": {"cluster_time_limit": "1000"},
}
CRASH_SAFE_GOP_SECONDS = 1.0  # a keyframe every second, so every fragment can start


class VideoRecorder:
    """A sink that writes annotated frames to a video file (mp4, mkv, mov or avi).

    threads: the encoder's threads (None: FFmpeg's choice; several cameras share the cores).
    rebase: the file's time starts at 0 with its first frame (segments) instead of keeping the
    source's timestamps.
    crash_safe: for live recordings: fragmented MP4 / short Matroska clusters flushed as they
    complete, and a keyframe every second, so a hard kill loses at most about 2 s and the rest
    plays. File-to-file jobs keep the ordinary MP4 users expect.
    """

    render: str | None = "annotated"

    def __init__(
        self,
        path: str | Path,
        fps: float | None = None,
        codec: str = "h264",
        crf: int = 23,
        preset: str = "veryfast",
        audio_from: Path | None = None,
        crash_safe: bool = False,
        rebase: bool = False,
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.rebase = rebase
        self.threads = threads
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{self.path}: the output must end in one of {', '.join(VIDEO_SUFFIXES)}")
        self.fps = fps or 30.0
        self.codec, self.crf, self.preset = codec, crf, preset
        self.audio_from = audio_from
        self.crash_safe = crash_safe
        self.audio_copied = False
        self.frames_written = 0  # frames given to the encoder
        self.frames_in_file = 0  # video packets muxed: frames that are in the file
        self.frames_resized = 0  # frames of another size than the first, scaled into its size
        self._size: tuple[int, int] | None = None
        self.complete = True
        self._container: av.container.OutputContainer | None = None
        self._video: av.VideoStream | None = None
        self._audio_input: av.container.InputContainer | None = None
        self._audio_output: av.AudioStream | None = None
        self._audio_packets: Iterator[av.Packet] | None = None
        self._pending_audio: av.Packet | None = None
        self._last_pts = -1
        self._last_time = 0.0
        self._first_time = 0.0
        self._origin = 0.0
        self._time_base = FINE_TIME_BASE

    def write(self, item: FrameResult, canvas: np.ndarray | None) -> None:
        """Encode one annotated frame at its source timestamp."""
        if canvas is None:
            raise ValueError("the recorder needs the annotated image")
        if self._container is None:
            self._open(canvas.shape[1], canvas.shape[0])
            self._size = (canvas.shape[1], canvas.shape[0])
        assert self._container is not None and self._video is not None
        if (canvas.shape[1], canvas.shape[0]) != self._size:
            canvas = letterbox(canvas, self._size)  # type: ignore[arg-type]
            self.frames_resized += 1
        if self.frames_written == 0:
            self._origin = item.frame.timestamp if self.rebase else 0.0
            self._first_time = item.frame.timestamp - self._origin
        pts = max(round((item.frame.timestamp - self._origin) / self._time_base), self._last_pts + 1)
        self._last_pts = pts
        self._last_time = float(pts * self._time_base)
        frame = self._video_frame(self._even(canvas))
        frame.pts, frame.time_base = pts, self._time_base
        self._mux_video(self._video.encode(frame))
        self.frames_written += 1
        self._copy_audio_until(self._last_time + 1 / self.fps)

    def close(self) -> None:
        """Flush the encoder, copy the remaining audio, finalize the file. Safe to call twice."""
        if self._container is None:
            return
        try:
            assert self._video is not None
            self._mux_video(self._video.encode(None))
            self._copy_audio_until(self._last_time + 1 / self.fps)
        finally:
            container, self._container = self._container, None
            self.complete = self.frames_in_file == self.frames_written
            container.close()
            if self._audio_input is not None:
                self._audio_input.close()
            # The encoder (its threads and buffers) lives as long as its stream object: let go.
            self._video = self._audio_output = None
            self._audio_input = self._audio_packets = self._pending_audio = None

    def summary(self) -> str:
        """What the file holds, e.g. "out.mp4: 120 frames, 4.0 s, audio copied"."""
        if self.frames_written == 0:
            return f"{self.path}: not written (no frame reached it)"
        seconds = self._last_time - self._first_time + 1 / self.fps
        audio = ", audio copied" if self.audio_copied else ""
        missing = self.frames_written - self.frames_in_file
        lost = f" - INCOMPLETE: {missing} encoded frames could not be written" if missing else ""
        resized = ""
        if self.frames_resized and self._size is not None:
            width, height = self._size
            resized = f", {self.frames_resized} scaled to {width}x{height} after a resolution change"
        return f"{self.path}: {self.frames_in_file} frames, {seconds:.1f} s{audio}{resized}{lost}"

    def _video_frame(self, image: np.ndarray) -> av.VideoFrame:
        """The encoder's input: for yuv420p, converted by OpenCV (the same BT.601 limited-range
        matrix as FFmpeg's converter, a third cheaper at 720p); else BGR for FFmpeg to convert."""
        assert self._video is not None
        if self._video.pix_fmt == "yuv420p":
            return av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        return av.VideoFrame.from_ndarray(image, format="bgr24")

    def _mux_video(self, packets: list[av.Packet]) -> None:
        assert self._container is not None
        for packet in packets:
            self._container.mux(packet)
            self.frames_in_file += 1

    def _open(self, width: int, height: int) -> None:
        suffix = self.path.suffix.lower()
        options = {"flush_packets": "1", **CRASH_SAFE_OPTIONS.get(suffix, {})} if self.crash_safe else {}
        container = av.open(str(self.path), mode="w", options=options)
        rate = Fraction(self.fps).limit_denominator(1001)
        if suffix == ".avi":
            self._time_base = 1 / rate
        stream = _add_video_stream(container, self.codec, rate, (width, height), self.crf, self.preset)
        if self.crash_safe:
            stream.codec_context.gop_size = max(1, round(self.fps * CRASH_SAFE_GOP_SECONDS))
        stream.time_base = self._time_base
        if self.threads is not None:
            stream.codec_context.thread_count = self.threads
        stream.codec_context.time_base = self._time_base
        self._container, self._video = container, stream
        if self.audio_from is not None:
            self._open_audio()

    def _open_audio(self) -> None:
        assert self._container is not None
        source = av.open(str(self.audio_from))
        if not source.streams.audio:
            source.close()
            return
        try:
            self._audio_output = self._container.add_stream_from_template(source.streams.audio[0])
        except (av.error.FFmpegError, ValueError):
            source.close()
            return
        self._audio_input = source
        self._audio_packets = source.demux(source.streams.audio[0])
        self.audio_copied = True

    def _copy_audio_until(self, seconds: float) -> None:
        """Mux the source's audio packets that start before `seconds`."""
        if self._audio_packets is None or self._container is None:
            return
        while True:
            packet = self._pending_audio or next(self._audio_packets, None)
            self._pending_audio = None
            if packet is None:
                self._audio_packets = None
                return
            if packet.pts is None or packet.size == 0:
                continue
            if float(packet.pts * packet.time_base) >= seconds:
                self._pending_audio = packet
                return
            packet.stream = self._audio_output
            self._container.mux(packet)

    @staticmethod
    def _even(image: np.ndarray) -> np.ndarray:
        """Pad an odd width or height by one black pixel: H.264 in yuv420p needs even sizes."""
        pad_bottom, pad_right = image.shape[0] % 2, image.shape[1] % 2
        if pad_bottom or pad_right:
            return cv2.copyMakeBorder(image, 0, pad_bottom, 0, pad_right, cv2.BORDER_CONSTANT, value=0)
        return image


def _add_video_stream(
    container: av.container.OutputContainer,
    codec: str,
    rate: Fraction,
    size: tuple[int, int],
    crf: int = 23,
    preset: str = "veryfast",
) -> av.VideoStream:
    """A video stream as the recorder writes it: even size, yuv420p, CRF quality where it applies."""
    stream = container.add_stream(codec, rate=rate)
    width, height = size
    stream.width, stream.height = width + width % 2, height + height % 2
    stream.pix_fmt = _pixel_format(stream.codec_context.codec)
    if stream.codec_context.name in CRF_CODECS or codec in CRF_CODECS:
        stream.options = {"crf": str(crf), "preset": preset}
    return stream


def codec_works(codec: str, suffix: str) -> bool:
    """Whether `codec` can record to a `suffix` file here: the recorder itself writes a few tiny
    frames to a temp file, so the check is exactly what a real recording will do."""
    image = np.zeros((48, 64, 3), np.uint8)
    with tempfile.TemporaryDirectory(prefix="livefaces-codec-") as folder:
        recorder = VideoRecorder(Path(folder) / f"probe{suffix}", 30.0, codec)
        try:
            for index in range(8):
                frame = Frame(index, index / 30.0, 0.0, image)
                faces = TrackedFaces(Detections.empty(), np.zeros(0, bool), np.zeros(0, bool))
                recorder.write(FrameResult("probe", frame, faces, True), image)
            recorder.close()
        except (av.error.FFmpegError, ValueError, OSError, TypeError):
            with contextlib.suppress(av.error.FFmpegError, ValueError, OSError, TypeError):
                recorder.close()
            return False
    return True


def check_codec(codec: str, path: Path) -> None:
    """Raise ValueError naming `--codec`, the bad value and the valid choices, unless `codec`
    can record to `path`'s container. Checked before anything starts."""
    suffix = path.suffix.lower()
    if codec_works(codec, suffix):
        return
    choices = ", ".join(c for c in SUGGESTED_CODECS if codec_works(c, suffix))
    known = any(codec_works(codec, other) for other in VIDEO_SUFFIXES if other != suffix)
    reason = f"cannot be written to a {suffix} file" if known else "is not a video encoder available here"
    raise ValueError(f"--codec {codec}: {reason}; for {suffix} choose one of {choices}")


def _pixel_format(codec: av.Codec) -> str:
    """yuv420p, the format every player takes, or its full-range twin for (M)JPEG encoders."""
    offered = [f.name for f in codec.video_formats or ()]
    if "jpeg" in codec.name and "yuvj420p" in offered:  # (M)JPEG encoders refuse limited range
        return "yuvj420p"
    return "yuv420p" if not offered or "yuv420p" in offered else offered[0]
