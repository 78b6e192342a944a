"""A small RTSP test server on loopback: rtsp://127.0.0.1:PORT/test serves a moving test pattern,
or H.264 mp4 files at mounts of their own.

Run with Debian's interpreter, which has the GStreamer bindings (python3-gi and
gir1.2-gst-rtsp-server-1.0):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 [--frames N] [--size 320x240] [--fps 15]
    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file a.mp4 --mount /a [--file b.mp4 --mount /b]

The test pattern is H.264 (x264enc) or, without it, Motion JPEG. With `--frames N` the source
sends N frames and then ends (EOS): the server stops sending and a client sees the stream end or
time out. `--file PATH` (repeatable) serves an mp4 holding H.264 as it is, without re-encoding,
paced at its own rate; each `--mount` names the mount of the `--file` at the same position
(default /test for a single file, else /file0, /file1...). Every client of a file gets its own
session from the file's start (the media is not shared), and the stream ends at the file's end.
`--user NAME --password PW` makes every mount require those credentials (HTTP Basic auth, as
most IP cameras do): a client without them, or with others, gets 401 Unauthorized.
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


def file_launch_line(path: str) -> str:
    """An mp4 holding H.264, sent as it is (no decoding or encoding), its parameters in-band."""
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'( filesrc location="{location}" ! qtdemux ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


def file_mounts(files: list[str], mounts: list[str]) -> list[tuple[str, str]]:
    """(mount, file) pairs: each --mount names the --file at the same position."""
    if len(mounts) > len(files):
        raise SystemExit("rtsp_server: more --mount than --file")
    defaults = ["/test"] if len(files) == 1 else [f"/file{k}" for k in range(len(files))]
    named = [m if m.startswith("/") else "/" + m for m in mounts] + defaults[len(mounts) :]
    if len(set(named)) != len(named):
        raise SystemExit(f"rtsp_server: mounts must differ, got {named}")
    return list(zip(named, files))


def require_credentials(server, factories: list, user: str, password: str) -> None:
    """Basic auth on every mount: only `user`:`password` may see and play the media."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = Gst.Structure.new_empty("viewer")
    permissions.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    permissions.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    for factory in factories:
        factory.add_role_from_structure(permissions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frames", type=int, help="end the stream after this many frames")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--file", action="append", default=[], help="serve this H.264 mp4 (repeatable)")
    parser.add_argument("--mount", action="append", default=[], help="mount of the --file at its position")
    parser.add_argument("--user", help="require these credentials (with --password)")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    factories = []
    if args.file:
        for mount, path in file_mounts(args.file, args.mount):
            factory = GstRtspServer.RTSPMediaFactory()
            factory.set_launch(file_launch_line(path))
            factory.set_shared(False)  # every client from the start of the file
            factories.append((mount, factory))
    else:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(width, height, args.fps, args.frames))
        factory.set_shared(True)
        factories.append(("/test", factory))
    if args.user:
        require_credentials(server, [factory for _, factory in factories], args.user, args.password)
    for mount, factory in factories:
        mounts.add_factory(mount, factory)

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
