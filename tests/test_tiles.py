"""Composing many cameras into one image, and handing their newest images across threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from livefaces.tiles import (
    PLACEHOLDER,
    PLACEHOLDER_SIZE,
    TileBoard,
    TileSink,
    compose_tiles,
    grid_shape,
    letterbox,
    placeholder,
    tile_size,
)

COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0)]


def solid(width: int, height: int, colour: tuple[int, int, int]) -> np.ndarray:
    return np.full((height, width, 3), colour, np.uint8)


@pytest.mark.parametrize(
    ("count", "expected"), [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (5, (2, 3)), (6, (2, 3))]
)
def test_grid_has_ceil_sqrt_columns(count: int, expected: tuple[int, int]) -> None:
    assert grid_shape(count) == expected


def test_grid_needs_a_camera() -> None:
    with pytest.raises(ValueError, match="count"):
        grid_shape(0)
    with pytest.raises(ValueError, match="at least one"):
        compose_tiles([])


@pytest.mark.parametrize(
    ("sizes", "rows", "cols", "canvas", "expected"),
    [
        ([(640, 480), (320, 240)], 1, 2, (1920, 1080), (640, 480)),  # fits: never enlarged
        ([(1280, 720), (640, 480)], 1, 2, (1920, 1080), (960, 540)),  # shrunk to the width
        ([(1280, 720)] * 4, 2, 2, (1920, 1080), (960, 540)),
        ([(1280, 720)] * 6, 2, 3, (1920, 1080), (640, 360)),
        ([(640, 480), (1280, 360)], 1, 2, (1920, 1080), (960, 360)),  # widest and tallest, shrunk
        ([None, None], 1, 2, (1920, 1080), PLACEHOLDER_SIZE),
    ],
)
def test_tile_size_fits_the_canvas(
    sizes: list[tuple[int, int] | None],
    rows: int,
    cols: int,
    canvas: tuple[int, int],
    expected: tuple[int, int],
) -> None:
    images = [None if s is None else solid(s[0], s[1], (0, 0, 0)) for s in sizes]
    assert tile_size(images, rows, cols, canvas) == expected


def test_one_camera_is_shown_as_it_is() -> None:
    image = solid(1280, 720, COLOURS[0])
    assert compose_tiles([("front", image)], (640, 360)) is image  # no copy, no letterbox, no label
    waiting = compose_tiles([("front", None)])
    assert waiting.shape == (PLACEHOLDER_SIZE[1], PLACEHOLDER_SIZE[0], 3)
    assert tuple(waiting[0, 0]) == PLACEHOLDER


@pytest.mark.parametrize(
    ("sizes", "canvas", "shape"),
    [
        ([(640, 480)] * 2, (1920, 1080), (480, 1280)),
        ([(640, 480), (320, 240), (1280, 720)], (1920, 1080), (1080, 1920)),  # 2x2 of 960x540
        ([(320, 240)] * 4, (1920, 1080), (480, 640)),
        ([(640, 360)] * 6, (1920, 1080), (720, 1920)),
        ([(1920, 1080)] * 6, (1280, 800), (480, 1278)),
    ],
)
def test_tiles_are_placed_row_by_row_in_order(
    sizes: list[tuple[int, int]], canvas: tuple[int, int], shape: tuple[int, int]
) -> None:
    images = [(f"cam{i}", solid(w, h, COLOURS[i])) for i, (w, h) in enumerate(sizes)]
    out = compose_tiles(images, canvas)
    assert out.shape[:2] == shape and out.dtype == np.uint8
    assert out.shape[1] <= canvas[0] and out.shape[0] <= canvas[1]
    rows, cols = grid_shape(len(images))
    tile_h, tile_w = out.shape[0] // rows, out.shape[1] // cols
    for index in range(len(images)):
        row, col = divmod(index, cols)
        centre = out[row * tile_h + tile_h // 2, col * tile_w + tile_w // 2]
        assert tuple(centre) == COLOURS[index], index
    for _, image in images:
        assert (image == image[0, 0]).all()  # the inputs were not drawn on


def test_every_tile_carries_its_camera_name_and_empty_cells_stay_black() -> None:
    out = compose_tiles([(f"cam{i}", solid(400, 300, COLOURS[i])) for i in range(3)], (1920, 1080))
    assert out.shape == (600, 800, 3)
    for top, left in ((0, 0), (0, 400), (300, 0)):
        corner = out[top : top + 20, left : left + 40]
        assert (corner == 255).all(axis=2).any()  # white label text
        assert (corner == 0).all(axis=2).any()  # on its black box
    assert not out[300:, 400:].any()  # the fourth cell of the 2x2 grid


def test_a_camera_without_a_frame_says_connecting() -> None:
    out = compose_tiles([("a", solid(640, 480, COLOURS[0])), ("b", None)], (1920, 1080))
    assert out.shape == (480, 1280, 3)
    right = out[:, 640:]
    assert tuple(right[-1, -1]) == PLACEHOLDER  # the placeholder's background
    middle = right[200:280]
    assert (middle > 150).all(axis=2).any()  # its light "connecting..." text


def test_letterbox_keeps_the_aspect_centred() -> None:
    out = letterbox(solid(200, 100, COLOURS[1]), (100, 100))
    assert out.shape == (100, 100, 3)
    assert tuple(out[50, 50]) == COLOURS[1] and not out[0, 50].any() and not out[99, 50].any()
    grey = letterbox(np.full((10, 10), 7, np.uint8), (20, 20))
    assert grey.shape == (20, 20, 3) and tuple(grey[10, 10]) == (7, 7, 7)


def stamped(camera: int, value: int) -> np.ndarray:
    """A 1x2 image carrying its camera and sequence number, so a reader can tell which it got."""
    image = np.zeros((1, 2, 3), np.uint16)
    image[0, 0, 0], image[0, 1, 0] = camera, value
    return image


def test_board_keeps_the_newest_image_per_camera_across_threads() -> None:
    board = TileBoard(["a", "b"])
    posts = 500
    start = threading.Barrier(3)
    done = threading.Event()
    seen: list[list[tuple[int, int]]] = []

    def runner(camera: str, number: int) -> None:
        start.wait()
        for value in range(posts):
            board.post(camera, stamped(number, value))

    def reader() -> None:
        start.wait()
        while not done.is_set():
            _, tiles = board.latest()
            seen.append(
                [(-1, -1) if img is None else (int(img[0, 0, 0]), int(img[0, 1, 0])) for _, img in tiles]
            )

    threads = [threading.Thread(target=runner, args=(name, i)) for i, name in enumerate("ab")]
    watcher = threading.Thread(target=reader)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in threads:
        thread.join(30)
    done.set()
    watcher.join(30)
    version, tiles = board.latest()
    assert version == 2 * posts
    assert [(name, int(img[0, 1, 0])) for name, img in tiles] == [("a", posts - 1), ("b", posts - 1)]
    for slot in range(2):  # each slot only ever moves forward, and holds its own camera's images
        values = [reading[slot][1] for reading in seen]
        assert values == sorted(values)
        assert {reading[slot][0] for reading in seen} <= {-1, slot}


def test_board_wait_wakes_on_a_post_and_times_out_without_one() -> None:
    board = TileBoard(["a"])
    assert board.wait(0, timeout=0.0) == 0  # nothing new
    waiting = threading.Event()
    woke: list[int] = []

    def window() -> None:
        waiting.set()
        woke.append(board.wait(0, timeout=30))

    thread = threading.Thread(target=window)
    thread.start()
    waiting.wait(30)
    board.post("a", stamped(0, 1))
    thread.join(30)
    assert woke == [1]
    assert board.wait(-1, timeout=0.0) == 1  # already newer: returns at once


def test_board_and_sink_check_camera_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        TileBoard(["a", "a"])
    with pytest.raises(ValueError, match="at least one"):
        TileBoard([])
    board = TileBoard(["a", "b"])
    with pytest.raises(KeyError, match="unknown camera 'c'"):
        board.post("c", stamped(0, 0))
    with pytest.raises(KeyError, match="unknown camera"):
        TileSink(board, "c")


def test_tile_sink_posts_its_cameras_image_without_copying() -> None:
    board = TileBoard(["a", "b"])
    sink = TileSink(board, "b")
    image = stamped(1, 9)
    assert sink.render == "annotated"
    sink.write(object(), image)
    assert board.latest()[1][1][1] is image and board.latest()[1][0][1] is None
    assert sink.frames_posted == 1 and sink.summary() is None
    with pytest.raises(ValueError, match="annotated"):
        sink.write(object(), None)
    sink.close()


def test_a_tile_says_reconnecting_when_its_stream_goes_down_instead_of_freezing() -> None:
    from livefaces.events import StreamDown, StreamUp

    board = TileBoard(["a", "b"])
    sink = TileSink(board, "b")
    sink.write(object(), stamped(1, 9))
    sink.on_events([StreamUp(camera="b", source_time=0.0, wall_time=0.0, reason="connected", attempt=0)])
    assert board.latest()[1][1][1] is not None and board.latest()[0] == 1  # nothing new posted
    down = StreamDown(camera="b", source_time=1.0, wall_time=1.0, reason="stall", attempt=0)
    sink.on_events([down])
    tile = board.latest()[1][1][1]
    assert tile is not None and tile.shape == stamped(1, 9).shape
    assert np.array_equal(tile, placeholder((tile.shape[1], tile.shape[0]), "reconnecting..."))


class FakeGui:
    """Stands in for OpenCV's window calls, to test the pump's logic without a display."""

    def __init__(self) -> None:
        self.shown: list[tuple[int, ...]] = []
        self.waits: list[int] = []
        self.keys: list[int] = []
        self.visible = 1.0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import livefaces.display as display

        monkeypatch.setattr(display.cv2, "namedWindow", lambda title, flags: None)
        monkeypatch.setattr(display.cv2, "imshow", lambda title, image: self.shown.append(image.shape))
        monkeypatch.setattr(display.cv2, "waitKey", self.wait_key)
        monkeypatch.setattr(display.cv2, "getWindowProperty", lambda title, prop: self.visible)
        monkeypatch.setattr(display.cv2, "destroyWindow", lambda title: None)

    def wait_key(self, milliseconds: int) -> int:
        self.waits.append(milliseconds)
        return self.keys.pop(0) if self.keys else -1


class FakeClock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_pump_composes_only_news_at_most_max_fps(monkeypatch: pytest.MonkeyPatch) -> None:
    from livefaces.display import TiledWindow

    gui, clock, stop = FakeGui(), FakeClock(), threading.Event()
    gui.install(monkeypatch)
    board = TileBoard(["a", "b"])
    window = TiledWindow(board, "t", stop, max_fps=20.0, clock=clock)
    window.pump(wait=0)  # opens at once with two "connecting..." tiles
    assert gui.shown == [(360, 1280, 3)] and gui.waits == [1]
    window.pump(wait=0)  # nothing new: events only
    assert len(gui.shown) == 1 and gui.waits == [1, 1]
    board.post("a", solid(320, 240, COLOURS[0]))
    clock.now += 0.01  # 40 ms before the next image is due: the pump handles events meanwhile
    window.pump(wait=0)
    assert gui.waits[-2:] == [40, 1] and gui.shown[-1] == (240, 640, 3)
    clock.now += 0.05
    board.post("b", solid(320, 240, COLOURS[1]))
    window.pump(wait=0)
    assert gui.waits[-1] == 1 and len(gui.shown) == 3 and window.frames_shown == 3
    assert tuple(window.canvas[120, 480]) == COLOURS[1]
    assert not stop.is_set()


@pytest.mark.parametrize(("key", "visible"), [(ord("q"), 1.0), (ord("Q"), 1.0), (27, 1.0), (-1, 0.0)])
def test_pump_stops_on_q_esc_or_a_closed_window(
    monkeypatch: pytest.MonkeyPatch, key: int, visible: float
) -> None:
    from livefaces.display import TiledWindow

    gui, stop = FakeGui(), threading.Event()
    gui.install(monkeypatch)
    window = TiledWindow(TileBoard(["a"]), "t", stop)
    window.pump(wait=0)
    assert not stop.is_set()
    gui.keys.append(key)
    gui.visible = visible
    window.pump(wait=0)
    assert stop.is_set()
    window.close()
    window.close()
