"""The settings of a fine-tuning run, validated before anything heavy loads."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robosam.errors import InputError
from robosam.finetune.sampling import PROMPT_KINDS, PromptKind

RESUME_FREE = ("epochs", "device", "out", "cache_dir")
"""Settings a resumed run may change; any other difference means a different run."""


@dataclass
class FinetuneConfig:
    """One fine-tuning run.

    data: training dataset (anything ``robosam.data.load_dataset`` reads). model: preset, hub id, folder or
    checkpoint. out: output folder (state, best model, metrics, report). val: a separate validation dataset,
    else ``val_split`` of the training images (grouped by sequence for DAVIS) is held out.
    epochs: passes over the training images. lr / weight_decay: AdamW. batch_size: images per optimizer
    step (every object of each, up to ``max_objects`` drawn at random). lora: LoRA rank on the mask decoder
    (None: train the prompt encoder and mask decoder in full). prompts: first prompt of each object (box,
    point, or mixed 50/50). clicks: correction clicks after it (each one more decoder pass with the previous
    logits as mask input). grad_clip: max gradient norm. seed: prompt sampling and shuffling.
    cache_dir: embedding store (default ``OUT/embeddings``).
    """

    data: str
    model: str
    out: str
    val: str | None = None
    val_split: float = 0.15
    epochs: int = 10
    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 4
    lora: int | None = None
    prompts: PromptKind = "mixed"
    clicks: int = 2
    max_objects: int = 16
    grad_clip: float = 1.0
    device: str = "auto"
    seed: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        self.data, self.model, self.out = str(self.data), str(self.model), str(self.out)
        self.val = None if self.val is None else str(self.val)
        self.cache_dir = None if self.cache_dir is None else str(self.cache_dir)

    def validate(self) -> None:
        """Raise ``InputError`` for the first bad setting (paths are checked by the dataset readers)."""
        _positive_int(self.epochs, "--epochs")
        _positive_int(self.batch_size, "--batch-size")
        _positive_int(self.max_objects, "--max-objects")
        if not isinstance(self.clicks, int) or self.clicks < 0:
            raise InputError("--clicks", "an integer >= 0", self.clicks)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise InputError("--lr", "a positive learning rate", self.lr)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise InputError("--weight-decay", "a non-negative number", self.weight_decay)
        if not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise InputError("--grad-clip", "a positive gradient norm", self.grad_clip)
        if self.lora is not None:
            _positive_int(self.lora, "--lora")
        if self.prompts not in PROMPT_KINDS:
            raise InputError("--prompts", " or ".join(PROMPT_KINDS), self.prompts)
        if self.val is None and not (0.0 < self.val_split < 1.0):
            raise InputError("--val-split", "a fraction between 0 and 1 (or --val DATASET)", self.val_split)
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise InputError("--out", "a folder path (created if missing)", str(out))

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.out) / "embeddings"

    def settings(self) -> dict[str, Any]:
        """All settings as JSON-ready values."""
        return asdict(self)

    def resume_mismatch(self, saved: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Settings that differ from a saved run's (name -> (saved, now)), ignoring ``RESUME_FREE``."""
        now = self.settings()
        return {
            key: (saved.get(key), value)
            for key, value in now.items()
            if key not in RESUME_FREE and saved.get(key) != value
        }


def _positive_int(value: Any, argument: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(argument, "an integer >= 1", value)
