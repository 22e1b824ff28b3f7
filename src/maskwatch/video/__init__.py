"""Real-time video: sources (webcam, file, stream), tracking, label smoothing, the threaded
capture -> inference -> writing loop, compliance statistics and alerts.

>>> import maskwatch
>>> from maskwatch.video import TrackingConfig, VideoAnalyzer, open_source, watch
>>> with open_source("clip.mp4") as src:          # or 0 (webcam), or "rtsp://..."
...     result = watch(src, VideoAnalyzer(maskwatch.load("yunet", scale=1.0)), output="out.mp4", jsonl="out.jsonl")
>>> result.compliance["share_per_label"]
"""

from .analyzer import TrackingConfig, VideoAnalyzer, video_pipeline
from .runner import VideoFileWriter, VideoWriteError, WatchResult, WatchRunner, frame_record, has_gui, watch
from .sources import Frame, VideoSource, VideoSourceError, open_source, source_kind
from .stats import AlertHook, ComplianceStats
from .tracking import FaceTracker, KalmanBoxFilter, LabelSmoother

__all__ = [
    "AlertHook", "ComplianceStats", "FaceTracker", "Frame", "KalmanBoxFilter", "LabelSmoother", "TrackingConfig",
    "VideoAnalyzer", "VideoFileWriter", "VideoSource", "VideoSourceError", "VideoWriteError", "WatchResult",
    "WatchRunner", "frame_record", "has_gui", "open_source", "source_kind", "video_pipeline", "watch",
]
