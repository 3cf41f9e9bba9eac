"""Prompt decoding with a cached image embedding: transformers' ``SamModel`` (prompt encoder + mask decoder)
vs robosam's ``FastSamDecoder``, SAM ViT-B decoder widths (hidden 256, 8 heads, MLP 2048, 64 x 64 embedding),
random weights at a realistic scale, same weights and embedding, same run. ``--model sam2``: the same for
``Sam2Model`` vs ``FastSam2Decoder`` (SAM 2.1's decoder, every size shares it: hidden 256, 64 x 64
embedding plus 128 and 256 high-resolution levels).

    python benchmarks/decoder_speed.py [--model sam|sam2] [--repeats 30] [--prompts 256] [--chunks 1,4,16,64]
                                       [--no-compile] [--no-multimask]
    python benchmarks/decoder_speed.py --threads 1 --clock cpu   # on a machine shared with other jobs

Prints per-prompt medians for 1 point, a box and 3 points (timings interleaved, so neither side always runs
on a warmer cache), torch.compile's first-call time, the total for many single-point prompts decoded in
chunks (best chunk size of each), the largest differences from transformers, and as the last line the
eager speed-up for one point (transformers' median divided by robosam's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import transformers as tf
from torch import nn

from robosam.models.fast_decoder import FastSamDecoder, tune_allocator
from robosam.models.fast_decoder_sam2 import FastSam2Decoder

Prompt = tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]


def build_model(seed: int = 0) -> tf.SamModel:
    """SAM ViT-B's prompt encoder and mask decoder (transformers' default config) with PyTorch's default
    init and a unit Gaussian positional encoding, like Meta's untrained model; the vision encoder is a
    one-layer stub (only its embedding size matters here)."""
    torch.manual_seed(seed)
    vision = tf.SamVisionConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_dim=64, global_attn_indexes=[0]
    )
    model = tf.SamModel(tf.SamConfig(vision_config=vision)).eval()
    for module in [*model.prompt_encoder.modules(), *model.mask_decoder.modules()]:
        if isinstance(module, (nn.Linear, nn.ConvTranspose2d, nn.Conv2d, nn.LayerNorm, nn.Embedding)):
            module.reset_parameters()
    with torch.no_grad():
        gaussian = torch.randn_like(model.shared_image_embedding.positional_embedding)
        model.shared_image_embedding.positional_embedding.copy_(gaussian)
        model.prompt_encoder.shared_embedding.positional_embedding.copy_(gaussian)
    return model


def build_sam2_model(seed: int = 0) -> tf.Sam2Model:
    """SAM 2.1's prompt encoder and mask decoder (transformers' default config) with PyTorch's default init;
    the Hiera encoder is a small stub (only the feature sizes matter here)."""
    torch.manual_seed(seed)
    hiera = tf.Sam2HieraDetConfig(
        hidden_size=16,
        num_attention_heads=1,
        blocks_per_stage=[1, 1, 1, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        global_attention_blocks=[3],
    )
    vision = tf.Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[128, 64, 32, 16])
    model = tf.Sam2Model(tf.Sam2Config(vision_config=vision)).eval()
    for module in [*model.prompt_encoder.modules(), *model.mask_decoder.modules()]:
        if isinstance(module, (nn.Linear, nn.ConvTranspose2d, nn.Conv2d, nn.LayerNorm, nn.Embedding)):
            module.reset_parameters()
    return model


def sam2_image_embeddings(seed: int = 1) -> list[torch.Tensor]:
    """Stand-ins for ``Sam2Model.get_image_embeddings``: high-resolution levels (1, 32, 256, 256) and
    (1, 64, 128, 128), and the (1, 256, 64, 64) embedding."""
    g = torch.Generator().manual_seed(seed + 100)
    return [
        torch.randn(1, 32, 256, 256, generator=g),
        torch.randn(1, 64, 128, 128, generator=g),
        image_embedding(seed),
    ]


def image_embedding(seed: int = 1) -> torch.Tensor:
    """(1, 256, 64, 64) with SAM's neck output statistics: each pixel's channels layer-normalised."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 64, 64, 256, generator=g)
    x = nn.functional.avg_pool2d(x.permute(0, 3, 1, 2), 3, stride=1, padding=1)  # some spatial correlation
    return nn.functional.layer_norm(x.permute(0, 2, 3, 1), (256,)).permute(0, 3, 1, 2).contiguous()


def transformers_decode(model: nn.Module, embedding, prompt: Prompt, multimask: bool):
    points, labels, boxes = prompt
    out = model(
        image_embeddings=embedding,
        input_points=None if points is None else points[None],
        input_labels=None if labels is None else labels[None],
        input_boxes=None if boxes is None else boxes[None],
        multimask_output=multimask,
    )
    return out.pred_masks[0], out.iou_scores[0]


def interleaved_times(
    runs: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Seconds per call of each run; the order alternates every round and the first round is warm-up."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(repeats + 1):
        for name in names if round_ % 2 == 0 else reversed(names):
            start = clock()
            runs[name]()
            if round_:
                times[name].append(clock() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=["sam", "sam2"], default="sam", help="decoder family")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per prompt kind")
    parser.add_argument("--prompts", type=int, default=256, help="single-point prompts for the chunked run")
    parser.add_argument("--chunks", default="1,4,16,64", help="chunk sizes for the chunked run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the chunked run")
    parser.add_argument("--multimask", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tune-allocator", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: this process's CPU time, steady when other jobs load the machine (use with --threads 1)",
    )
    args = parser.parse_args()
    chunks = [int(c) for c in args.chunks.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    tuned = tune_allocator() if args.tune_allocator else False
    torch.set_grad_enabled(False)
    if args.model == "sam2":
        model, embedding = build_sam2_model(), sam2_image_embeddings()
        decoder: FastSamDecoder = FastSam2Decoder(model)
    else:
        model, embedding = build_model(), image_embedding()
        decoder = FastSamDecoder(model)
    state = decoder.prepare(embedding)
    prepare_times = []
    for _ in range(5):
        start = clock()
        state = decoder.prepare(embedding)
        prepare_times.append(clock() - start)
    prepare_s = statistics.median(prepare_times)

    g = torch.Generator().manual_seed(2)
    prompts: dict[str, Prompt] = {
        "1 point": (torch.tensor([[[500.0, 375.0]]]), torch.tensor([[1]]), None),
        "box": (None, None, torch.tensor([[75.0, 275.0, 725.0, 850.0]])),
        "3 points": (torch.rand(1, 3, 2, generator=g) * 1024, torch.tensor([[1, 1, 0]]), None),
    }
    mm = args.multimask

    compiled = None
    compile_s: dict[str, float] = {}
    if args.compile:
        try:
            compiled = torch.compile(decoder.__call__)
            for name, prompt in prompts.items():
                start = time.perf_counter()
                compiled(state, *prompt, mm)
                compile_s[name] = time.perf_counter() - start
        except Exception as error:  # no compiler toolchain, unsupported platform: report and go on eagerly
            print(f"torch.compile unavailable: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            compiled = None

    # agreement, and per-prompt latency
    logit_diff = score_diff = 0.0
    min_iou = 1.0
    timings: dict[str, dict[str, list[float]]] = {}
    for name, prompt in prompts.items():
        ref_logits, ref_scores = transformers_decode(model, embedding, prompt, mm)
        for fn in [decoder] + ([compiled] if compiled is not None else []):
            logits, scores = fn(state, *prompt, mm)
            logit_diff = max(logit_diff, (logits - ref_logits).abs().max().item())
            score_diff = max(score_diff, (scores - ref_scores).abs().max().item())
            inter = ((logits > 0) & (ref_logits > 0)).flatten(2).sum(-1)
            union = ((logits > 0) | (ref_logits > 0)).flatten(2).sum(-1).clamp_min(1)
            min_iou = min(min_iou, (inter / union).min().item())
        runs = {
            "transformers": lambda p=prompt: transformers_decode(model, embedding, p, mm),
            "fast eager": lambda p=prompt: decoder(state, *p, mm),
        }
        if compiled is not None:
            runs["fast compiled"] = lambda p=prompt: compiled(state, *p, mm)
        timings[name] = interleaved_times(runs, args.repeats, clock)

    # many single-point prompts, decoded in chunks
    points = torch.rand(args.prompts, 1, 2, generator=g) * 1024
    labels = torch.ones(args.prompts, 1, dtype=torch.long)

    def transformers_chunked(chunk: int) -> None:
        for i in range(0, args.prompts, chunk):
            transformers_decode(model, embedding, (points[i : i + chunk], labels[i : i + chunk], None), mm)

    def fast_chunked(fn, chunk: int) -> None:
        for i in range(0, args.prompts, chunk):
            fn(state, points[i : i + chunk], labels[i : i + chunk], None, mm)

    sides = {"transformers": transformers_chunked, "fast eager": lambda c: fast_chunked(decoder, c)}
    if compiled is not None:
        for chunk in chunks:  # compile (and mark dynamic) outside the timed runs
            compiled(state, points[:chunk], labels[:chunk], None, mm)
        sides["fast compiled"] = lambda c: fast_chunked(compiled, c)
    totals: dict[str, dict[int, list[float]]] = {side: {c: [] for c in chunks} for side in sides}
    for round_ in range(args.rounds):
        for chunk in chunks:
            for side in sides if round_ % 2 == 0 else reversed(list(sides)):
                start = clock()
                sides[side](chunk)
                totals[side][chunk].append(clock() - start)

    columns = list(next(iter(timings.values())))
    medians = {name: {c: statistics.median(v) for c, v in row.items()} for name, row in timings.items()}
    print(
        f"{'SAM 2.1' if args.model == 'sam2' else 'SAM ViT-B'} prompt encoder + mask decoder, random weights, "
        f"{torch.get_num_threads()} threads, "
        f"{args.clock} clock, multimask={mm}, glibc allocator tuned: {'yes' if tuned else 'no'}"
    )
    print(f"{type(decoder).__name__}.prepare (once per image): {prepare_s * 1e3:.1f} ms")
    print(f"per prompt, median (min) of {args.repeats} (" + " | ".join(columns) + "):")
    for name, row in timings.items():
        cells = [f"{statistics.median(row[c]) * 1e3:7.1f} ({min(row[c]) * 1e3:.1f}) ms" for c in columns]
        print(f"  {name:9s} " + " | ".join(cells))
    if compile_s:
        print("torch.compile first call: " + ", ".join(f"{n} {s:.1f} s" for n, s in compile_s.items()))
    print(f"{args.prompts} single-point prompts, best chunk size (median (min) of {args.rounds} rounds):")
    for side, per_chunk in totals.items():
        best = min(per_chunk, key=lambda c: statistics.median(per_chunk[c]))
        detail = ", ".join(f"{c}: {statistics.median(v):.2f} s" for c, v in per_chunk.items())
        fastest = min(per_chunk[best])
        print(
            f"  {side:13s} {statistics.median(per_chunk[best]):6.2f} ({fastest:.2f}) s (chunk {best}; {detail})"
        )
    print(
        f"agreement with transformers: max |logit diff| {logit_diff:.1e}, max |score diff| {score_diff:.1e}, "
        f"min mask IoU {min_iou:.4f}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"load average {load_before:.1f} at start, {load:.1f} at end on {os.cpu_count()} CPUs (other jobs "
        "inflate medians, most with several threads; min and --threads 1 --clock cpu are steadier)"
    )
    one = medians["1 point"]
    print(f"fast decoder speed-up (1 point, eager): {one['transformers'] / one['fast eager']:.1f}x")


if __name__ == "__main__":
    main()
