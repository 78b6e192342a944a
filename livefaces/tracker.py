"""Face tracks across frames: stable ids, motion prediction, jitter smoothing, a lifecycle.

`Tracker.update(found, t)` takes the faces measured on the frame at time `t` (seconds, the
source's clock) and returns them as tracks with ids; `Tracker.predict(t)` places every live track
at any other time, so frames without a measurement still get boxes that follow the faces.
`Tracker.step(found, t)` does the same update and also says what happened: tracks confirmed
(births), tracks ended, tracks whose best shot improved, and a `TrackSnapshot` of every live track
that any thread can predict from (`snapshot.at(t)`) without touching the tracker.

Each track carries its box and five landmarks as one 14-value state with a velocity, updated by
an alpha-beta filter: a measurement pulls the state part of the way (`smoothing`) toward itself,
which damps detector jitter, and the difference corrects the velocity, which keeps predicted boxes
on a moving face. The pull grows with the size of the error (`follow`): detector jitter is a few
percent of the box, so small errors are damped while a face that moved or turned is followed at
once instead of lagging behind it. Measurements are assigned to tracks greedily by the overlap (IoU) of the
measured box with the track's predicted box, best overlap first; a measurement that matches no
track starts a new one.

A new track is tentative until measured on `confirm_hits` frames (norfair's
`initialization_delay`), so a single false positive never announces a face; a tentative track
missed for `tentative_missed_seconds` is dropped without a word. A confirmed track not measured
for `max_missed_seconds` ends, and its end carries how long it was in view and its best shot.
Track ids are given at creation, so dropped tentative tracks leave gaps in the ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livefaces.boxes import iou
from livefaces.detections import Detections

STATE = 14  # x1, y1, x2, y2, then five (x, y) landmarks
LOST = "lost"  # the reason of an end by missed measurements


@dataclass(frozen=True)
class TrackerSettings:
    """match_iou: least overlap of a face with a track's predicted box to continue that track.
    max_missed_seconds: a confirmed track that has gone this long without a measurement ends.
    smoothing: weight of a new measurement in the state when it agrees with the prediction
        (1: no smoothing).
    follow: box error, as a share of the box's width, at which a measurement is taken whole; the
        weight grows linearly from `smoothing` at no error to 1 there. None: always `smoothing`.
        0.1 keeps most of the damping of jitter (about 1 % of the width on a still face) and
        follows motion (on the shared clips, mean IoU with exact mode 0.80-0.85 became >= 0.90).
    velocity_gain: share of the prediction error moved into the velocity at each measurement.
    confirm_hits: frames a new track must be measured on before it is confirmed (1: at once).
    tentative_missed_seconds: a tentative track missed this long is dropped (never longer than
        `max_missed_seconds`). 0.25 s is one full-scan interval at the scheduler's floor (5 scans
        a second) plus slack: a real face that a refinement misses is found again by the next
        full scan before its track is dropped, while a false positive is gone in a quarter second.
    """

    match_iou: float = 0.3
    max_missed_seconds: float = 0.5
    smoothing: float = 0.4
    velocity_gain: float = 0.1
    confirm_hits: int = 3
    tentative_missed_seconds: float = 0.25
    follow: float | None = 0.1

    def __post_init__(self) -> None:
        if self.follow is not None and not self.follow > 0:
            raise ValueError(f"follow must be > 0 or None, got {self.follow}")
        for name, value in (("match_iou", self.match_iou), ("smoothing", self.smoothing)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if not 0.0 <= self.velocity_gain <= 1.0:
            raise ValueError(f"velocity_gain must be in [0, 1], got {self.velocity_gain}")
        for name, value in (
            ("max_missed_seconds", self.max_missed_seconds),
            ("tentative_missed_seconds", self.tentative_missed_seconds),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        hits = self.confirm_hits
        if isinstance(hits, bool) or not isinstance(hits, (int, np.integer)) or hits < 1:
            raise ValueError(f"confirm_hits must be an integer >= 1, got {hits!r}")


@dataclass(frozen=True)
class Shot:
    """One measurement of a track, in the measured frame's coordinates: a track's best shot is the
    highest-scoring one, the picture of the face worth keeping."""

    track_id: int
    time: float
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float


@dataclass(frozen=True)
class TrackBirth:
    """A track became confirmed at `time` (source seconds), with its box and score then."""

    track_id: int
    time: float
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class TrackEnd:
    """A confirmed track ended at `time`: missed too long (`reason` "lost") or ended explicitly.

    first_seen, last_seen: times of its first and last measurement (source seconds).
    """

    track_id: int
    time: float
    first_seen: float
    last_seen: float
    best: Shot
    reason: str

    @property
    def seconds_in_view(self) -> float:
        return self.last_seen - self.first_seen

    @property
    def best_score(self) -> float:
        return self.best.score


@dataclass(frozen=True, eq=False)
class TrackedFaces:
    """Tracks placed at one time: their `Detections` with per-face flags.

    confirmed: (N,) bool, False for tentative tracks; measured: (N,) bool, True where the box comes
    from a measurement at exactly this time rather than from motion prediction; measured_at: (N,)
    time of each face's last measurement, where known (how far its box was predicted).
    """

    detections: Detections
    confirmed: np.ndarray
    measured: np.ndarray
    measured_at: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def boxes(self) -> np.ndarray:
        return self.detections.boxes

    @property
    def scores(self) -> np.ndarray:
        return self.detections.scores

    @property
    def landmarks(self) -> np.ndarray:
        return self.detections.landmarks

    @property
    def track_ids(self) -> np.ndarray:
        return self.detections.track_ids

    def select(self, mask_or_indices: np.ndarray) -> TrackedFaces:
        """The faces picked by a boolean mask or an index array."""
        return TrackedFaces(
            self.detections.select(mask_or_indices),
            self.confirmed[mask_or_indices],
            self.measured[mask_or_indices],
            None if self.measured_at is None else self.measured_at[mask_or_indices],
        )

    def confirmed_only(self) -> TrackedFaces:
        """Without the tentative tracks."""
        return self.select(self.confirmed)


def _extrapolate(state: np.ndarray, velocity: np.ndarray, updated: np.ndarray, t: float) -> np.ndarray:
    elapsed = np.maximum(t - updated, 0.0)[:, None]
    return state + velocity * elapsed


def _read_only(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class TrackSnapshot:
    """Every live track as of the tracker's last update at `time`: a plain, picklable value.

    Per track (one row each): ids, state (x1 y1 x2 y2 + five landmark points), velocity per second,
    updated (time of the last measurement), first_seen, hits (frames measured on), scores (last
    measured), best_scores, confirmed. `at(t)` predicts every track to any time, so the display and
    sinks read tracks from another thread without a lock.
    """

    time: float
    ids: np.ndarray
    state: np.ndarray
    velocity: np.ndarray
    updated: np.ndarray
    first_seen: np.ndarray
    hits: np.ndarray
    scores: np.ndarray
    best_scores: np.ndarray
    confirmed: np.ndarray

    @classmethod
    def empty(cls, time: float = 0.0) -> TrackSnapshot:
        """No tracks."""
        return _Tracks().snapshot(time)

    def __len__(self) -> int:
        return int(self.ids.size)

    def at(self, t: float, include_tentative: bool = True) -> TrackedFaces:
        """Every track (or only the confirmed ones) placed at time `t` by its motion."""
        state = _extrapolate(self.state, self.velocity, self.updated, t)
        faces = TrackedFaces(
            Detections(
                state[:, :4].astype(np.float32),
                self.scores.copy(),
                state[:, 4:].reshape(-1, 5, 2).astype(np.float32),
                self.ids.copy(),
            ),
            self.confirmed.copy(),
            self.updated == t,
            self.updated.copy(),
        )
        return faces if include_tentative else faces.confirmed_only()


@dataclass(frozen=True, eq=False)
class TrackUpdate:
    """What one `Tracker.step` did.

    measured: the faces measured now, as tracks with ids (what `update` returns).
    births: tracks confirmed now. ends: confirmed tracks that ended now. dropped: ids of tentative
    tracks dropped now (no event; forget what was kept for them). new_best: the best shot of each
    track that got a better one now, new tracks included (keep the image crop for these).
    snapshot: every live track after this update.
    """

    measured: Detections
    births: tuple[TrackBirth, ...]
    ends: tuple[TrackEnd, ...]
    dropped: tuple[int, ...]
    new_best: tuple[Shot, ...]
    snapshot: TrackSnapshot


_COLUMNS: dict[str, tuple[tuple[int, ...], type]] = {
    "ids": ((), np.int64),
    "state": ((STATE,), np.float64),
    "velocity": ((STATE,), np.float64),
    "updated": ((), np.float64),
    "first_seen": ((), np.float64),
    "hits": ((), np.int64),
    "scores": ((), np.float32),
    "confirmed": ((), np.bool_),
    "best_scores": ((), np.float32),
    "best_times": ((), np.float64),
    "best_states": ((STATE,), np.float64),  # the raw measurement of the best shot
}
_SNAPSHOT_COLUMNS = (
    "ids",
    "state",
    "velocity",
    "updated",
    "first_seen",
    "hits",
    "scores",
    "best_scores",
    "confirmed",
)


class _Tracks:
    """The tracker's mutable table: one row per live track, one array per column of `_COLUMNS`."""

    ids: np.ndarray
    state: np.ndarray
    velocity: np.ndarray
    updated: np.ndarray
    first_seen: np.ndarray
    hits: np.ndarray
    scores: np.ndarray
    confirmed: np.ndarray
    best_scores: np.ndarray
    best_times: np.ndarray
    best_states: np.ndarray

    def __init__(self) -> None:
        for name, (shape, kind) in _COLUMNS.items():
            setattr(self, name, np.zeros((0, *shape), kind))

    def append(self, **row: object) -> None:
        for name, (shape, kind) in _COLUMNS.items():
            value = np.asarray(row[name], kind).reshape(1, *shape)
            setattr(self, name, np.concatenate([getattr(self, name), value]))

    def keep(self, mask: np.ndarray) -> None:
        for name in _COLUMNS:
            setattr(self, name, getattr(self, name)[mask])

    def shot(self, row: int) -> Shot:
        state = self.best_states[row]
        return Shot(
            int(self.ids[row]),
            float(self.best_times[row]),
            _box(state),
            tuple((float(x), float(y)) for x, y in state[4:].reshape(5, 2)),
            float(self.best_scores[row]),
        )

    def snapshot(self, time: float) -> TrackSnapshot:
        return TrackSnapshot(time, **{name: _read_only(getattr(self, name)) for name in _SNAPSHOT_COLUMNS})

    def predicted(self, t: float) -> np.ndarray:
        return _extrapolate(self.state, self.velocity, self.updated, t)


def _box(state: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in state[:4])
    return (x1, y1, x2, y2)


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
    """Tracks faces over time. Owned by one thread (a camera's runner): no locks. Other threads
    read tracks through `TrackSnapshot` values, which later updates never touch."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks = _Tracks()
        self._next_id = 0
        self._latest = 0.0  # the newest time fed

    def __len__(self) -> int:
        return int(self._tracks.ids.size)

    def update(self, found: Detections, timestamp: float) -> Detections:
        """Feed the faces measured at `timestamp`; returns the tracks measured now, with ids.

        Tracks not measured now keep their prediction and end once missed for too long. A
        measurement older than the newest one already fed is matched but moves nothing.
        """
        return self.step(found, timestamp).measured

    def step(self, found: Detections, timestamp: float) -> TrackUpdate:
        """`update`, and what it did: births, ends, improved best shots and a snapshot."""
        self._latest = max(self._latest, timestamp)
        measured = _states(found)
        predicted = self._tracks.predicted(timestamp)
        pairs = greedy_match(iou(measured[:, :4], predicted[:, :4]), self.settings.match_iou)
        out_ids = np.full(len(found), -1, np.int64)
        out_states = measured.copy()
        new_best: list[Shot] = []
        for m, row in pairs:
            out_ids[m] = self._tracks.ids[row]
            out_states[m] = self._correct(row, predicted[row], measured[m], timestamp)
            self._tracks.scores[row] = found.scores[m]
            if self._keep_best(row, measured[m], float(found.scores[m]), timestamp):
                new_best.append(self._tracks.shot(row))
        matched = {m for m, _ in pairs}
        for m in range(len(found)):
            if m not in matched:
                out_ids[m] = self._start(measured[m], float(found.scores[m]), timestamp)
                new_best.append(self._tracks.shot(len(self) - 1))
        births = self._confirm(timestamp)
        ends, dropped = self._end_missed(timestamp)
        detections = Detections(
            out_states[:, :4].astype(np.float32),
            found.scores.astype(np.float32),
            out_states[:, 4:].reshape(-1, 5, 2).astype(np.float32),
            out_ids,
        )
        snapshot = self._tracks.snapshot(self._latest)
        return TrackUpdate(detections, births, ends, dropped, tuple(new_best), snapshot)

    def predict(self, timestamp: float, include_tentative: bool = True) -> Detections:
        """Every live track (or only the confirmed ones) placed at `timestamp` by its motion;
        scores are the last measured."""
        return self.snapshot().at(timestamp, include_tentative).detections

    def boxes(self, timestamp: float) -> np.ndarray:
        """The live tracks' predicted boxes (N, 4) at `timestamp`: where to look for them."""
        return self.predict(timestamp).boxes

    def snapshot(self) -> TrackSnapshot:
        """Every live track as of the newest update."""
        return self._tracks.snapshot(self._latest)

    def end_all(self, timestamp: float, reason: str) -> tuple[TrackEnd, ...]:
        """End every track now (e.g. the stream went down): ends for the confirmed ones, tentative
        ones are dropped silently. The tracker is empty afterwards; ids keep counting up."""
        self._latest = max(self._latest, timestamp)
        ends = self._ends(self._tracks.confirmed, timestamp, reason)
        self._tracks.keep(np.zeros(len(self), bool))
        return ends

    def _correct(self, row: int, predicted: np.ndarray, measured: np.ndarray, timestamp: float) -> np.ndarray:
        tracks = self._tracks
        elapsed = timestamp - tracks.updated[row]
        if elapsed <= 0:  # same or older frame: nothing to learn about motion, no new hit
            return tracks.state[row].copy()
        error = measured - predicted
        tracks.state[row] = predicted + self._weight(predicted, error) * error
        tracks.velocity[row] += self.settings.velocity_gain * error / elapsed
        tracks.updated[row] = timestamp
        tracks.hits[row] += 1
        return tracks.state[row].copy()

    def _weight(self, predicted: np.ndarray, error: np.ndarray) -> float:
        """The measurement's weight: `smoothing` for jitter, up to 1 for an error of `follow`."""
        smoothing, follow = self.settings.smoothing, self.settings.follow
        if follow is None:
            return smoothing
        width = max(float(predicted[2] - predicted[0]), 1.0)
        relative = float(np.abs(error[:4]).max()) / width
        return smoothing + (1.0 - smoothing) * min(1.0, relative / follow)

    def _keep_best(self, row: int, measured: np.ndarray, score: float, timestamp: float) -> bool:
        tracks = self._tracks
        if score <= tracks.best_scores[row]:
            return False
        tracks.best_scores[row], tracks.best_times[row], tracks.best_states[row] = score, timestamp, measured
        return True

    def _start(self, state: np.ndarray, score: float, timestamp: float) -> int:
        track_id = self._next_id
        self._next_id += 1
        self._tracks.append(
            ids=track_id,
            state=state,
            velocity=np.zeros(STATE),
            updated=timestamp,
            first_seen=timestamp,
            hits=1,
            scores=score,
            confirmed=False,
            best_scores=score,
            best_times=timestamp,
            best_states=state,
        )
        return track_id

    def _confirm(self, timestamp: float) -> tuple[TrackBirth, ...]:
        tracks = self._tracks
        ready = np.flatnonzero(~tracks.confirmed & (tracks.hits >= self.settings.confirm_hits))
        tracks.confirmed[ready] = True
        return tuple(
            TrackBirth(int(tracks.ids[row]), timestamp, _box(tracks.state[row]), float(tracks.scores[row]))
            for row in ready
        )

    def _end_missed(self, timestamp: float) -> tuple[tuple[TrackEnd, ...], tuple[int, ...]]:
        """End the confirmed tracks and drop the tentative ones missed for too long."""
        settings, tracks = self.settings, self._tracks
        tentative_limit = min(settings.tentative_missed_seconds, settings.max_missed_seconds)
        limit = np.where(tracks.confirmed, settings.max_missed_seconds, tentative_limit)
        gone = timestamp - tracks.updated > limit
        ends = self._ends(gone & tracks.confirmed, timestamp, LOST)
        dropped = tuple(int(i) for i in tracks.ids[gone & ~tracks.confirmed])
        if np.any(gone):
            tracks.keep(~gone)
        return ends, dropped

    def _ends(self, mask: np.ndarray, timestamp: float, reason: str) -> tuple[TrackEnd, ...]:
        tracks = self._tracks
        return tuple(
            TrackEnd(
                int(tracks.ids[row]),
                timestamp,
                float(tracks.first_seen[row]),
                float(tracks.updated[row]),
                tracks.shot(row),
                reason,
            )
            for row in np.flatnonzero(mask)
        )
