"""The runtime layer: what hosts the model for many cameras (the shared detector service, its
threaded host) and, later, the camera runners. Values crossing its threads are plain data."""

from livefaces.runtime.detector_service import (
    DetectorReply,
    DetectorService,
    Mailbox,
    RefineRequest,
    ScanRequest,
    ServiceClosed,
    ServiceLoad,
    ServiceSettings,
    ThreadedDetectorHost,
)

__all__ = [
    "DetectorReply",
    "DetectorService",
    "Mailbox",
    "RefineRequest",
    "ScanRequest",
    "ServiceClosed",
    "ServiceLoad",
    "ServiceSettings",
    "ThreadedDetectorHost",
]
