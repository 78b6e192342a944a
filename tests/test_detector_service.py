"""The shared detector service: batching equal to single calls (real MTCNN), fairness, bounded
collection, replacement of stale live requests, errors, load figures and the threaded host.

Timing runs on a fake clock that only the test and the fake detector move; nothing sleeps."""

from __future__ import annotations

import pickle
import threading

import cv2
import numpy as np
import pytest

from livefaces import MTCNN
from livefaces.detections import Detections
from livefaces.runtime import (
    DetectorReply,
    DetectorService,
    RefineRequest,
    ScanRequest,
    ServiceClosed,
    ServiceSettings,
    ThreadedDetectorHost,
)

COLLECT = 0.01


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeDetector:
    """One face per image, whose x1 is the image's first pixel; each call costs `cost` fake seconds
    and is recorded as the list of (camera pixel) values it was given; `fail` raises once."""

    def __init__(self, clock: FakeClock, cost: float = 0.02, batch_refine: bool = True) -> None:
        self.clock, self.cost = clock, cost
        self.calls: list[tuple[str, list[int]]] = []
        self.fail: str | None = None
        if batch_refine:
            self.refine_batch = self._refine_batch

    @staticmethod
    def _face(image: np.ndarray) -> Detections:
        x = float(image[0, 0, 0])
        return Detections(
            np.array([[x, 0, x + 10, 10]], np.float32),
            np.ones(1, np.float32),
            np.zeros((1, 5, 2), np.float32),
        )

    def _run(self, kind: str, images: list[np.ndarray]) -> list[Detections]:
        self.clock.now += self.cost
        self.calls.append((kind, [int(image[0, 0, 0]) for image in images]))
        if self.fail:
            message, self.fail = self.fail, None
            raise RuntimeError(message)
        return [self._face(image) for image in images]

    def detect_batch(
        self, images: list[np.ndarray], min_face_size: int | None = None, **known: object
    ) -> list[Detections]:
        return self._run("scan" if min_face_size is None else f"coarse {min_face_size}", images)

    def refine(self, image: np.ndarray, boxes: np.ndarray) -> Detections:
        return self._run("refine", [image])[0]

    def _refine_batch(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[Detections]:
        return self._run("refine", images)


def image(value: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


def scan(camera: str, seq: int, value: int, live: bool = True) -> ScanRequest:
    return ScanRequest(camera, seq, image(value), live=live)


def refine(camera: str, seq: int, value: int) -> RefineRequest:
    return RefineRequest(camera, seq, image(value), np.array([[0, 0, 10, 10]]))


def make_service(cameras: str = "AB", **settings: object) -> tuple[DetectorService, FakeClock, FakeDetector]:
    clock = FakeClock()
    detector = FakeDetector(clock, batch_refine=bool(settings.pop("batch_refine", True)))
    service = DetectorService(detector, ServiceSettings(collect_seconds=COLLECT, **settings), clock=clock)
    for camera in cameras:
        service.connect(camera)
    return service, clock, detector


def served(replies: list[DetectorReply]) -> list[tuple[str, int]]:
    return [(reply.camera, reply.seq) for reply in replies if not reply.replaced]


# Batching against single calls, with the real detector.


def test_scans_from_many_cameras_match_single_calls(detector: MTCNN, astronaut: np.ndarray) -> None:
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    shifted = np.ascontiguousarray(np.roll(astronaut, (30, -40), axis=(0, 1)))
    smaller = cv2.resize(astronaut, (384, 300), interpolation=cv2.INTER_AREA)
    images = {"a": astronaut, "b": flipped, "c": shifted, "d": smaller}
    service = DetectorService(detector)
    for seq, (camera, rgb) in enumerate(images.items()):
        service.submit(ScanRequest(camera, seq, rgb))
    replies = service.serve_once(timeout=0)
    assert [reply.camera for reply in replies] == list(images)
    for reply in replies:
        single = detector.detect(images[reply.camera])
        assert reply.error is None and reply.batch_size == 4 and len(reply.detections) == len(single) > 0
        np.testing.assert_allclose(reply.detections.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(reply.detections.scores, single.scores, atol=1e-5)
        np.testing.assert_allclose(reply.detections.landmarks, single.landmarks, atol=1e-3)


def test_refinements_from_many_cameras_match_single_calls(detector: MTCNN, astronaut: np.ndarray) -> None:
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    smaller = cv2.resize(astronaut, (384, 300), interpolation=cv2.INTER_AREA)
    requests = []
    for seq, (camera, rgb) in enumerate({"a": astronaut, "b": flipped, "c": smaller}.items()):
        boxes = detector.detect(rgb).boxes + np.array([6, -4, 6, -4], np.float32)
        requests.append(RefineRequest(camera, seq, rgb, np.vstack([boxes, [[400, 400, 480, 480]]])))
    requests.append(RefineRequest("d", 9, astronaut, np.zeros((0, 4))))
    service = DetectorService(detector)
    for request in requests:
        service.submit(request)
    replies = {reply.camera: reply for reply in service.serve_once(timeout=0)}
    assert set(replies) == {"a", "b", "c", "d"}
    for request in requests:
        reply, single = replies[request.camera], detector.refine(request.image_rgb, request.boxes)
        assert reply.error is None and reply.kind == "refine" and len(reply.detections) == len(single)
        np.testing.assert_allclose(reply.detections.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(reply.detections.landmarks, single.landmarks, atol=1e-3)
    assert len(replies["a"].detections) >= 1 and len(replies["d"].detections) == 0
    one_call = hasattr(detector, "refine_batch")  # else one `refine` per request
    assert all(reply.batch_size == (4 if one_call else 1) for reply in replies.values())


def test_coarse_scans_from_many_cameras_match_single_calls(detector: MTCNN, astronaut: np.ndarray) -> None:
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    faces = [detector.detect(rgb) for rgb in (astronaut, flipped)]
    known = [faces[0].boxes + 5.0, np.zeros((0, 4))]  # one camera tracks its face, one does not yet
    service = DetectorService(detector)
    for seq, (camera, rgb, boxes) in enumerate(zip("ab", (astronaut, flipped), known)):
        service.submit(ScanRequest(camera, seq, rgb, min_face_size=60, known=boxes))
    replies = service.serve_once(timeout=0)
    assert [(reply.camera, reply.batch_size) for reply in replies] == [("a", 2), ("b", 2)]
    for reply, rgb, boxes in zip(replies, (astronaut, flipped), known):
        single = detector.detect_batch([rgb], min_face_size=60, known=[boxes])[0]
        assert reply.error is None and len(reply.detections) == len(single) == 1
        np.testing.assert_allclose(reply.detections.boxes, single.boxes, atol=1e-3)


# Batching, fairness and bounded collection, with a fake detector on a fake clock.


def test_one_call_for_the_scans_and_one_for_the_refinements() -> None:
    service, _, detector = make_service("ABC")
    service.submit(scan("A", 0, 1))
    service.submit(refine("B", 0, 2))
    service.submit(scan("C", 0, 3))
    replies = service.serve_once()
    assert detector.calls == [("scan", [1, 3]), ("refine", [2])]
    assert [(r.camera, r.kind, r.batch_size) for r in replies] == [
        ("A", "scan", 2),
        ("C", "scan", 2),
        ("B", "refine", 1),
    ]


def test_coarse_scans_share_a_call_per_face_size_apart_from_full_scans() -> None:
    service, _, detector = make_service("ABCD")
    known = np.array([[0, 0, 10, 10]])
    service.submit(ScanRequest("A", 0, image(1), min_face_size=54, known=known))
    service.submit(scan("B", 0, 2))
    service.submit(ScanRequest("C", 0, image(3), min_face_size=54, known=np.zeros((0, 4))))
    service.submit(ScanRequest("D", 0, image(4), min_face_size=27, known=known))
    replies = service.serve_once()
    assert detector.calls == [("coarse 54", [1, 3]), ("scan", [2]), ("coarse 27", [4])]
    assert [(r.camera, r.kind, r.batch_size) for r in replies] == [
        ("A", "scan", 2),
        ("C", "scan", 2),
        ("B", "scan", 1),
        ("D", "scan", 1),
    ]
    coarse = pickle.loads(pickle.dumps(ScanRequest("A", 0, image(1), min_face_size=54, known=known)))
    assert coarse.min_face_size == 54 and coarse.known.tolist() == known.tolist()
    with pytest.raises(ValueError, match="known must have shape"):
        ScanRequest("A", 0, image(1), min_face_size=54, known=np.zeros((2, 3)))


def test_without_refine_batch_each_refinement_is_its_own_call() -> None:
    service, _, detector = make_service("AB", batch_refine=False)
    service.submit(refine("A", 0, 1))
    service.submit(refine("B", 0, 2))
    assert served(service.serve_once()) == [("A", 0), ("B", 0)]
    assert detector.calls == [("refine", [1]), ("refine", [2])]


@pytest.mark.parametrize(("live", "replaced"), [(True, 5), (False, 0)])
def test_a_flooding_camera_does_not_starve_another(live: bool, replaced: int) -> None:
    service, clock, _ = make_service("AB", max_batch=2)
    rounds = []
    for k in range(6):
        if k == 0:
            for seq in range(6):
                service.submit(scan("A", seq, 10 + seq, live=live))
        service.submit(scan("B", k, 100 + k, live=live))
        clock.now += COLLECT
        rounds.append(served(service.serve_once()))
    assert all(("B", k) in batch for k, batch in enumerate(rounds))
    a_served = [seq for batch in rounds for camera, seq in batch if camera == "A"]
    assert a_served == ([5] if live else [0, 1, 2, 3, 4, 5])  # live: only the newest frame counts
    assert service.load().replaced == replaced


def test_replaced_live_requests_are_answered_as_replaced() -> None:
    service, _, _ = make_service("A")
    mailbox = service.connect("A")
    service.submit(scan("A", 0, 1))
    service.submit(refine("A", 1, 1))  # another kind: kept
    service.submit(scan("A", 2, 1))
    first = mailbox.get(timeout=0)
    assert isinstance(first, DetectorReply) and (first.seq, first.replaced, first.detections) == (
        0,
        True,
        None,
    )
    # One request per camera per batch; the newer scan took the older one's place in the queue.
    assert served(service.serve_once()) == [("A", 2)]
    assert served(service.serve_once()) == [("A", 1)]
    assert service.load().replaced == 1


def test_round_robin_when_the_batch_is_full() -> None:
    service, _, _ = make_service("ABC", max_batch=2)
    for camera in "ABC":
        for seq in range(3):
            service.submit(scan(camera, seq, 1, live=False))
    order = [[camera for camera, _ in served(service.serve_once())] for _ in range(4)]
    assert order == [["A", "B"], ["C", "A"], ["B", "C"], ["A", "B"]]


def test_a_quiet_camera_delays_a_batch_by_collect_seconds_at_most() -> None:
    service, clock, _ = make_service("AB")
    service.submit(scan("A", 0, 1))
    assert service.seconds_until_batch() == pytest.approx(COLLECT)
    assert service.serve_once(timeout=0) == []  # B may still come
    clock.now = 0.006
    service.submit(scan("A", 1, 1))  # a newer frame from A does not push the deadline back
    assert service.seconds_until_batch() == pytest.approx(COLLECT - 0.006)
    clock.now = COLLECT
    (reply,) = service.serve_once(timeout=0)
    assert (reply.camera, reply.seq, reply.batch_size) == ("A", 1, 1)
    assert reply.wait_seconds == pytest.approx(COLLECT - 0.006)


def test_a_batch_runs_at_once_when_every_camera_has_a_request() -> None:
    service, _, _ = make_service("AB")
    assert service.seconds_until_batch() is None
    service.submit(scan("A", 0, 1))
    service.submit(scan("B", 0, 2))
    assert service.seconds_until_batch() == 0.0
    assert served(service.serve_once(timeout=0)) == [("A", 0), ("B", 0)]
    service.disconnect("B")
    service.submit(scan("A", 1, 1))
    assert service.seconds_until_batch() == 0.0  # nobody else to wait for


def test_a_detector_error_reaches_every_camera_in_the_call_and_serving_goes_on() -> None:
    service, _, detector = make_service("ABC")
    mailboxes = {camera: service.connect(camera) for camera in "ABC"}
    detector.fail = "out of memory"
    for camera in "AB":
        service.submit(scan(camera, 0, 1))
    service.submit(refine("C", 0, 1))
    service.serve_once()
    for camera in "AB":
        reply = mailboxes[camera].get(timeout=0)
        assert reply.detections is None and reply.error == "RuntimeError: out of memory"
    assert mailboxes["C"].get(timeout=0).error is None  # another call: unaffected
    for camera in "ABC":
        service.submit(scan(camera, 1, 1))
    assert all(reply.error is None and len(reply.detections) == 1 for reply in service.serve_once())
    assert service.load().errors == 2 and service.load().served == 6


def test_load_figures_on_the_fake_clock() -> None:
    service, clock, _ = make_service("AB")
    for k in range(10):
        clock.now = 0.1 * k
        service.submit(scan("A", k, 1))
        service.submit(scan("B", k, 2))
        service.serve_once()  # each call costs 20 ms of fake time
    clock.now = 1.0
    load = service.load()
    assert load.calls_per_second == pytest.approx(10.0)
    assert load.mean_batch == pytest.approx(2.0)
    assert load.ms_per_call == pytest.approx(20.0)
    assert load.busy_percent == pytest.approx(20.0)
    assert (load.pending, load.served) == (0, 20)
    assert load.describe() == "detector 10.0 calls/s, 2.0 per call, 20 ms/call, busy 20%"
    clock.now = 10.0
    assert service.load().calls_per_second == 0.0  # an idle detector reads idle


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ScanRequest("a", 0, np.zeros((4, 4), np.uint8)), "image_rgb"),
        (lambda: ScanRequest("a", 0, np.zeros((4, 4, 3), np.float32)), "uint8"),
        (lambda: RefineRequest("a", 0, image(1), np.zeros((2, 3))), "boxes"),
        (lambda: ServiceSettings(max_batch=0), "max_batch"),
        (lambda: ServiceSettings(collect_seconds=-1), "collect_seconds"),
    ],
)
def test_bad_requests_and_settings_are_refused(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_requests_and_replies_pickle() -> None:
    request = refine("A", 3, 7)
    copy = pickle.loads(pickle.dumps(request))
    assert (copy.camera, copy.seq, copy.kind) == ("A", 3, "refine")
    np.testing.assert_array_equal(copy.boxes, request.boxes)
    service, _, _ = make_service("A")
    service.submit(scan("A", 0, 5))
    (reply,) = service.serve_once()
    again = pickle.loads(pickle.dumps(reply))
    assert (again.camera, again.seq, again.batch_size) == ("A", 0, 1)
    np.testing.assert_array_equal(again.detections.boxes, reply.detections.boxes)
    assert pickle.loads(pickle.dumps(ServiceClosed("x"))) == ServiceClosed("x")


# Closing and the threaded host.


def test_a_closed_service_answers_closed() -> None:
    service, _, _ = make_service("A")
    mailbox = service.connect("A")
    service.submit(scan("A", 0, 1))
    service.serve_once()
    service.close("stopped")
    assert isinstance(mailbox.get(timeout=0), DetectorReply)  # what was delivered comes first
    assert mailbox.get(timeout=0) == ServiceClosed("stopped")
    assert not service.submit(scan("A", 1, 1)) and service.serve_once(timeout=1.0) == []
    assert service.connect("late").get(timeout=0) == ServiceClosed("stopped")


def test_the_host_serves_and_a_stop_wakes_waiting_cameras() -> None:
    service = DetectorService(FakeDetector(FakeClock(), cost=0.0), ServiceSettings(collect_seconds=0.0))
    mailbox = service.connect("A")
    waiting = service.connect("B")
    host = ThreadedDetectorHost(service, poll_seconds=0.02).start()
    service.submit(scan("A", 0, 4))
    reply = mailbox.get(timeout=10)
    assert isinstance(reply, DetectorReply) and reply.detections.boxes[0, 0] == 4
    woken: list[object] = []
    reader = threading.Thread(target=lambda: woken.append(waiting.get(timeout=30)))
    reader.start()
    assert host.stop(timeout=10)
    reader.join(timeout=10)
    assert not reader.is_alive() and woken == [ServiceClosed(None)]
    assert mailbox.get(timeout=0) == ServiceClosed(None) and host.error is None
    assert host.stop()  # idempotent


def test_a_host_that_never_started_stops_cleanly() -> None:
    service, _, _ = make_service("A")
    assert ThreadedDetectorHost(service).stop(timeout=1)
    assert service.closed


def test_patch_refinements_of_different_frame_sizes_share_one_call(detector, astronaut) -> None:
    """Cameras cut 48x48 patches around their tracks; O-Net runs once for every camera's patches,
    whatever the sizes of their frames, and finds what a refinement on the whole frame finds."""
    from livefaces import boxes as bx

    small = np.ascontiguousarray(astronaut[::2, ::2])
    found = [detector.detect(image) for image in (astronaut, small)]
    service = DetectorService(detector, ServiceSettings(collect_seconds=1.0))
    mailboxes = [service.connect(name) for name in ("big", "small")]
    for name, image, faces in zip(("big", "small"), (astronaut, small), found):
        squares = bx.to_square(faces.boxes.astype(np.float64))
        patches = bx.cut_patches(image, squares, 48)
        service.submit(RefineRequest(name, 0, None, squares, live=True, patches=patches))
    replies = service.serve_once()
    assert len(replies) == 2 and {reply.batch_size for reply in replies} == {2}
    for mailbox, image, faces in zip(mailboxes, (astronaut, small), found):
        reply = mailbox.get(0)
        assert isinstance(reply, DetectorReply) and reply.detections is not None
        whole = detector.refine(image, faces.boxes)
        assert len(reply.detections) == len(whole) >= 1
        assert np.allclose(reply.detections.boxes, whole.boxes, atol=1.0)
        assert np.allclose(reply.detections.scores, whole.scores, atol=0.01)
