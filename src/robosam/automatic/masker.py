"""``AutoMasker``: segment everything in an image, with the knobs and results of Meta's generator."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from robosam.automatic.candidates import Candidates, full_resolution_mask, full_resolution_stats
from robosam.automatic.decoding import decode_points, refine_with_masks
from robosam.automatic.filters import box_near_crop_edge, nms, remove_small_regions
from robosam.automatic.layout import build_layer_point_grids, generate_crop_boxes
from robosam.automatic.records import OUTPUT_MODES, to_records
from robosam.errors import InputError
from robosam.io import ImageLike, load_image
from robosam.masks import mask_to_box
from robosam.results import MaskResult

Progress = Callable[[int, int], None]


class AutoMasker:
    """Masks for everything in an image from a grid of single-click prompts (Meta's automatic generator).

    >>> masker = AutoMasker(Segmenter("sam-vit-base"), points_per_side=32)
    >>> result = masker.generate("truck.jpg")            # MaskResult, masks (N, H, W) bool
    >>> records = masker.to_records(result)               # Meta's dicts: segmentation, area, bbox, ...

    The knobs mean what they mean in ``segment_anything.SamAutomaticMaskGenerator`` and have its defaults:
    points_per_side: grid of n x n clicks on the image (None when ``point_grids`` is given);
    points_per_batch: clicks per decoder call (memory); pred_iou_thresh: keep masks whose predicted IoU is
    above it; stability_score_thresh / stability_score_offset: keep masks whose IoU between the mask
    thresholded at ``mask_threshold +- offset`` is at least this; box_nms_thresh: box IoU of NMS within a crop;
    crop_n_layers: extra layers of 2**i x 2**i image crops; crop_nms_thresh: box NMS across crops;
    crop_overlap_ratio: overlap of crops (fraction of the short side at layer 1);
    crop_n_points_downscale_factor: grid side divided by this per layer; point_grids: explicit normalised
    grids (x, y) in [0, 1], one per layer; min_mask_region_area: fill holes and drop islands below this
    many pixels, then NMS again; output_mode: segmentation format of ``to_records`` (``binary_mask``,
    ``uncompressed_rle``, ``coco_rle``). As in SAM 2's generator: multimask (3 masks per click),
    mask_threshold (logit of the mask boundary) and use_m2m (one refinement step: every candidate is decoded
    again from its click plus its own low-res logits as mask input, single-mask, before any filter; this
    step runs transformers' module, as robosam's fast decoder takes no mask input). compile: run the
    decoder through ``torch.compile``.

    Results equal Meta's to float noise; the work is smaller: the image-level decoder work is shared by
    every click (the segmenter's fast decoder), candidates are filtered on predicted IoU before anything is
    upscaled, stability and boxes come from upscaled logits that are never stored, NMS runs on those boxes,
    and only the survivors are upscaled again into masks.
    """

    def __init__(
        self,
        segmenter: Any,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        multimask: bool = True,
        mask_threshold: float = 0.0,
        use_m2m: bool = False,
        compile: bool = False,
    ):
        from robosam.segmenter import Segmenter

        grids = self.validate_knobs(
            points_per_side=points_per_side,
            points_per_batch=points_per_batch,
            crop_n_layers=crop_n_layers,
            crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor,
            point_grids=point_grids,
            min_mask_region_area=min_mask_region_area,
            output_mode=output_mode,
        )
        self.segmenter = segmenter if isinstance(segmenter, Segmenter) else Segmenter(segmenter)
        self.point_grids = grids
        self.points_per_batch = int(points_per_batch)
        self.pred_iou_thresh = float(pred_iou_thresh)
        self.stability_score_thresh = float(stability_score_thresh)
        self.stability_score_offset = float(stability_score_offset)
        self.box_nms_thresh = float(box_nms_thresh)
        self.crop_n_layers = int(crop_n_layers)
        self.crop_nms_thresh = float(crop_nms_thresh)
        self.crop_overlap_ratio = float(crop_overlap_ratio)
        self.min_mask_region_area = int(min_mask_region_area)
        self.output_mode = output_mode
        self.multimask = bool(multimask)
        self.mask_threshold = float(mask_threshold)
        self.use_m2m = bool(use_m2m)
        self.compile = bool(compile)

    @staticmethod
    def validate_knobs(
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        crop_n_layers: int = 0,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
    ) -> list[np.ndarray]:
        """Check the knobs that a model is not needed for (``InputError`` naming the first bad one) and
        return the normalised point grid of each crop layer. The CLI calls it before loading a model."""
        if (points_per_side is None) == (point_grids is None):
            raise InputError(
                "points_per_side/point_grids",
                "exactly one of points_per_side and point_grids",
                {"points_per_side": points_per_side, "point_grids": point_grids is not None},
            )
        _require_int("crop_n_layers", crop_n_layers, 0)
        _require_int("points_per_batch", points_per_batch, 1)
        _require_int("crop_n_points_downscale_factor", crop_n_points_downscale_factor, 1)
        if points_per_side is not None:
            _require_int("points_per_side", points_per_side, 1)
            grids = build_layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        else:
            grids = [np.asarray(grid, dtype=np.float64) for grid in point_grids]
            if len(grids) != crop_n_layers + 1:
                raise InputError(
                    "point_grids", f"{crop_n_layers + 1} grids (crop_n_layers + 1)", f"{len(grids)} grids"
                )
            for grid in grids:
                if grid.ndim != 2 or grid.shape[1] != 2 or not ((grid >= 0) & (grid <= 1)).all():
                    raise InputError("point_grids", "(N, 2) arrays of (x, y) in [0, 1]", grid)
        if output_mode not in OUTPUT_MODES:
            raise InputError("output_mode", f"one of {', '.join(OUTPUT_MODES)}", output_mode)
        if not 0 <= crop_overlap_ratio < 1:
            raise InputError("crop_overlap_ratio", "a fraction in [0, 1)", crop_overlap_ratio)
        if min_mask_region_area < 0:
            raise InputError("min_mask_region_area", "a non-negative pixel count", min_mask_region_area)
        return grids

    def num_points(self, image_hw: tuple[int, int]) -> int:
        """Clicks ``generate`` decodes on an image of size (H, W), over every crop."""
        _, layers = generate_crop_boxes(image_hw, self.crop_n_layers, self.crop_overlap_ratio)
        return sum(len(self.point_grids[layer]) for layer in layers)

    def generate(self, image: ImageLike, progress: Progress | None = None) -> MaskResult:
        """Masks for everything in ``image`` (path, PIL, numpy RGB).

        progress: called as ``progress(clicks_done, clicks_total)`` after every decoder batch.
        Returns a ``MaskResult``: masks (N, H, W) bool, scores = predicted IoU, logits (N, L, L) in the frame
        of each mask's crop, and data ``predicted_iou`` (N,), ``stability_score`` (N,), ``point_coords``
        (N, 2) pixels (x, y), ``crop_box`` (N, 4) (x0, y0, x1, y1) with x1 / y1 exclusive. timings:
        ``encoder_s`` (0 for crops already cached), ``decoder_s``, ``postprocess_s``, ``total_s``.
        """
        start = time.perf_counter()
        rgb = load_image(image)
        image_hw = rgb.shape[:2]
        crop_boxes, layers = generate_crop_boxes(image_hw, self.crop_n_layers, self.crop_overlap_ratio)
        timings = {"encoder_s": 0.0, "decoder_s": 0.0, "postprocess_s": 0.0}
        total = sum(len(self.point_grids[layer]) for layer in layers)
        done = [0]

        def advance(count: int) -> None:
            done[0] += count
            if progress is not None:
                progress(done[0], total)

        parts, geometries = [], []
        for index, (crop_box, layer) in enumerate(zip(crop_boxes, layers)):
            part, geometry = self._process_crop(rgb, index, crop_box, layer, timings, advance)
            parts.append(part)
            geometries.append(geometry)
        lowres = self.segmenter.adapter.lowres_size
        found = Candidates.concat(parts, lowres)
        post_start = time.perf_counter()
        if len(crop_boxes) > 1 and len(found):
            areas = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in crop_boxes], dtype=np.float64)
            found = found.take(nms(found.boxes, 1.0 / areas[found.crop], self.crop_nms_thresh))
        masks = np.zeros((len(found), *image_hw), dtype=bool)
        for i in range(len(found)):
            crop = int(found.crop[i])
            masks[i] = full_resolution_mask(
                found.logits[i], geometries[crop], self.mask_threshold, crop_boxes[crop], image_hw
            )
        if self.min_mask_region_area > 0 and len(found):
            keep, masks = self._remove_small_regions(masks)
            found = found.take(keep)
        timings["postprocess_s"] += time.perf_counter() - post_start
        timings["total_s"] = time.perf_counter() - start
        crop_array = np.asarray(crop_boxes, dtype=np.int64).reshape(-1, 4)
        return MaskResult(
            masks=masks,
            scores=found.iou.astype(np.float32),
            logits=found.logits,
            data={
                "predicted_iou": found.iou.astype(np.float32),
                "stability_score": found.stability.astype(np.float32),
                "point_coords": found.points.astype(np.float64),
                "crop_box": crop_array[found.crop],
            },
            timings=timings,
        )

    def generate_records(self, image: ImageLike, progress: Progress | None = None) -> list[dict[str, Any]]:
        """``generate`` as Meta's list of dicts, segmentation in ``output_mode`` (see ``to_records``)."""
        return self.to_records(self.generate(image, progress))

    def to_records(self, result: MaskResult) -> list[dict[str, Any]]:
        """Meta's records (segmentation in this masker's ``output_mode``) for a ``generate`` result."""
        return to_records(result, self.output_mode)

    # stages -------------------------------------------------------------------------------------
    def _process_crop(self, rgb, index, crop_box, layer, timings, advance) -> tuple[Candidates, Any]:
        x0, y0, x1, y1 = crop_box
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        crop_hw = crop.shape[:2]
        start = time.perf_counter()
        embedding = self.segmenter.embed(crop)
        timings["encoder_s"] += time.perf_counter() - start
        geometry = embedding.geometry
        image_box = [0, 0, rgb.shape[1], rgb.shape[0]]
        workers = torch.get_num_threads()
        points = self.point_grids[layer] * np.array([crop_hw[1], crop_hw[0]], dtype=np.float64)
        kept: list[Candidates] = []
        for offset in range(0, len(points), self.points_per_batch):
            batch = points[offset : offset + self.points_per_batch]
            start = time.perf_counter()
            # the predicted-IoU filter before any upscaling, unless m2m refines every candidate first
            prefilter = self.pred_iou_thresh > 0.0 and not self.use_m2m
            logits, iou, clicked = decode_points(
                self.segmenter,
                embedding,
                batch,
                self.multimask,
                self.compile,
                pad_to=self.points_per_batch,
                min_score=self.pred_iou_thresh if prefilter else None,
            )
            batch_points = batch[clicked]
            if self.use_m2m:
                logits, iou = refine_with_masks(
                    self.segmenter, embedding, batch_points, logits, self.points_per_batch
                )
            timings["decoder_s"] += time.perf_counter() - start
            start = time.perf_counter()
            keep = iou > self.pred_iou_thresh if self.pred_iou_thresh > 0.0 else np.ones(len(iou), bool)
            logits, iou, batch_points = logits[keep], iou[keep], batch_points[keep]
            stability, boxes = full_resolution_stats(
                logits, geometry, self.mask_threshold, self.stability_score_offset, workers=workers
            )
            keep = (
                stability >= self.stability_score_thresh
                if self.stability_score_thresh > 0.0
                else np.ones(len(iou), bool)
            )
            keep &= ~box_near_crop_edge(boxes, crop_box, image_box)
            kept.append(
                Candidates(
                    logits=np.ascontiguousarray(logits[keep]),
                    iou=iou[keep],
                    points=batch_points[keep],
                    stability=stability[keep],
                    boxes=boxes[keep],
                    crop=np.full(int(keep.sum()), index, dtype=np.int64),
                )
            )
            timings["postprocess_s"] += time.perf_counter() - start
            advance(len(batch))
        start = time.perf_counter()
        found = Candidates.concat(kept, geometry.lowres_size)
        found = found.take(nms(found.boxes, found.iou, self.box_nms_thresh))
        shift = np.array([x0, y0], dtype=np.float64)
        found.boxes = found.boxes + np.tile(shift, 2).astype(np.float32)
        found.points = found.points + shift
        timings["postprocess_s"] += time.perf_counter() - start
        return found, geometry

    def _remove_small_regions(self, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Meta's ``postprocess_small_regions``: holes then islands under ``min_mask_region_area``; masks that
        needed no change win the NMS that follows. Returns kept indexes and their (cleaned) masks."""
        cleaned = np.empty_like(masks)
        unchanged = np.zeros(len(masks), dtype=np.float32)
        for i, mask in enumerate(masks):
            mask, filled = remove_small_regions(mask, self.min_mask_region_area, "holes")
            mask, dropped = remove_small_regions(mask, self.min_mask_region_area, "islands")
            cleaned[i] = mask
            unchanged[i] = float(not (filled or dropped))
        keep = nms(mask_to_box(cleaned), unchanged, max(self.box_nms_thresh, self.crop_nms_thresh))
        return keep, cleaned[keep]


def _require_int(argument: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(argument, f"an integer >= {minimum}", value)
