"""livefaces: real-time MTCNN face detection for webcams, streams, files and images.

`from livefaces import MTCNN` loads TensorFlow on first use, not on `import livefaces`, so the
command line can answer `--help` or a bad argument at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livefaces.detections import KEYPOINT_NAMES, Detections
    from livefaces.detector import MTCNN
    from livefaces.faces import align_face, crop_faces
    from livefaces.networks import WeightsError
    from livefaces.scheduler import ScanScheduler
    from livefaces.tracker import Tracker, TrackerSettings
    from livefaces.tracking import TrackingDetector

__all__ = [
    "KEYPOINT_NAMES",
    "MTCNN",
    "Detections",
    "ScanScheduler",
    "Tracker",
    "TrackerSettings",
    "TrackingDetector",
    "WeightsError",
    "align_face",
    "crop_faces",
]
__version__ = "0.1.0"

_HOMES = {
    "KEYPOINT_NAMES": "livefaces.detections",
    "Detections": "livefaces.detections",
    "MTCNN": "livefaces.detector",
    "WeightsError": "livefaces.networks",
    "ScanScheduler": "livefaces.scheduler",
    "Tracker": "livefaces.tracker",
    "TrackerSettings": "livefaces.tracker",
    "TrackingDetector": "livefaces.tracking",
    "align_face": "livefaces.faces",
    "crop_faces": "livefaces.faces",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'livefaces' has no attribute {name!r}")
