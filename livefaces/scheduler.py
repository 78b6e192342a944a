"""When to run a full MTCNN scan and when a cheap refinement of the tracked faces is enough.

A full scan (the whole pyramid) finds new faces; a refinement (O-Net on the tracks' predicted
boxes) only measures faces already known, at a fraction of the cost. `ScanScheduler` keeps the
measured cost of both and picks the largest number of full scans per second that, together with
refinements on the other frames, fits the detector's time budget at the source's frame rate,
never fewer than `min_scans_per_second`. A face entering the frame is therefore found within
`1 / min_scans_per_second` seconds of source time plus one scan; `TrackingDetector` also scans at
once after a scene cut.

Times are the source's timestamps, so a file processed faster or slower than real time gets the
same cadence in source time; costs are wall seconds, measured as the detector runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SchedulerSettings:
    """min_scans_per_second: the floor on full scans, which bounds how late a new face is found.
    budget: share of each second of source time the detector thread may spend (the rest is
        headroom for decoding, drawing and encoding on the same cores).
    cost_smoothing: weight of the newest measurement in the running cost averages.
    adaptive: False keeps the floor whatever the costs: the fastest cadence, for files processed
        as fast as possible (`--realtime`), where no camera sets the pace.
    """

    min_scans_per_second: float = 5.0
    budget: float = 0.8
    cost_smoothing: float = 0.2
    adaptive: bool = True

    def __post_init__(self) -> None:
        if self.min_scans_per_second <= 0:
            raise ValueError(f"min_scans_per_second must be > 0, got {self.min_scans_per_second}")
        if not 0.0 < self.budget <= 1.0:
            raise ValueError(f"budget must be in (0, 1], got {self.budget}")
        if not 0.0 < self.cost_smoothing <= 1.0:
            raise ValueError(f"cost_smoothing must be in (0, 1], got {self.cost_smoothing}")


class ScanScheduler:
    """Decides frame by frame between a full scan and a refinement, from measured costs."""

    def __init__(self, fps: float | None, settings: SchedulerSettings | None = None) -> None:
        self.settings = settings or SchedulerSettings()
        self.fps = fps if fps and fps > 0 else 30.0
        self.scan_seconds: float | None = None
        self.refine_seconds: float | None = None
        self.wait_seconds: float | None = None
        self._last_scan: float | None = None
        self._next_due: float | None = None

    @property
    def contended(self) -> bool:
        """Whether this camera's requests queue behind others' (a detector shared and saturated):
        their smoothed wait exceeds a frame interval."""
        return self.wait_seconds is not None and self.wait_seconds > 1.0 / self.fps

    @property
    def scans_per_second(self) -> float:
        """Full scans per second of source time that fit the budget (between the floor and fps).

        Above the floor only while the detector answers without queueing: on a saturated shared
        detector one camera's extra scans would push the others below their floor."""
        floor, ceiling = self.settings.min_scans_per_second, self.fps
        if self.scan_seconds is None or not self.settings.adaptive or self.contended:
            return min(floor, ceiling)
        refine = self.refine_seconds or 0.0
        if self.scan_seconds <= refine:
            return ceiling
        affordable = (self.settings.budget - self.fps * refine) / (self.scan_seconds - refine)
        return min(max(affordable, floor), ceiling)

    @property
    def scan_interval(self) -> float:
        """Seconds of source time between full scans."""
        return 1.0 / self.scans_per_second

    def wants_full_scan(self, timestamp: float) -> bool:
        """Whether the frame at `timestamp` gets a full scan (the first frame always does)."""
        if self._next_due is None or self._last_scan is None or timestamp < self._last_scan:
            return True
        # Half a frame of slack, so a cadence of N frames is not missed by rounding.
        return timestamp >= self._next_due - 0.5 / self.fps

    def scanned(self, timestamp: float, seconds: float, waited: float = 0.0) -> None:
        """Record a full scan of the frame at `timestamp` that took `seconds` after waiting
        `waited` seconds for the detector.

        Scans are due on a grid of `scan_interval` steps, not an interval after each scan: a scan
        that had to wait for the detector (busy with other cameras) does not push every later one
        back, so the rate asked for is the rate delivered while the waits stay under an interval.
        An early scan (a scene cut) or one more than an interval late starts the grid again."""
        self.scan_seconds = self._average(self.scan_seconds, seconds)
        self.wait_seconds = self._average(self.wait_seconds, waited)
        interval = self.scan_interval
        due = self._next_due
        early = due is None or timestamp < due - 0.5 / self.fps
        late = due is not None and timestamp - due >= interval
        self._next_due = timestamp + interval if early or late else due + interval
        self._last_scan = timestamp

    def refined(self, seconds: float, waited: float = 0.0) -> None:
        """Record a refinement that took `seconds` after waiting `waited` seconds."""
        self.refine_seconds = self._average(self.refine_seconds, seconds)
        self.wait_seconds = self._average(self.wait_seconds, waited)

    def describe(self) -> str:
        """The cadence chosen, for the panel: e.g. 'tracking, 7.5 full scans/s'."""
        return f"tracking, {self.scans_per_second:.1f} full scans/s"

    def _average(self, current: float | None, new: float) -> float:
        weight = self.settings.cost_smoothing
        return new if current is None else (1 - weight) * current + weight * new
