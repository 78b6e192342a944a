"""The events output: whole JSON lines from many threads into one file, flushed at once, reopened
for logrotate from another thread; one camera's sink writes its events as `to_dict` lines."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from livefaces.events import FaceAppeared, StreamDown
from livefaces.outputs.events import EventLog, EventsSink

WALL = 1_714_564_800.25
PAYLOAD = "x" * 3000  # longer than a pipe's atomic write: a torn line would show


def lines_of(*paths: Path) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def writers(
    log: EventLog,
    count: int,
    records: int,
    halfway: threading.Barrier | None = None,
    resume: threading.Event | None = None,
) -> list[threading.Thread]:
    """`count` threads, each writing `records` numbered records; with `halfway` and `resume`, each
    meets the others halfway and waits there until `resume` is set."""

    def work(writer: int) -> None:
        for seq in range(records):
            if halfway is not None and resume is not None and seq == records // 2:
                halfway.wait(timeout=30)
                resume.wait(timeout=30)
            log.write([{"writer": writer, "seq": seq, "payload": PAYLOAD}])

    return [threading.Thread(target=work, args=(w,)) for w in range(count)]


def test_every_line_is_flushed_as_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path)).attach()
    log.write([{"n": 1}, {"n": 2}])
    assert lines_of(path) == [{"n": 1}, {"n": 2}]  # read by another file object, before any close
    log.release()
    with pytest.raises(ValueError, match="closed"):
        log.write([{"n": 3}])


def test_the_file_is_appended_to_and_closes_with_its_last_user(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"earlier": true}\n')
    log = EventLog(str(path))
    first, second = EventsSink(log), EventsSink(log)
    first.close()
    first.close()  # twice: still one release
    second.on_events([StreamDown(camera="b", source_time=1.0, wall_time=WALL, reason="stall", attempt=1)])
    second.close()
    assert [record.get("event") for record in lines_of(path)] == [None, "stream_down"]
    with pytest.raises(ValueError):
        log.write([{}])


def test_many_threads_write_whole_lines_while_another_reopens(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(str(path))
    threads = writers(log, count=4, records=300)
    for thread in threads:
        thread.start()
    rotated = []
    while not rotated or any(thread.is_alive() for thread in threads):  # logrotate, as often as it can
        moved = tmp_path / f"events.jsonl.{len(rotated) + 1}"
        path.rename(moved)
        rotated.append(moved)
        log.reopen()
    for thread in threads:
        thread.join()
    records = lines_of(*rotated, path)
    assert len(records) == 4 * 300
    assert all(record["payload"] == PAYLOAD for record in records)
    for writer in range(4):  # in order across the rotated files
        assert [r["seq"] for r in records if r["writer"] == writer] == list(range(300))


def test_after_a_reopen_lines_go_to_the_new_file(tmp_path: Path) -> None:
    path, moved = tmp_path / "events.jsonl", tmp_path / "events.jsonl.1"
    log = EventLog(str(path))
    halfway, resume = threading.Barrier(3), threading.Event()
    threads = writers(log, count=2, records=10, halfway=halfway, resume=resume)
    for thread in threads:
        thread.start()
    halfway.wait(timeout=30)  # both wrote their first half
    path.rename(moved)
    log.reopen()
    resume.set()
    for thread in threads:
        thread.join()
    assert sorted(r["seq"] for r in lines_of(moved)) == sorted([*range(5)] * 2)
    assert sorted(r["seq"] for r in lines_of(path)) == sorted([*range(5, 10)] * 2)


def test_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    sink = EventsSink(EventLog("-"))
    event = FaceAppeared(
        camera="door", source_time=0.5, wall_time=WALL, track_id=2, box=(1, 2, 3, 4), confidence=0.9
    )
    sink.on_events([event])
    sink.log.reopen()  # nothing to reopen
    sink.close()
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == [event.to_dict()]
    assert printed[0]["wall_time"] == "2024-05-01T12:00:00.250+00:00" and printed[0]["snapshots"] == []
    assert sink.summary() == "standard output: 1 events"


def test_a_reopen_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "events.jsonl"
    log = EventLog(str(path))
    log.write([{"n": 1}])
    path.rename(tmp_path / "events.jsonl.1")
    folder.rmdir()  # nowhere to open the path again
    with pytest.raises(OSError):
        log.reopen()
    log.write([{"n": 2}])
    assert lines_of(tmp_path / "events.jsonl.1") == [{"n": 1}, {"n": 2}]


def test_events_that_cannot_be_written_are_counted(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    sink = EventsSink(EventLog("/dev/full"))
    sink.on_events([StreamDown(camera="b", source_time=1.0, wall_time=WALL, reason="stall", attempt=1)])
    assert sink.events_written == 0 and sink.failed == 1
    assert sink.summary() == "/dev/full: 0 events, 1 could not be written (No space left on device)"
    sink.close()  # the refused bytes are not raised again
