"""The three labels maskwatch predicts, and how dataset class names map onto them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WITH_MASK = "with_mask"
WITHOUT_MASK = "without_mask"
MASK_WORN_INCORRECTLY = "mask_worn_incorrectly"

#: Canonical label order of every maskwatch result.
LABELS: tuple[str, ...] = (WITH_MASK, WITHOUT_MASK, MASK_WORN_INCORRECTLY)

#: Source class names seen in public datasets -> maskwatch label.
_ALIASES = {
    "with_mask": WITH_MASK,
    "withmask": WITH_MASK,
    "mask": WITH_MASK,
    "masked": WITH_MASK,
    "correctly_masked": WITH_MASK,
    "without_mask": WITHOUT_MASK,
    "withoutmask": WITHOUT_MASK,
    "no_mask": WITHOUT_MASK,
    "nomask": WITHOUT_MASK,
    "unmasked": WITHOUT_MASK,
    "mask_worn_incorrectly": MASK_WORN_INCORRECTLY,
    "mask_weared_incorrect": MASK_WORN_INCORRECTLY,
    "mask_worn_incorrect": MASK_WORN_INCORRECTLY,
    "incorrectly_masked": MASK_WORN_INCORRECTLY,
    "incorrect_mask": MASK_WORN_INCORRECTLY,
    "with_incorrect_mask": MASK_WORN_INCORRECTLY,  # ilc
}


def canonical_label(name: str) -> str | None:
    """Map a dataset class name to a maskwatch label, or ``None`` if it is not a mask class."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(key)


#: Colours (RGB) used by every annotator, one per label.
COLORS = {
    WITH_MASK: (46, 204, 64),
    WITHOUT_MASK: (230, 40, 40),
    MASK_WORN_INCORRECTLY: (255, 165, 0),
}


#: Short names, for labels drawn where the full name does not fit.
SHORT_NAMES = {WITH_MASK: "mask", WITHOUT_MASK: "no mask", MASK_WORN_INCORRECTLY: "mask wrong"}

#: The label that counts as compliant in every summary.
COMPLIANT = WITH_MASK


@dataclass(frozen=True)
class LabelCounts:
    """How many faces carry each label, and the compliant share: per photo (`Faces.counts`) or
    summed over a batch (``a + b``, ``sum(counts, LabelCounts())``).

    ``compliant_share`` is the share of *classified* faces that are `COMPLIANT` (``with_mask``);
    ``None`` when no face is classified."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))
    unclassified: int = 0
    images: int = 0

    @property
    def classified(self) -> int:
        return sum(self.counts.values())

    @property
    def total(self) -> int:
        return self.classified + self.unclassified

    @property
    def compliant_share(self) -> float | None:
        n = self.classified
        return self.counts.get(COMPLIANT, 0) / n if n else None

    def __add__(self, other: "LabelCounts") -> "LabelCounts":
        if not isinstance(other, LabelCounts):
            return NotImplemented
        keys = list(self.counts) + [k for k in other.counts if k not in self.counts]
        return LabelCounts({k: self.counts.get(k, 0) + other.counts.get(k, 0) for k in keys},
                           self.unclassified + other.unclassified, self.images + other.images)

    def __radd__(self, other: Any) -> "LabelCounts":
        return self if other == 0 else self.__add__(other)  # sum() starts from 0

    @classmethod
    def of_record(cls, record: dict[str, Any]) -> "LabelCounts":
        """The counts of one JSON line (`maskwatch.Faces.to_dict`); none for an error line."""
        if record.get("error"):
            return cls()
        counts = dict.fromkeys(LABELS, 0)
        unclassified = 0
        for face in record.get("faces") or []:
            label = face.get("label")
            if label is None:
                unclassified += 1
            else:
                counts[label] = counts.get(label, 0) + 1
        return cls(counts, unclassified, 1)

    def to_dict(self) -> dict[str, Any]:
        """``{<label>: n, ..., "unclassified", "faces", "compliant_share"}`` (share rounded to 4 places)."""
        share = self.compliant_share
        return {**self.counts, "unclassified": self.unclassified, "faces": self.total,
                "compliant_share": None if share is None else round(share, 4)}
