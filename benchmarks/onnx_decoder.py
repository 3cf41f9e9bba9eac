"""Per-prompt mask decoder latency on CPU: the exported ONNX decoder in ONNX Runtime vs transformers' module
(prompt encoder + mask decoder, eager) vs robosam's fast decoder, SAM ViT-B architecture (random init), one
random image embedding, same run, interleaved.

    python benchmarks/onnx_decoder.py [--image examples/truck.jpg] [--prompts 40] [--threads 0]

Prints per-prompt medians, how far the outputs differ, and as the last line transformers' median divided by
ONNX Runtime's (higher is better; target >= 1.3).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import SamConfig, SamModel

from robosam.export.manifest import tensor_spec
from robosam.export.onnx_export import export_decoder_graph
from robosam.export.runtime import OnnxModel, pack_prompts
from robosam.io import load_image
from robosam.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[1]


def decoder_only_folder(folder: Path, net: SamModel, features: torch.Tensor, multimask: bool) -> OnnxModel:
    """Just the prompt decoder graph, with the manifest entries ``OnnxModel`` reads to run it."""
    graph = "decoder_multimask" if multimask else "decoder_single"
    export_decoder_graph(net, "sam", multimask, (features,), folder / f"{graph}.onnx")
    outputs = [tensor_spec("image_embeddings", list(features.shape), "float32")]
    manifest = {
        "family": "sam",
        "dtypes": ["float32"],
        "graphs": {
            graph: {"files": {"float32": f"{graph}.onnx"}},
            "encoder": {"files": {}, "outputs": outputs},
        },
    }
    return OnnxModel(folder, manifest=manifest, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "truck.jpg")
    parser.add_argument("--prompts", type=int, default=40, help="number of single-point prompts (>= 20)")
    parser.add_argument("--multimask", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--threads", type=int, default=0, help="threads for torch and onnxruntime (0: default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    net = SamModel(SamConfig()).eval()  # the default config is SAM ViT-B
    segmenter = Segmenter(net, device="cpu")
    image = load_image(args.image)
    height, width = image.shape[:2]
    # the decoder's cost does not depend on the embedding's values: unit-scale random features stand in for
    # a ViT-B encoder run (a minute on a small CPU)
    features = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        state = segmenter.fast.prepare(features) if segmenter.fast is not None else None
    geometry = segmenter.adapter.geometry((height, width))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        onnx_model = decoder_only_folder(Path(tmp), net, features, args.multimask)
        export_s = time.perf_counter() - start
        onnx_model.threads = args.threads
        onnx_model.session("decoder_multimask" if args.multimask else "decoder_single")
    numpy_features = {"image_embeddings": features.numpy()}
    mask, has_mask = np.zeros((1, 1, 256, 256), np.float32), np.zeros(1, np.float32)
    adapter, fast = segmenter.adapter, segmenter.fast

    rng = np.random.default_rng(0)
    pixels = np.stack(
        [rng.uniform(0, width - 1, args.prompts), rng.uniform(0, height - 1, args.prompts)], axis=1
    )
    times: dict[str, list[float]] = {"onnxruntime": [], "transformers": [], "fast": []}
    logit_diffs, score_diffs, fast_diffs = [], [], []
    for index, pixel in enumerate(pixels):
        points = torch.from_numpy(geometry.to_model(pixel[None, None]))  # (1, 1, 2)
        labels = torch.ones(1, 1, dtype=torch.int64)
        coords, codes = pack_prompts("sam", points.numpy(), labels.numpy(), None)
        order = list(times)
        order = order[index % 3 :] + order[: index % 3]  # rotate who goes first
        outputs = {}
        for who in order:
            start = time.perf_counter()
            if who == "onnxruntime":
                outputs[who] = onnx_model.run_decoder(
                    numpy_features, coords, codes, mask, has_mask, args.multimask
                )
            elif who == "transformers":
                with torch.inference_mode():
                    out = adapter.decode(features, points, labels, None, None, args.multimask)
                outputs[who] = (out.logits.numpy(), out.scores.numpy())
            elif fast is not None:
                with torch.inference_mode():
                    logits, scores = fast(state, points, labels, None, args.multimask)
                outputs[who] = (logits.numpy(), scores.numpy())
            times[who].append(time.perf_counter() - start)
        reference = outputs["transformers"]
        logit_diffs.append(float(np.abs(outputs["onnxruntime"][0] - reference[0]).max()))
        score_diffs.append(float(np.abs(outputs["onnxruntime"][1] - reference[1]).max()))
        if "fast" in outputs:
            fast_diffs.append(float(np.abs(outputs["fast"][0] - reference[0]).max()))

    medians = {
        who: statistics.median(t[1:]) * 1e3 for who, t in times.items() if len(t) > 1
    }  # first: warm-up
    print(
        f"image {args.image.name} {width}x{height}, SAM ViT-B random weights, {args.prompts} point prompts, CPU"
    )
    print(f"decoder export {export_s:.1f} s; torch threads {torch.get_num_threads()}")
    print("per prompt median: " + ", ".join(f"{who} {ms:.1f} ms" for who, ms in medians.items()))
    print(
        f"ONNX Runtime vs transformers: max |logit diff| {max(logit_diffs):.1e}, max |score diff| {max(score_diffs):.1e}"
    )
    if fast_diffs:
        print(f"fast decoder vs transformers: max |logit diff| {max(fast_diffs):.1e}")
        print(
            f"fast decoder / ONNX Runtime per-prompt median: {medians['fast'] / medians['onnxruntime']:.3f}"
        )
    print(
        f"transformers / ONNX Runtime per-prompt median: {medians['transformers'] / medians['onnxruntime']:.2f}x"
    )


if __name__ == "__main__":
    main()
