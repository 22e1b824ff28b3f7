"""Face detectors: the ``image -> Faces`` contract, one module per detector, wrappers, a registry.

* ``yunet`` — OpenCV's YuNet CNN (`cv2.FaceDetectorYN`): fast, accurate, landmarks.
* ``ssd`` — OpenCV's ResNet-10 SSD, the face detector of the classic mask tutorials.
* ``maskwatch`` — maskwatch's own face + mask detector (`maskwatch.detectors.maskwatch`).
* ``yunet+maskwatch`` — both, their faces merged (`maskwatch.detectors.ensemble`): finds the most faces.
* ``rfb`` — maskwatch's single-pass face + mask detector (`maskwatch.detectors.rfb`).
* ``haar`` — the Viola-Jones Haar cascade shipped with OpenCV 4.x: fastest, least accurate.

Every detector takes an RGB uint8 image and returns `Faces` in the image's pixel coordinates
(`Detector`). The wrappers `Calibrated`, `Tiled` and `Ensemble` take any such callable. Each
detector module registers itself (`register`) with its measured defaults and box calibration;
`build` creates a detector with them (what `maskwatch.load` does), `create_detector` with exactly
the settings given. Which detector photos, video and the API use is `maskwatch.presets`.
"""

from __future__ import annotations

# the detector modules register themselves on import; a new detector is one more line here
from . import haar, maskwatch, rfb, ssd, yunet  # noqa: F401
from . import ensemble  # noqa: F401  (after its members)
from .base import Detector, FaceDetector, describe
from .calibration import Calibrated, calibrate_boxes, fit_box_calibration
from .ensemble import Ensemble
from .registry import DetectorEntry, build, entry, names, register, resolve
from .registry import create as create_detector
from .tiling import Tiled

__all__ = ["Calibrated", "Detector", "DetectorEntry", "Ensemble", "FaceDetector", "Tiled", "build",
           "calibrate_boxes", "create_detector", "describe", "entry", "fit_box_calibration", "names", "register", "resolve"]
