import os
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training tests need the 'train' extra (torch, torchvision)")
pytest.importorskip("torchvision", reason="training tests need the 'train' extra")


@pytest.fixture(scope="session")
def tiny_sources(tmp_path_factory, shared_data):
    """A few real images per class, linked in place from ../shared (not copied into the repo):
    a class-per-folder tree (prajnasb person pairs, MaskedFace-Net ids) and a 6-image VOC set."""
    root = tmp_path_factory.mktemp("tiny")
    crops = root / "crops"
    picks = {
        "with_mask": sorted((shared_data / "crops/prajnasb/with_mask").glob("*.jpg"))[:6],
        "without_mask": sorted((shared_data / "crops/prajnasb/without_mask").glob("*.jpg"))[:6],
        "mask_weared_incorrect": sorted((shared_data / "crops/maskedface-net/mask_weared_incorrect").glob("*.jpg"))[:6],
    }
    for label, files in picks.items():
        (crops / label).mkdir(parents=True)
        for f in files:
            os.symlink(f, crops / label / f.name)
    voc = root / "voc"
    (voc / "images").mkdir(parents=True)
    (voc / "annotations").mkdir()
    for xml in sorted((shared_data / "fmd/annotations").glob("*.xml"))[:6]:
        os.symlink(xml, voc / "annotations" / xml.name)
        img = shared_data / "fmd/images" / (xml.stem + ".jpg")
        os.symlink(img, voc / "images" / img.name)
    return {"crops": crops, "voc": voc}


@pytest.fixture(scope="session")
def pretrained(shared_models) -> Path | None:
    path = shared_models / "mobilenet_v2_imagenet.pth"
    return path if path.is_file() else None
