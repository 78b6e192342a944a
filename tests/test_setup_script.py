"""scripts/test keeps installer output out of sight, and shows it when a step fails."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_a_failing_install_step_shows_its_log(tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'pip: cannot reach the index' >&2\nexit 3\n")
    fake_python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake_python), "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "test")], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 1
    assert "scripts/test: pip install failed; its output:" in result.stderr
    assert "pip: cannot reach the index" in result.stderr
    assert (tmp_path / "livefaces-test-setup.log").is_file()
    # Only one line of its own per step on success paths: no apt or pip progress.
    assert all(line.startswith("scripts/test: ") for line in result.stdout.splitlines()), result.stdout
