"""The SAM 2 video step exported to ONNX and tracked by ONNX Runtime, against robosam's PyTorch tracker.

A tiny random-weight ``Sam2VideoModel`` (``test_video_models.build_sam2_video``) is saved, exported through
the CLI, and the same prompts are tracked by ``VideoTracker(model)`` (transformers' modules) and
``VideoTracker(folder)`` (ONNX Runtime, the memory bank held in numpy). The reference is the torch tracker,
tested on its own against transformers' and Meta's predictors. Measured here: per-frame mask IoU 1.0, scores
within 8e-7, low-resolution logits (mean magnitude 1.6) within 1.3e-4 of the torch tracker. The exported
folder also tracks in a process where torch and transformers cannot load (same masks, bit for bit), and the
ONNX engine's memory selection (``robosam.video.selection``) is checked against transformers' own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import run_cli
from test_video_models import build_sam2_video, mask_iou, one_torch_thread, synthetic_frames, write_frames

from robosam.errors import InputError
from robosam.export import read_manifest
from robosam.video import VideoTracker
from robosam.video.memory import FrameRecord, ModelView, ObjectMemory
from robosam.video.selection import memory_frames, object_pointers

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
                    logits[obj_id, frame] = np.asarray(record.logits)  # torch or numpy records
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


# The same prompts on a frame folder, as a session (forward, a correction, backwards) and a live stream
# (clicks, a box, a mask prompt); run in this process and in one where torch and transformers cannot load.
TRACK_FOLDER = """
import numpy as np
from robosam.video import VideoTracker


def track_folder(model, folder, count):
    masks = {}
    tracker = VideoTracker(model, device="cpu")
    with tracker.session(folder) as session:
        frame_hw = session.frame_size
        session.add(frame=0, obj_id=1, points=[[15, 16]], labels=[1])
        session.add(frame=0, obj_id=2, box=[50, 34, 75, 56])
        for frame, tracks in session.propagate():
            masks.update({f"session-{frame}-{k}": t.mask for k, t in tracks.items()})
        session.add(frame=5, obj_id=1, points=[[20, 20]], labels=[0])  # a correction
        for frame, tracks in session.propagate(start=5):
            masks.update({f"fixed-{frame}-{k}": t.mask for k, t in tracks.items()})
        session.add(frame=7, obj_id=3, points=[[60, 45]], labels=[1])
        for frame, tracks in session.propagate(start=7, reverse=True):
            masks.update({f"back-{frame}-{k}": t.mask for k, t in tracks.items()})
    live = tracker.stream()
    live.add(obj_id=1, points=[(15, 16)], labels=[1])
    live.add(obj_id=2, box=(50, 34, 75, 56))
    block = np.zeros(frame_hw, bool)
    block[8:26, 5:27] = True
    live.add(obj_id=3, mask=block)
    for frame in range(count):
        tracks = live.step(f"{folder}/{frame}.png")
        masks.update({f"live-{frame}-{k}": t.mask for k, t in tracks.items()})
    return masks
"""


def test_exported_folder_tracks_without_torch_or_transformers(exported, frames, tmp_path):
    """``VideoTracker(folder)`` sessions and live streams in a process where ``import torch`` fails and
    transformers is never imported; the masks equal this process's ONNX tracker's (itself tested against the
    torch tracker above)."""
    folder = write_frames(tmp_path / "frames", frames)
    namespace: dict = {}
    exec(TRACK_FOLDER, namespace)
    want = namespace["track_folder"](str(exported), str(folder), FRAMES)
    script = f"""
import sys
sys.modules["torch"] = None  # import torch raises ImportError
sys.modules["transformers"] = None
{TRACK_FOLDER}
masks = track_folder({str(exported)!r}, {str(folder)!r}, {FRAMES})
np.savez({str(tmp_path / "got.npz")!r}, **masks)
loaded = [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers") and sys.modules[m] is not None]
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    with np.load(tmp_path / "got.npz") as got:
        assert sorted(got.files) == sorted(want)
        for key, mask in want.items():
            assert np.array_equal(got[key], mask), key
    assert len([k for k in want if k.startswith("live-")]) == 3 * FRAMES
    assert len([k for k in want if k.startswith("fixed-")]) == 2 * (FRAMES - 5)
    assert (
        len([k for k in want if k.startswith("back-")]) == FRAMES + 2
    )  # object 3 on all, 1 and 2 on frame 0
    assert all(0 < want[f"live-{t}-3"].sum() < want[f"live-{t}-3"].size for t in range(FRAMES))


def _transformers_selector(num_maskmem: int, max_object_pointers: int, max_cond_frame_num: int):
    """transformers' own selection methods bound to a stand-in holding a configuration (eval mode)."""
    from transformers import Sam2VideoModel

    stand_in = SimpleNamespace(
        config=SimpleNamespace(
            max_cond_frame_num=max_cond_frame_num, max_object_pointers_in_encoder=max_object_pointers
        ),
        num_maskmem=num_maskmem,
        training=False,
    )
    stand_in._select_closest_cond_frames = Sam2VideoModel._select_closest_cond_frames.__get__(stand_in)
    return (
        Sam2VideoModel._gather_memory_frame_outputs.__get__(stand_in),
        Sam2VideoModel._get_object_pointers.__get__(stand_in),
    )


def test_memory_selection_matches_transformers():
    """``robosam.video.selection`` (what the ONNX engine reads) picks the same records, temporal offsets and
    pointer reach as ``Sam2VideoModel``'s methods on the same layouts: bank sizes, several conditioning
    frames (all kept or the closest few), gaps, both directions, videos and streams."""
    rng = np.random.default_rng(0)
    checked = 0
    for num_maskmem, max_pointers, max_cond in [(7, 16, -1), (3, 4, -1), (1, 1, -1), (7, 16, 2), (4, 6, 1)]:
        gather, pointers_of = _transformers_selector(num_maskmem, max_pointers, max_cond)
        for _ in range(40):
            memory = ObjectMemory(obj_id=1)
            frames = rng.permutation(30)
            for frame in frames[: rng.integers(1, 5)]:  # conditioning frames, in no particular order
                memory.cond[int(frame)] = _record()
            for frame in frames[5 : 5 + rng.integers(0, 25)]:  # tracked frames, with gaps
                memory.tracked[int(frame)] = _record()
            for frame in rng.integers(0, 30, size=3).tolist():
                for reverse in (False, True):
                    for horizon in (None, 30, 12):
                        view = ModelView(memory)
                        want = gather(view, 0, frame, reverse)
                        got = memory_frames(memory, frame, num_maskmem, max_cond, reverse)
                        assert [(o, id(r)) for o, r in got] == [(o, id(r)) for o, r in want]
                        want_p = pointers_of(view, 0, frame, horizon, "cpu", reverse, horizon is None)
                        got_p = object_pointers(memory, frame, horizon, max_pointers, reverse)
                        assert got_p[0] == want_p[0] and got_p[2] == want_p[2], (frame, reverse, horizon)
                        assert [id(p) for p in got_p[1]] == [id(p) for p in want_p[1]]
                        checked += 1
    assert checked == 5 * 40 * 3 * 2 * 3


def _record() -> FrameRecord:
    """A record whose pointer is its own tensor (transformers moves pointers with ``.to``: a no-op here)."""
    import torch

    return FrameRecord(
        object_pointer=torch.zeros(1, 1, 4),
        maskmem_features=torch.zeros(4, 1, 2),
        maskmem_pos_enc=None,
        logits=None,
        score=0.0,
        object_score=0.0,
    )
