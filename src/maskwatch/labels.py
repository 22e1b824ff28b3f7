"""The three labels maskwatch predicts, and how dataset class names map onto them."""

from __future__ import annotations

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
