"""livefaces: real-time MTCNN face detection for webcams, streams, files and images."""

from livefaces.detections import KEYPOINT_NAMES, Detections
from livefaces.detector import MTCNN
from livefaces.networks import WeightsError

__all__ = ["KEYPOINT_NAMES", "MTCNN", "Detections", "WeightsError"]
__version__ = "0.1.0"
