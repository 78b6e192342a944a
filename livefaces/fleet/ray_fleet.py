"""The cameras on a Ray cluster: `--ray ADDRESS` (`auto`, `local`, or a cluster's address).

    driver (this process): opens the cluster, places the actors, polls their status for the
        panel, the state log and the metrics, and on a stop has every camera finish.
    camera actors (one per camera, `--ray-camera-cpus`): a `CameraHost`: the camera's source,
        runner, tracker and outputs, exactly as in one process, its detector across a link.
    detector actors (`--ray-detectors`, `--ray-detector-cpus` / `--ray-detector-gpus`): a
        `DetectorWorker`: the shared, batched detector service; camera i uses detector i % N.

Ray's own primitives carry everything: actors with `max_restarts=-1` (Ray restarts a worker that
dies; a restarted camera actor resumes its camera in a new recording segment), threaded detector
actors (`max_concurrency`) whose `exchange` calls from many cameras meet in one batch, and
`ray.get` with a timeout on every call, so a dead or restarting worker delays nothing for long.
What crosses the wire per frame is a scan's pyramid input (the frame shrunk to the pyramid's
first level) or a refinement's 48x48 face patches, never the camera's full frame.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from livefaces.capture import SourceInfo
from livefaces.fleet.link import LinkStats
from livefaces.fleet.workers import CameraHost, DetectorWorker, HostReport, HostStatus
from livefaces.options import CameraSpec, RunConfig
from livefaces.runtime import status as states
from livefaces.runtime.detector_service import DetectorReply, Request, ServiceLoad
from livefaces.runtime.status import CameraStatus, SessionStatus
from livefaces.runtime.threaded import CameraSummary, SessionSummary
from livefaces.stats import PipelineStats

if TYPE_CHECKING:
    from rich.console import Console

POLL_SECONDS = 0.5
CALL_SECONDS = 10.0  # longest wait for a quick call (status, load) to an actor
DETECTOR_START_SECONDS = 180.0  # a detector actor's first start loads TensorFlow and the weights
OPEN_SECONDS = 120.0  # opening every camera (a stream's first frame, retries included)
FINISH_SECONDS = 60.0  # a camera finalizing its recordings
MAX_CAMERAS_PER_DETECTOR = 64  # threads a detector actor keeps for cameras' exchange calls
LOCAL_SPARE_CAMERAS = 16  # `--ray local`: logical CPUs kept for cameras a reload adds
REACH_SECONDS = 5.0  # a cluster address that does not accept a connection in this time is refused


class FleetError(Exception):
    """The fleet could not start: one line for the user (exit code 2)."""


class RemoteDetector:
    """A camera's endpoint: `exchange` on a detector actor, bounded by a timeout."""

    def __init__(self, handle: Any, timeout: float = CALL_SECONDS) -> None:
        self.handle = handle
        self.timeout = timeout

    def exchange(self, camera: str, requests: list[Request], wait: float) -> tuple[str, list[DetectorReply]]:
        import ray

        return ray.get(self.handle.exchange.remote(camera, requests, wait), timeout=wait + self.timeout)


class CameraActor:
    """A Ray actor around `CameraHost`. Ray re-runs `__init__` when it restarts the actor: then
    the camera is opened and started at once (the driver started it the first time).

    `workdir` is the driver's working directory: the worker moves there when its node has it,
    so relative sources and outputs mean what they mean on the driver (Ray starts workers in
    the directory `ray start` ran in). On a node without it, paths should be absolute."""

    def __init__(
        self,
        config: RunConfig,
        index: int,
        detector: Any,
        sharing: int,
        new_segment: bool = False,
        workdir: str | None = None,
    ) -> None:
        import ray

        if workdir and os.path.isdir(workdir):
            os.chdir(workdir)
        self.detector = detector
        restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self.host = CameraHost(config, index, RemoteDetector(detector), restarted, sharing, new_segment)
        if restarted:
            self._forget()
            if self.host.open() is None:
                self.host.start()

    def open(self) -> str | None:
        return self.host.open()

    def start(self) -> None:
        self._forget()
        self.host.start()

    def status(self) -> HostStatus:
        return self.host.status()

    def reopen_event_logs(self) -> None:
        self.host.reopen_event_logs()

    def jpeg(self, annotated: bool, width: int | None) -> tuple[int, bytes] | None:
        return self.host.jpeg(annotated, width)

    def recent_events(self, since: float | None, limit: int) -> list[Any]:
        return self.host.recent_events(since, limit)

    def snapshot(self, event_id: str) -> bytes | None:
        return self.host.snapshot(event_id)

    def finish(self, timeout: float) -> HostReport:
        return self.host.finish(timeout)

    def pid(self) -> int:
        return os.getpid()

    def _forget(self) -> None:
        """The detector forgets what an earlier worker of this camera left pending."""
        import ray

        with contextlib.suppress(Exception):
            ray.get(self.detector.forget.remote(self.host.name), timeout=CALL_SECONDS)


@dataclass(frozen=True)
class SourceFacts:
    """What the final report reads of a camera's source after a fleet run."""

    skipped: tuple[str, ...] = ()
    corrupt_frames: int = 0


@dataclass(frozen=True)
class FleetCamera:
    """A camera of a finished fleet run, shaped as the report reads an `OpenCamera`."""

    spec: CameraSpec
    info: SourceInfo
    source: SourceFacts = field(default_factory=SourceFacts)


@dataclass(frozen=True)
class FleetOutcome:
    summary: SessionSummary
    cameras: tuple[FleetCamera, ...]
    links: tuple[LinkStats, ...]


def combined_load(loads: list[ServiceLoad]) -> ServiceLoad | None:
    """Several detector workers' load as one: rates and counters added, per-call figures
    weighted by calls, busy % the mean over the workers."""
    if not loads:
        return None
    rate = sum(load.calls_per_second for load in loads)
    weights = [load.calls_per_second for load in loads] if rate else [1.0] * len(loads)
    total = sum(weights)
    return ServiceLoad(
        rate,
        sum(w * load.mean_batch for w, load in zip(weights, loads)) / total,
        sum(w * load.ms_per_call for w, load in zip(weights, loads)) / total,
        sum(load.busy_percent for load in loads) / len(loads),
        sum(load.pending for load in loads),
        sum(load.served for load in loads),
        sum(load.errors for load in loads),
        sum(load.replaced for load in loads),
        sum(load.calls for load in loads),
        sum(load.busy_seconds for load in loads),
    )


@dataclass
class Member:
    """A camera of the running fleet: its spec, its actor, and the detector it uses."""

    spec: CameraSpec
    actor: Any
    detector: int
    status: CameraStatus
    host: HostStatus | None = None


class Fleet:
    """The driver's view of the running actors: `start`, `poll`, `status`, `apply` (cameras join
    and leave), `finish`. One thread (the driver's loop) calls all but `status` and `hosts`."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.detectors: list[Any] = []
        self.members: list[Member] = []
        self.departed: list[tuple[CameraSpec, HostReport | None]] = []
        self.device = ""
        self._seen: set[str] = set()
        waiting = [_waiting(spec) for spec in config.cameras]  # until the workers answer
        self._published: tuple[list[CameraStatus], list[HostStatus | None]] = (waiting, [None] * len(waiting))
        self._actors: dict[str, Any] = {}
        self._load: ServiceLoad | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Place the detector and camera actors and open every camera; `FleetError` when one
        cannot start (the actors made so far are killed)."""
        import ray

        config = self.config
        threads = max(1, int(config.ray_detector_cpus)) if config.ray_detector_gpus == 0 else None
        detector_actor = ray.remote(DetectorWorker).options(
            num_cpus=config.ray_detector_cpus,
            num_gpus=config.ray_detector_gpus,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=MAX_CAMERAS_PER_DETECTOR + 4,
        )
        self.detectors = [detector_actor.remote(config.device, threads) for _ in range(config.ray_detectors)]
        try:
            self.device = ray.get(self.detectors[0].device.remote(), timeout=DETECTOR_START_SECONDS)
        except Exception as error:
            self.kill()
            raise FleetError(f"--ray: the detector worker did not start: {_reason(error)}") from None
        try:
            errors = self._join(config, list(config.cameras))
        except Exception as error:
            self.kill()
            raise FleetError(f"--ray: the camera workers did not start: {_reason(error)}") from None
        if errors:
            self.finish()
            raise FleetError(next(iter(errors.values())))
        self._publish()

    def _join(self, config: RunConfig, specs: list[CameraSpec]) -> dict[str, str]:
        """Place, open and start these cameras of `config` (each on the detector with the fewest
        cameras); the open errors by camera (those cameras are finished and left out)."""
        import ray

        need, free = len(specs) * config.ray_camera_cpus, ray.available_resources().get("CPU", 0.0)
        if need > free + 1e-6:
            short = (
                f"--ray: the cluster has {free:g} free CPUs and {len(specs)} camera worker(s) need "
                f"{need:g} (--ray-camera-cpus {config.ray_camera_cpus:g} each)"
            )
            return {spec.name: short for spec in specs}
        camera_actor = ray.remote(CameraActor).options(
            num_cpus=config.ray_camera_cpus, max_restarts=-1, max_task_retries=0, max_concurrency=4
        )
        count = len(self.detectors)
        total = len(self.members) + len(specs)
        sharing = -(-total // count)
        joined = []
        for spec in specs:
            uses = [sum(m.detector == d for m in self.members + joined) for d in range(count)]
            detector = uses.index(min(uses))
            index = config.cameras.index(spec)
            actor = camera_actor.remote(
                config, index, self.detectors[detector], sharing, spec.name in self._seen, os.getcwd()
            )
            joined.append(Member(spec, actor, detector, _waiting(spec)))
            self._seen.add(spec.name)
        self.members += joined
        try:
            errors = ray.get([m.actor.open.remote() for m in joined], timeout=OPEN_SECONDS)
        except Exception as error:  # not placed, or not open in time: they do not join
            for member in joined:
                with contextlib.suppress(Exception):
                    ray.kill(member.actor, no_restart=True)
            self.members = [m for m in self.members if m not in joined]
            return {m.spec.name: f"--ray: the camera worker did not start: {_reason(error)}" for m in joined}
        failed = [m for m, error in zip(joined, errors) if error is not None]
        if failed:
            self._leave(failed)
        started = [m for m in joined if m not in failed]
        ray.get([m.actor.start.remote() for m in started], timeout=OPEN_SECONDS)
        return {m.spec.name: error for m, error in zip(joined, errors) if error is not None}

    def _leave(self, members: list[Member]) -> None:
        """These cameras finish their outputs and leave the fleet (their reports are kept)."""
        import ray

        refs = [m.actor.finish.remote(FINISH_SECONDS) for m in members]
        for member, ref in zip(members, refs):
            try:
                report: HostReport | None = ray.get(ref, timeout=FINISH_SECONDS + CALL_SECONDS)
            except Exception:
                report = None
            self.departed.append((member.spec, report))
            with contextlib.suppress(Exception):
                ray.kill(member.actor, no_restart=True)
        self.members = [m for m in self.members if m not in members]

    def apply(self, config: RunConfig) -> list[str]:
        """Cameras join or leave without a restart: the cameras of `config` (a config file read
        again) become the fleet's. A camera whose settings changed is restarted; one that joins
        again records to a new segment. The run's own options stay as they started. Returns one
        line per change."""
        wanted = {spec.name: spec for spec in config.cameras}
        leaving = [m for m in self.members if wanted.get(m.spec.name) != m.spec]
        kept = {m.spec.name for m in self.members} - {m.spec.name for m in leaving}
        joining = [spec for spec in config.cameras if spec.name not in kept]
        lines = [f"camera {m.spec.name} left" for m in leaving if m.spec.name not in wanted]
        lines += [f"camera {m.spec.name} changed: restarting it" for m in leaving if m.spec.name in wanted]
        if leaving:
            self._leave(leaving)
        if joining:
            errors = self._join(replace(self.config, cameras=tuple(config.cameras)), joining)
            changed = {m.spec.name for m in leaving}
            for spec in joining:
                if spec.name in errors:
                    lines.append(f"camera {spec.name} did not join: {errors[spec.name]}")
                elif spec.name not in changed:
                    lines.append(f"camera {spec.name} joined")
        self.config = replace(self.config, cameras=tuple(m.spec for m in self.members))
        self._publish()
        return lines

    def poll(self) -> list[str]:
        """Read every camera's status and the detectors' load; returns the cameras' link lines.
        A camera whose actor does not answer (dead, restarting) is shown reconnecting."""
        import ray

        refs = [m.actor.status.remote() for m in self.members]
        loads = [detector.load.remote() for detector in self.detectors]
        lines: list[str] = []
        for member, ref in zip(self.members, refs):
            try:
                host: HostStatus = ray.get(ref, timeout=CALL_SECONDS)
            except Exception as error:
                member.status = replace(
                    member.status, state=states.RECONNECTING, error=f"camera worker: {_reason(error)}"
                )
                continue
            lines += host.lines
            member.host = host
            if host.camera is not None:
                member.status = host.camera
        found = []
        for ref in loads:
            with contextlib.suppress(Exception):
                found.append(ray.get(ref, timeout=CALL_SECONDS))
        with self._lock:
            self._load = combined_load(found) if found else self._load
        self._publish()
        return lines

    def _publish(self) -> None:
        with self._lock:
            self._published = ([m.status for m in self.members], [m.host for m in self.members])
            self._actors = {m.spec.name: m.actor for m in self.members}

    def actor_of(self, camera: str) -> Any:
        """The camera's actor (None for a camera not in the fleet now); from any thread."""
        with self._lock:
            return self._actors.get(camera)

    def status(self) -> SessionStatus:
        with self._lock:
            return SessionStatus(tuple(self._published[0]), f"ray: {self.device}", self._load)

    def hosts(self) -> list[HostStatus | None]:
        """Every camera host's last answer to `poll` (None until it answered): link traffic and
        the runner's counts, for benchmarks."""
        with self._lock:
            return list(self._published[1])

    def observations(self) -> list[tuple[Any, ...]]:
        """Every camera's observed metric families from its last answer to `poll`
        (`--metrics`: latency histograms and event counts); from any thread."""
        return [host.observations for host in self.hosts() if host is not None]

    def all_ended(self) -> bool:
        return all(m.status.state not in states.RUNNING for m in self.members)

    def reopen_event_logs(self) -> None:
        """Every camera reopens its event files (SIGHUP, for logrotate)."""
        for member in self.members:
            with contextlib.suppress(Exception):
                member.actor.reopen_event_logs.remote()

    def finish(self) -> list[tuple[CameraSpec, HostReport | None]]:
        """Every camera stops and finalizes its outputs; then the detectors stop. Returns every
        camera of the run with its report (None for a worker that could not answer), those
        that left on the way included."""
        import ray

        self._leave(list(self.members))
        for detector in self.detectors:
            with contextlib.suppress(Exception):
                ray.get(detector.stop.remote(), timeout=CALL_SECONDS)
        self.kill()
        return list(self.departed)

    def kill(self) -> None:
        import ray

        for actor in (*(m.actor for m in self.members), *self.detectors):
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)


def connect(config: RunConfig) -> None:
    """Join (or, for `local`, start) the Ray cluster; `FleetError` when it cannot be reached."""
    try:
        import ray
    except ImportError:
        raise FleetError('--ray needs Ray: pip install "livefaces[fleet]"') from None
    quiet: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    address = config.ray or "auto"
    _reachable(address)
    kept = (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []))
    handlers = {signum: signal.getsignal(signum) for signum in kept}
    try:
        if address == "local":
            needed = (
                len(config.cameras) * config.ray_camera_cpus + config.ray_detectors * config.ray_detector_cpus
            )
            spare = LOCAL_SPARE_CAMERAS * config.ray_camera_cpus  # room for cameras that join later
            cpus = max(os.cpu_count() or 1, int(needed + 0.999)) + int(spare + 0.999)
            gpus = config.ray_detectors * config.ray_detector_gpus
            ray.init(num_cpus=cpus, num_gpus=int(gpus + 0.999), **quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as error:
        raise FleetError(f"--ray {address}: cannot reach a Ray cluster there: {_reason(error)}") from None
    finally:  # Ray's driver takes SIGTERM for itself (exiting at once): the run's handlers own it
        if threading.current_thread() is threading.main_thread():
            for signum, handler in handlers.items():
                signal.signal(signum, handler)


def _reachable(address: str) -> None:
    """A cluster's HOST:PORT must accept a connection within seconds (Ray itself retries for
    minutes before it gives up on an address that does not answer)."""
    if address in ("local", "auto") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    host, port = (host, port) if host and port.isdigit() else (address, "6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise FleetError(f"--ray {address}: cannot reach a Ray cluster there: {reason}") from None


def precheck(config: RunConfig) -> None:
    """`--ray local`: every camera is opened here first and its outputs checked, then closed, so
    bad input fails in a second with one line, before the cluster starts (on a remote cluster
    the sources are the workers' to reach)."""
    if config.ray != "local":
        return
    from livefaces.app import open_cameras

    for camera in open_cameras(config):
        camera.close()


def run_fleet(
    config: RunConfig,
    console: Console,
    stop: threading.Event,
    abort: threading.Event,
    hangup: threading.Event | None = None,
    reload: Callable[[], RunConfig] | None = None,
) -> FleetOutcome:
    """Run the cameras on Ray until every camera ends or `stop` is set; every camera finalizes
    its outputs. The panel, the state log and `--metrics` read the polled status.

    When `hangup` is set (SIGHUP), every camera reopens its event files and `reload` (the
    command line and its config file read again) gives the cameras that should run now: those
    that left finish, new ones join. A config that no longer reads gives one line; nothing
    changes then."""
    import ray

    from livefaces.app import _serve_metrics, _serve_web
    from livefaces.fleet.web import FleetEvents, FleetFrames, FleetUploads
    from livefaces.observe.logs import log
    from livefaces.observe.state_log import StateLog, StatusWatcher
    from livefaces.panel import SessionReporter

    precheck(config)
    fleet = Fleet(config)
    metrics = _serve_metrics(config, observed_here=False)
    web = uploads = None
    try:
        web = _serve_web(config, FleetFrames(fleet), FleetEvents(fleet), metrics)
        connect(config)
        fleet.start()
    except BaseException:
        if web is not None:
            web.stop()
        if metrics is not None:
            metrics.stop()
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise
    if metrics is not None:
        metrics.collector.attach(fleet.status)
        metrics.forwarded.attach(fleet.observations)
    if web is not None:
        uploads = FleetUploads(RemoteDetector(fleet.detectors[0]), fleet.detectors[0].forget.remote)
        web.attach(fleet.status, uploads)  # type: ignore[arg-type]
    reporter = SessionReporter(fleet.status, console) if console.is_terminal else None
    watcher = StatusWatcher(fleet.status, StateLog()).start()
    if reporter is not None:
        reporter.start()
    reports: list[tuple[CameraSpec, HostReport | None]] = []
    try:
        while not stop.is_set():
            if hangup is not None and hangup.is_set():
                hangup.clear()
                fleet.reopen_event_logs()
                if reload is not None:
                    for line in _reloaded(fleet, reload):
                        log().warning(line)
            for line in fleet.poll():
                log().warning(line)
            if fleet.all_ended():
                break
            stop.wait(POLL_SECONDS)
    finally:
        if uploads is not None:
            uploads.close()
        reports = fleet.finish()
        if web is not None:
            web.stop()
        if reporter is not None:
            reporter.stop()
        watcher.stop()
        if metrics is not None:
            metrics.stop()
        with contextlib.suppress(Exception):
            ray.shutdown()
    return _outcome(reports, stop.is_set(), abort.is_set())


def _reloaded(fleet: Fleet, reload: Callable[[], RunConfig]) -> list[str]:
    """SIGHUP: the cameras of the config read again join and leave; the lines to log."""
    from livefaces.options import ConfigError

    try:
        config = reload()
    except ConfigError as error:
        return [f"livefaces: SIGHUP: {error}; the cameras stay as they are"]
    try:
        lines = fleet.apply(config)
    except Exception as error:
        return [f"livefaces: SIGHUP: the cameras could not change: {_reason(error)}"]
    return [f"livefaces: SIGHUP: {line}" for line in lines] or [
        "livefaces: SIGHUP: the cameras are unchanged"
    ]


def _outcome(
    reports: list[tuple[CameraSpec, HostReport | None]], stopped: bool, aborted: bool
) -> FleetOutcome:
    summaries, cameras, links = [], [], []
    for spec, report in reports:
        if report is None:
            summary = CameraSummary(
                spec.name, 0, 0, 0, 0, "error", "the camera worker did not finish", "outputs"
            )
            summaries.append(summary)
            cameras.append(FleetCamera(spec, SourceInfo(spec.name, "", live=True)))
            links.append(LinkStats())
            continue
        summaries.append(report.summary)
        info = SourceInfo(report.name, report.kind, live=True, frame_count=report.frame_count)
        cameras.append(FleetCamera(spec, info, SourceFacts(report.skipped, report.corrupt_frames)))
        links.append(report.link)
    return FleetOutcome(SessionSummary(tuple(summaries), stopped, aborted), tuple(cameras), tuple(links))


def _waiting(spec: CameraSpec) -> CameraStatus:
    from livefaces.options import redact_url

    return CameraStatus(
        spec.name, redact_url(spec.source), "", True, states.CONNECTING, None, None, None,
        PipelineStats().snapshot(),
    )  # fmt: skip


def _reason(error: BaseException) -> str:
    """A Ray error in one short line (its first line; Ray's messages run to paragraphs)."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]
