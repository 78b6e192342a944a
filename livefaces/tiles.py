"""Many cameras in one window: the newest image of each camera, composed into one grid.

OpenCV's Qt GUI must be driven from one thread (the main thread) while frames come from one
runner thread per camera. The runners `post` their already annotated images to a `TileBoard`
(one slot per camera, the newest image wins, nothing is copied, a post never waits for the
window); the main thread's window (`livefaces.display.TiledWindow`) reads the board and shows
`compose_tiles` of it. Composition is a pure function, tested without a window.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import cv2
import numpy as np

CANVAS_SIZE = (1920, 1080)  # the largest grid shown, width x height
PLACEHOLDER_SIZE = (640, 360)  # tile size before any camera has sent a frame
CONNECTING = "connecting..."
RECONNECTING = "reconnecting..."
BACKGROUND = (0, 0, 0)
PLACEHOLDER = (40, 40, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX

Tile = tuple[str, np.ndarray | None]


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, cols) for `count` tiles: cols = ceil(sqrt(count)), as few rows as that allows."""
    if count < 1:
        raise ValueError(f"count must be >= 1 tile, got {count}")
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def tile_size(
    images: Sequence[np.ndarray | None], rows: int, cols: int, canvas_size: tuple[int, int]
) -> tuple[int, int]:
    """The common (width, height) of every tile.

    The largest width and height among the images (a placeholder size before any arrives),
    shrunk, keeping that shape, until `rows` x `cols` tiles fit in `canvas_size`; never enlarged.
    """
    known = [image.shape[:2] for image in images if image is not None]
    width = max((w for _, w in known), default=PLACEHOLDER_SIZE[0])
    height = max((h for h, _ in known), default=PLACEHOLDER_SIZE[1])
    scale = min(1.0, canvas_size[0] / (cols * width), canvas_size[1] / (rows * height))
    return max(int(width * scale), 1), max(int(height * scale), 1)


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image[:, :, :3] if image.shape[2] == 4 else image


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` scaled to fit `size` (width, height) with its aspect kept, centred on black."""
    width, height = size
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(round(w * scale), 1), max(round(h * scale), 1)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(_bgr(image), (new_w, new_h), interpolation=interpolation)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def _label(tile: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
    """White text on a black box with its top-left corner at `origin`."""
    (w, h), baseline = cv2.getTextSize(text, FONT, scale, 1)
    x, y = origin
    cv2.rectangle(tile, (x, y), (x + w + 8, y + h + baseline + 8), (0, 0, 0), cv2.FILLED)
    cv2.putText(tile, text, (x + 4, y + h + 4), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def placeholder(size: tuple[int, int], text: str = CONNECTING) -> np.ndarray:
    """A dark tile with `text` in its middle, for a camera that has not sent a frame yet."""
    width, height = size
    tile = np.full((height, width, 3), PLACEHOLDER, np.uint8)
    scale = max(min(width, height) / 600, 0.4)
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    origin = ((width - w) // 2, (height + h) // 2)
    cv2.putText(tile, text, origin, FONT, scale, (200, 200, 200), 1, cv2.LINE_AA)
    return tile


def compose_tiles(images: Sequence[Tile], canvas_size: tuple[int, int] = CANVAS_SIZE) -> np.ndarray:
    """The window's image for these (camera name, latest BGR image or None) pairs.

    One camera: its image as it is (not copied, no label), or a placeholder before its first
    frame, as the single-camera window always showed. Several: a grid of `grid_shape(n)`, row by
    row in the order given, every tile the same `tile_size` (at most `canvas_size` in all) with
    the image letterboxed into it, the camera's name in the top-left corner, and "connecting..."
    for a camera without a frame yet. The inputs are never modified.
    """
    if not images:
        raise ValueError("compose_tiles needs at least one camera")
    if len(images) == 1:
        image = images[0][1]
        return _bgr(image) if image is not None else placeholder(PLACEHOLDER_SIZE)
    rows, cols = grid_shape(len(images))
    width, height = tile_size([image for _, image in images], rows, cols, canvas_size)
    canvas = np.full((rows * height, cols * width, 3), BACKGROUND, np.uint8)
    scale = max(min(width, height) / 700, 0.4)
    for index, (name, image) in enumerate(images):
        row, col = divmod(index, cols)
        tile = letterbox(image, (width, height)) if image is not None else placeholder((width, height))
        _label(tile, name, (0, 0), scale)
        canvas[row * height : (row + 1) * height, col * width : (col + 1) * width] = tile
    return canvas


class TileBoard:
    """The newest image of each camera, handed from runner threads to the window's thread.

    `post` stores a reference in the camera's slot (the caller hands the image over and must not
    draw on it afterwards) and bumps a version; the lock is held only for that assignment, so a
    runner never waits for the window. `wait` lets the window sleep until something new arrives.
    """

    def __init__(self, cameras: Sequence[str]) -> None:
        if not cameras:
            raise ValueError("a TileBoard needs at least one camera")
        if len(set(cameras)) != len(cameras):
            raise ValueError(f"camera names must be unique, got {list(cameras)}")
        self._order = tuple(cameras)
        self._slots: dict[str, np.ndarray | None] = dict.fromkeys(self._order)
        self._version = 0
        self._changed = threading.Condition(threading.Lock())

    @property
    def cameras(self) -> tuple[str, ...]:
        """The camera names, in the order their tiles are shown."""
        return self._order

    def post(self, camera: str, image: np.ndarray | None) -> None:
        """Make `image` the camera's newest (None: back to "connecting..."). Any thread."""
        if camera not in self._slots:
            raise KeyError(f"unknown camera {camera!r}; the board has {list(self._order)}")
        with self._changed:
            self._slots[camera] = image
            self._version += 1
            self._changed.notify_all()

    def latest(self) -> tuple[int, list[Tile]]:
        """(version, [(camera, newest image or None)] in camera order), read consistently."""
        with self._changed:
            return self._version, [(name, self._slots[name]) for name in self._order]

    def wait(self, after: int, timeout: float) -> int:
        """Wait up to `timeout` seconds for a version newer than `after`; returns the version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > after, timeout)
            return self._version


class TileSink:
    """A runner's sink that posts its camera's annotated image to the board for the window.

    The camera's name is taken here, so `write` depends on nothing in the result. When the
    camera's stream goes down, its tile says "reconnecting..." instead of freezing on the last
    picture.
    """

    render = "annotated"

    def __init__(self, board: TileBoard, camera: str) -> None:
        if camera not in board.cameras:
            raise KeyError(f"unknown camera {camera!r}; the board has {list(board.cameras)}")
        self.board = board
        self.camera = camera
        self.frames_posted = 0
        self._size = PLACEHOLDER_SIZE

    def write(self, result: object, image: np.ndarray | None) -> None:
        """Hand `image` (annotated, not drawn on again by the caller) to the window."""
        if image is None:
            raise ValueError("the window needs the annotated image (render = 'annotated')")
        self.board.post(self.camera, image)
        self.frames_posted += 1
        self._size = (image.shape[1], image.shape[0])

    def on_events(self, events: Sequence[object]) -> None:
        if any(getattr(event, "kind", None) == "stream_down" for event in events):
            self.board.post(self.camera, placeholder(self._size, RECONNECTING))

    def close(self) -> None:
        """Nothing to finish: the last image stays on the window until it closes."""

    def summary(self) -> None:
        """A window writes nothing."""
