"""Photo folders: the lazy sorted walk, resuming's skip, and decoding ahead in order, bounded."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from livefaces.capture import IMAGE_SUFFIXES, NothingLeft, SourceError, open_source
from livefaces.sources.photos import count_images, decode_ahead, read_image, walk_images
from tests.conftest import ASSETS


def tree(root: Path) -> list[str]:
    """A small tree of real images (and files that are not images); the images' relative paths
    in walk order."""
    image = cv2.imread(str(ASSETS / "astronaut.jpg"))
    for relative in ("b.jpg", "a/z.png", "a/b/c.JPG", "a.jpeg", "c/d.webp"):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path.with_suffix(path.suffix.lower())), cv2.resize(image, (64, 64)))
        if path.suffix == ".JPG":
            path.with_suffix(".jpg").rename(path)
    (root / "notes.txt").write_text("not an image")
    (root / "c" / "empty").mkdir()
    return ["a/b/c.JPG", "a/z.png", "a.jpeg", "b.jpg", "c/d.webp"]


def test_the_walk_is_recursive_sorted_and_lazy(tmp_path: Path) -> None:
    expected = tree(tmp_path)
    walk = walk_images(tmp_path, IMAGE_SUFFIXES)
    assert not isinstance(walk, list)
    assert next(walk).relative_to(tmp_path).as_posix() == expected[0]  # nothing listed beyond need
    assert [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path, IMAGE_SUFFIXES)] == expected
    assert count_images(tmp_path, IMAGE_SUFFIXES) == len(expected)


def test_the_walk_leaves_out_what_was_done(tmp_path: Path) -> None:
    expected = tree(tmp_path)
    done = {"a/z.png", "b.jpg"}
    walk = walk_images(tmp_path, IMAGE_SUFFIXES, done.__contains__)
    walked = [p.relative_to(tmp_path).as_posix() for p in walk]
    assert walked == [name for name in expected if name not in done]
    assert count_images(tmp_path, IMAGE_SUFFIXES, done.__contains__) == 3


def test_decoding_ahead_keeps_order_and_its_bound(tmp_path: Path) -> None:
    names = tree(tmp_path)
    paths = [tmp_path / name for name in names] * 4
    started: list[Path] = []
    lock = threading.Lock()

    def decode(path: Path) -> np.ndarray | None:
        with lock:
            started.append(path)
        return read_image(path)

    given = 0
    for path, image in decode_ahead(paths, decode, threads=2, ahead=3):
        assert path == paths[given] and image is not None and image.shape == (64, 64, 3)
        given += 1
        assert len(started) <= given + 3  # at most `ahead` beyond the one given out
    assert given == len(paths)


def test_an_unreadable_image_comes_back_as_none(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    assert list(decode_ahead([tmp_path / "bad.jpg"])) == [(tmp_path / "bad.jpg", None)]


def test_a_folder_source_counts_its_images_and_names_the_broken_ones(tmp_path: Path) -> None:
    tree(tmp_path)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG nothing more")
    source = open_source(str(tmp_path))
    frames = list(source.frames())
    assert [Path(f.name).relative_to(tmp_path).as_posix() for f in frames][:2] == ["a/b/c.JPG", "a/z.png"]
    assert len(frames) == 5 and [f.index for f in frames] == list(range(5))
    assert source.skipped == [f"{tmp_path / 'a' / 'broken.png'}: not a readable image"]


def test_a_folder_with_everything_done_has_nothing_left(tmp_path: Path) -> None:
    names = tree(tmp_path)
    source = open_source(str(tmp_path))
    source.skip = set(names).__contains__
    with pytest.raises(NothingLeft):
        source.frames()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        open_source(str(empty)).frames()
