"""Train maskwatch's face + mask detector (`maskwatch.detectors.maskwatch`) on a Pascal VOC dataset.

The sections of a torchvision reference, one module each: `model` (the network and its spec),
`data` (cached photos, augmentation, targets, the run's split), `loss`, `loop` (`train_one_epoch`,
`evaluate`, `fit`) and `export` (ONNX with its spec, checked against PyTorch; int8).
"""

from ..detector_config import DetectorConfig
from .data import Cached, augment, cache_images, closeup_cache, make_batch, split_images, targets
from .export import export, load_checkpoint, quantize
from .loop import TorchDetector, evaluate, fit, train_one_epoch
from .loss import detection_loss, focal_loss
from .model import MEAN, STD, STRIDE, CenterFaceNet, spec_for

__all__ = ["MEAN", "STD", "STRIDE", "Cached", "CenterFaceNet", "DetectorConfig", "TorchDetector", "augment",
           "cache_images", "closeup_cache", "detection_loss", "evaluate", "export", "fit", "focal_loss",
           "load_checkpoint", "make_batch", "quantize", "spec_for", "split_images", "targets", "train_one_epoch"]
