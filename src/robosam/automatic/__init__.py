"""Automatic mask generation ("segment everything"): Meta's ``SamAutomaticMaskGenerator`` for every family.

``AutoMasker`` (masker.py) runs the pipeline; layout.py places the click grids and crops, candidates.py keeps
candidates as low-res logits and measures them at full resolution, filters.py holds the per-mask tests,
decoding.py the (optionally compiled) decoder call, rle.py and records.py the output formats.
"""

from robosam.automatic.filters import box_near_crop_edge, nms, remove_small_regions, stability_score
from robosam.automatic.layout import build_layer_point_grids, build_point_grid, generate_crop_boxes
from robosam.automatic.masker import AutoMasker
from robosam.automatic.records import OUTPUT_MODES, to_coco_results, to_records, write_coco_results
from robosam.automatic.rle import mask_to_uncompressed_rle, uncompressed_rle_to_mask

__all__ = [
    "OUTPUT_MODES",
    "AutoMasker",
    "box_near_crop_edge",
    "build_layer_point_grids",
    "build_point_grid",
    "generate_crop_boxes",
    "mask_to_uncompressed_rle",
    "nms",
    "remove_small_regions",
    "stability_score",
    "to_coco_results",
    "to_records",
    "uncompressed_rle_to_mask",
    "write_coco_results",
]
