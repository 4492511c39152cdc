"""Settings of Preprocess (a Settings page of their own, listed by /sdapi/v1/options)."""
from __future__ import annotations

from .focal import FocalWeights

SECTION = "dataset_preprocess"  # the Settings page "Dataset Preprocess" (#settings_dataset_preprocess)
FACE_WEIGHT = "dataset_focal_face_weight"
ENTROPY_WEIGHT = "dataset_focal_entropy_weight"
EDGES_WEIGHT = "dataset_focal_edges_weight"


def add_settings(api) -> None:
    """Register the focal-crop weights; their defaults are A1111's (faces 0.9, entropy 0.15, edges 0.5)."""
    base = FocalWeights()
    api.add_setting(FACE_WEIGHT, base.face, "Focal point crop: face weight", section=SECTION)
    api.add_setting(ENTROPY_WEIGHT, base.entropy, "Focal point crop: entropy weight", section=SECTION)
    api.add_setting(EDGES_WEIGHT, base.edges, "Focal point crop: edges weight", section=SECTION)
