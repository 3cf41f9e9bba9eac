"""What a fine-tuning run keeps on disk: its resumable state and the best model as a transformers folder.

``OUT/state/last.pt``: after every epoch, the trainable tensors, the optimizer, the random generators, the
history and the settings, written atomically (a kill leaves the previous epoch's file). It is read with
``torch.load(weights_only=True)``: tensors and plain values only, everything else as JSON text.
``OUT/best/``: ``save_pretrained`` of the model (LoRA merged) and its image processor, plus
``robosam_finetune.json`` (epoch, validation mIoU, whether it tracks); replaced as a whole, so it is always
one complete model. Fine-tuned from a video checkpoint (SAM 2 / 2.1, SAM 3 tracker, EdgeTAM), the folder is
the video model: the trained tensors grafted onto the base's memory weights (``tracker_weights``), so it
loads as a segmenter and as a tracker.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robosam.errors import InputError
from robosam.io import atomic_write, write_json_atomic

STATE_VERSION = 1
BEST_INFO = "robosam_finetune.json"


@dataclass
class TrainState:
    """Everything needed to continue a run after its last finished epoch.

    epoch: epochs finished (0: only the baseline validation). settings: what must match to resume.
    trainable: parameter name -> tensor (the tensors that train). optimizer: its ``state_dict``.
    rng: numpy ``bit_generator.state``; torch_rng: ``torch.get_rng_state()``.
    history: JSON-ready record of the run so far (baseline, epochs, step losses, best).
    """

    epoch: int
    settings: dict[str, Any]
    trainable: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    torch_rng: torch.Tensor
    history: dict[str, Any] = field(default_factory=dict)


def save_state(state: TrainState, path: str | os.PathLike) -> Path:
    """Write ``state`` atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": STATE_VERSION,
        "epoch": state.epoch,
        "settings": json.dumps(state.settings),
        "trainable": {k: v.detach().cpu() for k, v in state.trainable.items()},
        "optimizer": state.optimizer,
        "rng": json.dumps(state.rng),
        "torch_rng": state.torch_rng,
        "history": json.dumps(state.history),
    }
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_state(path: str | os.PathLike) -> TrainState | None:
    """The state saved at ``path``, or None when there is none. A damaged file is an ``InputError``."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return TrainState(
            epoch=int(payload["epoch"]),
            settings=json.loads(payload["settings"]),
            trainable=dict(payload["trainable"]),
            optimizer=payload["optimizer"],
            rng=json.loads(payload["rng"]),
            torch_rng=payload["torch_rng"],
            history=json.loads(payload["history"]),
        )
    except Exception as error:  # noqa: BLE001 - any unreadable state means the same to the user
        raise InputError(
            "--out", "a folder whose state/last.pt a previous run wrote", str(path), detail=str(error)
        ) from error


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def restore_rng(state: dict[str, Any]) -> np.random.Generator:
    generator = np.random.Generator(getattr(np.random, state["bit_generator"])())
    generator.bit_generator.state = state
    return generator


def save_model_folder(
    model: Any,
    image_processor: Any,
    folder: str | os.PathLike,
    state_dict: dict[str, torch.Tensor] | None = None,
    info: dict[str, Any] | None = None,
) -> Path:
    """``save_pretrained`` of ``model`` (with ``state_dict`` instead of its own when given) and its image
    processor into ``folder``, replacing what was there only once the new folder is complete."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    old = folder.with_name(f".{folder.name}.old")
    try:
        model.save_pretrained(tmp, state_dict=state_dict)
        if image_processor is not None:
            image_processor.save_pretrained(tmp)
        if info is not None:
            write_json_atomic(info, tmp / BEST_INFO)
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return folder


def recover_model_folder(folder: str | os.PathLike) -> None:
    """Finish a replacement a kill interrupted: bring back the previous folder, drop half-written ones."""
    folder = Path(folder)
    old = folder.with_name(f".{folder.name}.old")
    if not folder.exists() and old.is_dir():
        old.rename(folder)
    for tmp in folder.parent.glob(f".{folder.name}.*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
