"""Fixtures of the web tests: the clip and the fake camera file of `clips`."""

from __future__ import annotations

from pathlib import Path

import pytest
from clips import panning_frames, write_clip, write_y4m


@pytest.fixture(scope="session")
def three_ways_clip(tmp_path_factory) -> Path:
    """A 24-frame, 2-second 740x240 MP4 of the three people panning right."""
    return write_clip(tmp_path_factory.mktemp("clip") / "three_ways.mp4", panning_frames())


@pytest.fixture(scope="session")
def three_ways_y4m(tmp_path_factory) -> Path:
    """The same frames, there and back (so Chromium's loop over the file stays smooth), as Y4M."""
    frames = panning_frames()
    return write_y4m(tmp_path_factory.mktemp("camera") / "three_ways.y4m", frames + frames[::-1])
