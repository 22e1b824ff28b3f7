"""The rebuild scripts' own logic (their training runs are covered by the training tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_classifier_card_replaces_only_its_own_section(tmp_path):
    build = _script("build_default_model")
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card: the detector\n\nits numbers\n\n" + build.CARD_HEADING + " (old)\n\nold numbers\n")
    build.write_card(card, build.CARD_HEADING + " (new)\n\nnew numbers\n")
    text = card.read_text()
    assert text.startswith("# Model card: the detector\n\nits numbers\n\n")
    assert "new numbers" in text and "old numbers" not in text and text.count(build.CARD_HEADING) == 1
    card.write_text(text + "\n# Model card: another model\n\nits own numbers\n")
    build.write_card(card, build.CARD_HEADING + " (newer)\n\nnewer numbers\n")
    text = card.read_text()
    assert "newer numbers" in text and "new numbers\n" not in text
    assert text.endswith("\n# Model card: another model\n\nits own numbers\n")
    fresh = tmp_path / "fresh.md"
    build.write_card(fresh, build.CARD_HEADING + "\n")
    assert fresh.read_text() == build.CARD_HEADING + "\n"


def test_shipped_card_has_both_sections():
    build = _script("build_default_model")
    text = (ROOT / "src" / "maskwatch" / "models" / "MODEL_CARD.md").read_text()
    assert text.index("# Model card: maskwatch single-pass face + mask detector") < text.index(build.CARD_HEADING)
