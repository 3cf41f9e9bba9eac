"""The SAM 2 video step exported to ONNX and tracked by ONNX Runtime, against robosam's PyTorch tracker.

A tiny random-weight ``Sam2VideoModel`` (``test_video_models.build_sam2_video``) is saved, exported through
the CLI, and the same prompts are tracked by ``VideoTracker(model)`` (transformers' modules) and
``VideoTracker(folder)`` (ONNX Runtime, the memory bank held in numpy). The reference is the torch tracker,
tested on its own against transformers' and Meta's predictors. Measured here: per-frame mask IoU 1.0, scores
within 8e-7, low-resolution logits (mean magnitude 1.6) within 1.3e-4 of the torch tracker.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from test_video_models import build_sam2_video, mask_iou, one_torch_thread, synthetic_frames, write_frames

from robosam.errors import InputError
from robosam.export import read_manifest
from robosam.video import VideoTracker

pytest.importorskip("onnxruntime")
__all__ = ["one_torch_thread"]  # the fixture (autouse) runs tiny models on one thread

FRAMES = 8


@pytest.fixture(scope="module")
def model():
    return build_sam2_video()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video-onnx")
    model.save_pretrained(root / "torch")
    code = run_cli(["export", "onnx", "--model", str(root / "torch"), "--out", str(root / "onnx"),
                    "--no-fp16", "--no-check"])  # fmt: skip
    assert code == 0
    return root / "onnx"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return synthetic_frames(FRAMES)


def run_session(tracker: VideoTracker, frames: list[np.ndarray]) -> dict:
    """Two objects from frame 0 (click, box), a third from frame 3, a correction click on frame 5 and a
    re-propagation from there, then tracking backwards from frame 7: every kind of memory read."""
    logits: dict = {}
    with tracker.session(frames) as session:
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        session.add(frame=0, obj_id=2, box=[50, 34, 75, 56])
        session.add(frame=3, obj_id=3, points=[[40, 30], [10, 10]], labels=[1, 0])
        forward = dict(session.propagate())
        session.add(frame=5, obj_id=1, points=[[20, 20]], labels=[0])
        corrected = dict(session.propagate(start=5))
        session.add(frame=7, obj_id=4, points=[[60, 45]], labels=[1])
        backward = dict(session.propagate(start=7, reverse=True))
        for obj_id, memory in session.objects.items():
            for frame in range(FRAMES):
                record = memory.record(frame)
                if record is not None and record.logits is not None:
                    logits[obj_id, frame] = record.logits.numpy()
    return {"forward": forward, "corrected": corrected, "backward": backward, "logits": logits}


def test_manifest_describes_the_video_step(exported, model):
    manifest = read_manifest(exported)
    video = manifest["video"]
    assert video["num_maskmem"] == model.config.num_maskmem == 7
    assert video["max_object_pointers"] == model.config.max_object_pointers_in_encoder
    assert video["memory_dim"] == 64 and video["image_size"] == 64 and video["lowres_size"] == 16
    for graph in ("memory_attention", "memory_encoder", "video_decoder_multimask", "video_decoder_single"):
        assert (exported / manifest["graphs"][graph]["files"]["float32"]).is_file()
    attention = manifest["graphs"]["memory_attention"]
    assert [spec["name"] for spec in attention["inputs"]] == [
        "image_embeddings", "memory_features", "memory_offsets", "object_pointers", "pointer_offsets"
    ]  # fmt: skip
    assert attention["inputs"][1]["shape"] == ["objects", "memories", 16, 64]
    assert "encoder" in manifest["graphs"] and "decoder_multimask" in manifest["graphs"]  # images still work


def test_onnx_tracker_matches_pytorch_over_eight_frames(exported, model, frames):
    want = run_session(VideoTracker(model, device="cpu"), frames)
    got = run_session(VideoTracker(exported, device="cpu"), frames)
    for phase in ("forward", "corrected", "backward"):
        assert sorted(got[phase]) == sorted(want[phase])
        for frame, tracks in want[phase].items():
            assert sorted(got[phase][frame]) == sorted(tracks)
            for obj_id, track in tracks.items():
                other = got[phase][frame][obj_id]
                assert 0 < track.mask.sum() < track.mask.size  # a mask, not an empty or full frame
                assert mask_iou(other.mask, track.mask) >= 0.99, (phase, frame, obj_id)
                assert abs(other.score - track.score) < 1e-5
                assert other.visible == track.visible
    assert len(want["forward"]) == FRAMES and len(want["backward"]) == FRAMES
    # the correction on frame 5 changed object 1 and the tracking after it, in both backends
    assert mask_iou(want["corrected"][5][1].mask, want["forward"][5][1].mask) < 0.95
    assert got["logits"].keys() == want["logits"].keys()
    worst = max(np.abs(got["logits"][key] - want["logits"][key]).max() for key in want["logits"])
    assert worst < 5e-4


def test_live_stream_on_the_exported_folder(exported, model, frames):
    """Clicks, a box and a mask prompt (resized to the model's input), tracked live with pruning."""
    prompt_mask = np.zeros(frames[0].shape[:2], bool)
    prompt_mask[8:26, 5:27] = True  # the yellow block on frame 0
    masks = {}
    for name, source in (("torch", model), ("onnx", exported)):
        live = VideoTracker(source, device="cpu").stream()
        live.add(obj_id=1, points=[(15, 16)], labels=[1])
        live.add(obj_id=2, box=(50, 34, 75, 56))
        live.add(obj_id=3, mask=prompt_mask)
        masks[name] = [live.step(frame) for frame in frames]
    assert mask_iou(masks["torch"][0][3].mask, prompt_mask) > 0.9  # the mask prompt is the first mask
    for got, want in zip(masks["onnx"], masks["torch"]):
        assert sorted(got) == sorted(want) == [1, 2, 3]
        for obj_id in want:
            assert mask_iou(got[obj_id].mask, want[obj_id].mask) >= 0.99
            assert abs(got[obj_id].score - want[obj_id].score) < 1e-5


def test_track_cli_runs_the_exported_folder(exported, model, frames, tmp_path):
    folder = write_frames(tmp_path / "frames", frames)
    out = tmp_path / "out"
    code = run_cli(["track", str(folder), "--model", str(exported), "--point", "15,16", "--device", "cpu",
                    "--out", str(out), "--no-overlay"])  # fmt: skip
    assert code == 0
    log = json.loads((out / "tracks.json").read_text())
    assert len(list((out / "masks").glob("*.png"))) == FRAMES
    assert len(log["frames"]) == FRAMES
    with VideoTracker(model, device="cpu").session(frames) as session:
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        want = dict(session.propagate())
    from robosam.masks import read_mask_png

    for frame in (0, FRAMES - 1):
        got = read_mask_png(out / "masks" / f"{frame:05d}.png")  # one object: foreground is object 1
        assert mask_iou(got, want[frame][1].mask) >= 0.99


def test_bench_onnx_backend_reports_tracking_fps(exported):
    from robosam.bench import bench_model, synthetic_image

    result = bench_model(
        str(exported),
        device="cpu",
        backend="onnx",
        images=1,
        prompts=1,
        frames=3,
        image=synthetic_image(64, 96),
    )
    assert result["backend"] == "onnx" and result["family"] == "sam2"
    assert result["tracking_fps"] is not None and result["tracking_fps"] > 0
    assert "tracking_note" not in result


def test_folders_without_the_video_step_are_input_errors(exported, model, tmp_path):
    from robosam.export.onnx_export import export_onnx

    image_only = tmp_path / "image-only"
    export_onnx(str(exported.parent / "torch"), image_only, dtypes=("float32",), check=False, video=False)
    assert "video" not in read_manifest(image_only)
    with pytest.raises(InputError, match="video step"):
        VideoTracker(image_only, device="cpu")
    with pytest.raises(InputError, match="dtype"):
        VideoTracker(exported, device="cpu", dtype="bfloat16")
    image_model = tmp_path / "sam2-image"
    import tiny_models

    tiny_models.BUILDERS["sam2"]().save_pretrained(image_model)
    with pytest.raises(InputError, match="video"):  # an image model has no memory modules to export
        export_onnx(image_model, tmp_path / "x", dtypes=("float32",), check=False, video=True)
