"""Face tracks across frames: stable ids, motion prediction, jitter smoothing. Knows nothing of MTCNN.

`Tracker.update(found, t)` takes the faces measured on the frame at time `t` (seconds, the
source's clock) and returns them as tracks with ids; `Tracker.predict(t)` places every live track
at any other time, so frames without a measurement still get boxes that follow the faces.

Each track carries its box and five landmarks as one 14-value state with a velocity, updated by
an alpha-beta filter: a measurement pulls the state part of the way (`smoothing`) toward itself,
which damps detector jitter, and the difference corrects the velocity, which keeps predicted boxes
on a moving face. Measurements are assigned to tracks greedily by the overlap (IoU) of the
measured box with the track's predicted box, best overlap first. A track not measured for
`max_missed_seconds` ends; a measurement that matches no track starts a new one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from livefaces.boxes import iou
from livefaces.detections import Detections

STATE = 14  # x1, y1, x2, y2, then five (x, y) landmarks


@dataclass(frozen=True)
class TrackerSettings:
    """match_iou: least overlap of a face with a track's predicted box to continue that track.
    max_missed_seconds: a track that has gone this long without a measurement ends.
    smoothing: weight of a new measurement in the state (1: no smoothing).
    velocity_gain: share of the prediction error moved into the velocity at each measurement.
    """

    match_iou: float = 0.3
    max_missed_seconds: float = 0.5
    smoothing: float = 0.4
    velocity_gain: float = 0.1

    def __post_init__(self) -> None:
        for name, value in (("match_iou", self.match_iou), ("smoothing", self.smoothing)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if not 0.0 <= self.velocity_gain <= 1.0:
            raise ValueError(f"velocity_gain must be in [0, 1], got {self.velocity_gain}")
        if self.max_missed_seconds < 0:
            raise ValueError(f"max_missed_seconds must be >= 0, got {self.max_missed_seconds}")


def _states(found: Detections) -> np.ndarray:
    return np.concatenate([found.boxes, found.landmarks.reshape(-1, 10)], axis=1).astype(np.float64)


def greedy_match(overlap: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, column) by decreasing overlap, each row and column used once, overlap >= threshold."""
    rows, columns = np.nonzero(overlap >= threshold)
    order = np.argsort(-overlap[rows, columns], kind="stable")
    pairs, used_rows, used_columns = [], set(), set()
    for k in order:
        row, column = int(rows[k]), int(columns[k])
        if row not in used_rows and column not in used_columns:
            pairs.append((row, column))
            used_rows.add(row)
            used_columns.add(column)
    return pairs


class Tracker:
    """Tracks faces over time; thread-safe, so one thread can update while another predicts."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._lock = threading.Lock()
        self._ids = np.zeros(0, np.int64)
        self._state = np.zeros((0, STATE))
        self._velocity = np.zeros((0, STATE))
        self._scores = np.zeros(0, np.float32)
        self._updated = np.zeros(0)  # time of each track's last measurement
        self._next_id = 0

    def __len__(self) -> int:
        return int(self._ids.size)

    def update(self, found: Detections, timestamp: float) -> Detections:
        """Feed the faces measured at `timestamp`; returns the tracks measured now, with ids.

        Tracks not measured now keep their prediction and end once missed for too long. A
        measurement older than the newest one already fed is matched but changes nothing.
        """
        with self._lock:
            predicted = self._predicted(timestamp)
            measured = _states(found)
            pairs = greedy_match(iou(measured[:, :4], predicted[:, :4]), self.settings.match_iou)
            out_ids = np.full(len(found), -1, np.int64)
            out_states = measured.copy()
            for m, t in pairs:
                out_ids[m] = self._ids[t]
                out_states[m] = self._correct(t, predicted[t], measured[m], timestamp)
                self._scores[t] = found.scores[m]
            matched = {m for m, _ in pairs}
            for m in range(len(found)):
                if m not in matched:
                    out_ids[m] = self._start(measured[m], found.scores[m], timestamp)
            self._end_missed(timestamp)
            return Detections(
                out_states[:, :4].astype(np.float32),
                found.scores.astype(np.float32),
                out_states[:, 4:].reshape(-1, 5, 2).astype(np.float32),
                out_ids,
            )

    def predict(self, timestamp: float) -> Detections:
        """Every live track placed at `timestamp` by its motion; scores are the last measured."""
        with self._lock:
            state = self._predicted(timestamp)
            return Detections(
                state[:, :4].astype(np.float32),
                self._scores.copy(),
                state[:, 4:].reshape(-1, 5, 2).astype(np.float32),
                self._ids.copy(),
            )

    def boxes(self, timestamp: float) -> np.ndarray:
        """The live tracks' predicted boxes (N, 4) at `timestamp`: where to look for them."""
        return self.predict(timestamp).boxes

    def _predicted(self, timestamp: float) -> np.ndarray:
        elapsed = np.maximum(timestamp - self._updated, 0.0)[:, None]
        return self._state + self._velocity * elapsed

    def _correct(
        self, track: int, predicted: np.ndarray, measured: np.ndarray, timestamp: float
    ) -> np.ndarray:
        elapsed = timestamp - self._updated[track]
        if elapsed <= 0:  # same or older frame: nothing to learn about motion
            return self._state[track].copy()
        error = measured - predicted
        self._state[track] = predicted + self.settings.smoothing * error
        self._velocity[track] += self.settings.velocity_gain * error / elapsed
        self._updated[track] = timestamp
        return self._state[track].copy()

    def _start(self, state: np.ndarray, score: float, timestamp: float) -> int:
        track_id = self._next_id
        self._next_id += 1
        self._ids = np.append(self._ids, track_id)
        self._state = np.vstack([self._state, state])
        self._velocity = np.vstack([self._velocity, np.zeros(STATE)])
        self._scores = np.append(self._scores, np.float32(score))
        self._updated = np.append(self._updated, timestamp)
        return track_id

    def _end_missed(self, timestamp: float) -> None:
        alive = timestamp - self._updated <= self.settings.max_missed_seconds
        if not np.all(alive):
            self._ids, self._state, self._velocity = (
                self._ids[alive],
                self._state[alive],
                self._velocity[alive],
            )
            self._scores, self._updated = self._scores[alive], self._updated[alive]
