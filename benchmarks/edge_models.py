"""Edge models on CPU: SAM ViT-B / ViT-H vs MobileSAM, encoder and decoder times and parameter counts, same run.

Every model is built with random weights at its released size (Meta's ``segment_anything`` registry for SAM,
saved in Meta's format and loaded through robosam; robosam's ``MobileSamModel`` at the ``mobile_sam.pt``
layout), then run through the same ``Segmenter`` on the same image, interleaved, medians reported. Where the
``mobile_sam`` reference package is installed, its TinyViT encoder is timed in the same loop, so robosam's
encoder can be compared with the reference implementation.

    python benchmarks/edge_models.py [--image examples/truck.jpg] [--repeats 3] [--decodes 20] [--no-huge]

Prints a table (parameters in millions, encoder and one-point decoder medians in ms) and, as the last line,
the SAM ViT-H encoder median divided by MobileSAM's (the seed tutorial's "about 10x faster on CPU").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from robosam.io import load_image
from robosam.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]


def count_m(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def build_segmenters(tmp: Path, huge: bool) -> dict[str, Segmenter]:
    from segment_anything import sam_model_registry

    from robosam.models.families.mobilesam import MobileSamConfig, MobileSamModel

    segmenters = {}
    for name in ("vit_b", "vit_h") if huge else ("vit_b",):
        torch.manual_seed(0)
        path = tmp / f"sam_{name}_random.pth"
        torch.save(sam_model_registry[name]().state_dict(), path)
        segmenters[f"SAM ViT-{name[-1].upper()}"] = Segmenter(path, device="cpu", cache_bytes=0)
    torch.manual_seed(0)
    segmenters["MobileSAM"] = Segmenter(MobileSamModel(MobileSamConfig()).eval(), device="cpu", cache_bytes=0)
    return segmenters


def reference_tinyvit() -> torch.nn.Module | None:
    """The ``mobile_sam`` package's TinyViT at the release size, or None where it is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mobile_sam import sam_model_registry
    except ImportError:
        return None
    torch.manual_seed(0)
    return sam_model_registry["vit_t"]().image_encoder.eval()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "truck.jpg")
    parser.add_argument("--repeats", type=int, default=3, help="encoder runs per model")
    parser.add_argument("--decodes", type=int, default=20, help="one-point decodes per model")
    parser.add_argument("--huge", action=argparse.BooleanOptionalAction, default=True, help="include ViT-H")
    args = parser.parse_args()

    image = load_image(args.image)
    rng = np.random.default_rng(0)
    height, width = image.shape[:2]
    points = np.stack([rng.uniform(0, width, args.decodes), rng.uniform(0, height, args.decodes)], 1)
    with tempfile.TemporaryDirectory() as tmp:
        segmenters = build_segmenters(Path(tmp), args.huge)
    reference = reference_tinyvit()

    encode: dict[str, list[float]] = {name: [] for name in segmenters}
    decode: dict[str, list[float]] = {name: [] for name in segmenters}
    embeddings = {}
    reference_times: list[float] = []
    with torch.inference_mode():
        for _ in range(args.repeats):  # interleaved: every model sees the same machine state
            for name, seg in segmenters.items():
                start = time.perf_counter()
                embeddings[name] = seg.embed(image)
                encode[name].append(time.perf_counter() - start)
            if reference is not None:
                pixels = segmenters["MobileSAM"].adapter.preprocess([image])
                start = time.perf_counter()
                reference(pixels)
                reference_times.append(time.perf_counter() - start)
        for point in points:
            for name, seg in segmenters.items():
                start = time.perf_counter()
                seg.decode(embeddings[name], points=[point], labels=[1], multimask=True)
                decode[name].append(time.perf_counter() - start)

    print(f"CPU, {torch.get_num_threads()} threads, image {width}x{height}, torch {torch.__version__}")
    print(f"{'model':<12} {'encoder M':>10} {'decoder M':>10} {'encoder ms':>11} {'decoder ms':>11}")
    for name, seg in segmenters.items():
        model = seg.adapter.model
        decoder_m = count_m(model.prompt_encoder) + count_m(model.mask_decoder)
        print(
            f"{name:<12} {count_m(model.vision_encoder):>10.2f} {decoder_m:>10.2f} "
            f"{1000 * statistics.median(encode[name]):>11.1f} {1000 * statistics.median(decode[name]):>11.1f}"
        )
    if reference_times:
        ours = statistics.median(encode["MobileSAM"])
        print(
            f"reference mobile_sam TinyViT encoder: {1000 * statistics.median(reference_times):.1f} ms "
            f"(robosam / reference = {ours / statistics.median(reference_times):.2f})"
        )
    mobile = statistics.median(encode["MobileSAM"])
    for name in segmenters:
        if name != "MobileSAM":
            print(f"{name} encoder / MobileSAM encoder: {statistics.median(encode[name]) / mobile:.1f}x")
    largest = list(segmenters)[-2]
    print(f"encoder speedup MobileSAM vs {largest}: {statistics.median(encode[largest]) / mobile:.1f}")


if __name__ == "__main__":
    main()
