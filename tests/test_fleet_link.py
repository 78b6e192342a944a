"""The fleet's plain parts, without Ray: a camera's `DetectorLink` to a detector in another process
(replies delivered; a failed exchange, a restarted detector and a timeout each drop what was
outstanding, counted, so no camera waits forever), the segment names a restarted camera worker
records to, and the pyramid-input downscale scans are sent at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from livefaces.app import _open_camera
from livefaces.detections import Detections
from livefaces.fleet.link import DetectorLink, request_bytes
from livefaces.fleet.workers import fleet_runner_settings, next_segment
from livefaces.options import parse_command_line
from livefaces.runtime.detector_service import DetectorReply, RefineRequest, ScanRequest, ServiceClosed


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """A detector endpoint that answers what the test scripts: replies, an error, an incarnation."""

    def __init__(self) -> None:
        self.incarnation = "first"
        self.fail: Exception | None = None
        self.answer = True
        self.calls: list[list] = []

    def exchange(self, camera: str, requests: list, wait: float) -> tuple[str, list[DetectorReply]]:
        self.calls.append(list(requests))
        if self.fail is not None:
            raise self.fail
        replies = [DetectorReply(camera, r.seq, r.kind, Detections.empty(), batch_size=1) for r in requests]
        return self.incarnation, replies if self.answer else []


def scan(seq: int, camera: str = "front") -> ScanRequest:
    return ScanRequest(camera, seq, np.zeros((90, 160, 3), np.uint8))


def link_to(endpoint: Endpoint, clock: FakeClock | None = None) -> DetectorLink:
    return DetectorLink("front", endpoint, reply_timeout=5.0, retry_seconds=0.0, clock=clock or FakeClock())


def test_replies_reach_the_camera_mailbox_and_the_bytes_sent_are_counted() -> None:
    endpoint = Endpoint()
    link = link_to(endpoint)
    mailbox = link.connect("front")
    patches = np.zeros((2, 48, 48, 3), np.uint8)
    refine = RefineRequest("front", 2, None, np.zeros((2, 4)), patches=patches)
    assert link.submit(scan(1)) and link.submit(refine)
    link.pump_once(0.0)
    assert [len(call) for call in endpoint.calls] == [2]
    first, second = mailbox.get(0.0), mailbox.get(0.0)
    assert (first.seq, first.kind, first.replaced) == (1, "scan", False)
    assert (second.seq, second.kind) == (2, "refine")
    stats = link.stats()
    assert stats.sent == 2 and stats.replies == 2 and stats.dropped == 0
    assert stats.sent_bytes == 90 * 160 * 3 + patches.nbytes + 2 * 4 * 8
    assert request_bytes(refine) == patches.nbytes + 64


def test_a_failed_exchange_drops_every_outstanding_request_with_a_replaced_reply() -> None:
    endpoint = Endpoint()
    endpoint.answer = False
    link = link_to(endpoint)
    mailbox = link.connect("front")
    link.submit(scan(1))
    link.pump_once(0.0)  # sent, not answered yet
    assert mailbox.get(0.0) is None
    endpoint.fail = RuntimeError("actor died")
    link.submit(scan(2))
    link.pump_once(0.0)
    dropped = [mailbox.get(0.0), mailbox.get(0.0)]
    assert sorted(reply.seq for reply in dropped) == [1, 2]
    assert all(reply.replaced and reply.detections is None for reply in dropped)
    stats = link.stats()
    assert stats.dropped == 2 and stats.failures == 1
    endpoint.fail, endpoint.answer = None, True
    link.submit(scan(3))
    link.pump_once(0.0)
    assert mailbox.get(0.0).seq == 3 and not link.stats().restarts


def test_a_restarted_detector_drops_what_the_old_one_held_but_serves_what_it_was_just_given() -> None:
    endpoint = Endpoint()
    endpoint.answer = False
    link = link_to(endpoint)
    mailbox = link.connect("front")
    link.submit(scan(1))
    link.pump_once(0.0)
    endpoint.incarnation, endpoint.answer = "second", True
    link.submit(scan(2))
    link.pump_once(0.0)
    replies = {reply.seq: reply for reply in (mailbox.get(0.0), mailbox.get(0.0))}
    assert replies[1].replaced and not replies[2].replaced
    assert link.stats().restarts == 1 and link.stats().dropped == 1


def test_a_request_unanswered_past_the_reply_timeout_is_dropped() -> None:
    endpoint = Endpoint()
    endpoint.answer = False
    clock = FakeClock()
    link = link_to(endpoint, clock)
    mailbox = link.connect("front")
    link.submit(scan(1))
    link.pump_once(0.0)
    assert mailbox.get(0.0) is None
    clock.now += 5.1
    link.pump_once(0.0)  # nothing new to send: the link asks for the outstanding reply again
    reply = mailbox.get(0.0)
    assert reply is not None and reply.replaced and link.stats().dropped == 1
    assert len(endpoint.calls) == 2 and endpoint.calls[1] == []


def test_closing_the_link_ends_the_mailbox_and_refuses_new_requests() -> None:
    link = link_to(Endpoint()).start()
    mailbox = link.connect("front")
    link.close()
    assert isinstance(mailbox.get(1.0), ServiceClosed)
    assert not link.submit(scan(1)) and link.closed
    with pytest.raises(ValueError, match="camera front"):
        link.submit(scan(2, camera="back"))


def test_a_restarted_camera_records_to_the_next_free_segment_name(tmp_path: Path) -> None:
    config = parse_command_line(
        ["--source", "a=demo", "--source", "b=demo", "-o", str(tmp_path / "rec-{name}.mp4"),
         "--json", str(tmp_path / "faces-{name}.jsonl")]
    )  # fmt: skip
    moved, number = next_segment(config, "a")
    assert number == 2 and moved.output_for("a") == tmp_path / "rec-a-2.mp4"
    assert moved.json_for("a") == str(tmp_path / "faces-a-2.jsonl")
    assert [spec.name for spec in moved.cameras] == ["a"]
    (tmp_path / "rec-a-2.mp4").write_bytes(b"")
    moved, number = next_segment(config, "a")
    assert number == 3 and moved.output_for("a") == tmp_path / "rec-a-3.mp4"


def test_scans_are_sent_as_the_pyramid_input_not_the_full_frame() -> None:
    config = parse_command_line(["--source", "demo", "--live", "--camera-size", "1280x720"])
    camera = _open_camera(config.cameras[0], config, named=False, service=False)
    try:
        settings = fleet_runner_settings(camera, 1)
    finally:
        camera.close()
    assert settings.detect_width == 768  # 1280 * 12 / 20: the pyramid's first level
    assert settings.cascade.min_face_size == 12  # the same faces: 20 px at 1280 are 12 px at 768
    assert settings.coarse_pixels_per_second is None and settings.tracking
