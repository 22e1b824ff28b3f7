"""maskwatch: find faces and tell whether each wears a mask, wears it incorrectly, or none.

>>> import maskwatch
>>> pipe = maskwatch.load()                 # YuNet + our detector, then the shipped mask classifier
>>> faces = pipe.detect("photo.jpg")        # Faces: boxes, scores, labels, probabilities
>>> faces.to_dict()["faces"][0]["label"]
'with_mask'
>>> maskwatch.write_image("out.jpg", maskwatch.annotate(maskwatch.read_image("photo.jpg"), faces))
"""

from .annotate import BlurAnnotator, BoxAnnotator, annotate
from .classifier import MaskClassifier
from .detectors import FaceDetector, create_detector
from .detectors import names as detector_names
from .errors import (
    ChecksumError,
    ImageReadError,
    ImageTooLargeError,
    MaskwatchError,
    ModelNotFoundError,
    ModelSpecError,
    UnknownNameError,
)
from .faces import Faces
from .imageio import read_image, write_image
from .labels import LABELS
from .pipeline import Pipeline, load
from .spec import ModelSpec

__version__ = "0.1.0"

__all__ = [
    "LABELS", "BlurAnnotator", "BoxAnnotator", "ChecksumError", "FaceDetector", "Faces",
    "ImageReadError", "ImageTooLargeError", "MaskClassifier", "MaskwatchError", "ModelNotFoundError",
    "ModelSpec", "ModelSpecError", "Pipeline", "UnknownNameError", "annotate", "create_detector", "detector_names", "load",
    "read_image", "write_image", "__version__",
]
