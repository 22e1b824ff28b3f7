"""`Faces`: the one result type that flows detector -> classifier -> tracker -> annotator -> writers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from . import ops
from .labels import LABELS, LabelCounts


def _as_array(value: Any, dtype: Any, shape_tail: tuple[int, ...], name: str, n: int | None) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.size == 0 and n in (None, 0):
        arr = arr.reshape((0, *shape_tail))
    want = f"(N, {', '.join(map(str, shape_tail))})" if shape_tail else "(N,)"
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise ValueError(f"{name} must be an array of shape {want}, got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows (one per face), got {arr.shape[0]}")
    return arr


@dataclass(eq=False)
class Faces:
    """Faces found in one image, as parallel arrays (N rows, one per face).

    Attributes:
        xyxy: (N, 4) float32 boxes ``x1, y1, x2, y2`` in pixels of the input image.
        det_score: (N,) float32 detector confidence in [0, 1].
        landmarks: optional (N, 5, 2) float32 points (right eye, left eye, nose, mouth corners).
        probs: optional (N, C) float32 class probabilities, columns in ``labels`` order.
        labels: the class names of the ``probs`` columns.
        track_id: optional (N,) int64 track ids (video).
        image_size: optional ``(width, height)`` of the image the boxes refer to.
        source: optional name of the image (path, URL, frame).
    """

    xyxy: np.ndarray
    det_score: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    probs: np.ndarray | None = None
    labels: tuple[str, ...] = LABELS
    track_id: np.ndarray | None = None
    image_size: tuple[int, int] | None = None
    source: str | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as_array(self.xyxy, np.float32, (4,), "xyxy", None)
        n = len(self.xyxy)
        if n and not np.all(np.isfinite(self.xyxy)):
            raise ValueError("xyxy must be finite")
        if n and np.any(self.xyxy[:, 2:] < self.xyxy[:, :2]):
            raise ValueError("xyxy must have x2 >= x1 and y2 >= y1 for every box")
        score = np.ones(n, np.float32) if self.det_score is None else self.det_score
        self.det_score = _as_array(score, np.float32, (), "det_score", n)
        if self.landmarks is not None:
            self.landmarks = _as_array(self.landmarks, np.float32, (5, 2), "landmarks", n)
        self.labels = tuple(self.labels)
        if self.probs is not None:
            self.probs = _as_array(self.probs, np.float32, (len(self.labels),), "probs", n)
        if self.track_id is not None:
            self.track_id = _as_array(self.track_id, np.int64, (), "track_id", n)
        for key, value in self.data.items():
            value = np.asarray(value)
            if value.ndim == 0 or value.shape[0] != n:
                raise ValueError(f"data[{key!r}] must have {n} rows, got shape {value.shape}")
            self.data[key] = value
        if self.image_size is not None:
            self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls, **meta: Any) -> "Faces":
        return cls(xyxy=np.zeros((0, 4), np.float32), **meta)

    def with_probs(self, probs: np.ndarray, labels: tuple[str, ...] | None = None) -> "Faces":
        """A copy with class probabilities set."""
        return replace(self, probs=probs, labels=tuple(labels or self.labels), data=dict(self.data))

    def with_meta(self, **meta: Any) -> "Faces":
        """A copy with ``image_size`` / ``source`` (or any other field) replaced."""
        return replace(self, **{"data": dict(self.data), **meta})

    # -- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyxy)

    def __bool__(self) -> bool:  # an empty result is still a result; be explicit
        return len(self) > 0

    def __getitem__(self, index: Any) -> "Faces":
        """Select faces by int, slice, boolean mask or index array; always returns ``Faces``."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean mask must have shape ({len(self)},), got {index.shape}")

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[index]

        return Faces(
            xyxy=self.xyxy[index],
            det_score=pick(self.det_score),
            landmarks=pick(self.landmarks),
            probs=pick(self.probs),
            labels=self.labels,
            track_id=pick(self.track_id),
            image_size=self.image_size,
            source=self.source,
            data={k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self) -> Iterator["Faces"]:
        for i in range(len(self)):
            yield self[i]

    # -- derived values -------------------------------------------------------------------------
    @property
    def class_id(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.argmax(axis=1)

    @property
    def label(self) -> list[str] | None:
        """Predicted label per face, or ``None`` if the faces are not classified."""
        ids = self.class_id
        return None if ids is None else [self.labels[i] for i in ids]

    @property
    def confidence(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.max(axis=1)

    @property
    def width(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    def counts(self) -> LabelCounts:
        """Faces per label (every label of ``labels``, zeros included) and the unclassified ones (no
        ``probs``, or all-zero ones: a track not classified yet), as `LabelCounts` of one image."""
        if self.probs is None:
            return LabelCounts(dict.fromkeys(self.labels, 0), len(self), 1)
        known = self.probs.max(axis=1) > 0  # a tracked face not classified yet has all-zero probs
        tally = np.bincount(self.probs[known].argmax(axis=1), minlength=len(self.labels))
        return LabelCounts({label: int(n) for label, n in zip(self.labels, tally)}, int((~known).sum()), 1)

    #: The optional per-face fields; `merge` needs all or none of the parts to have each.
    OPTIONAL_FIELDS = ("landmarks", "probs", "track_id")

    @classmethod
    def merge(cls, parts: list["Faces"]) -> "Faces":
        """Join results of the same image (tiles, ensemble members): every field is kept.

        Empty parts are skipped. Raises `ValueError` when some of the other parts have an optional
        field (``landmarks``, ``probs``, ``track_id``, a ``data`` key) that others lack, or when
        they disagree on ``labels``, ``image_size`` or ``source``: drop a field on purpose first
        (`without`)."""
        full = [p for p in parts if len(p)]
        if not full:
            return parts[0].with_meta() if parts else cls.empty()
        first = full[0]
        for name in ("labels", "image_size", "source"):
            values = {getattr(p, name) for p in full}
            if len(values) > 1:
                raise ValueError(f"cannot merge faces with different {name}: {sorted(map(str, values))}")

        def cat(name: str) -> np.ndarray | None:
            vals = [getattr(p, name) for p in full]
            if all(v is None for v in vals):
                return None
            if any(v is None for v in vals):
                raise ValueError(f"All or none of the {name!r} fields must be None")
            return np.concatenate(vals)

        keys = set(first.data)
        if any(set(p.data) != keys for p in full):
            raise ValueError(f"All or none of the parts must have each data key, got {[sorted(p.data) for p in full]}")
        return cls(xyxy=np.concatenate([p.xyxy for p in full]), det_score=cat("det_score"),
                   **{name: cat(name) for name in cls.OPTIONAL_FIELDS}, labels=first.labels,
                   image_size=first.image_size, source=first.source,
                   data={k: np.concatenate([p.data[k] for p in full]) for k in sorted(keys)})

    def without(self, *fields: str) -> "Faces":
        """A copy with the named optional fields (``landmarks``, ``probs``, ``track_id``) removed."""
        unknown = set(fields) - set(self.OPTIONAL_FIELDS)
        if unknown:
            raise ValueError(f"only optional fields {self.OPTIONAL_FIELDS} can be removed, not {sorted(unknown)}")
        return replace(self, data=dict(self.data), **{f: None for f in fields})

    def with_boxes(self, xyxy: np.ndarray, landmarks: np.ndarray | None = None) -> "Faces":
        """A copy with new boxes (and landmarks, if given); every other field kept."""
        return replace(self, xyxy=xyxy, landmarks=self.landmarks if landmarks is None else landmarks,
                       data=dict(self.data))

    def with_scores(self, det_score: np.ndarray) -> "Faces":
        return replace(self, det_score=det_score, data=dict(self.data))

    def transformed(self, factor: tuple[float, float] = (1.0, 1.0), offset: tuple[float, float] = (0.0, 0.0)) -> "Faces":
        """Boxes and landmarks scaled by ``factor`` (x, y), then shifted by ``offset``: into the
        coordinates of a resized image, or of the image a tile was cut from."""
        fx, fy = factor
        dx, dy = offset
        xyxy = self.xyxy * np.float32([fx, fy, fx, fy]) + np.float32([dx, dy, dx, dy])
        lms = None if self.landmarks is None else self.landmarks * np.float32([fx, fy]) + np.float32([dx, dy])
        return self.with_boxes(xyxy, lms)

    def nms(self, iou_threshold: float, vote_threshold: float | None = None) -> "Faces":
        """Duplicates removed by greedy NMS (`ops.nms`), the survivors in their original order.

        ``vote_threshold``: box voting (`ops.box_voting`): each surviving box becomes the
        score-weighted mean of the boxes overlapping it with IoU above this; its score and other
        fields stay those of the surviving face. ``None``: no voting."""
        if len(self) <= 1:
            return self
        keep = np.sort(ops.nms(self.xyxy, self.det_score, iou_threshold))
        kept = self[keep]
        if vote_threshold is not None:
            kept = kept.with_boxes(ops.box_voting(self.xyxy, self.det_score, keep, vote_threshold))
        return kept

    def __eq__(self, other: object) -> bool:
        """Same faces: every array equal (``None`` only equals ``None``) and the same metadata."""
        if not isinstance(other, Faces):
            return NotImplemented

        def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))

        return (all(same(getattr(self, n), getattr(other, n)) for n in ("xyxy", "det_score", *self.OPTIONAL_FIELDS))
                and self.labels == other.labels and self.image_size == other.image_size
                and self.source == other.source and self.data.keys() == other.data.keys()
                and all(np.array_equal(v, other.data[k]) for k, v in self.data.items()))

    __hash__ = None  # mutable arrays: not hashable

    # -- serialisation --------------------------------------------------------------------------
    def face_dicts(self, decimals: int = 4) -> list[dict[str, Any]]:
        """The ``faces`` list of the JSON contract, one dict per face."""
        out = []
        labels = self.label
        for i in range(len(self)):
            face: dict[str, Any] = {
                "box": [round(float(v), 1) for v in self.xyxy[i]],
                "det_score": round(float(self.det_score[i]), decimals),
            }
            if self.probs is not None:
                face["label"] = labels[i]
                face["confidence"] = round(float(self.probs[i].max()), decimals)
                face["probs"] = {n: round(float(p), decimals) for n, p in zip(self.labels, self.probs[i])}
            if self.landmarks is not None:
                face["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks[i]]
            if self.track_id is not None:
                face["track_id"] = int(self.track_id[i])
            out.append(face)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The per-image JSON line: ``{source, width, height, faces, error}``."""
        w, h = self.image_size if self.image_size else (None, None)
        return {"source": self.source, "width": w, "height": h, "faces": self.face_dicts(), "error": None}
