"""The MTCNN cascade's tunable numbers as one checked, picklable value (no TensorFlow here).

A detector holds one `Settings`; `detect_faces` derives a per-call copy, and the shared detector
service passes a camera's own settings with each request, so one call's (or one camera's)
settings never leak into another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PNET_CELL = 12


def _number(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _check_range(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    number = _number(name, value)
    if not ((low < number if low_open else low <= number) and number <= high):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")
    return number


def _fractions(name: str, values: Any, meaning: str) -> tuple[float, ...]:
    """A sequence of len(meaning) numbers in [0, 1], each checked under its own name."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must hold {len(meaning)} values ({', '.join(meaning)}), got {values!r}")
    if len(values) != len(meaning):
        shown = tuple(values)
        raise ValueError(f"{name} must hold {len(meaning)} values ({', '.join(meaning)}), got {shown}")
    return tuple(_check_range(f"{name}[{i}]", v, 0.0, 1.0) for i, v in enumerate(values))


@dataclass(frozen=True)
class Settings:
    """The cascade's tunable numbers, checked (and normalised to int / float / tuples) when made.

    `MTCNN` documents each field; `landmarks=False` stops the cascade after R-Net. A detector
    holds one; `detect_faces` derives a per-call copy (`for_call`), so one call's settings never
    leak into the next call or into another thread.
    """

    min_face_size: int = 20
    scale_factor: float = 0.709
    thresholds: tuple[float, ...] = (0.6, 0.7, 0.7)
    nms_thresholds: tuple[float, ...] = (0.5, 0.7, 0.7, 0.7)
    landmarks: bool = True

    def __post_init__(self) -> None:
        size = self.min_face_size
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < PNET_CELL:
            raise ValueError(f"min_face_size must be an integer >= 12, got {size!r}")
        set_field = object.__setattr__  # frozen: normalise the checked values once, here
        set_field(self, "min_face_size", int(size))
        set_field(self, "scale_factor", _check_range("scale_factor", self.scale_factor, 0.0, 0.99, True))
        set_field(self, "thresholds", _fractions("thresholds", self.thresholds, ("P-Net", "R-Net", "O-Net")))
        nms_names = ("P-Net within a scale", "P-Net across scales", "R-Net", "O-Net")
        set_field(self, "nms_thresholds", _fractions("nms_thresholds", self.nms_thresholds, nms_names))

    def for_call(
        self,
        min_face_size: int | None = None,
        scale_factor: float | None = None,
        threshold_pnet: float | None = None,
        threshold_rnet: float | None = None,
        threshold_onet: float | None = None,
        nms_pnet1: float | None = None,
        nms_pnet2: float | None = None,
        nms_rnet: float | None = None,
        nms_onet: float | None = None,
    ) -> Settings:
        """These settings with the `mtcnn` package's per-call keyword arguments applied; None keeps
        a value. Each given value is checked under its own name."""
        named = {"threshold_pnet": threshold_pnet, "threshold_rnet": threshold_rnet}
        named |= {"threshold_onet": threshold_onet, "nms_pnet1": nms_pnet1, "nms_pnet2": nms_pnet2}
        named |= {"nms_rnet": nms_rnet, "nms_onet": nms_onet}
        given = {name: _check_range(name, v, 0.0, 1.0) for name, v in named.items() if v is not None}
        if min_face_size is None and scale_factor is None and not given:
            return self
        pick = given.get
        return dataclasses.replace(
            self,
            min_face_size=self.min_face_size if min_face_size is None else min_face_size,
            scale_factor=self.scale_factor if scale_factor is None else scale_factor,
            thresholds=(
                pick("threshold_pnet", self.thresholds[0]),
                pick("threshold_rnet", self.thresholds[1]),
                pick("threshold_onet", self.thresholds[2]),
            ),
            nms_thresholds=(
                pick("nms_pnet1", self.nms_thresholds[0]),
                pick("nms_pnet2", self.nms_thresholds[1]),
                pick("nms_rnet", self.nms_thresholds[2]),
                pick("nms_onet", self.nms_thresholds[3]),
            ),
        )
