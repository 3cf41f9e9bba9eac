"""Automatic mask generation ("segment everything") after the encoder: robosam ``AutoMasker`` vs Meta's
``SamAutomaticMaskGenerator`` vs transformers' ``mask-generation`` pipeline, same SAM ViT-B architecture and
weights (random), same image, same knobs, same run.

    python benchmarks/amg.py [--image examples/truck.jpg] [--points-per-side 16] [--repeats 1] [--no-compile]

Random weights: the decoder's transposed convolutions are made constant over their kernel and its
hypernetwork outputs scaled by 1000 (as in tests/test_automatic.py), so masks are blob-like and their stability
scores spread; compute cost is unchanged. The thresholds are then set from the candidates of a calibration
batch so that about half pass the predicted-IoU filter and half of those the stability filter; the shares
each filter keeps are printed. The encoder is timed separately on every side and left out of the ratio.
The last line is robosam's eager speed-up over the faster reference (higher is better).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

from robosam.automatic import AutoMasker
from robosam.io import load_image
from robosam.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]


def build_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = sam_model_registry["vit_b"]().eval()
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(1000.0)
            mlp.layers[-1].bias.mul_(1000.0)
        for layer in model.mask_decoder.output_upscaling:
            if isinstance(layer, torch.nn.ConvTranspose2d):
                layer.weight.copy_(layer.weight.mean(dim=(2, 3), keepdim=True).expand_as(layer.weight))
    return model


def calibrate(segmenter: Segmenter, image: np.ndarray, points_per_side: int) -> tuple[float, float]:
    """pred_iou_thresh = median predicted IoU of a calibration batch; stability_score_thresh = median stability
    of the candidates above it (computed exactly, at full resolution)."""
    from robosam.automatic.candidates import full_resolution_stats
    from robosam.automatic.layout import build_point_grid

    embedding = segmenter.embed(image)
    grid = build_point_grid(points_per_side)[:: max(1, points_per_side**2 // 48)]
    points = grid * np.array([image.shape[1], image.shape[0]])
    result = segmenter.decode(
        embedding, points=points[:, None], labels=np.ones((len(points), 1)), upscale=False
    )
    iou_thresh = float(np.median(result.scores))
    keep = result.scores > iou_thresh
    stability, _ = full_resolution_stats(result.logits[keep], embedding.geometry, 0.0, 1.0)
    return iou_thresh, float(np.nanmedian(stability))


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "truck.jpg")
    parser.add_argument("--points-per-side", type=int, default=16)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pipeline", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    meta_model = build_model()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "sam_vit_b_random.pth"
        torch.save(meta_model.state_dict(), checkpoint)
        segmenter = Segmenter(checkpoint, device="cpu")
    image = load_image(args.image)
    height, width = image.shape[:2]
    iou_thresh, stability_thresh = calibrate(segmenter, image, args.points_per_side)
    knobs = {
        "points_per_side": args.points_per_side,
        "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": iou_thresh,
        "stability_score_thresh": stability_thresh,
        "box_nms_thresh": 0.7,
    }
    meta = SamAutomaticMaskGenerator(meta_model, **knobs)
    meta.predictor.set_image = meta_set_image = Timed(meta.predictor.set_image)
    eager = AutoMasker(segmenter, **knobs)
    compiled = AutoMasker(segmenter, **knobs, compile=True) if args.compile else None
    pipe = None
    if args.pipeline:
        from transformers import SamImageProcessor, pipeline

        pipe = pipeline(
            "mask-generation", model=segmenter.model, image_processor=SamImageProcessor(), device="cpu"
        )
        pipe.model.get_image_embeddings = pipe_encoder = Timed(pipe.model.get_image_embeddings)
    pipe_knobs = {
        "points_per_crop": args.points_per_side,
        "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": iou_thresh,
        "stability_score_thresh": stability_thresh,
        "crops_nms_thresh": 0.7,
    }
    print(
        f"image {args.image.name} {width}x{height}, SAM ViT-B random weights, points_per_side={args.points_per_side}"
    )
    print(
        f"thresholds: pred_iou_thresh {iou_thresh:.4f}, stability_score_thresh {stability_thresh:.4f}, box_nms 0.7"
    )

    # robosam's filter shares, from one run with the filters switched on one at a time
    all_candidates = args.points_per_side**2 * 3
    only_iou = AutoMasker(
        segmenter, **{**knobs, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}
    ).generate(image)
    iou_and_stability = AutoMasker(segmenter, **{**knobs, "box_nms_thresh": 1.0}).generate(image)
    if compiled is not None:
        start = time.perf_counter()
        compiled.generate(image)  # compiles once; cached for later calls
        print(f"torch.compile warm-up: {time.perf_counter() - start:.1f} s")

    times: dict[str, list[float]] = {"meta": [], "pipeline": [], "robosam": [], "robosam compiled": []}
    encoders: dict[str, list[float]] = {k: [] for k in times}
    outputs = {}
    splits: dict[str, dict[str, float]] = {}
    for repeat in range(args.repeats):
        order = ["meta", "pipeline", "robosam", "robosam compiled"]
        for who in order if repeat % 2 == 0 else order[::-1]:
            if who == "meta":
                meta_set_image.seconds = 0.0
                start = time.perf_counter()
                records = meta.generate(image)
                total = time.perf_counter() - start
                encoders[who].append(meta_set_image.seconds)
                outputs[who] = (
                    np.stack([r["segmentation"] for r in records])
                    if records
                    else np.zeros((0, height, width), bool)
                )
            elif who == "pipeline" and pipe is not None:
                pipe_encoder.seconds = 0.0
                start = time.perf_counter()
                found = pipe(Image.fromarray(image), **pipe_knobs)
                total = time.perf_counter() - start
                encoders[who].append(pipe_encoder.seconds)
                outputs[who] = (
                    np.stack([np.asarray(m, bool) for m in found["masks"]])
                    if found["masks"]
                    else np.zeros((0, height, width), bool)
                )
            elif who.startswith("robosam") and (who == "robosam" or compiled is not None):
                segmenter.cache.clear()
                masker = eager if who == "robosam" else compiled
                start = time.perf_counter()
                result = masker.generate(image)
                total = time.perf_counter() - start
                encoders[who].append(result.timings["encoder_s"])
                outputs[who] = result.masks
                splits[who] = result.timings
            else:
                continue
            times[who].append(total - encoders[who][-1])

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    print(
        f"filter shares (robosam): predicted IoU keeps {len(only_iou) / all_candidates:.1%} of {all_candidates} candidates, "
        f"stability keeps {len(iou_and_stability) / max(len(only_iou), 1):.1%} of those, "
        f"box NMS keeps {len(outputs['robosam']) / max(len(iou_and_stability), 1):.1%} of those"
    )
    for who in times:
        if times[who]:
            print(
                f"{who:>17}: encoder {median(encoders[who]):6.2f} s, after encoder {median(times[who]):6.2f} s, "
                f"{len(outputs[who])} masks"
            )
    for who, timings in splits.items():
        print(
            f"{who} after the encoder: decoder {timings['decoder_s']:.2f} s, filters and masks {timings['postprocess_s']:.2f} s"
        )
    for who in ("meta", "pipeline", "robosam compiled"):
        if who in outputs:
            a_share, b_share = match_share(outputs[who], outputs["robosam"])
            print(
                f"agreement robosam vs {who}: {b_share:.1%} of robosam's masks matched (IoU >= 0.9), {a_share:.1%} of {who}'s"
            )
    reference = min(median(times["meta"]), median(times["pipeline"]) if times["pipeline"] else float("inf"))
    if times["robosam compiled"]:
        print(
            f"robosam compiled speed-up after the encoder: {reference / median(times['robosam compiled']):.1f}x"
        )
    print(
        f"robosam eager speed-up after the encoder over the faster reference: {reference / median(times['robosam']):.1f}x"
    )


if __name__ == "__main__":
    main()
