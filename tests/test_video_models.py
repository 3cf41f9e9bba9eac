"""Tiny random-weight video models of the three families, synthetic videos, and checks that they are usable.

The video models need a mask-decoder width above the 64-channel memory (transformers splits each object
pointer into width / 64 memory tokens and cannot stack them when width == 64), so they use 128. Every weight
is redrawn (``parity_reference.randomize``) so that objects' memories differ, and the object-score head is
biased towards "present" so tracks keep non-empty masks: with transformers' initialisation every object
reads as absent after the first frame, and a memory bug could not change any mask.

Other test modules import the builders, the synthetic video and the ``one_torch_thread`` fixture from here.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from parity_reference import randomize

HIDDEN = 128
FRAME_HW = (60, 80)  # synthetic frames (H, W)


# ------------------------------------------------------------------------------------------ models
def _memory_fields(image_size: int, stride: int, edgetam: bool = False) -> dict:
    side = image_size // stride
    fields = dict(
        image_size=image_size,
        memory_attention_hidden_size=HIDDEN,
        memory_attention_num_layers=1,
        memory_attention_rope_feat_sizes=[side, side],
        memory_encoder_hidden_size=HIDDEN,
        mask_downsampler_embed_dim=HIDDEN,
        memory_fuser_embed_dim=HIDDEN,
        memory_fuser_intermediate_dim=64,
        memory_fuser_num_layers=1,
    )
    fields["memory_attention_mlp_hidden_size" if edgetam else "memory_attention_feed_forward_hidden_size"] = (
        64
    )
    return fields


def _heads(image_size: int, patch: int) -> tuple[dict, dict]:
    prompt = dict(hidden_size=HIDDEN, image_size=image_size, patch_size=patch, mask_input_channels=4)
    decoder = dict(
        hidden_size=HIDDEN, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32, num_hidden_layers=1
    )
    return prompt, decoder


def _finish(
    model: torch.nn.Module, seed: int, presence_bias: float, keep: str | None = None
) -> torch.nn.Module:
    """Redraw every weight except those under ``keep`` (EdgeTAM's RepViT keeps timm's initialisation: its
    batch norms need real statistics, and redrawn it maps every frame to near-identical features)."""
    kept = {k: v.clone() for k, v in model.state_dict().items() if keep and k.startswith(keep)}
    randomize(model, seed)
    model.load_state_dict(kept, strict=False)
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias += presence_bias
    return model.eval()


def build_sam2_video(seed: int = 0, image_size: int = 64, presence_bias: float = 1.0) -> tf.Sam2VideoModel:
    side = image_size // 4
    hiera = dict(
        hidden_size=16,
        num_attention_heads=1,
        image_size=[image_size, image_size],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 4, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = tf.Sam2VisionConfig(
        backbone_config=tf.Sam2HieraDetConfig(**hiera),
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[side, side], [side // 2, side // 2], [side // 4, side // 4]],
        fpn_hidden_size=HIDDEN,
    )
    prompt, decoder = _heads(image_size, 16)
    config = tf.Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=prompt,
        mask_decoder_config=decoder,
        **_memory_fields(image_size, 16),
    )
    torch.manual_seed(seed)
    return _finish(tf.Sam2VideoModel(config), seed, presence_bias)


def build_sam3_tracker_video(seed: int = 0, image_size: int = 56, presence_bias: float = 1.0):
    patch = 14
    side = image_size // patch
    vit = tf.Sam3ViTConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch,
        window_size=2,
        global_attn_indexes=[1],
        pretrain_image_size=image_size,
    )
    vision = tf.Sam3VisionConfig(
        backbone_config=vit,
        fpn_hidden_size=HIDDEN,
        backbone_feature_sizes=[[side * 4, side * 4], [side * 2, side * 2], [side, side]],
    )
    prompt, decoder = _heads(image_size, patch)
    config = tf.Sam3TrackerVideoConfig(
        vision_config=vision,
        prompt_encoder_config=prompt,
        mask_decoder_config=decoder,
        **_memory_fields(image_size, patch),
    )
    torch.manual_seed(seed)
    return _finish(tf.Sam3TrackerVideoModel(config), seed, presence_bias)


def build_edgetam_video(seed: int = 0, image_size: int = 64, presence_bias: float = 1.0):
    side = image_size // 4
    backbone = tf.TimmWrapperConfig(
        architecture="repvit_m1",
        model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]},
    )
    vision = tf.EdgeTamVisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[384, 192, 96, 48],
        fpn_hidden_size=HIDDEN,
        backbone_feature_sizes=[[side, side], [side // 2, side // 2], [side // 4, side // 4]],
    )
    prompt, decoder = _heads(image_size, 16)
    config = tf.EdgeTamVideoConfig(
        vision_config=vision,
        prompt_encoder_config=prompt,
        mask_decoder_config=decoder,
        memory_attention_rope_k_sizes=[2, 2],
        perceiver_resampler_num_latents=8,
        perceiver_resampler_num_latents_2d=4,
        perceiver_resampler_hidden_size=64,
        perceiver_resampler_mlp_intermediate_size=64,
        perceiver_resampler_attention_head_dim=64,
        perceiver_resampler_num_layers=1,
        **_memory_fields(image_size, 16, edgetam=True),
    )
    torch.manual_seed(seed)
    return _finish(tf.EdgeTamVideoModel(config), seed, presence_bias, keep="vision_encoder.backbone")


VIDEO_BUILDERS = {
    "sam2": build_sam2_video,
    "sam3_tracker": build_sam3_tracker_video,
    "edgetam": build_edgetam_video,
}


@functools.cache
def tiny_video_model(family: str = "sam2", seed: int = 0) -> torch.nn.Module:
    """One shared instance per family and seed (tracking never changes weights)."""
    return VIDEO_BUILDERS[family](seed)


@functools.cache
def tiny_tracker(family: str = "sam2", seed: int = 0, max_batch: int = 16):
    from robosam.video import VideoTracker

    return VideoTracker(tiny_video_model(family, seed), device="cpu", max_batch=max_batch)


# ------------------------------------------------------------------------------------------ videos
def synthetic_frames(count: int, hw: tuple[int, int] = FRAME_HW) -> list[np.ndarray]:
    """RGB uint8 frames of two coloured blocks moving over a gradient (no two frames alike)."""
    height, width = hw
    frames = []
    for t in range(count):
        frame = np.full((height, width, 3), 30, dtype=np.uint8)
        frame[:, :, 2] = np.linspace(0, 200, width, dtype=np.uint8)[None, :]
        x, y = 5 + (3 * t) % (width - 30), 8 + (2 * t) % (height - 28)
        frame[y : y + 18, x : x + 22] = (220, 180, 40)
        u = (width - 25) - (2 * t) % (width - 30)
        frame[height - 24 : height - 6, u : u + 20] = (40, 200, 90)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """An H.264 mp4 written with PyAV (key frame every 8 frames, B-frames on: seeking is exercised)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "8", "bf": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def decode_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video decoded in order with PyAV (independent of robosam's reader)."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def write_frames(folder: Path, frames: list[np.ndarray], suffix: str = ".png") -> Path:
    """Frames as image files named 0, 1, ... (not zero-padded: natural sort must order them)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index}{suffix}")
    return folder


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread when the machine is shared (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------ checks
@pytest.mark.parametrize("family", list(VIDEO_BUILDERS))
def test_tiny_video_models_track_distinct_objects(family: str) -> None:
    """Two objects prompted apart get different masks, and masks stay non-empty while tracking."""
    tracker = tiny_tracker(family)
    with tracker.session(synthetic_frames(6)) as session:
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        session.add(frame=0, obj_id=2, box=[50, 34, 75, 56])
        results = dict(session.propagate())
    assert tracker.family == family
    assert sorted(results) == list(range(6))
    assert all(track.mask.any() for tracks in results.values() for track in tracks.values())
    assert not np.array_equal(results[0][1].mask, results[0][2].mask)


# ------------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize("family", list(VIDEO_BUILDERS))
def test_tracker_loads_saved_folders_of_every_family(family: str, tmp_path: Path) -> None:
    from robosam.video import VideoTracker

    tiny_video_model(family).save_pretrained(tmp_path / family)
    tracker = VideoTracker(str(tmp_path / family), device="cpu")
    assert tracker.family == family and type(tracker.model) is type(tiny_video_model(family))
    with tracker.session(synthetic_frames(2)) as session:
        track = session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
    with tiny_tracker(family).session(synthetic_frames(2)) as session:
        reference = session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
    assert np.array_equal(track.mask, reference.mask)


def test_tracker_refuses_image_models_and_unknown_sources(tmp_path: Path) -> None:
    import tiny_models

    from robosam.errors import InputError
    from robosam.video import VideoTracker

    with pytest.raises(InputError, match="model"):
        VideoTracker(tiny_models.build_sam(), device="cpu")  # SAM 1 has no video model
    with pytest.raises(InputError, match="model"):
        VideoTracker(str(tmp_path / "nothing-here.pt"), device="cpu")
