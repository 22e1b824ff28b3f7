"""Drawing results: annotators take an RGB image and `Faces` and return a new image.

`BoxAnnotator` stays readable at any crowd size: each label's text is sized to its face, faces too
small for legible text keep only their box colour (a legend, drawn once, says which colour is which),
and labels are placed greedily, largest face first, at the first of several spots around the box
that covers neither another label nor another face's box; a label with no free spot is left out
rather than drawn over its neighbours. ``header=True`` adds a band above the image with the counts
per label and the compliant share (`Faces.counts`).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from . import ops
from .faces import Faces
from .labels import COLORS, SHORT_NAMES

UNCLASSIFIED = (80, 160, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
_GLYPH_PX = 22  # height of Hershey simplex capitals at font scale 1


def _text_color(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light fills (orange), white on dark ones: whichever reads better."""
    r, g, b = fill
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def _draw_text_box(out: np.ndarray, rect, text: str, fill, scale: float, thick: int, pad: int) -> None:
    x1, y1, x2, y2 = (int(v) for v in rect)
    cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), fill, -1)
    (_, th), _ = cv2.getTextSize(text, FONT, scale, thick)
    cv2.putText(out, text, (x1 + pad, y1 + pad + th), FONT, scale, _text_color(fill), thick, cv2.LINE_AA)


class BoxAnnotator:
    """Box per face in its label's colour, with a label (``label confidence``, ``#track``) where it fits.

    Args:
        thickness: box line width in pixels (default: by image size, at most 1/30 of the face).
        font_scale: one fixed OpenCV font scale for every label (default: sized to each face).
        show_track: prefix labels with the track id where faces have one.
        text_ratio: label text height as a share of the face's height.
        min_text: text height (px) below which a face gets no label, only its colour.
        max_text: text height (px) above which labels do not grow (default: by image size).
        header: add a band above the image with the counts per label and the compliant share
            (the image grows by the band's height; the boxes keep their place below it).
        legend: when some faces show only their colour, draw a legend of the colours once, in the
            corner that covers the fewest faces (the header doubles as the legend).
    """

    def __init__(self, thickness: int | None = None, font_scale: float | None = None, show_track: bool = True,
                 text_ratio: float = 0.3, min_text: int = 8, max_text: int | None = None, header: bool = False,
                 legend: bool = True):
        self.thickness = thickness
        self.font_scale = font_scale
        self.show_track = show_track
        self.text_ratio = float(text_ratio)
        self.min_text = int(min_text)
        self.max_text = max_text
        self.header = header
        self.legend = legend

    # -- labels -------------------------------------------------------------------------------------
    def _texts(self, faces: Faces) -> list[tuple[list[str], tuple[int, int, int]]]:
        """Per face: its label texts, longest first (``with_mask 0.98``, ``mask 0.98``, ``mask``), and colour."""
        labels, confidence = faces.label, faces.confidence
        tracks = faces.track_id.tolist() if self.show_track and faces.track_id is not None else None
        out = []
        for i in range(len(faces)):
            if labels is not None:
                conf, short = f"{confidence[i]:.2f}", SHORT_NAMES.get(labels[i], labels[i])
                texts, color = [f"{labels[i]} {conf}", f"{short} {conf}", short], COLORS.get(labels[i], UNCLASSIFIED)
            else:
                texts, color = [f"face {faces.det_score[i]:.2f}", "face"], UNCLASSIFIED
            if tracks is not None:
                texts = [f"#{tracks[i]} {t}" for t in texts]
            out.append((list(dict.fromkeys(texts)), color))
        return out

    def place_labels(self, faces: Faces, width: int, height: int) -> list[tuple[np.ndarray, float, str] | None]:
        """Per face, the rectangle (x1, y1, x2, y2) of its label, its font scale and its text, or
        ``None`` when the face is too small for legible text or no spot is free. Largest face first,
        each takes the first free spot for its longest text at its size, then shorter texts, then
        the smallest legible size."""
        return self._place(faces, self._texts(faces), width, height)

    def _place(self, faces: Faces, texts, width: int, height: int) -> list[tuple[np.ndarray, float, str] | None]:
        n = len(faces)
        placed: list[tuple[np.ndarray, float, str] | None] = [None] * n
        if not n:
            return placed
        boxes = faces.xyxy.astype(np.float32)
        side = np.minimum(faces.width, faces.height)
        max_text = self.max_text or max(self.min_text, round(max(width, height) / 40))
        taken = np.zeros((0, 4), np.float32)
        for i in np.argsort(-side, kind="stable"):
            if self.font_scale is not None:
                scales = [self.font_scale]
            else:
                want = round(min(max_text, self.text_ratio * float(side[i])))  # whole pixels of text height
                if want < self.min_text:
                    continue
                scales = [px / _GLYPH_PX for px in dict.fromkeys([want, self.min_text])]
            others = np.ones(n, bool)
            others[i] = False
            for scale in scales:
                for text in texts[i][0]:
                    spot = self._free_spot(text, scale, boxes[i], boxes[others], taken, width, height)
                    if spot is not None:
                        placed[i] = (spot, scale, text)
                        taken = np.vstack([taken, spot[None]])
                        break
                if placed[i] is not None:
                    break
        return placed

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def _label_size(text: str, scale: float) -> tuple[int, int, int]:
        thick = max(1, round(scale * 1.6))
        (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
        pad = max(1, round(th * 0.15))
        return tw + 2 * pad, th + base + 2 * pad, pad

    def _free_spot(self, text, scale, box, others, taken, width, height) -> np.ndarray | None:
        """The first of nine spots around ``box`` (kept inside the image) that overlaps no rectangle of
        ``taken`` (labels) or ``others`` (the other faces' boxes) by more than a pixel."""
        lw, lh, _ = self._label_size(text, scale)
        if lw > width or lh > height:
            return None
        x1, y1, x2, y2 = (float(v) for v in box)
        spots = np.array([(x1, y1 - lh), (x2 - lw, y1 - lh), (x1, y2), (x2 - lw, y2),  # above, below
                          (x2, y1), (x1 - lw, y1), (x2, y2 - lh), (x1 - lw, y2 - lh),  # beside
                          (x1, y1)], np.float32)  # inside, over the forehead
        np.minimum(np.maximum(spots, 0, out=spots), np.float32([width - lw, height - lh]), out=spots)
        rects = np.concatenate([spots, spots + np.float32([lw, lh])], axis=1)
        blockers = np.concatenate([taken, others])
        if not len(blockers):
            return rects[0]
        iw = np.minimum(rects[:, None, 2], blockers[None, :, 2]) - np.maximum(rects[:, None, 0], blockers[None, :, 0])
        ih = np.minimum(rects[:, None, 3], blockers[None, :, 3]) - np.maximum(rects[:, None, 1], blockers[None, :, 1])
        free = ~np.any((iw > 1) & (ih > 1), axis=1)
        return rects[int(np.argmax(free))] if free.any() else None

    # -- legend and header ------------------------------------------------------------------------
    def _swatch_items(self, faces: Faces, counts: bool) -> list[tuple[str, tuple[int, int, int]]]:
        tally = faces.counts()
        if counts:
            items = [(f"{label.replace('_', ' ')} {tally.counts[label]}", COLORS.get(label, UNCLASSIFIED))
                     for label in tally.counts]
            if tally.unclassified:
                items.append((f"face {tally.unclassified}", UNCLASSIFIED))
            share = tally.compliant_share
            if share is not None:
                items.append((f"{100 * share:.0f}% compliant", None))
            return items
        present = [label for label in tally.counts if tally.counts[label]]
        items = [(label.replace("_", " "), COLORS.get(label, UNCLASSIFIED)) for label in present]
        if tally.unclassified:
            items.append(("face", UNCLASSIFIED))
        return items

    @staticmethod
    def _flow(items, scale: float, max_width: int) -> tuple[list[list[tuple[int, int, str, object]]], int, int]:
        """Items laid out left to right, wrapped at ``max_width``: rows of (x, width, text, colour)."""
        thick = max(1, round(scale * 1.6))
        (_, th), base = cv2.getTextSize("Ag", FONT, scale, thick)
        sw, gap = th, max(4, th)
        rows, row, x = [], [], 0
        for text, color in items:
            (tw, _), _ = cv2.getTextSize(text, FONT, scale, thick)
            w = (sw + th // 2 if color is not None else 0) + tw
            if row and x + w > max_width:
                rows.append(row)
                row, x = [], 0
            row.append((x, w, text, color))
            x += w + gap
        if row:
            rows.append(row)
        return rows, th + base, thick

    def _draw_flow(self, out, rows, line_h, thick, scale, x0, y0, text_color) -> None:
        th = cv2.getTextSize("Ag", FONT, scale, thick)[0][1]
        for r, row in enumerate(rows):
            y = y0 + r * (line_h + line_h // 3)
            for x, _, text, color in row:
                tx = x0 + x
                if color is not None:
                    cv2.rectangle(out, (tx, y), (tx + th, y + th), color, -1)
                    tx += th + th // 2
                cv2.putText(out, text, (tx, y + th), FONT, scale, text_color, thick, cv2.LINE_AA)

    def _text_scale(self, width: int, height: int) -> float:
        return max(self.min_text, round(max(width, height) / 50)) / _GLYPH_PX

    def _draw_legend(self, out: np.ndarray, faces: Faces) -> None:
        h, w = out.shape[:2]
        scale = self._text_scale(w, h)
        items = self._swatch_items(faces, counts=False)
        rows, line_h, thick = self._flow(items, scale, 1)  # one item per row
        pad = max(3, line_h // 3)
        lw = max(x + iw for row in rows for x, iw, _, _ in row) + 2 * pad
        lh = len(rows) * (line_h + line_h // 3) - line_h // 3 + 2 * pad
        if lw > w or lh > h:
            return
        corners = [(0, 0), (w - lw, 0), (0, h - lh), (w - lw, h - lh)]

        def covered(corner):
            x, y = corner
            b = faces.xyxy
            iw = np.clip(np.minimum(x + lw, b[:, 2]) - np.maximum(x, b[:, 0]), 0, None)
            ih = np.clip(np.minimum(y + lh, b[:, 3]) - np.maximum(y, b[:, 1]), 0, None)
            return float((iw * ih).sum())

        x, y = min(corners, key=covered)
        panel = out[y:y + lh, x:x + lw]
        panel[:] = (panel.astype(np.float32) * 0.35 + 255 * 0.65).astype(np.uint8)  # light, see-through
        self._draw_flow(out, rows, line_h, thick, scale, x + pad, y + pad, (0, 0, 0))

    def _header(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        h, w = image.shape[:2]
        scale = self._text_scale(w, h)
        pad = max(3, round(scale * _GLYPH_PX / 3))
        rows, line_h, thick = self._flow(self._swatch_items(faces, counts=True), scale, w - 2 * pad)
        band_h = len(rows) * (line_h + line_h // 3) - line_h // 3 + 2 * pad
        band_h += band_h % 2  # keep the height's parity (video encoders want even sizes)
        band = np.full((band_h, w, 3), 32, np.uint8)
        self._draw_flow(band, rows, line_h, thick, scale, pad, pad, (255, 255, 255))
        return np.concatenate([band, image], axis=0)

    # -- drawing ----------------------------------------------------------------------------------
    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        out = image.copy()
        h, w = out.shape[:2]
        base = self.thickness or max(1, round(max(h, w) / 500))
        texts = self._texts(faces)
        for i, box in enumerate(np.round(faces.xyxy).astype(int)):
            x1, y1, x2, y2 = box.tolist()
            side = min(x2 - x1, y2 - y1)
            thick = self.thickness or max(1, min(base, side // 30))
            cv2.rectangle(out, (x1, y1), (x2, y2), texts[i][1], thick, cv2.LINE_AA)
        placed = self._place(faces, texts, w, h)
        for (_, color), spot in zip(texts, placed):
            if spot is not None:
                rect, scale, text = spot
                _, _, pad = self._label_size(text, scale)
                _draw_text_box(out, rect, text, color, scale, max(1, round(scale * 1.6)), pad)
        if self.header:
            return self._header(out, faces)
        if self.legend and any(p is None for p in placed):
            self._draw_legend(out, faces)
        return out


class BlurAnnotator:
    """Blurs every face (privacy); a strong Gaussian blur over the face box plus a margin."""

    def __init__(self, margin: float = 0.1, strength: float = 0.5):
        self.margin = margin
        self.strength = strength

    def annotate(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        out = image.copy()
        h, w = out.shape[:2]
        boxes = ops.clip_boxes(ops.square_boxes(faces.xyxy, self.margin) if len(faces) else faces.xyxy, w, h)
        for x1, y1, x2, y2 in np.round(boxes).astype(int):
            if x2 <= x1 or y2 <= y1:
                continue
            roi = out[y1:y2, x1:x2]
            k = max(3, int(max(roi.shape[:2]) * self.strength) | 1)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(roi, (k, k), 0)
        return out


def annotate(image: np.ndarray, faces: Faces, blur: bool = False, header: bool = False) -> np.ndarray:
    """Draw ``faces`` on a copy of ``image`` (optionally blurring the faces first; ``header``: a band
    above with the counts per label)."""
    if blur:
        image = BlurAnnotator().annotate(image, faces)
    return BoxAnnotator(header=header).annotate(image, faces)

