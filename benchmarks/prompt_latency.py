"""Per-prompt latency with a cached image embedding: robosam ``Segmenter.predict`` vs Meta's
``SamPredictor.predict``, same SAM ViT-B architecture and weights (random init), same image, same run.

    python benchmarks/prompt_latency.py [--image examples/truck.jpg] [--prompts 30] [--no-compile]

Prints per-prompt medians, the mask agreement between the two, the compiled figure (robosam's fast decoder
under ``torch.compile``, timed in a second interleaved pass after its first call), and as the last line
robosam's eager median divided by the official median (lower is better).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry

from robosam.evaluation import iou
from robosam.io import load_image
from robosam.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]


def time_official_postprocess(official: SamPredictor, logits: np.ndarray) -> float:
    """Seconds Meta's predictor spends turning (N, 256, 256) logits into bool masks at the original size."""
    low_res = torch.from_numpy(logits)[None]
    start = time.perf_counter()
    with torch.inference_mode():
        masks = official.model.postprocess_masks(low_res, official.input_size, official.original_size) > 0.0
        masks[0].numpy()
    return time.perf_counter() - start


class CompiledFastDecoder:
    """A segmenter's fast decoder with its per-prompt call under ``torch.compile`` (same weights, same
    per-image ``prepare``), so ``Segmenter.predict`` can be timed with it."""

    def __init__(self, fast) -> None:
        self.prepare = fast.prepare
        self._call = torch.compile(fast.__call__, dynamic=False)

    def __call__(self, *args):
        return self._call(*args)


def time_interleaved(official: SamPredictor, segmenter: Segmenter, points: np.ndarray, multimask: bool):
    """Per-prompt seconds (official, robosam) and the robosam results, alternating who goes first so
    neither always runs on a warmer cache."""
    official_times, robosam_times, pairs = [], [], []
    for index, point in enumerate(points):
        coords, labels = point[None].astype(np.float32), np.ones(1, dtype=np.int64)
        order = ("official", "robosam") if index % 2 == 0 else ("robosam", "official")
        for who in order:
            start = time.perf_counter()
            if who == "official":
                official_out = official.predict(coords, labels, multimask_output=multimask)
                official_times.append(time.perf_counter() - start)
            else:
                result = segmenter.predict(points=coords, labels=labels, multimask=multimask)
                robosam_times.append(time.perf_counter() - start)
        pairs.append((official_out, result, segmenter.last_timings["postprocess_s"]))
    return official_times, robosam_times, pairs


def mask_ious(pairs) -> list[float]:
    """IoU of each of robosam's masks with Meta's, over every prompt of a ``time_interleaved`` pass."""
    return [value for (masks, _, _), result, _ in pairs for value in iou(result.masks, masks).tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "truck.jpg")
    parser.add_argument("--prompts", type=int, default=30, help="number of point prompts (>= 20)")
    parser.add_argument("--multimask", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    torch.manual_seed(0)
    meta_model = sam_model_registry["vit_b"]().eval()
    official = SamPredictor(meta_model)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "sam_vit_b_random.pth"
        torch.save(meta_model.state_dict(), checkpoint)
        segmenter = Segmenter(checkpoint, device="cpu")

    image = load_image(args.image)
    height, width = image.shape[:2]
    start = time.perf_counter()
    official.set_image(image)
    official_encode = time.perf_counter() - start
    start = time.perf_counter()
    segmenter.set_image(image)
    robosam_encode = time.perf_counter() - start

    rng = np.random.default_rng(0)
    points = np.stack(
        [rng.uniform(0, width - 1, args.prompts), rng.uniform(0, height - 1, args.prompts)], axis=1
    )
    official_times, robosam_times, pairs = time_interleaved(official, segmenter, points, args.multimask)
    ious = mask_ious(pairs)
    score_diffs, official_post, robosam_post = [], [], []
    for (_, scores, _), result, postprocess_s in pairs:
        robosam_post.append(postprocess_s)
        official_post.append(time_official_postprocess(official, result.logits))
        score_diffs.extend(np.abs(scores - result.scores).tolist())

    compiled_line = "compiled: not run (--no-compile)"
    if args.compile:
        eager_fast = segmenter.fast
        try:
            segmenter.fast = CompiledFastDecoder(eager_fast)
            start = time.perf_counter()
            segmenter.predict(
                points=points[:1].astype(np.float32),
                labels=np.ones(1, dtype=np.int64),
                multimask=args.multimask,
            )
            first_call = time.perf_counter() - start
            official_c, compiled_times, compiled_pairs = time_interleaved(
                official, segmenter, points, args.multimask
            )
            compiled_median = statistics.median(compiled_times[1:])
            official_c_median = statistics.median(official_c[1:])
            compiled_line = (
                f"compiled: robosam {compiled_median * 1e3:.1f} ms per prompt vs official "
                f"{official_c_median * 1e3:.1f} ms in the same pass, ratio {compiled_median / official_c_median:.3f}, "
                f"min mask IoU {min(mask_ious(compiled_pairs)):.4f}, first call {first_call:.1f} s"
            )
        except Exception as error:  # no compiler toolchain, unsupported platform: report and go on
            compiled_line = (
                f"compiled: unavailable ({type(error).__name__}: {str(error).splitlines()[0][:160]})"
            )
        finally:
            segmenter.fast = eager_fast

    official_median = statistics.median(official_times[1:])  # first call of each is warm-up
    robosam_median = statistics.median(robosam_times[1:])
    print(f"image {args.image.name} {width}x{height}, SAM ViT-B random weights, {args.prompts} point prompts")
    print(f"encoder once: official {official_encode:.2f} s, robosam {robosam_encode:.2f} s")
    print(
        f"per prompt median: official {official_median * 1e3:.1f} ms, robosam {robosam_median * 1e3:.1f} ms"
    )
    print(
        f"of which mask post-processing: official {statistics.median(official_post) * 1e3:.1f} ms, "
        f"robosam {statistics.median(robosam_post) * 1e3:.1f} ms (the rest is the same mask decoder network)"
    )
    print(f"mask agreement: min IoU {min(ious):.4f}, median IoU {statistics.median(ious):.4f}")
    print(f"score agreement: max |diff| {max(score_diffs):.2e}")
    print(compiled_line)
    print(f"robosam / official per-prompt median: {robosam_median / official_median:.3f}")


if __name__ == "__main__":
    main()
