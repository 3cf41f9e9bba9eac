"""SAM 3 video's native concept tracking behind TextTracker's API, on a tiny random ``Sam3VideoModel``.

A tiny config runs in transformers 5.24 when the detector's FPN width equals the tracker's mask-decoder width
(the tracker neck is built from the detector's vision config and feeds the tracker's decoder: with 32 vs 128
it fails in ``Sam3VideoModel.get_vision_features_for_tracker``, ``mask_decoder.conv_s0``: "weight of size
[16, 128, 1, 1], expected input[1, 32, 16, 16] to have 128 channels"), and the tracker's width is above its
64-channel memory. With random weights SAM 3 finds new objects on every frame (its tracked masks match no
detection), so ids cannot be judged; the plumbing is checked against transformers' own streaming outputs,
computed directly in the test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from test_grounding_tiny import _clip_text, clip_tokenizer
from test_video_models import (
    _heads,
    _memory_fields,
    one_torch_thread,  # noqa: F401 - autouse fixture
    synthetic_frames,
)

from robosam.errors import InputError
from robosam.grounding.sam3_video import Sam3VideoTextTracker, is_sam3_video

WIDTH = 128  # detector FPN = tracker decoder width (see the module docstring)
IMAGE, PATCH = 56, 14


def build_sam3_video(folder: Path, seed: int = 0) -> Path:
    tokenizer = clip_tokenizer(folder)
    side = IMAGE // PATCH
    vit = tf.Sam3ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=IMAGE,
        patch_size=PATCH, window_size=2, global_attn_indexes=[1], pretrain_image_size=IMAGE,
    )  # fmt: skip
    vision = tf.Sam3VisionConfig(
        backbone_config=vit, fpn_hidden_size=WIDTH,
        backbone_feature_sizes=[[side * 4, side * 4], [side * 2, side * 2], [side, side]],
    )  # fmt: skip
    small = dict(hidden_size=WIDTH, num_layers=1, num_attention_heads=2, intermediate_size=64)
    detector = tf.Sam3Config(
        vision_config=vision, text_config=tf.CLIPTextConfig(**_clip_text(tokenizer, projection_dim=WIDTH)),
        geometry_encoder_config=small, detr_encoder_config=small,
        detr_decoder_config={**small, "num_queries": 8},
        mask_decoder_config=dict(hidden_size=WIDTH, num_attention_heads=2),
    )  # fmt: skip
    prompt, decoder = _heads(IMAGE, PATCH)
    tracker = tf.Sam3TrackerVideoConfig(
        vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder,
        **_memory_fields(IMAGE, PATCH),
    )  # fmt: skip
    config = tf.Sam3VideoConfig(
        detector_config=detector.to_dict(), tracker_config=tracker.to_dict(), low_res_mask_size=4 * side,
        score_threshold_detection=0.0, new_det_thresh=0.0, hotstart_delay=2, hotstart_unmatch_thresh=1,
        hotstart_dup_thresh=1,
    )  # fmt: skip
    torch.manual_seed(seed)
    tf.Sam3VideoModel(config).eval().save_pretrained(folder)
    size = {"height": IMAGE, "width": IMAGE}
    tf.Sam3VideoProcessor(
        image_processor=tf.Sam3ImageProcessor(size=size),
        video_processor=tf.Sam2VideoVideoProcessor(size=size),
        tokenizer=tokenizer,
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sam3_video_dir(tmp_path_factory) -> Path:
    return build_sam3_video(tmp_path_factory.mktemp("sam3_video"))


def transformers_stream(folder: Path, frames, phrases) -> list[dict]:
    """transformers' own streaming loop: the model card's recipe, hot-start removals hidden as its
    ``propagate_in_video_iterator`` does."""
    model = tf.Sam3VideoModel.from_pretrained(folder).eval()
    processor = tf.Sam3VideoProcessor.from_pretrained(folder)
    session = processor.init_video_session(inference_device="cpu", dtype=torch.float32)
    processor.add_text_prompt(session, phrases)
    outputs = []
    with torch.inference_mode():
        for frame in frames:
            inputs = processor(images=frame, return_tensors="pt")
            out = model(inference_session=session, frame=inputs.pixel_values[0])
            session.hotstart_removed_obj_ids.update(out.removed_obj_ids)
            post = processor.postprocess_outputs(session, out, original_sizes=inputs.original_sizes)
            outputs.append(post)
    return outputs


def test_sam3_video_tracker_gives_transformers_outputs_as_tracks(sam3_video_dir: Path):
    assert is_sam3_video(sam3_video_dir)
    frames = synthetic_frames(4)
    tracker = Sam3VideoTextTracker(sam3_video_dir, "red cup. box", device="cpu")
    results = [result for _, result in tracker.run(frames)]
    expected = transformers_stream(sam3_video_dir, frames, ["red cup", "box"])
    for result, post in zip(results, expected):
        ids = post["object_ids"].numpy()
        assert len(ids) > 0  # detections exist on every frame
        np.testing.assert_array_equal(result.track_ids, ids + 1)  # SAM 3's ids, shifted off 0
        np.testing.assert_array_equal(result.masks, post["masks"].numpy())
        np.testing.assert_allclose(result.scores, post["scores"].numpy(), atol=1e-6)
        phrase = {i: text for text, members in post["prompt_to_obj_ids"].items() for i in members}
        assert list(result.labels) == [phrase[i] for i in ids.tolist()]
        assert result.masks.shape[1:] == (60, 80)
    assert set(np.concatenate([r.labels for r in results])) <= {"red cup", "box"}


def test_sam3_video_tracker_errors(sam3_video_dir: Path, tmp_path: Path):
    with pytest.raises(InputError, match="text"):
        Sam3VideoTextTracker(sam3_video_dir, "  ", device="cpu")
    with pytest.raises(InputError, match="box_threshold"):
        Sam3VideoTextTracker(sam3_video_dir, "box", box_threshold=-0.1, device="cpu")
    (tmp_path / "config.json").write_text('{"model_type": "sam2_video"}')
    with pytest.raises(InputError, match="SAM 3 video model"):
        Sam3VideoTextTracker(tmp_path, "box", device="cpu")
    model = tf.Sam3VideoModel.from_pretrained(sam3_video_dir)
    with pytest.raises(InputError, match="processor"):
        Sam3VideoTextTracker(model, "box")
    tracker = Sam3VideoTextTracker(sam3_video_dir, "box", box_threshold=0.5, device="cpu")
    assert tracker.model.score_threshold_detection == 0.5 == tracker.model.new_det_thresh
    tracker.step(synthetic_frames(1)[0])
    with pytest.raises(InputError, match="frame size"):
        tracker.step(np.zeros((30, 40, 3), np.uint8))


def test_text_tracker_factory_picks_native_tracking_for_a_sam3_video_model(sam3_video_dir: Path):
    from robosam.grounding.sam3_video import native_source
    from robosam.grounding.tracking import text_tracker

    tracker = text_tracker("box", sam3_video_dir, live="ignored", device="cpu", box_threshold=0.25, every=3)
    assert isinstance(tracker, Sam3VideoTextTracker) and tracker.model.new_det_thresh == 0.25
    assert native_source("sam3") == "facebook/sam3"  # the preset's repository holds the video model
    assert native_source("grounding-dino-tiny") is None and native_source(sam3_video_dir.parent) is None
