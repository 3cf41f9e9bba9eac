"""Memory and time per frame on an endless stream: robosam's live mode vs transformers' streaming session.

    python benchmarks/stream_memory.py [--frames 1000] [--image-size 256] [--objects 1,4,16]

One small SAM 2 video model (random weights, a small Hiera and the released memory path at a small input)
tracks two objects through a synthetic stream in two worker processes, one per tracker, stepped in lockstep
and in alternating order on the same frames (so neither runs on a warmer machine). Every 50 frames each
worker reports its resident memory (RSS) and the bytes of tensors its tracker holds. Then both track 1, 4 and
16 objects for a few frames each (robosam batches the objects' memory attention, mask decoding and memory
encoding; transformers runs them one at a time).

Targets for robosam: RSS growth from frame 100 to the last frame under 2 % (and under 0.1 MB per frame), and
the median time of the last 100 frames within 10 % of frames 100-200. The last line gives the memory growth,
robosam's first.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from typing import Any

import numpy as np

SAMPLE_EVERY = 50


def small_model(image_size: int) -> Any:
    """A SAM 2.1 video model at ``image_size`` input: a small Hiera trunk (widths 32-256), the released widths
    of the decoder and memory path (256, memories 64 wide), two memory-attention layers; random weights."""
    import torch
    import transformers as tf

    side = image_size // 4
    hiera = tf.Sam2HieraDetConfig(
        hidden_size=32,
        num_attention_heads=1,
        image_size=[image_size, image_size],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[32, 64, 128, 256],
        num_attention_heads_per_stage=[1, 1, 2, 4],
        window_size_per_stage=[8, 4, 4, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = tf.Sam2VisionConfig(
        backbone_config=hiera,
        backbone_channel_list=[256, 128, 64, 32],
        backbone_feature_sizes=[[side, side], [side // 2, side // 2], [side // 4, side // 4]],
    )
    config = tf.Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config={"image_size": image_size},
        image_size=image_size,
        memory_attention_rope_feat_sizes=[image_size // 16, image_size // 16],
        memory_attention_num_layers=2,
        memory_attention_feed_forward_hidden_size=512,
    )
    torch.manual_seed(0)
    return tf.Sam2VideoModel(config).eval()


def synthetic_frame(index: int, hw: tuple[int, int] = (240, 320)) -> np.ndarray:
    """Frame ``index`` of an endless stream: two blocks moving over a gradient."""
    height, width = hw
    frame = np.full((height, width, 3), 30, dtype=np.uint8)
    frame[:, :, 2] = np.linspace(0, 200, width, dtype=np.uint8)[None, :]
    x, y = 10 + (3 * index) % (width - 90), 20 + (2 * index) % (height - 90)
    frame[y : y + 60, x : x + 70] = (220, 180, 40)
    u = (width - 80) - (2 * index) % (width - 100)
    frame[height - 80 : height - 20, u : u + 60] = (40, 200, 90)
    return frame


def object_points(count: int, hw: tuple[int, int] = (240, 320)) -> list[list[float]]:
    rng = np.random.default_rng(count)
    return [[float(rng.uniform(5, hw[1] - 5)), float(rng.uniform(5, hw[0] - 5))] for _ in range(count)]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def tensor_mb(value: Any, seen: set[int] | None = None) -> float:
    """MB of the distinct tensor storages reachable through dicts, lists and objects' ``__dict__``."""
    import torch

    seen = set() if seen is None else seen
    if isinstance(value, torch.Tensor):
        key = value.untyped_storage().data_ptr()
        if key in seen:
            return 0.0
        seen.add(key)
        return value.untyped_storage().nbytes() / 2**20
    if isinstance(value, dict):
        return sum(tensor_mb(v, seen) for v in value.values())
    if isinstance(value, (list, tuple, set)):
        return sum(tensor_mb(v, seen) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, (torch.nn.Module, type)):
        return sum(tensor_mb(v, seen) for v in vars(value).values())
    return 0.0


class RobosamRunner:
    def __init__(self, model: Any):
        from robosam.video import VideoTracker

        self.tracker = VideoTracker(model, device="cpu")
        self.live = None

    def start(self, points: list[list[float]]) -> None:
        self.live = self.tracker.stream()
        for obj_id, point in enumerate(points, start=1):
            self.live.add(obj_id=obj_id, points=[point], labels=[1])

    def step(self, frame: np.ndarray) -> dict[int, np.ndarray]:
        return {obj_id: t.mask for obj_id, t in self.live.step(frame).items()}

    def held_mb(self) -> float:
        return tensor_mb(self.live.objects)


class TransformersRunner:
    """transformers' own streaming loop: ``model(session, frame=..., frame_idx=i)`` per frame."""

    def __init__(self, model: Any):
        from robosam.video.engine import TrackingEngine

        self.model = model
        self.preprocessor = TrackingEngine(model).preprocessor  # the same pixels for both trackers
        self.session = None
        self.index = 0

    def start(self, points: list[list[float]]) -> None:
        import torch
        import transformers as tf

        self.session = tf.Sam2VideoInferenceSession(
            video_height=240, video_width=320, inference_device="cpu", dtype=torch.float32
        )
        self.index = 0
        size = self.model.config.image_size
        for obj_id, (x, y) in enumerate(points, start=1):
            obj_idx = self.session.obj_id_to_idx(obj_id)
            coords = torch.tensor([[[[x / 320 * size, y / 240 * size]]]], dtype=torch.float32)
            labels = torch.ones(1, 1, 1, dtype=torch.int32)
            self.session.add_point_inputs(obj_idx, 0, {"point_coords": coords, "point_labels": labels})
        self.session.obj_with_new_inputs = list(range(1, len(points) + 1))

    def step(self, frame: np.ndarray) -> dict[int, np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model(self.session, frame=self.preprocessor.frame(frame)[0], frame_idx=self.index)
        self.index += 1
        # the same output as robosam's: masks at the frame's size (what post_process_masks gives)
        high = torch.nn.functional.interpolate(
            out.pred_masks, size=frame.shape[:2], mode="bilinear", align_corners=False
        )
        return dict(zip(out.object_ids, (high[:, 0] > 0).numpy()))

    def held_mb(self) -> float:
        return tensor_mb(
            [
                self.session.processed_frames,
                self.session.output_dict_per_obj,
                self.session.frames_tracked_per_obj,
            ]
        )


def worker(kind: str, image_size: int, connection: Any) -> None:
    import torch

    torch.set_num_threads(1)
    model = small_model(image_size)
    runner = RobosamRunner(model) if kind == "robosam" else TransformersRunner(model)
    connection.send("ready")
    while True:
        command, argument = connection.recv()
        if command == "start":
            runner.start(argument)
            connection.send(None)
        elif command == "step":
            start = time.perf_counter()
            runner.step(synthetic_frame(argument))
            connection.send(time.perf_counter() - start)
        elif command == "sample":
            connection.send((rss_mb(), runner.held_mb()))
        elif command == "stop":
            return


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1000, help="stream length (>= 300)")
    parser.add_argument("--image-size", type=int, default=128, help="model input side")
    parser.add_argument("--objects", default="1,4,16", help="object counts for the per-frame time comparison")
    parser.add_argument(
        "--object-frames", type=int, default=12, help="frames per object count (first 2 warm-up)"
    )
    args = parser.parse_args()
    if args.frames < 300:
        parser.error("--frames must be at least 300")

    context = mp.get_context("spawn")
    workers = {}
    for kind in ("robosam", "transformers"):
        ours, theirs = context.Pipe()
        process = context.Process(target=worker, args=(kind, args.image_size, theirs), daemon=True)
        process.start()
        workers[kind] = (process, ours)
    for _, connection in workers.values():
        assert connection.recv() == "ready"

    def call(kind: str, command: str, argument: Any = None) -> Any:
        connection = workers[kind][1]
        connection.send((command, argument))
        return connection.recv()

    kinds = ("robosam", "transformers")
    points = object_points(2)
    for kind in kinds:
        call(kind, "start", points)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    samples: dict[str, dict[int, tuple[float, float]]] = {k: {} for k in kinds}
    print(f"small SAM 2.1 video model ({args.image_size} px input, random weights), 2 objects")
    print(
        f"{'frame':>6} | {'robosam RSS MB':>14} {'held MB':>8} {'ms':>6} | {'transformers RSS MB':>19} {'held MB':>8} {'ms':>6}"
    )
    for index in range(args.frames):
        order = kinds if index % 2 == 0 else kinds[::-1]
        for kind in order:
            times[kind].append(call(kind, "step", index))
        if (index + 1) % SAMPLE_EVERY == 0 or index == 0:
            row = []
            for kind in kinds:
                samples[kind][index + 1] = call(kind, "sample")
                rss, held = samples[kind][index + 1]
                recent = statistics.median(times[kind][-SAMPLE_EVERY:]) * 1e3
                row.append(
                    f"{rss:14.1f} {held:8.1f} {recent:6.1f}"
                    if kind == "robosam"
                    else f"{rss:19.1f} {held:8.1f} {recent:6.1f}"
                )
            print(f"{index + 1:>6} | {row[0]} | {row[1]}", flush=True)

    last = max(samples["robosam"])
    growth, per_frame, flat = {}, {}, {}
    for kind in kinds:
        rss_100, rss_last = samples[kind][100][0], samples[kind][last][0]
        growth[kind] = 100.0 * (rss_last - rss_100) / rss_100
        per_frame[kind] = (rss_last - rss_100) / (last - 100)
        early = statistics.median(times[kind][100:200])
        late = statistics.median(times[kind][-100:])
        flat[kind] = (early * 1e3, late * 1e3, 100.0 * (late - early) / early)
    for kind in kinds:
        e, lt, change = flat[kind]
        print(
            f"{kind}: RSS +{per_frame[kind]:.3f} MB/frame from frame 100 on; "
            f"median ms/frame {e:.1f} (frames 100-200) -> {lt:.1f} (last 100), {change:+.1f}%"
        )

    # both trackers ran interleaved on the same machine, so their ratio cancels changes in the machine's load
    ratio_early = statistics.median(times["robosam"][100:200]) / statistics.median(
        times["transformers"][100:200]
    )
    ratio_late = statistics.median(times["robosam"][-100:]) / statistics.median(times["transformers"][-100:])
    print(
        f"robosam / transformers median ms/frame: {ratio_early:.3f} (frames 100-200) -> {ratio_late:.3f} (last 100)"
    )
    print("per-frame time by object count (median after warm-up):")
    for count in [int(c) for c in args.objects.split(",")]:
        pts = object_points(count)
        for kind in kinds:
            call(kind, "start", pts)
        step_times: dict[str, list[float]] = {k: [] for k in kinds}
        for index in range(args.object_frames):
            for kind in kinds if index % 2 == 0 else kinds[::-1]:
                step_times[kind].append(call(kind, "step", index))
        ours = statistics.median(step_times["robosam"][2:]) * 1e3
        theirs = statistics.median(step_times["transformers"][2:]) * 1e3
        print(
            f"  {count:>2} object(s): robosam {ours:.1f} ms, transformers {theirs:.1f} ms, ratio {ours / theirs:.2f}"
        )

    for kind in kinds:
        workers[kind][1].send(("stop", None))
        workers[kind][0].join(timeout=30)
    print(
        f"memory growth 100->{last}: robosam {growth['robosam']:.1f}%, transformers {growth['transformers']:.1f}%"
    )


if __name__ == "__main__":
    main()
