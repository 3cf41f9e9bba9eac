"""Fine-tuning end to end on synthetic coloured shapes with tiny random-weight models.

Measured (tiny SAM 2, 8 training / 4 validation images, 4 epochs, mixed prompts, lr 1e-2, one thread):
mean training loss 2.6 in epoch 1 -> 1.3 in epoch 4; validation mIoU 0.18 before -> 0.77 at best.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import run_cli
from PIL import Image

from robosam.data import load_dataset
from robosam.evaluation import evaluate_images
from robosam.evaluation.protocols import SinglePromptProtocol
from robosam.finetune import FinetuneConfig, FinetuneEvent, Finetuner
from robosam.finetune.checkpoints import load_state
from robosam.models.families.sam2 import Sam2Adapter
from robosam.segmenter import Segmenter

EPOCHS = 4
SETTINGS = dict(epochs=EPOCHS, lr=1e-2, batch_size=1, clicks=1, prompts="mixed", device="cpu", seed=0)


def make_shapes(root: Path, count: int, seed: int, size: int = 96) -> Path:
    """``root/images`` + ``root/masks``: one filled rectangle or ellipse of a bright colour on dark noise."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        a, b = (int(v) for v in rng.integers(16, 34, 2))
        cx, cy = int(rng.integers(a, size - a)), int(rng.integers(b, size - b))
        if rng.random() < 0.5:
            cv2.rectangle(mask, (cx - a, cy - b), (cx + a, cy + b), 1, -1)
        else:
            cv2.ellipse(mask, (cx, cy), (a, b), 0, 0, 360, 1, -1)
        image[mask > 0] = rng.integers(120, 256, 3)
        Image.fromarray(image).save(root / "images" / f"shape{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"shape{i:02d}.png")
    return root


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread: fastest for tiny models on a shared machine, and the same arithmetic as the subprocess."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    return {"train": make_shapes(root / "train", 8, seed=0), "val": make_shapes(root / "val", 4, seed=1)}


@pytest.fixture(scope="module")
def sam2_run(shapes, tiny_model_dirs, tmp_path_factory):
    """A full fine-tuning run of the tiny SAM 2, counting the images its encoder sees at every event."""
    out = tmp_path_factory.mktemp("ft") / "sam2"
    encoded = {"images": 0}
    original = Sam2Adapter.encode

    def counting(self, pixel_values):
        encoded["images"] += pixel_values.shape[0]
        return original(self, pixel_values)

    seen: list[tuple[FinetuneEvent, int]] = []
    config = FinetuneConfig(
        data=shapes["train"], val=shapes["val"], model=tiny_model_dirs["sam2"], out=out,
        cache_dir=out.parent / "cache", **SETTINGS,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Sam2Adapter, "encode", counting)
        result = Finetuner(config, lambda event: seen.append((event, encoded["images"]))).run()
    return result, seen, config


def test_training_lowers_the_loss_and_raises_validation_iou(sam2_run):
    result, _, _ = sam2_run
    losses = [e["train_loss"] for e in result.metrics["epochs"]]
    assert len(losses) == EPOCHS
    assert losses[-1] < 0.65 * losses[0]  # measured 1.29 / 2.61 = 0.49
    assert result.best_miou > result.before_miou + 0.4  # measured 0.18 -> 0.77
    assert result.best_epoch >= 1
    metrics = json.loads((result.out / "metrics.json").read_text())
    assert metrics["before"]["mIoU"] == pytest.approx(result.before_miou)
    assert metrics["after"]["mIoU"] == pytest.approx(result.best_miou)
    assert {"mIoU_box", "mIoU_center"} <= set(metrics["after"])
    assert (result.out / "report.md").read_text().count("Validation mIoU") == 1
    png = result.out / "loss_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(png).size[0] > 300


def test_embeddings_are_computed_once(sam2_run):
    """12 images (8 train + 4 val) go through the encoder once, before the first step; no epoch re-encodes."""
    result, seen, _ = sam2_run
    first_step = next(count for event, count in seen if event.stage == "step")
    assert first_step == 12
    assert all(count == 12 for event, count in seen if event.stage in ("step", "epoch"))
    assert result.metrics["cache"]["encoded"] == 12
    assert len(list(Path(result.metrics["cache"]["folder"]).glob("*.safetensors"))) == 12


def test_best_checkpoint_reloads_and_reproduces_its_score(sam2_run, shapes):
    """``Segmenter(OUT/best)`` (its own encoder run, processor from the folder) scored by the evaluation
    toolkit gives the validation mIoU recorded for the best epoch."""
    result, _, _ = sam2_run
    info = json.loads((result.best_dir / "robosam_finetune.json").read_text())
    assert info["epoch"] == result.best_epoch
    segmenter = Segmenter(result.best_dir, device="cpu")
    samples = list(load_dataset(shapes["val"]))
    scores = [
        evaluate_images(segmenter, samples, SinglePromptProtocol(kind=kind)).summary()["mIoU"]
        for kind in ("box", "center")
    ]
    assert float(np.mean(scores)) == pytest.approx(result.best_miou, abs=1e-6)


def test_killed_run_resumes_where_it_stopped(sam2_run, shapes, tiny_model_dirs, tmp_path):
    """SIGKILL after the first epoch's state appears; the same command continues from the last finished
    epoch and, with the same settings, ends where the uninterrupted run ended."""
    reference, _, config = sam2_run
    out = tmp_path / "killed"
    args = [
        "finetune", "--data", str(shapes["train"]), "--val", str(shapes["val"]), "--model",
        str(tiny_model_dirs["sam2"]), "--out", str(out), "--cache-dir", str(config.cache_path),
        "--epochs", str(EPOCHS), "--lr", "0.01", "--batch-size", "1", "--clicks", "1", "--prompts", "mixed",
        "--device", "cpu", "--seed", "0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "robosam.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while not (out / "metrics.json").exists():  # written right after the first epoch's state
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    killed_at = load_state(out / "state" / "last.pt").epoch
    assert 1 <= killed_at < EPOCHS

    assert run_cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_at"] == [killed_at]
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, EPOCHS + 1))
    assert metrics["cache"]["encoded"] == 0  # the store from before the kill (and the reference run)
    expected = reference.metrics
    np.testing.assert_allclose(
        [s["loss"] for s in metrics["steps"]], [s["loss"] for s in expected["steps"]], rtol=1e-5
    )
    assert metrics["after"]["mIoU"] == pytest.approx(expected["after"]["mIoU"], abs=1e-6)
    assert Segmenter(out / "best", device="cpu").model.config.model_type == "sam2"


def test_lora_trains_only_the_adapters_on_sam1(shapes, tiny_model_dirs, tmp_path):
    """SAM 1 with LoRA rank 2: only lora_A / lora_B change, the loss falls, and the saved folder (adapters
    merged) decodes like the adapted model."""
    pytest.importorskip("peft")
    from robosam.finetune.lora import lora_layers

    config = FinetuneConfig(
        data=shapes["train"], val=shapes["val"], model=tiny_model_dirs["sam"], out=tmp_path / "lora", lora=2,
        **{**SETTINGS, "epochs": 2},
    )  # fmt: skip
    trainer = Finetuner(config)
    result = trainer.run()
    model = trainer.segmenter.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert len(lora_layers(model)) == sum(1 for n in trainable if ".lora_A." in n) > 40
    assert result.metrics["trainable_parameters"] == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )
    original = Segmenter(tiny_model_dirs["sam"], device="cpu").model.state_dict()
    for name, tensor in model.state_dict().items():
        if ".lora_" not in name:
            assert torch.equal(tensor, original[name.replace(".base_layer.", ".")]), name
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if ".lora_B." in n)  # zero at start
    losses = [e["train_loss"] for e in result.metrics["epochs"]]
    assert losses[-1] < losses[0]

    from robosam.finetune.checkpoints import save_model_folder
    from robosam.finetune.lora import merged_state_dict

    merged_dir = save_model_folder(model, None, tmp_path / "merged", state_dict=merged_state_dict(model))
    merged = Segmenter(merged_dir, device="cpu", fast_decoder=False)
    image = np.asarray(Image.open(next((shapes["val"] / "images").iterdir())).convert("RGB"))
    emb = trainer.segmenter.embed(image)
    with torch.no_grad():
        adapted = trainer.segmenter.decode(emb, box=[20, 20, 70, 70], upscale=False)
        again = merged.decode(merged.embed(image), box=[20, 20, 70, 70], upscale=False)
    np.testing.assert_allclose(again.logits, adapted.logits, atol=1e-4)
