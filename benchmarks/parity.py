"""Parity benchmark: robosam vs Meta's own predictors on full-size architectures, random weights.

For SAM ViT-B (``segment_anything``) and SAM 2.1 Hiera-T (``sam2``): builds the model with Meta's code,
saves it in Meta's checkpoint format, loads that file with ``robosam.Segmenter(path)``, runs the same
prompts on truck.jpg through ``SamPredictor`` / ``SAM2ImagePredictor`` and robosam, and prints per case
the worst mask IoU, the largest score and low-res logit differences. The agreement summary comes last.

    python benchmarks/parity.py                 # both families (a few minutes on 2 CPU cores)
    python benchmarks/parity.py --family sam2   # one family
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from parity_reference import (  # noqa: E402
    agreement_table,
    build_release_sam1,
    build_release_sam2,
    feed_pixels,
    reference_pixels,
    sam2_reference_predictor,
)

from robosam.io import load_image  # noqa: E402
from robosam.segmenter import Segmenter  # noqa: E402


def run_family(family: str, image_path: Path, workdir: Path) -> dict:
    """Build, save, load and compare one family; returns the agreement table and timings."""
    image = load_image(image_path)
    if family == "sam":
        from segment_anything import SamPredictor

        name = "SAM ViT-B (segment_anything.SamPredictor)"
        meta = build_release_sam1("vit_b")
        path = workdir / "sam_vit_b.pth"
        torch.save(meta.state_dict(), path)
        reference = SamPredictor(meta)
    else:
        name = "SAM 2.1 Hiera-T (sam2.SAM2ImagePredictor)"
        meta = build_release_sam2("configs/sam2.1/sam2.1_hiera_t.yaml")
        path = workdir / "sam2.1_hiera_tiny.pt"
        torch.save({"model": meta.state_dict()}, path)
        reference = sam2_reference_predictor(meta)
    start = time.perf_counter()
    segmenter = Segmenter(str(path), device="cpu")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    reference.set_image(image)
    meta_encode_s = time.perf_counter() - start
    start = time.perf_counter()
    segmenter.set_image(image)
    ours_encode_s = time.perf_counter() - start
    table = agreement_table(reference, segmenter)
    # the same comparison with Meta's preprocessed pixels fed to robosam: what remains is float noise
    same_pixels = feed_pixels(Segmenter(str(path), device="cpu"), reference_pixels(reference, image))
    same_pixels.set_image(image)
    return {
        "name": name,
        "table": table,
        "same_pixels": agreement_table(reference, same_pixels),
        "load_s": load_s,
        "meta_encode_s": meta_encode_s,
        "ours_encode_s": ours_encode_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["sam", "sam2", "both"], default="both")
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "truck.jpg")
    args = parser.parse_args()
    families = ["sam", "sam2"] if args.family == "both" else [args.family]
    torch.set_grad_enabled(False)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for index, family in enumerate(families, 1):
            print(f"[{index}/{len(families)}] {family}: building, saving, loading, encoding ...", flush=True)
            result = run_family(family, args.image, Path(workdir))
            results.append(result)
            print(f"\n{result['name']} on {args.image.name}")
            print(
                f"  checkpoint load {result['load_s']:.1f} s; image encoder: Meta {result['meta_encode_s']:.1f} s,"
                f" robosam {result['ours_encode_s']:.1f} s"
            )
            print(
                f"  {'case':<24}{'multimask':<11}{'min IoU':>9}{'|d score|':>12}{'|d logit|':>12}{'|logit|':>10}"
            )
            for (case, multimask), agreement in result["table"].items():
                print(
                    f"  {case:<24}{str(multimask):<11}{agreement.min_iou:>9.5f}{agreement.max_score_diff:>12.2e}"
                    f"{agreement.max_logit_diff:>12.2e}{agreement.logit_scale:>10.3f}"
                )
    print("\nagreement (worst over 5 prompt cases x multimask on/off; target IoU >= 0.99, |d score| <= 1e-3)")
    for result in results:
        for label, key in (("end to end", "table"), ("Meta's pixels fed to robosam", "same_pixels")):
            table = result[key].values()
            print(
                f"  {result['name']}, {label}: min IoU {min(a.min_iou for a in table):.5f}, "
                f"max |d score| {max(a.max_score_diff for a in table):.2e}, "
                f"max |d low-res logit| {max(a.max_logit_diff for a in table):.2e} "
                f"(mean |logit| {np.mean([a.logit_scale for a in table]):.2f})"
            )


if __name__ == "__main__":
    main()
