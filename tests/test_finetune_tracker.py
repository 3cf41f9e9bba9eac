"""A SAM 2 fine-tuned from a video checkpoint: ``OUT/best/`` segments with the trained prompt path and tracks
with the base model's memory weights; a tracker load that would leave memory weights random is refused.

Base: the video issue's tiny ``Sam2VideoModel`` (width 128, every weight redrawn), saved as a folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_finetune import make_shapes
from test_video_models import synthetic_frames, tiny_video_model

from robosam.data import load_dataset
from robosam.errors import InputError
from robosam.evaluation import evaluate_images
from robosam.evaluation.protocols import SinglePromptProtocol
from robosam.finetune import FinetuneConfig, Finetuner
from robosam.finetune.tracker_weights import TrackerWeightsWarning
from robosam.models import load_model
from robosam.models.loading import MissingWeightsWarning
from robosam.segmenter import Segmenter
from robosam.video import VideoTracker

SETTINGS = dict(epochs=1, lr=1e-2, batch_size=1, clicks=1, prompts="box", device="cpu", seed=0)
PROMPT_PATH = ("prompt_encoder.", "mask_decoder.")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(tiny SAM 2 video model folder, 4 training images, 2 validation images)."""
    root = tmp_path_factory.mktemp("ft_video")
    tiny_video_model("sam2").save_pretrained(root / "base")
    return root / "base", make_shapes(root / "train", 4, seed=0), make_shapes(root / "val", 2, seed=1)


@pytest.fixture(scope="module")
def video_run(data, tmp_path_factory):
    """One epoch of fine-tuning from the tiny SAM 2 video folder; (result, trainer, base folder, val data)."""
    base, train, val = data
    out = tmp_path_factory.mktemp("ft_video_out")
    config = FinetuneConfig(data=train, val=val, model=base, out=out, **SETTINGS)
    trainer = Finetuner(config)
    result = trainer.run()
    assert result.best_epoch == 1  # the trained weights are the saved ones
    return result, trainer, base, val


def test_best_folder_segments_with_the_validation_score(video_run):
    result, _, _, val = video_run
    info = json.loads((result.best_dir / "robosam_finetune.json").read_text())
    assert info["tracker"] is True
    assert json.loads((result.best_dir / "config.json").read_text())["model_type"] == "sam2_video"
    segmenter = Segmenter(result.best_dir, device="cpu")
    assert type(segmenter.model).__name__ == "Sam2Model"
    summary = evaluate_images(segmenter, list(load_dataset(val)), SinglePromptProtocol(kind="box")).summary()
    assert summary["mIoU"] == pytest.approx(result.best_miou, abs=1e-6)  # --prompts box validates on boxes
    assert result.best_miou > result.before_miou + 0.3  # measured 0.12 -> 0.76


def test_best_folder_tracks_with_trained_prompt_path_and_base_memory(video_run):
    """Loaded as a tracker: prompt encoder and mask decoder are the trained tensors, every other tensor
    (image encoder, memory attention, memory encoder, object pointers, ...) is the base video model's."""
    result, trainer, _, _ = video_run
    loaded = load_model(result.best_dir, device="cpu", kind="tracker")
    assert type(loaded.model).__name__ == "Sam2VideoModel" and loaded.missing_weights == ()
    saved = loaded.model.state_dict()
    base = tiny_video_model("sam2").state_dict()
    trained = trainer.segmenter.model.state_dict()
    assert saved.keys() == base.keys()
    prompt_path = [n for n in saved if n.startswith(PROMPT_PATH)]
    assert any(not torch.equal(trained[n], base[n]) for n in prompt_path)  # training changed them
    for name in prompt_path:
        assert torch.equal(saved[name], trained[name]), name
    memory = [n for n in saved if n not in trained]
    assert any(n.startswith("memory_attention.") for n in memory)
    assert any(n.startswith("memory_encoder.") for n in memory)
    assert any(n.startswith("object_pointer_proj.") for n in memory)
    for name in saved:
        if not name.startswith(PROMPT_PATH):
            assert torch.equal(saved[name], base[name]), name


def test_video_tracker_runs_the_grafted_model(video_run):
    """``VideoTracker(OUT/best)`` tracks exactly like the base video model given the trained prompt path."""
    result, trainer, _, _ = video_run
    reference = type(tiny_video_model("sam2"))(tiny_video_model("sam2").config)
    reference.load_state_dict(tiny_video_model("sam2").state_dict())
    reference.load_state_dict(trainer.segmenter.model.state_dict(), strict=False)
    masks = {}
    for name, model in (("best", str(result.best_dir)), ("reference", reference.eval())):
        with VideoTracker(model, device="cpu").session(synthetic_frames(4)) as session:
            session.add(frame=0, obj_id=1, box=[5, 8, 27, 26])
            masks[name] = {f: t[1].mask for f, t in session.propagate()}
    assert sorted(masks["best"]) == [0, 1, 2, 3]
    assert any(mask.any() for mask in masks["best"].values())
    for frame, mask in masks["best"].items():
        assert np.array_equal(mask, masks["reference"][frame]), frame


def test_tracker_load_of_an_image_only_folder_warns_and_tracking_refuses(tiny_model_dirs):
    """An image-only SAM 2 folder as a tracker: ``load_model`` warns and lists the random tensors;
    ``VideoTracker`` (``robosam track``, serve, eval) refuses it."""
    with pytest.warns(
        MissingWeightsWarning, match=r"lacks \d+ weights of Sam2VideoModel \(.*memory_attention"
    ):
        loaded = load_model(tiny_model_dirs["sam2"], device="cpu", kind="tracker")
    assert any(n.startswith("memory_attention.") for n in loaded.missing_weights)
    with pytest.raises(InputError, match="^model: expected a video checkpoint holding the memory weights"):
        with pytest.warns(MissingWeightsWarning):
            VideoTracker(str(tiny_model_dirs["sam2"]), device="cpu")


def test_fine_tuning_an_image_only_base_warns_and_saves_a_segmenter(data, tiny_model_dirs, tmp_path: Path):
    """No video weights to graft: a clear warning, ``tracker: false``, and the folder is the image model."""
    _, train, val = data
    config = FinetuneConfig(
        data=train, val=val, model=tiny_model_dirs["sam2"], out=tmp_path / "out", **SETTINGS
    )
    with pytest.warns(TrackerWeightsWarning, match="will load as a segmenter only"):
        result = Finetuner(config).run()
    assert json.loads((result.best_dir / "robosam_finetune.json").read_text())["tracker"] is False
    assert json.loads((result.best_dir / "config.json").read_text())["model_type"] == "sam2"


def test_lora_updates_are_merged_into_the_grafted_folder(data, tmp_path: Path):
    """With LoRA on the decoder, the tracker folder holds the merged decoder weights beside base memory."""
    pytest.importorskip("peft")
    from robosam.finetune.lora import merged_state_dict

    base, train, val = data
    config = FinetuneConfig(
        data=train, val=val, model=base, out=tmp_path / "out", lora=2, **{**SETTINGS, "lr": 5e-2}
    )
    torch.manual_seed(0)  # peft draws lora_A from torch's generator
    trainer = Finetuner(config)
    result = trainer.run()
    assert result.best_epoch == 1 and result.best_miou > result.before_miou + 0.3  # measured 0.12 -> 0.74
    merged = merged_state_dict(trainer.segmenter.model)
    saved = load_model(result.best_dir, device="cpu", kind="tracker").model.state_dict()
    base_state = tiny_video_model("sam2").state_dict()
    changed = [n for n in merged if not torch.equal(merged[n], base_state[n])]
    assert changed and all(n.startswith("mask_decoder.") for n in changed)
    for name, tensor in saved.items():
        assert torch.equal(tensor, merged.get(name, base_state[name])), name
