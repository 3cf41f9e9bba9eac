"""Video object tracking with flat memory: sessions over recorded video, live streams from cameras.

``VideoTracker(model)`` loads a SAM 2 / 2.1, SAM 3 tracker or EdgeTAM video model; ``tracker.session(source)``
tracks through a folder of frames, a video file or an iterator of frames; ``tracker.stream()`` tracks a live
camera, keeping only what the model's memory attention reads. ``MaskFolderWriter``, ``TrackLog`` and
``OverlayVideoWriter`` write the results (palette PNGs, COCO RLE JSON, an mp4 for humans).
"""

from robosam.video.live import LiveTracker, SkippedFrame
from robosam.video.overlay import OverlayVideoWriter
from robosam.video.retention import RetentionPolicy
from robosam.video.session import TrackingSession
from robosam.video.tracker import VideoTracker
from robosam.video.writers import MaskFolderWriter, TrackLog

__all__ = [
    "LiveTracker",
    "MaskFolderWriter",
    "OverlayVideoWriter",
    "RetentionPolicy",
    "SkippedFrame",
    "TrackLog",
    "TrackingSession",
    "VideoTracker",
]
