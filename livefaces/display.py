"""The OpenCV windows, and the check that a window can be opened at all.

Without a display, OpenCV's Qt backend aborts the whole process at the first window call, so
`display_available()` decides in a child process before this process touches a window.
`TiledWindow` shows many cameras in one window from the main thread (Qt's GUI must be driven
from one thread); every camera's frames reach it through a `TileBoard`.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from livefaces import native_logs
from livefaces.tiles import CANVAS_SIZE, TileBoard, compose_tiles

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


class _Window:
    """One OpenCV window and the quit rules: q, Q, Esc or closing the window set `stop`.

    Every call must come from the same thread. The window is created with its first image,
    with fd 2 silenced: Qt prints its start-up warnings (fonts) then.
    """

    def __init__(self, title: str, stop: threading.Event) -> None:
        self.title = title
        self._stop = stop
        self.opened = False
        self.frames_shown = 0

    def show(self, image: np.ndarray) -> None:
        """Show `image`, then handle GUI events and apply the quit rules."""
        if not self.opened:
            with native_logs.silenced():
                cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
                cv2.imshow(self.title, image)
                self.opened = True
                self.events(1)
        else:
            cv2.imshow(self.title, image)
            self.events(1)
        self.frames_shown += 1

    def events(self, milliseconds: int) -> None:
        """Handle GUI events for up to `milliseconds` (at least 1) and apply the quit rules."""
        if not self.opened:
            return
        key = cv2.waitKey(max(milliseconds, 1)) & 0xFF
        if key in QUIT_KEYS or self._closed():
            self._stop.set()

    def _closed(self) -> bool:
        """Whether the user closed the window (Qt raises once no window is left: closed too)."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self.opened:
            self.opened = False
            with contextlib.suppress(cv2.error):  # already gone with the user's close
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)


class TiledWindow:
    """Every camera of a `TileBoard` in one window, driven by the main thread.

    Call `pump()` in a loop on the thread that owns the GUI: it waits briefly for a new image,
    composes the newest of each camera with `compose_tiles` (only when something changed, and
    at most `max_fps` times a second: several cameras must not multiply the composing work),
    shows it and handles key and window events; q, Q, Esc or closing the window set `stop`.
    The runner threads only post to the board. Call `display_available()` before the first pump.
    """

    def __init__(
        self,
        board: TileBoard,
        title: str,
        stop: threading.Event,
        canvas_size: tuple[int, int] = CANVAS_SIZE,
        max_fps: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not max_fps > 0:
            raise ValueError(f"max_fps must be > 0, got {max_fps}")
        self.board = board
        self.canvas_size = canvas_size
        self._window = _Window(title, stop)
        self._period = 1.0 / max_fps
        self._clock = clock
        self._next_show = -math.inf
        self._version = -1
        self.canvas: np.ndarray | None = None

    @property
    def title(self) -> str:
        return self._window.title

    @property
    def frames_shown(self) -> int:
        """How many composed images were shown (a pump without anything new shows none)."""
        return self._window.frames_shown

    def pump(self, wait: float = 0.05) -> None:
        """Show what is new (waiting up to `wait` seconds for it) and handle GUI events.

        The first pump opens the window, with "connecting..." tiles if no frame came yet.
        """
        version = self.board.wait(self._version, wait)
        if version == self._version:
            self._window.events(1)
            return
        early = self._next_show - self._clock()
        if early > 0:  # news, but too soon: handle GUI events until it is due (more news may come)
            self._window.events(round(early * 1000))
        version, tiles = self.board.latest()
        self.canvas = compose_tiles(tiles, self.canvas_size)
        self._version = version
        self._next_show = self._clock() + self._period
        self._window.show(self.canvas)

    def close(self) -> None:
        """Close the window (idempotent); call it from the same thread as `pump`."""
        self._window.close()
