"""Every command checks its optional dependencies first and names the extra that installs them."""

import sys

import pytest

from maskwatch.cli import main
from maskwatch.cli.common import missing_modules, require
from maskwatch.errors import MissingExtraError


def test_require_names_the_extra_and_treats_a_blocked_module_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpy", None)  # as an uninstalled package looks to importlib
    assert missing_modules("numpy", "cv2", "no_such_module_xyz|cv2") == ["numpy"]
    with pytest.raises(MissingExtraError, match=r'maskwatch watch --chart needs numpy, which is not installed: '
                                                r'pip install "maskwatch\[video\]"'):
        require("watch --chart", "video", "numpy")
    require("detect", "none", "cv2", "no_such_module_xyz|cv2")  # present (or an alternative is): no error


@pytest.mark.parametrize("argv, module, extra", [
    (["train", "--data", "nowhere"], "torch", "train"),
    (["train", "--data", "nowhere"], "sklearn", "train"),
    (["train-detector", "--data", "nowhere"], "torch", "train"),
    (["eval", "--data", "nowhere"], "sklearn", "eval"),
    (["eval", "--data", "nowhere", "--split", "all"], "matplotlib", "eval"),
    (["eval-classifier", "--model", "run/best.pt", "--data", "x"], "torch", "train"),
    (["eval-classifier", "--model", "m.onnx", "--data", "x"], "sklearn", "eval"),
    (["export", "run/best.pt"], "torch", "train"),
    (["serve"], "fastapi", "serve"),
    (["serve"], "uvicorn", "serve"),
    (["app"], "streamlit", "app"),
    (["watch", "nowhere.mp4", "--chart", "c.png"], "matplotlib", "video"),
    (["watch", "nowhere.mp4", "-o", "out.webm"], "av", "video"),
])
def test_missing_extra_fails_first_with_the_pip_command(monkeypatch, capsys, argv, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    # one line naming the module and the extra; nothing else (no data, source or model) was looked at
    assert "\n" not in err and module in err and f'pip install "maskwatch[{extra}]"' in err, err


def test_checks_follow_the_flags(monkeypatch, capsys):
    """eval --split all --no-plots needs neither scikit-learn nor matplotlib: it goes on to the data."""
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["eval", "--data", "nowhere", "--split", "all", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "pip install" not in err and "nowhere" in err


def test_watch_chart_without_matplotlib_processes_nothing(monkeypatch, tmp_path, capsys):
    """The failure the issue saw: the whole video processed, then `No module named 'matplotlib'`."""
    import numpy as np

    from maskwatch.video import sources

    opened = []
    monkeypatch.setattr(sources.VideoSource, "__init__", lambda self, *a, **k: opened.append(a))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    video = tmp_path / "v.avi"
    video.write_bytes(np.zeros(10, np.uint8).tobytes())
    assert main(["watch", str(video), "-o", str(tmp_path / "out.avi"), "--chart", str(tmp_path / "c.png")]) == 2
    assert opened == [] and not (tmp_path / "out.avi").exists()
    assert 'pip install "maskwatch[video]"' in capsys.readouterr().err
