"""Compliance statistics over time, and alerts.

* `ComplianceStats` counts, per second of video, how many faces (distinct tracks) showed each
  label; it writes them as CSV, draws them as a PNG chart and summarises the run (faces seen,
  unique tracks, share of tracks per label).
* `AlertHook` runs a command or posts to a webhook when a new track is confidently
  ``without_mask`` or ``mask_worn_incorrectly``: in a background thread, rate-limited, with a
  bounded queue, so an alert never blocks the video loop.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import queue
import subprocess
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..faces import Faces
from ..labels import COLORS, COMPLIANT, LABELS, MASK_WORN_INCORRECTLY, WITHOUT_MASK, LabelCounts

log = logging.getLogger(__name__)


class ComplianceStats:
    """Per-second label counts and per-track labels of one run."""

    def __init__(self, labels: tuple[str, ...] = LABELS):
        self.labels = tuple(labels)
        self._seconds: dict[int, dict[str, set]] = defaultdict(lambda: defaultdict(set))
        self._track_labels: dict[int, Counter] = defaultdict(Counter)
        self.face_frames = 0  #: faces summed over frames
        self.frames = 0
        self.unlabelled_faces = 0
        self.face_counts = LabelCounts(dict.fromkeys(self.labels, 0))  #: face-frames per label

    def update(self, time_s: float, faces: Faces) -> None:
        """Count the faces of one frame shown at ``time_s`` seconds."""
        self.frames += 1
        self.face_frames += len(faces)
        self.face_counts = self.face_counts + faces.counts()
        labels = faces.label
        second = int(max(time_s, 0.0))
        bins = self._seconds[second]
        for i in range(len(faces)):
            key = int(faces.track_id[i]) if faces.track_id is not None else (self.frames, i)
            if labels is None or faces.probs[i].max() <= 0:  # not (yet) classified
                self.unlabelled_faces += 1
                bins["faces"].add(key)
                continue
            bins[labels[i]].add(key)
            bins["faces"].add(key)
            if faces.track_id is not None:
                self._track_labels[key][labels[i]] += 1

    def per_second(self) -> list[dict[str, int]]:
        """One row per second from 0 to the last second seen: ``second, faces, <label>...,
        compliant_share`` (``with_mask`` among the labelled faces of that second; ``None`` if none).

        Without track ids a face counts once per frame, so counts are face-frames in that case.
        """
        if not self._seconds:
            return []
        rows = []
        for s in range(max(self._seconds) + 1):
            bins = self._seconds.get(s, {})
            row = {"second": s, "faces": len(bins.get("faces", ()))}
            row.update({label: len(bins.get(label, ())) for label in self.labels})
            labelled = sum(row[label] for label in self.labels)
            row["compliant_share"] = round(row.get(COMPLIANT, 0) / labelled, 4) if labelled else None
            rows.append(row)
        return rows

    def track_labels(self) -> dict[int, str]:
        """Each classified track's label: the one it showed in most of its frames."""
        return {tid: counts.most_common(1)[0][0] for tid, counts in self._track_labels.items() if counts}

    def summary(self) -> dict[str, Any]:
        """Frames, faces and tracks; per label the tracks (people) and the face-frames, and the
        compliant share of each (``with_mask`` among the labelled ones; ``None`` if none)."""
        tracks = self.track_labels()
        counts = Counter(tracks.values())
        n = len(tracks)
        track_counts = LabelCounts({label: counts.get(label, 0) for label in self.labels})
        faces = self.face_counts.to_dict()
        return {
            "frames": self.frames,
            "faces_seen": self.face_frames,
            "unique_tracks": n,
            "tracks_per_label": dict(track_counts.counts),
            "share_per_label": {label: round(counts.get(label, 0) / n, 4) if n else 0.0 for label in self.labels},
            "compliant_share": track_counts.to_dict()["compliant_share"],
            "faces_per_label": {label: faces[label] for label in self.labels},
            "faces_compliant_share": faces["compliant_share"],
        }

    def write_csv(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["second", "faces", *self.labels, "compliant_share"])
            writer.writeheader()
            writer.writerows(self.per_second())
        return path

    def plot(self, path: str | os.PathLike, title: str | None = None) -> Path:
        """A PNG chart: faces per label over time (stacked), and the share of compliant faces."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        rows = self.per_second()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
        try:
            if rows:
                rows = rows + [dict(rows[-1], second=rows[-1]["second"] + 1)]  # draw the last second too
                t = np.array([r["second"] for r in rows])
                ys = [np.array([r[label] for r in rows]) for label in self.labels]
                colors = [np.array(COLORS.get(label, (128, 128, 128))) / 255 for label in self.labels]
                ax.stackplot(t, *ys, labels=[label.replace("_", " ") for label in self.labels], colors=colors,
                             alpha=0.85, step="post")
                faces = np.array([r["faces"] for r in rows])
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(faces > 0, ys[0] / np.maximum(faces, 1), np.nan)
                ax2 = ax.twinx()
                ax2.plot(t, share * 100, color="black", lw=1.2, label="% with mask")
                ax2.set_ylim(0, 105)
                ax2.set_ylabel("% with mask")
                ax.legend(loc="upper left", fontsize=8)
            else:
                ax.text(0.5, 0.5, "no frames", ha="center", va="center", transform=ax.transAxes)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("time (s)")
            ax.set_ylabel("faces (tracks) per second")
            ax.set_title(title or "Mask compliance over time")
            fig.tight_layout()
            fig.savefig(path)
        finally:
            plt.close(fig)
        return path


#: Labels that raise an alert.
ALERT_LABELS = (WITHOUT_MASK, MASK_WORN_INCORRECTLY)


class AlertHook:
    """Fires on a new track that is confidently ``without_mask`` / ``mask_worn_incorrectly``.

    Each track alerts at most once, when its smoothed confidence reaches ``confidence`` after at
    least ``min_updates`` classifications. At most one alert per ``min_interval`` seconds is
    sent; alerts in between are counted as suppressed. Sending happens in a daemon thread fed by
    a bounded queue (a full queue drops the alert), so `check` never waits.

    The command runs through the shell with the alert as JSON on stdin and in the environment
    (``MASKWATCH_LABEL``, ``MASKWATCH_TRACK_ID``, ``MASKWATCH_CONFIDENCE``, ``MASKWATCH_TIME``,
    ``MASKWATCH_FRAME``, ``MASKWATCH_SOURCE``); the webhook gets the same JSON as a POST body.
    """

    def __init__(
        self,
        command: str | None = None,
        url: str | None = None,
        min_interval: float = 30.0,
        confidence: float = 0.8,
        min_updates: int = 3,
        labels: tuple[str, ...] = ALERT_LABELS,
        timeout: float = 10.0,
        send: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"alert webhook must be an http(s) URL, got {url!r}")
        self.command, self.url = command, url
        self.min_interval, self.confidence, self.min_updates = float(min_interval), float(confidence), int(min_updates)
        self.labels = tuple(labels)
        self.timeout = float(timeout)
        self._send_fn = send
        self._clock = clock
        self._alerted: set[int] = set()
        self._last_sent: float | None = None
        self.sent = 0  #: alerts handed to the sender
        self.suppressed = 0  #: alerts dropped by the rate limit or a full queue
        self.failed = 0  #: alerts whose command / request failed
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._worker, name="maskwatch-alerts", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self.command or self.url or self._send_fn)

    def check(self, faces: Faces, updates: np.ndarray, frame: int, time_s: float, source: str | None = None) -> None:
        """Look at one frame's tracked faces; ``updates[i]``: classifications behind face ``i``."""
        if faces.track_id is None or faces.probs is None or not len(faces):
            return
        labels, conf = faces.label, faces.confidence
        for i, tid in enumerate(faces.track_id.tolist()):
            if tid in self._alerted or labels[i] not in self.labels:
                continue
            if conf[i] < self.confidence or updates[i] < self.min_updates:
                continue
            self._alerted.add(tid)
            now = self._clock()
            if self._last_sent is not None and now - self._last_sent < self.min_interval:
                self.suppressed += 1
                log.info("alert for track %d suppressed by the rate limit", tid)
                continue
            event = {"event": "mask_alert", "label": labels[i], "track_id": tid, "confidence": round(float(conf[i]), 4),
                     "frame": frame, "time": round(time_s, 3), "box": [round(float(v), 1) for v in faces.xyxy[i]],
                     "source": source}
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.suppressed += 1
                continue
            self._last_sent = now
            self.sent += 1

    def _send(self, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        if self._send_fn is not None:
            self._send_fn(event)
        if self.command:
            env = dict(os.environ, MASKWATCH_LABEL=event["label"], MASKWATCH_TRACK_ID=str(event["track_id"]),
                       MASKWATCH_CONFIDENCE=str(event["confidence"]), MASKWATCH_TIME=str(event["time"]),
                       MASKWATCH_FRAME=str(event["frame"]), MASKWATCH_SOURCE=str(event["source"] or ""))
            proc = subprocess.run(self.command, shell=True, input=body, env=env, timeout=self.timeout,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"alert command exited with {proc.returncode}: "
                                   f"{proc.stderr.decode(errors='replace').strip()[:200]}")
        if self.url:
            req = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - user-given URL
                resp.read()

    def _worker(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                self._queue.task_done()
                return
            try:
                self._send(event)
            except Exception as exc:  # noqa: BLE001 - an alert must never take the loop down
                self.failed += 1
                log.warning("alert for track %s failed: %s", event.get("track_id"), exc)
            finally:
                self._queue.task_done()

    def close(self, wait: float = 5.0) -> None:
        """Send what is queued (waiting at most ``wait`` seconds) and stop the thread."""
        try:
            self._queue.put(None, timeout=wait)
        except queue.Full:
            return
        self._thread.join(wait)
