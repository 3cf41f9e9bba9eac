"""Automatic mask generation ("segment everything") after the encoder: robosam ``AutoMasker`` vs Meta's
``SamAutomaticMaskGenerator`` vs transformers' ``mask-generation`` pipeline, same SAM ViT-B architecture and
weights (random), same image, same knobs, same run.

    python benchmarks/amg.py [--image examples/truck.jpg] [--points-per-side 16] [--repeats 3] [--compile]
    python benchmarks/amg.py --quick        # smoke run: small SAM config, points_per_side=8, one repeat

Random weights, treated as in tests/test_automatic.py so that masks are distinct: every parameter redrawn
(``tests/parity_reference.randomize``: an untrained model's default init gives masks that all span the
image, and box NMS keeps one), the decoder's transposed convolutions made constant over their kernel and its
hypernetwork outputs scaled by 1000 (logits of tens to hundreds, so stability scores spread); compute cost is
unchanged. The thresholds come from a calibration batch: ``pred_iou_thresh`` its median predicted IoU,
``stability_score_thresh`` the lower quartile of the stability of those above it; the share of candidates
each filter keeps is printed. Encoders are timed separately on every side and left out of the ratios.
Agreement: the share of one side's masks that have a partner at IoU >= 0.9 on the other, both ways.
``--compile``: also ``AutoMasker(compile=True)`` (torch.compile; its first call, which compiles, is timed
separately). The last line is robosam's eager speed-up over the faster reference (higher is better).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

from robosam.automatic import AutoMasker
from robosam.automatic.candidates import full_resolution_stats
from robosam.automatic.layout import build_point_grid
from robosam.io import load_image
from robosam.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from parity_reference import build_sam1, randomize  # noqa: E402


def build_model(quick: bool) -> torch.nn.Module:
    """Meta's SAM (ViT-B, or the tests' small config with ``quick``), treated as in the module docstring."""
    model = build_sam1(seed=0) if quick else randomize(sam_model_registry["vit_b"](), seed=0)
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(1000.0)
            mlp.layers[-1].bias.mul_(1000.0)
        for layer in model.mask_decoder.output_upscaling:
            if isinstance(layer, torch.nn.ConvTranspose2d):
                layer.weight.copy_(layer.weight.mean(dim=(2, 3), keepdim=True).expand_as(layer.weight))
    return model.eval()


def calibrate(segmenter: Segmenter, image: np.ndarray, points_per_side: int) -> tuple[float, float]:
    """(pred_iou_thresh, stability_score_thresh) from every other grid point, see the module docstring."""
    embedding = segmenter.embed(image)
    points = build_point_grid(points_per_side)[::2] * np.array([image.shape[1], image.shape[0]])
    result = segmenter.decode(
        embedding, points=points[:, None], labels=np.ones((len(points), 1)), upscale=False
    )
    iou_thresh = float(np.median(result.scores))
    keep = result.scores > iou_thresh
    stability, _ = full_resolution_stats(result.logits[keep], embedding.geometry, 0.0, 1.0)
    return iou_thresh, float(np.nanpercentile(stability, 25))


class Timed:
    """Wraps a callable and adds its wall time to ``seconds`` (to take the encoder out of a reference's total)."""

    def __init__(self, function):
        self.function, self.seconds = function, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def match_share(a: np.ndarray, b: np.ndarray, threshold: float = 0.9) -> tuple[float, float]:
    """Share of a's masks with a partner in b at IoU >= threshold, and the same for b; masks (N, H, W) bool."""
    if not len(a) or not len(b):
        return float(len(a) == len(b)), float(len(a) == len(b))
    fa, fb = a.reshape(len(a), -1), b.reshape(len(b), -1)
    inter = np.zeros((len(a), len(b)), np.float64)
    for start in range(0, fa.shape[1], 1 << 18):
        ca = torch.from_numpy(fa[:, start : start + (1 << 18)].astype(np.float32))
        cb = torch.from_numpy(fb[:, start : start + (1 << 18)].astype(np.float32))
        inter += (ca @ cb.T).double().numpy()
    union = fa.sum(1)[:, None] + fb.sum(1)[None] - inter
    ious = inter / np.maximum(union, 1)
    return float((ious.max(1) >= threshold).mean()), float((ious.max(0) >= threshold).mean())


def stack_masks(masks: list, hw: tuple[int, int]) -> np.ndarray:
    return np.stack([np.asarray(m, bool) for m in masks]) if len(masks) else np.zeros((0, *hw), bool)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "truck.jpg")
    parser.add_argument("--points-per-side", type=int, default=None, help="default 16 (8 with --quick)")
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per side (default 3, 1 with --quick)"
    )
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--pipeline", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quick", action="store_true", help="smoke run: small SAM config, fewer points")
    args = parser.parse_args()
    points_per_side = args.points_per_side or (8 if args.quick else 16)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.compile and shutil.which("gcc") is None and shutil.which("cc") is None:
        parser.error("--compile needs a C compiler (gcc) for torch.compile's CPU backend")

    meta_model = build_model(args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "sam_random.pth"
        torch.save(meta_model.state_dict(), checkpoint)
        segmenter = Segmenter(checkpoint, device="cpu")
    image = load_image(args.image)
    height, width = image.shape[:2]
    iou_thresh, stability_thresh = calibrate(segmenter, image, points_per_side)
    knobs = {
        "points_per_side": points_per_side,
        "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": iou_thresh,
        "stability_score_thresh": stability_thresh,
        "box_nms_thresh": 0.7,
    }
    meta = SamAutomaticMaskGenerator(meta_model, **knobs)
    meta.predictor.set_image = meta_set_image = Timed(meta.predictor.set_image)
    maskers = {"robosam": AutoMasker(segmenter, **knobs)}
    pipe = None
    if args.pipeline:
        from transformers import pipeline

        processor = segmenter.adapter.image_processor  # resizes as Meta's (PIL), at the model's input size
        pipe = pipeline("mask-generation", model=segmenter.model, image_processor=processor, device="cpu")
        pipe.model.get_image_embeddings = pipe_encoder = Timed(pipe.model.get_image_embeddings)
    pipe_knobs = {
        "points_per_crop": points_per_side,
        "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": iou_thresh,
        "stability_score_thresh": stability_thresh,
        "crops_nms_thresh": 0.7,
    }
    name = "small SAM config (--quick)" if args.quick else "SAM ViT-B"
    print(
        f"image {args.image.name} {width}x{height}, {name} random weights, points_per_side={points_per_side}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"thresholds: pred_iou_thresh {iou_thresh:.4f}, stability_score_thresh {stability_thresh:.4f}, "
        "box_nms_thresh 0.7"
    )

    # filter shares, from robosam runs with the filters switched on one at a time (encoder cached)
    candidates = points_per_side**2 * 3
    after_iou = len(
        AutoMasker(segmenter, **{**knobs, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}).generate(
            image
        )
    )
    after_stability = len(AutoMasker(segmenter, **{**knobs, "box_nms_thresh": 1.0}).generate(image))
    if args.compile:
        maskers["robosam compiled"] = AutoMasker(segmenter, **knobs, compile=True)
        start = time.perf_counter()
        maskers["robosam compiled"].generate(image)  # compiles once; cached for later calls
        print(f"torch.compile first call (compiling, encoder cached): {time.perf_counter() - start:.1f} s")

    sides = ["meta", *(["pipeline"] if pipe is not None else []), *maskers]
    after: dict[str, list[float]] = {who: [] for who in sides}
    encoders: dict[str, list[float]] = {who: [] for who in sides}
    outputs: dict[str, np.ndarray] = {}
    splits: dict[str, dict[str, float]] = {}
    for repeat in range(repeats):
        for who in sides if repeat % 2 == 0 else sides[::-1]:  # alternate who runs first
            if who == "meta":
                meta_set_image.seconds = 0.0
                start = time.perf_counter()
                records = meta.generate(image)
                total, encoder = time.perf_counter() - start, meta_set_image.seconds
                outputs[who] = stack_masks([r["segmentation"] for r in records], (height, width))
            elif who == "pipeline":
                pipe_encoder.seconds = 0.0
                start = time.perf_counter()
                found = pipe(Image.fromarray(image), **pipe_knobs)
                total, encoder = time.perf_counter() - start, pipe_encoder.seconds
                outputs[who] = stack_masks(found["masks"], (height, width))
            else:
                segmenter.cache.clear()
                start = time.perf_counter()
                result = maskers[who].generate(image)
                total, encoder = time.perf_counter() - start, result.timings["encoder_s"]
                outputs[who], splits[who] = result.masks, result.timings
            encoders[who].append(encoder)
            after[who].append(total - encoder)

    median = {who: statistics.median(after[who]) for who in sides}
    print(
        f"filter shares: predicted IoU keeps {after_iou / candidates:.1%} of {candidates} candidates, "
        f"stability {after_stability / max(after_iou, 1):.1%} of those, "
        f"box NMS {len(outputs['robosam']) / max(after_stability, 1):.1%} of those "
        f"({len(outputs['robosam'])} masks)"
    )
    for who in sides:
        print(
            f"{who:>17}: encoder {statistics.median(encoders[who]):6.2f} s, after the encoder "
            f"{median[who]:6.2f} s (median of {repeats}), {len(outputs[who])} masks"
        )
    for who, timings in splits.items():
        print(
            f"{who:>17} after the encoder: decoder {timings['decoder_s']:.2f} s, "
            f"filters and masks {timings['postprocess_s']:.2f} s"
        )
    for who in sides:
        if who != "robosam":
            ref_share, our_share = match_share(outputs[who], outputs["robosam"])
            print(
                f"agreement robosam vs {who}: {ref_share:.1%} of {who}'s masks matched by robosam's "
                f"(IoU >= 0.9), {our_share:.1%} of robosam's by {who}'s"
            )
    faster = min(["meta", "pipeline"] if pipe is not None else ["meta"], key=median.get)
    if "robosam compiled" in median:
        print(
            f"robosam compiled speed-up after the encoder over {faster}: "
            f"{median[faster] / median['robosam compiled']:.1f}x"
        )
    print(
        f"robosam eager speed-up after the encoder over the faster reference ({faster}): "
        f"{median[faster] / median['robosam']:.1f}x"
    )


if __name__ == "__main__":
    main()
