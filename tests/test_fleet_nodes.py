"""`--ray ADDRESS` against a real two-node Ray cluster on this machine: a head node and a worker
node started with `ray start`, as an operator starts them. The head offers one CPU, so the two
camera workers and the detector worker cannot all share a node: requests cross between nodes.
The app runs from a directory of its own with relative output paths, which must land there
(Ray starts its workers in the directory `ray start` ran in, not the driver's)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray", reason='Ray is not installed (pip install "livefaces[fleet]")')

from tests.test_cli_process import environment, free_port
from tests.test_fleet_ray import decoded_frames

START_SECONDS = 120  # `ray start` normally takes a few seconds
RUN_SECONDS = 300  # a 3-second run, with two TensorFlow workers to start on 2 cores


def ray_cli(*args: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "ray.scripts.scripts", *args]
    done = subprocess.run(
        command, capture_output=True, env=env, timeout=START_SECONDS, cwd=tempfile.gettempdir()
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]


def processes_under(marker: str) -> list[int]:
    """The processes whose command line names `marker` (the cluster's temp dir), and their
    descendants: every process of this cluster and nothing else on the machine."""
    parents: dict[int, int] = {}
    chosen: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if marker in command:
            chosen.add(int(entry.name))
    grown = True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in chosen} - chosen
        chosen |= children
        grown = bool(children)
    return sorted(chosen)


@pytest.fixture()
def two_nodes() -> Iterator[tuple[str, dict[str, str]]]:
    """A head node (1 CPU) and a worker node (2 CPUs) on loopback; the address and the
    environment to reach them. Killed at the end, by their temp dir, with what they started."""
    temp = tempfile.mkdtemp(prefix="lfray", dir="/tmp")  # short: Ray's socket paths have a limit
    env = environment(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    port = free_port()
    common = ["--node-ip-address", "127.0.0.1", "--temp-dir", temp, "--disable-usage-stats"]
    try:
        ray_cli("start", "--head", "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false",
                "--ray-client-server-port", str(free_port()), *common, env=env)  # fmt: skip
        ray_cli("start", "--address", f"127.0.0.1:{port}", "--num-cpus", "2", *common, env=env)
        yield f"127.0.0.1:{port}", env
    finally:
        for pid in processes_under(temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_two_cameras_run_across_two_nodes_and_write_where_the_driver_runs(
    two_nodes: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = two_nodes
    command = [sys.executable, "-m", "livefaces", "--source", "a=demo", "--source", "b=demo", "--live",
               "--no-display", "--duration", "3", "--output", "rec-{name}.mp4", "--events", "events.jsonl",
               "--preset", "ultrafast", "--ray", address]  # fmt: skip
    done = subprocess.run(command, capture_output=True, env=env, cwd=tmp_path, timeout=RUN_SECONDS)
    log = done.stderr.decode(errors="replace")
    assert done.returncode == 0, log[-3000:]
    assert "on ray" in log and "Traceback" not in log
    for name in ("a", "b"):
        assert decoded_frames(tmp_path / f"rec-{name}.mp4") >= 60, log[-3000:]
        assert f"[{name}] detector link:" in log
    assert "none dropped" in log
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert {(e["camera"], e["event"]) for e in events} >= {("a", "face_appeared"), ("b", "face_appeared")}
