"""Datasets, torch-free: Pascal VOC reading, folder scanning, the group split and evaluation splits.

Imported by training (`maskwatch.train`) and evaluation (`maskwatch.evaluation`) alike; no data
layout lives here (the shared one is `maskwatch.cli.layout`).
"""

from .folders import FaceFinder, Sample, group_key, scan_folder, scan_sources, scan_voc
from .split import (SourceLayout, classifier_split_images, group_split, hash_split, hash_split_samples,
                    layout_split_paths, resolve_split, split_file_images)
from .voc import VocImage, duplicate_groups, is_voc_dataset, load_voc, parse_annotation

__all__ = ["FaceFinder", "Sample", "SourceLayout", "VocImage", "classifier_split_images", "duplicate_groups",
           "group_key", "group_split", "hash_split", "hash_split_samples", "is_voc_dataset", "layout_split_paths",
           "load_voc", "parse_annotation", "resolve_split",
           "scan_folder", "scan_sources", "scan_voc", "split_file_images"]
