"""Hand-over between pipeline threads, with backpressure as an explicit policy.

`FrameChannel` is a bounded FIFO that either blocks the producer when full (lossless: files,
images) or drops the oldest item and counts it (live: the newest frame wins). Every wait has a
timeout and watches the stop event, so no thread can hang on a full or empty channel. A
producer ends the channel with `close(error)`; the consumer then sees `Closed`, carrying the
producer's exception, if any, to be re-raised in the main thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Closed:
    """End marker: the producer finished, or failed with `error`."""

    error: BaseException | None = None


class FrameChannel(Generic[T]):
    """A bounded FIFO between one producer and one consumer.

    lossless=True: `put` waits while the channel is full (until `stop` is set).
    lossless=False: `put` never waits; when full the oldest droppable item is dropped and `on_drop`
    called. `droppable` tells which items may go (default: all); an item that must arrive (one
    carrying events) is kept even when that leaves the channel over capacity for a moment.
    """

    def __init__(
        self,
        capacity: int,
        lossless: bool,
        stop: threading.Event,
        on_drop: Callable[[], None] | None = None,
        droppable: Callable[[T], bool] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.lossless = lossless
        self._stop = stop
        self._on_drop = on_drop or (lambda: None)
        self._droppable = droppable or (lambda item: True)
        self._items: deque[T] = deque()
        self._closed: Closed | None = None
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: T) -> bool:
        """Hand over an item; False if the pipeline was stopped before it fit."""
        with self._cond:
            while self.lossless and len(self._items) >= self.capacity:
                if self._stop.is_set():
                    return False
                self._cond.wait(POLL_SECONDS)
            if len(self._items) >= self.capacity:
                self._drop_oldest()
            self._items.append(item)
            self._cond.notify_all()
            return True

    def _drop_oldest(self) -> None:
        for position, queued in enumerate(self._items):
            if self._droppable(queued):
                del self._items[position]
                self._on_drop()
                return

    def close(self, error: BaseException | None = None) -> None:
        """No more items will come; the consumer gets `Closed(error)` after the last one."""
        with self._cond:
            self._closed = Closed(error)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | Closed | None:
        """The next item, `Closed` once drained and closed, or None if `stop` was set first (or
        `timeout` seconds passed without an item)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed is not None:
                    return self._closed
                if self._stop.is_set():
                    return None
                wait = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
                if wait <= 0:
                    return None
                self._cond.wait(wait)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def drain(self, seconds: float) -> list[T]:
        """After a stop: what the producer still hands over until it closes the channel, waiting
        at most `seconds` in all (a producer finishing up after a stop is not kept waiting for)."""
        deadline = time.monotonic() + seconds
        taken: list[T] = []
        with self._cond:
            while True:
                taken.extend(self._items)
                self._items.clear()
                self._cond.notify_all()
                wait = deadline - time.monotonic()
                if self._closed is not None or wait <= 0:
                    return taken
                self._cond.wait(min(wait, POLL_SECONDS))

    def poll(self) -> T | Closed | None:
        """Like `get` but never waits: None when nothing is there yet."""
        with self._cond:
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return self._closed
