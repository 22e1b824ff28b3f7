"""Model specs: everything needed to use a model file, stored inside it as ONNX metadata."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ModelSpecError
from .labels import LABELS

METADATA_KEY = "maskwatch_spec"


@dataclass(frozen=True)
class ModelSpec:
    """Preprocessing and labels of a maskwatch model.

    ``kind`` is ``"classifier"`` (face crop -> class probabilities) or ``"detector"``.
    For a classifier the input is a square RGB crop cut by `maskwatch.ops.crop_faces` with
    ``crop_margin``, resized to ``input_size`` and normalised with ``mean``/``std``.
    """

    kind: str = "classifier"
    labels: tuple[str, ...] = LABELS
    input_size: int = 128
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop_margin: float = 0.25
    arch: str = "mobilenet_v2"
    version: str = "0"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("classifier", "detector"):
            raise ModelSpecError(f"spec kind must be 'classifier' or 'detector', got {self.kind!r}")
        if not self.labels:
            raise ModelSpecError("spec labels must not be empty")
        if self.input_size < 8:
            raise ModelSpecError(f"spec input_size must be >= 8, got {self.input_size}")
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def require(self, kind: str, source: str = "model") -> "ModelSpec":
        """This spec, if it is of ``kind`` and its labels are maskwatch labels; else `ModelSpecError`."""
        if self.kind != kind:
            raise ModelSpecError(f"{source}: spec kind is {self.kind!r}, expected {kind!r}")
        unknown = [label for label in self.labels if label not in LABELS]
        if unknown:
            raise ModelSpecError(f"{source}: labels {unknown} are not maskwatch labels {LABELS}")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        try:
            data = json.loads(text)
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ModelSpecError(f"invalid maskwatch spec: {exc}") from exc

    def to_metadata(self) -> dict[str, str]:
        return {METADATA_KEY: self.to_json()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str = "model") -> "ModelSpec":
        if METADATA_KEY not in metadata:
            raise ModelSpecError(
                f"{source}: no '{METADATA_KEY}' in the model's metadata; export the model with 'maskwatch export'"
            )
        return cls.from_json(metadata[METADATA_KEY])
