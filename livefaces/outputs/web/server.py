"""The web view (`--http [HOST:]PORT`): live camera tiles, a page per camera, a JSON API, the
Prometheus metrics and `POST /api/detect`, served by aiohttp on a thread of its own.

Routes (all but `/healthz` need `Authorization: Bearer TOKEN` when `--http-token` is set; a
browser logs in once with `/?token=TOKEN`, which sets a cookie and forgets the query):

- `GET /`, `GET /cameras/{name}`: the pages (`livefaces.outputs.web.page`).
- `GET /api/cameras`, `GET /api/cameras/{name}`: states and stats, plus the detector's load.
- `GET /api/cameras/{name}/stream.mjpg?fps=&width=&raw=`: the live view as MJPEG
  (`multipart/x-mixed-replace`); annotated unless `raw=1`; at most `fps` frames a second (10).
- `GET /api/cameras/{name}/latest.jpg?raw=&width=`: the newest frame.
- `GET /api/events?camera=&since=&limit=`: recent events, newest first (`since`: Unix seconds
  or ISO 8601; `limit` at most 1000).
- `GET /api/snapshots/{event_id}.jpg`: the picture of a face event.
- `GET /healthz`: 200 while every camera is up or within its retry policy, else 503.
- `GET /metrics`: the session's Prometheus metrics.
- `POST /api/detect?min_confidence=&min_face_size=`: a JPEG or PNG (raw body or multipart) in,
  the faces in the `detect_faces` format out, through the cameras' shared detector service.

The pipeline never waits for the server: cameras only store references (`live.WebSink`); JPEGs
are encoded on the server's threads, only for connected viewers. Blocking work (encoding,
waiting for the detector) runs on bounded thread pools, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hmac
import itertools
import json
import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import BodyPartReader, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from livefaces.cascade import Settings
from livefaces.compat import OutputFormat, format_faces
from livefaces.outputs.web import page
from livefaces.outputs.web.live import EventStore, LiveFrames, encode_jpeg
from livefaces.outputs.web.upload import MAX_BODY_BYTES, UploadError, decode_upload
from livefaces.redact import redact_values
from livefaces.runtime.detector_service import DetectorReply, DetectorService, ScanRequest, ServiceClosed
from livefaces.runtime.status import FAILED, LOST, SessionStatus
from livefaces.tiles import CONNECTING, placeholder

COOKIE = "livefaces_token"
DEFAULT_FPS, MAX_FPS = 10.0, 30.0
DETECT_TIMEOUT = 30.0  # seconds a posted image may wait for the shared detector
DETECT_THREADS = 8  # posted images waiting for the detector at once; more queue
ENCODE_THREADS = 2
STOP_SECONDS = 5.0
UNHEALTHY = (LOST, FAILED)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


class WebServer:
    """The web view of one session. `start` binds (an OSError when it cannot) and serves on its
    own thread; `attach` gives it the session's status and detector service once they exist
    (until then the API says the cameras are starting and `/api/detect` answers 503); `stop`
    closes every connection (idempotent)."""

    def __init__(
        self,
        frames: LiveFrames,
        events: EventStore,
        registry: CollectorRegistry | None = None,
        token: str | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.frames = frames
        self.events = events
        self.registry = registry
        self.viewers = 0  # MJPEG streams open now (read by tests and benchmarks)
        self._token = token
        self._max_body = max_body
        self._status: Callable[[], SessionStatus] | None = None
        self._service: DetectorService | None = None
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._closing = asyncio.Event()
        self._encoders = concurrent.futures.ThreadPoolExecutor(ENCODE_THREADS, "web-encode")
        self._detects = concurrent.futures.ThreadPoolExecutor(DETECT_THREADS, "web-detect")
        self._requests = itertools.count(1)
        self._stopped = False

    def attach(self, status: Callable[[], SessionStatus], service: DetectorService | None) -> None:
        self._status, self._service = status, service

    def start(self, host: str, port: int) -> Endpoint:
        """Bind `host:port` (port 0: a free one) and serve; returns where it really listens."""
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            self._loop.run_until_complete(site.start())
        except BaseException:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        self._thread = threading.Thread(target=self._loop.run_forever, name="web-server", daemon=True)
        self._thread.start()
        return Endpoint(host, int(bound[1]))

    def stop(self) -> None:
        """Close every connection and the server; waits at most `STOP_SECONDS`."""
        if self._stopped:
            return
        self._stopped = True
        if self._runner is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._closing.set)
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                future.result(STOP_SECONDS)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_SECONDS)
        self._encoders.shutdown(wait=False, cancel_futures=True)
        self._detects.shutdown(wait=False, cancel_futures=True)

    # The application.

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=self._max_body)
        app.add_routes(
            [
                web.get("/", self._index),
                web.get("/cameras/{name}", self._camera_page),
                web.get("/api/cameras", self._cameras),
                web.get("/api/cameras/{name}", self._camera),
                web.get("/api/cameras/{name}/stream.mjpg", self._stream),
                web.get("/api/cameras/{name}/latest.jpg", self._latest),
                web.get("/api/events", self._events),
                web.get("/api/snapshots/{event_id}.jpg", self._snapshot),
                web.get("/healthz", self._healthz),
                web.get("/metrics", self._metrics),
                web.post("/api/detect", self._detect),
            ]
        )
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if self._token is None or request.path == "/healthz":
            return await handler(request)
        if request.path == "/" and "token" in request.query and self._is_token(request.query["token"]):
            response = web.HTTPSeeOther("/")
            response.set_cookie(COOKIE, self._token, httponly=True, samesite="Strict", path="/")
            return response
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
        if not self._is_token(given):
            body = {"error": "this server needs 'Authorization: Bearer TOKEN'"}
            return web.json_response(body, status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    def _is_token(self, given: str) -> bool:
        assert self._token is not None
        return hmac.compare_digest(given.encode(), self._token.encode())

    # Pages.

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=page.index(self.frames.cameras), content_type="text/html")

    async def _camera_page(self, request: web.Request) -> web.Response:
        name = self._camera_name(request)
        return web.Response(text=page.camera(name), content_type="text/html")

    # The JSON API.

    async def _cameras(self, request: web.Request) -> web.Response:
        return web.json_response(self._session_json())

    async def _camera(self, request: web.Request) -> web.Response:
        name = self._camera_name(request)
        cameras = self._session_json()["cameras"]
        return web.json_response(next(camera for camera in cameras if camera["name"] == name))

    async def _events(self, request: web.Request) -> web.Response:
        query = request.query
        camera = query.get("camera") or None
        if camera is not None and camera not in self.frames.cameras:
            raise _http_error(404, f"no camera named {camera!r}")
        since = _since(query.get("since"))
        limit = _number(query, "limit", 100, 1, 1000, integer=True)
        stored = self.events.recent(camera, since, int(limit))
        listed = [
            {
                **redact_values(item.event.to_dict()),
                "seq": item.seq,
                "snapshot": f"/api/snapshots/{item.event.event_id}.jpg" if item.has_snapshot else None,
            }
            for item in stored
        ]
        return web.json_response({"events": listed})

    async def _snapshot(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        data = await self._loop.run_in_executor(self._encoders, self.events.snapshot, event_id)
        if data is None:
            raise _http_error(404, f"no snapshot for event {event_id!r}")
        return web.Response(body=data, content_type="image/jpeg")

    async def _healthz(self, request: web.Request) -> web.Response:
        status = self._status() if self._status is not None else None
        states = {camera.name: camera.state for camera in status.cameras} if status is not None else {}
        down = sorted(name for name, state in states.items() if state in UNHEALTHY)
        body = {"status": "unhealthy" if down else "ok", "cameras": states, "down": down}
        return web.json_response(body, status=503 if down else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.registry is None:
            raise _http_error(404, "no metrics in this session")
        data = await self._loop.run_in_executor(self._encoders, generate_latest, self.registry)
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # Pictures.

    async def _latest(self, request: web.Request) -> web.Response:
        name = self._camera_name(request)
        annotated, width = _view_options(request)
        encoded = await self._loop.run_in_executor(self._encoders, self.frames.jpeg, name, annotated, width)
        if encoded is None:
            raise _http_error(404, f"camera {name!r} has no frame yet")
        return web.Response(body=encoded[1], content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """The camera's newest frames as MJPEG: each new frame once, at most `fps` a second; while
        the camera has no frame (starting, reconnecting), one placeholder picture."""
        name = self._camera_name(request)
        annotated, width = _view_options(request)
        interval = 1.0 / _number(request.query, "fps", DEFAULT_FPS, 0.1, MAX_FPS)
        response = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        self.viewers += 1
        sent: int | None = None
        try:
            while not self._closing.is_set():
                encoded = await self._loop.run_in_executor(
                    self._encoders, self.frames.jpeg, name, annotated, width
                )
                version, data = encoded if encoded is not None else (0, None)
                if version != sent:
                    sent = version
                    await response.write(_part(data if data is not None else _placeholder(width)))
                await asyncio.sleep(interval)
        except (ConnectionResetError, RuntimeError, concurrent.futures.CancelledError):
            pass  # the viewer went away, or the server is stopping
        finally:
            self.viewers -= 1
        return response

    # Detection.

    async def _detect(self, request: web.Request) -> web.Response:
        service = self._service
        if service is None or service.closed:
            raise _http_error(503, "the detector is not running (yet)")
        min_confidence = _number(request.query, "min_confidence", 0.0, 0.0, 1.0)
        min_face_size = int(_number(request.query, "min_face_size", 20, 12, 10_000, integer=True))
        body = await self._body(request)
        try:
            rgb = await self._loop.run_in_executor(self._detects, decode_upload, body)
        except UploadError as error:
            raise _http_error(error.status, str(error)) from None
        settings = Settings(min_face_size=min_face_size)
        reply = await self._loop.run_in_executor(self._detects, self._ask, service, rgb, settings)
        if isinstance(reply, str):
            raise _http_error(503, reply)
        assert reply.detections is not None
        found = reply.detections
        if min_confidence > 0:
            found = found.select(found.scores >= min_confidence)
        faces = format_faces([found], [rgb.shape[:2]], OutputFormat(), batch=False)
        return web.json_response(faces)

    def _ask(self, service: DetectorService, rgb: Any, settings: Settings) -> DetectorReply | str:
        """One full scan through the shared detector (batched with the cameras' requests), on a
        detect thread: the reply, or why there is none."""
        client = f"http-{next(self._requests)}"
        if not service.submit(ScanRequest(client, 0, rgb, live=False, settings=settings)):
            return "the detector has stopped"
        mailbox = service.connect(client)
        try:
            reply = mailbox.get(DETECT_TIMEOUT)
        finally:
            service.disconnect(client)
        if reply is None:
            return f"the detector did not answer within {DETECT_TIMEOUT:.0f} s"
        if isinstance(reply, ServiceClosed):
            return "the detector has stopped"
        if reply.error is not None or reply.detections is None:
            return f"the detector failed: {reply.error}"
        return reply

    async def _body(self, request: web.Request) -> bytes:
        """The posted image: the raw body, or the first file part of a multipart form."""
        if request.content_length is not None and request.content_length > self._max_body:
            raise _http_error(
                413, f"the body is {request.content_length:,} bytes, more than {self._max_body:,}"
            )
        try:
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if isinstance(part, BodyPartReader) and (
                        part.filename is not None or part.name == "image"
                    ):
                        return await self._bounded(part)
                raise _http_error(
                    400, "the form has no image file (a part named 'image' or with a file name)"
                )
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _http_error(413, f"the body is more than {self._max_body:,} bytes") from None

    async def _bounded(self, part: BodyPartReader) -> bytes:
        """A form part's bytes, refused (413) as soon as they pass the body limit."""
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > self._max_body:
                raise _http_error(413, f"the image is more than {self._max_body:,} bytes")
        return bytes(data)

    # Helpers.

    def _camera_name(self, request: web.Request) -> str:
        name = request.match_info["name"]
        if name not in self.frames.cameras:
            raise _http_error(404, f"no camera named {name!r}")
        return name

    def _session_json(self) -> dict[str, Any]:
        status = self._status() if self._status is not None else None
        if status is None:
            cameras = [{"name": name, "state": CONNECTING.rstrip(".")} for name in self.frames.cameras]
            return {"cameras": cameras, "detector": None}
        listed = [_camera_json(camera) for camera in status.cameras]
        detector = dataclasses.asdict(status.detector) if status.detector is not None else None
        return redact_values({"cameras": listed, "detector": detector, "device": status.device})


def _camera_json(camera: Any) -> dict[str, Any]:
    values = {field.name: getattr(camera, field.name) for field in dataclasses.fields(camera)}
    values["stats"] = dataclasses.asdict(camera.stats)
    values["quality"] = dataclasses.asdict(camera.quality) if camera.quality is not None else None
    values["size"] = list(camera.size) if camera.size is not None else None
    values["healthy"] = camera.state not in UNHEALTHY
    return _finite(values)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _part(jpeg: bytes) -> bytes:
    header = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return header + jpeg + b"\r\n"


def _placeholder(width: int | None) -> bytes:
    size = (width or 640, round((width or 640) * 9 / 16))
    return encode_jpeg(placeholder(size, "no picture yet"))


def _view_options(request: web.Request) -> tuple[bool, int | None]:
    annotated = request.query.get("raw", "0") in ("0", "false", "")
    width = request.query.get("width")
    return annotated, None if not width else int(_number(request.query, "width", 640, 16, 8192, integer=True))


def _number(query: Any, name: str, default: float, low: float, high: float, integer: bool = False) -> float:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise _http_error(400, f"{name} must be {kind} from {low:g} to {high:g}, got {text!r}")
    return value


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise _http_error(400, f"since must be Unix seconds or an ISO 8601 time, got {text!r}") from None


def _http_error(status: int, message: str) -> web.HTTPException:
    """An aiohttp exception answering `{"error": message}` with `status`."""
    body = json.dumps({"error": message})
    if status == 413:
        return web.HTTPRequestEntityTooLarge(
            max_size=0, actual_size=0, text=body, content_type="application/json"
        )
    kinds = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 415: web.HTTPUnsupportedMediaType}
    return kinds.get(status, web.HTTPServiceUnavailable)(text=body, content_type="application/json")
