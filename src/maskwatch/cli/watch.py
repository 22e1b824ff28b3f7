"""Watch a webcam, a video file or a network stream: track faces, smooth their mask labels and
count compliance over time.

SOURCE is a webcam index (0), a video file, or a stream URL (rtsp://, http://, ...: whatever
OpenCV's FFmpeg backend opens). Outputs, each optional: an annotated video (--output), one JSON
line per processed frame (--jsonl), per-second label counts (--csv), a chart (--chart) and a
summary (always on stderr; as JSON with --summary). A live stream that drops is reopened with
back-off, and so is a video served over the network that ends before its declared length. Ctrl-C
stops early and still finishes every output (exit code 130); a lost stream exits with 1, a source
that never opens with 2, a file that ends before its declared length (truncated) with 3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

HELP = "track faces and masks in a webcam, video file or stream"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..video.analyzer import DEFAULT_VIDEO_THREADS, TrackingConfig
    from ..video.runner import DEFAULT_QUEUE_SIZE
    from ..video.sources import DEFAULT_OPEN_TIMEOUT, DEFAULT_RECONNECT_ATTEMPTS
    from .common import add_detector_arguments

    d = TrackingConfig()
    p.add_argument("source", metavar="SOURCE", help="webcam index (0), video file, or stream URL (rtsp://, http://)")
    out = p.add_argument_group("outputs")
    out.add_argument("-o", "--output", default=None,
                     help="write the annotated video here: .mp4 (H.264, fragmented: playable even if the run is "
                          "killed), .webm (VP9), .mkv, .avi (Motion JPEG); H.264 and VP9 need the video extra (PyAV)")
    out.add_argument("--jsonl", default=None, help="one JSON line per processed frame to this file ('-': stdout)")
    out.add_argument("--csv", default=None, help="per-second face counts per label to this CSV file")
    out.add_argument("--chart", default=None, help="compliance-over-time chart to this PNG file")
    out.add_argument("--summary", default=None, help="run summary and resolved settings to this JSON file")
    out.add_argument("--header", action="store_true",
                     help="add a band above each frame of the --output video with the counts per label")
    out.add_argument("--show", action="store_true", help="show a live window (OpenCV with GUI; ESC or q quits)")
    out.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: all)")
    tr = p.add_argument_group("tracking and smoothing (defaults measured by benchmarks/bench_watch.py)")
    tr.add_argument("--no-track", action="store_true",
                    help="no tracking: detect and classify every frame on its own (no track ids, no smoothing)")
    tr.add_argument("--detect-every", type=int, default=d.detect_every,
                    help="run the detector on every k-th frame; the tracker predicts in between")
    tr.add_argument("--classify-every", type=int, default=d.classify_every,
                    help="classify a tracked face again after this many frames")
    tr.add_argument("--reclassify-iou", type=float, default=d.reclassify_iou,
                    help="...or sooner, once the IoU of its box with its box at the last classification is below this")
    tr.add_argument("--smoothing", type=float, default=d.smoothing,
                    help="weight of a new classification in the per-track moving average (1: off)")
    tr.add_argument("--hysteresis", type=float, default=d.hysteresis,
                    help="margin by which another label must lead before a track's label switches (0: off)")
    tr.add_argument("--no-smooth", action="store_true", help="no label smoothing (same as --smoothing 1 --hysteresis 0)")
    tr.add_argument("--track-iou", type=float, default=d.iou_threshold, help="least IoU to continue a track")
    tr.add_argument("--max-age", type=int, default=d.max_age, help="frames a track survives without a detection")
    live = p.add_argument_group("live sources")
    live.add_argument("--open-timeout", type=float, default=DEFAULT_OPEN_TIMEOUT, help="seconds to wait for a stream")
    live.add_argument("--reconnect", type=int, default=DEFAULT_RECONNECT_ATTEMPTS,
                      help="reconnection attempts (back-off 0.5 s doubling to 8 s) before a dropped stream is lost")
    live.add_argument("--threads", type=int, default=DEFAULT_VIDEO_THREADS,
                      help="CPU threads of the detector and of the classifier each (they run in parallel; 0: "
                           "the libraries' defaults)")
    live.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                      help="frames waiting for inference at most; a live source drops the oldest beyond it")
    al = p.add_argument_group("alerts (a new track confidently without_mask / mask_worn_incorrectly)")
    al.add_argument("--alert-cmd", default=None,
                    help="shell command to run per alert (JSON on stdin, MASKWATCH_LABEL etc. in the environment)")
    al.add_argument("--alert-url", default=None, help="webhook URL to POST each alert to as JSON")
    al.add_argument("--alert-interval", type=float, default=30.0, help="seconds between two alerts at least")
    al.add_argument("--alert-confidence", type=float, default=0.8, help="smoothed confidence needed to alert")
    add_detector_arguments(p, preset="video")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")


def config_from_args(args: argparse.Namespace):
    from ..video.analyzer import TrackingConfig

    smooth_off = args.no_smooth
    return TrackingConfig(
        track=not args.no_track, detect_every=args.detect_every, classify_every=args.classify_every,
        reclassify_iou=args.reclassify_iou, smoothing=1.0 if smooth_off else args.smoothing,
        hysteresis=0.0 if smooth_off else args.hysteresis, iou_threshold=args.track_iou, max_age=args.max_age,
    )


def format_summary(result) -> str:
    from ..labels import LabelCounts
    from .common import format_counts

    c = result.compliance
    per_label = dict(c.get("faces_per_label", {}))
    faces = LabelCounts(per_label, c.get("faces_seen", 0) - sum(per_label.values()))
    lines = [
        f"{result.source}: {result.frames_processed} frames processed at {result.fps:.1f} frames/s"
        + (f", {result.frames_dropped} dropped" if result.frames_dropped else "")
        + (f", {result.reconnects} reconnect(s)" if result.reconnects else ""),
        f"faces seen (face-frames): {format_counts(faces, None)}",
        f"unique tracks: {c.get('unique_tracks', 0)}",
    ]
    if c.get("unique_tracks"):
        lines[-1] = f"unique tracks: {format_counts(LabelCounts(dict(c['tracks_per_label'])), None)}"
    if result.alerts_sent or result.alerts_suppressed:
        lines.append(f"alerts: {result.alerts_sent} sent, {result.alerts_suppressed} suppressed by the rate limit")
    if result.interrupted:
        lines.append("interrupted: outputs finished up to the last processed frame")
    if result.source_lost:
        lines.append("the stream was lost and did not come back")
    elif result.ended_early:
        lines.append(f"warning: the source ended after {result.frames_read} of its declared frames "
                     "(truncated or damaged file)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..video.runner import has_gui
    from ..video.sources import VideoSource
    from . import error
    from .common import require

    # before the source opens and the models load: a missing extra must not cost a whole video
    if args.chart:
        require("watch --chart", "video", "matplotlib")
    if args.output and Path(args.output).suffix.lower() == ".webm":
        require("watch -o FILE.webm", "video", "av")

    show = args.show
    if show and not has_gui():
        error("this OpenCV build has no GUI (opencv-python-headless), so --show cannot open a window; watch the "
              "annotated stream in the web app's live view instead, or write it with --output")
        if not (args.output or args.jsonl or args.csv or args.chart or args.summary):
            return 2
        show = False
    config = config_from_args(args)
    # the source first: a file or URL that does not open fails before the models load
    source = VideoSource(args.source, open_timeout=args.open_timeout, reconnect_attempts=args.reconnect)
    with source:
        return _watch(args, source, config, show)


def _watch(args: argparse.Namespace, source, config, show: bool) -> int:
    import cv2

    from ..annotate import BoxAnnotator
    from ..video.analyzer import VideoAnalyzer, video_pipeline
    from ..video.runner import WatchRunner
    from ..video.stats import AlertHook, ComplianceStats
    from .common import classifier_from_args, open_output

    if args.threads > 0:
        cv2.setNumThreads(args.threads)  # the detector runs in OpenCV's DNN module
    classifier = classifier_from_args(args)
    pipe = video_pipeline(args.detector, classifier, threads=args.threads, scale=args.scale,
                          score_threshold=args.score_threshold, min_face=args.min_face, tile=args.tile,
                          min_side=args.min_side, calibrate=args.calibrate)
    alerts = None
    if args.alert_cmd or args.alert_url:
        alerts = AlertHook(command=args.alert_cmd, url=args.alert_url, min_interval=args.alert_interval,
                           confidence=args.alert_confidence)
    stats = ComplianceStats()

    # Ctrl-C or SIGTERM (a service manager stopping us) end the run; the runner finishes the outputs
    with open_output(args.jsonl) if args.jsonl else contextlib.nullcontext() as jsonl:
        runner = WatchRunner(source, VideoAnalyzer(pipe, config), output=args.output, jsonl=jsonl, stats=stats,
                             alerts=alerts, show=show, queue_size=args.queue_size, max_frames=args.max_frames,
                             annotator=BoxAnnotator(header=args.header))
        result = runner.run()
    if args.csv:
        stats.write_csv(args.csv)
    if args.chart:
        stats.plot(args.chart, title=f"Mask compliance: {source.name}")
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        settings = {"source": source.name, "detector": args.detector, "scale": pipe.describe()["detector"].get("scale"),
                    "classifier": args.classifier,
                    "threads": args.threads, "queue_size": args.queue_size, "tracking": config.to_dict()}
        Path(args.summary).write_text(json.dumps({"result": result.to_dict(), "settings": settings}, indent=2) + "\n")
    if not args.quiet:
        print(format_summary(result), file=sys.stderr, flush=True)
    if result.interrupted:
        return 130
    if result.source_lost:
        return 1
    return 3 if result.ended_early else 0

