"""A small RTSP test server on loopback: rtsp://127.0.0.1:PORT/test serves a moving test pattern.

Run with Debian's interpreter, which has the GStreamer bindings (python3-gi and
gir1.2-gst-rtsp-server-1.0):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 [--frames N] [--size 320x240] [--fps 15]

The stream is H.264 (x264enc) or, without it, Motion JPEG. With `--frames N` the source sends N
frames and then ends (EOS): the server stops sending and a client sees the stream end or time out.
"READY" is printed to stdout once the server listens; SIGTERM or SIGINT stop it cleanly.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def launch_line(width: int, height: int, fps: int, frames: int | None) -> str:
    count = f" num-buffers={frames}" if frames else ""
    source = (
        f"videotestsrc is-live=true pattern=ball{count} "
        f"! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"
    )
    if Gst.ElementFactory.find("x264enc") and Gst.ElementFactory.find("rtph264pay"):
        encode = (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
            "! rtph264pay name=pay0 pt=96 config-interval=1"
        )
    else:
        encode = "videoconvert ! jpegenc ! rtpjpegpay name=pay0 pt=26"
    return f"( {source} ! {encode} )"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frames", type=int, help="end the stream after this many frames")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=15)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(width, height, args.fps, args.frames))
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print("READY", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
