"""The OpenCV window, and the check that a window can be opened at all.

Without a display, OpenCV's Qt backend aborts the whole process at the first window call, so
`display_available()` decides in a child process before this process touches a window.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import cv2
import numpy as np

from livefaces import native_logs
from livefaces.frames import AnnotatedFrame

QUIT_KEYS = (ord("q"), ord("Q"), 27)
PROBE = "import cv2; cv2.namedWindow('livefaces-probe'); cv2.waitKey(1); cv2.destroyAllWindows()"


def display_available(timeout: float = 20.0) -> bool:
    """Whether an OpenCV window can open here (tried in a child process, which may abort safely)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


class WindowSink:
    """Shows each annotated frame; q, Esc or closing the window sets `stop`."""

    needs_canvas = True

    def __init__(self, title: str, stop: threading.Event) -> None:
        self.title = title
        self._stop = stop
        self._opened = False
        self.frames_shown = 0

    def write(self, item: AnnotatedFrame, canvas: np.ndarray | None) -> None:
        if canvas is None:
            raise ValueError("the window needs the annotated image")
        if not self._opened:
            with native_logs.silenced():  # Qt's start-up warnings (fonts) come with the first frame
                cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
                key = self._show(canvas)
            self._opened = True
        else:
            key = self._show(canvas)
        if key in QUIT_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self._stop.set()

    def _show(self, canvas: np.ndarray) -> int:
        cv2.imshow(self.title, canvas)
        self.frames_shown += 1
        return cv2.waitKey(1) & 0xFF

    def summary(self) -> None:
        """A window writes nothing."""

    def close(self) -> None:
        if self._opened:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._opened = False
