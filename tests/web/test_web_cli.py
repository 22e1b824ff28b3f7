"""`maskwatch serve` / `maskwatch app`: flags map onto the settings; loopback by default."""

from __future__ import annotations

import importlib.util

import pytest

from maskwatch.cli import build_parser
from maskwatch.cli.app import streamlit_command
from maskwatch.cli.serve import settings_from_args

needs_serve = pytest.mark.skipif(importlib.util.find_spec("fastapi") is None,
                                 reason="needs the 'serve' extra (fastapi): pip install 'maskwatch[serve]'")


@needs_serve
def test_serve_defaults_bind_loopback():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    s = settings_from_args(args)
    assert s.max_upload_bytes == 20 * 2**20 and s.workers >= 1 and s.detector == "rfb"


@needs_serve
def test_serve_flags_map_onto_settings():
    args = build_parser().parse_args(["serve", "--workers", "3", "--max-upload-mb", "1.5", "--max-pixels", "1000",
                                      "--detector", "haar", "--scale", "1.5", "--score-threshold", "0.4",
                                      "--opencv-threads", "1", "--min-side", "512"])
    s = settings_from_args(args)
    assert (s.workers, s.max_upload_bytes, s.max_pixels) == (3, int(1.5 * 2**20), 1000)
    assert (s.detector, s.scale, s.score_threshold, s.opencv_threads, s.min_side) == ("haar", 1.5, 0.4, 1, 512)


@needs_serve
def test_serve_classifier_none_runs_the_detector_alone():
    # `maskwatch serve --classifier none` failed at start-up ("none: classifier model not found")
    from maskwatch.web.api import PipelinePool

    s = settings_from_args(build_parser().parse_args(["serve", "--classifier", "none", "--workers", "1"]))
    assert s.classifier is None
    described = PipelinePool(s).describe()
    assert described["detector"]["name"] == "rfb" and described["classifier"] is None


@needs_serve
@pytest.mark.parametrize("kwargs", [{"workers": 0}, {"max_upload_bytes": 0}, {"max_pixels": -1}])
def test_settings_refuse_nonsense(kwargs):
    from maskwatch.web.api import Settings

    with pytest.raises(ValueError):
        Settings(**kwargs)


def test_app_command_is_headless_loopback_without_usage_stats():
    cmd = streamlit_command(build_parser().parse_args(["app"]))
    pairs = dict(zip(cmd, cmd[1:], strict=False))  # each flag -> the item after it
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("web/app.py")
    assert pairs["--server.address"] == "127.0.0.1" and pairs["--server.headless"] == "true"
    assert pairs["--browser.gatherUsageStats"] == "false" and pairs["--server.maxUploadSize"] == "20"
