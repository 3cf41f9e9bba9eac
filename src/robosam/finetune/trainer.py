"""The fine-tuning loop: frozen image encoder run once per image, prompt encoder + mask decoder trained.

``Finetuner(config).run()``:

1. open the datasets and hold out the validation images (``--val`` or ``--val-split``, whole DAVIS sequences);
2. load the model, freeze everything but the prompt encoder and mask decoder (or add LoRA to the decoder);
   for a family with a video model, keep the base's video-only weights, so ``OUT/best/`` also tracks;
3. embed every image once into the disk store (images stored by an earlier run, or an interrupted one, are
   read back instead), and turn each training image's masks into low-resolution targets;
4. score the untouched model on the validation images (the "before" mIoU);
5. per epoch: shuffle, and per batch of images draw each object's first prompt and correction clicks and
   train on SAM's loss over every decoder pass; then validate, save ``OUT/best/`` when the validation mIoU
   improves, and save the resumable state. A run started again with the same ``--out`` continues after the
   last finished epoch and, given the same settings, computes exactly what an uninterrupted run does.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robosam.cache import image_key
from robosam.data import ImageSample, load_dataset
from robosam.errors import InputError
from robosam.evaluation.report import prepare_out_dir
from robosam.finetune.checkpoints import (
    TrainState,
    load_state,
    recover_model_folder,
    restore_rng,
    rng_state,
    save_model_folder,
    save_state,
)
from robosam.finetune.config import FinetuneConfig
from robosam.finetune.decoding import decode_objects
from robosam.finetune.lora import add_lora, merged_state_dict, require_peft
from robosam.finetune.losses import sam_loss
from robosam.finetune.report import write_outputs
from robosam.finetune.sampling import (
    Targets,
    correction_click,
    first_prompt_kind,
    lowres_targets,
    sample_box,
    sample_point,
)
from robosam.finetune.store import EmbeddingStore, model_key
from robosam.finetune.tracker_weights import TrackerWeights
from robosam.finetune.validation import StoredPredictor, validate

ENCODE_BATCH = 4


@dataclass
class FinetuneEvent:
    """Progress of a run. stage: ``cache`` (an image embedded or found; done/total images), ``baseline``
    (validation before training), ``step`` (done/total steps of this run, with the step's loss), ``epoch``
    (an epoch finished: mean loss and validation mIoU)."""

    stage: str
    done: int
    total: int
    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    val_miou: float | None = None
    best: bool = False


@dataclass
class TrainImage:
    """A training image: its name, its store key and its objects in the decoder's frame."""

    name: str
    key: str
    targets: Targets


@dataclass
class FinetuneResult:
    """What a run leaves: the best model folder, the validation mIoU before and at best, every output."""

    out: Path
    best_dir: Path
    best_epoch: int
    best_miou: float
    before_miou: float
    metrics: dict[str, Any]
    files: dict[str, Path]


def split_validation(names: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, validation indices) holding out ``fraction`` of the groups, at least one.

    A group is a DAVIS sequence (sample names ``<sequence>/<frame>``) or a single image, so frames of one
    video never land on both sides.
    """
    groups = list(dict.fromkeys(name.split("/", 1)[0] for name in names))
    if len(groups) < 2:
        raise InputError(
            "--val-split", "a dataset of at least 2 images (or sequences), or --val DATASET", len(groups)
        )
    order = np.random.default_rng(seed).permutation(len(groups))
    count = min(len(groups) - 1, max(1, round(fraction * len(groups))))
    held = {groups[i] for i in order[:count]}
    train = [i for i, name in enumerate(names) if name.split("/", 1)[0] not in held]
    val = [i for i, name in enumerate(names) if name.split("/", 1)[0] in held]
    return train, val


def _rows(features: list[Any], rows: list[int]) -> Any:
    """Per-image features (each batch 1, same nesting) gathered into one batch, row r from image rows[r]."""
    first = features[0]
    if isinstance(first, torch.Tensor):
        if all(r == rows[0] for r in rows):
            return features[rows[0]]  # one image: ``decode_objects`` expands it without a copy
        return torch.cat([features[r] for r in rows])
    return type(first)(_rows([f[i] for f in features], rows) for i in range(len(first)))


class Finetuner:
    """One fine-tuning run (see the module docstring). ``on_event`` receives ``FinetuneEvent``s."""

    def __init__(self, config: FinetuneConfig, on_event: Callable[[FinetuneEvent], None] | None = None):
        config.validate()
        if config.lora is not None:
            require_peft()
        self.config = config
        self.on_event = on_event or (lambda event: None)
        self.out = Path(config.out)
        self.encoded = 0  # images this run sent through the image encoder

    # setup ----------------------------------------------------------------------------------------
    def _datasets(self) -> tuple[Any, list[int], Any, list[int]]:
        """(train dataset, its indices, validation dataset, its indices)."""
        train = load_dataset(self.config.data)
        if self.config.val is not None:
            val = load_dataset(self.config.val)
            return train, list(range(len(train))), val, list(range(len(val)))
        names = [train[i].name for i in range(len(train))]
        train_idx, val_idx = split_validation(names, self.config.val_split, self.config.seed)
        return train, train_idx, train, val_idx

    def _load_model(self) -> Any:
        from robosam.segmenter import Segmenter

        segmenter = Segmenter(self.config.model, device=self.config.device, cache_bytes=0, fast_decoder=False)
        model = segmenter.model
        if not all(hasattr(model, part) for part in ("prompt_encoder", "mask_decoder", "parameters")):
            raise InputError("--model", "a PyTorch SAM-family model (not an ONNX export)", self.config.model)
        return segmenter

    def _make_trainable(self, model: Any) -> dict[str, torch.nn.Parameter]:
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        if self.config.lora is not None:
            add_lora(model, self.config.lora)
        else:
            for part in (model.prompt_encoder, model.mask_decoder):
                for parameter in part.parameters():
                    parameter.requires_grad_(True)
        return {name: p for name, p in model.named_parameters() if p.requires_grad}

    def _embed_all(
        self, segmenter: Any, store: EmbeddingStore, samples: list[tuple[Any, int, bool]]
    ) -> tuple[list[TrainImage], list[ImageSample]]:
        """Store every image's features (encoding only those not stored yet, ``ENCODE_BATCH`` at a time);
        returns the training images with low-resolution targets and the validation samples."""
        train: list[TrainImage] = []
        val: list[ImageSample] = []
        pending: dict[str, np.ndarray] = {}

        def flush() -> None:
            if not pending:
                return
            keys, images = list(pending), list(pending.values())
            for key, image, embedding in zip(
                keys, images, segmenter.embed_batch(images, batch_size=ENCODE_BATCH)
            ):
                store.put(key, embedding.features, image.shape[:2])
            self.encoded += len(keys)
            pending.clear()

        for done, (dataset, index, is_train) in enumerate(samples, start=1):
            sample = dataset[index]
            image = sample.load_image()
            if sample.masks.shape[1:] != image.shape[:2]:
                raise InputError(
                    "data", f"masks of the image size {image.shape[:2]} for {sample.name}", sample.masks
                )
            key = image_key(image)
            if key not in store:
                pending[key] = image
            if is_train:
                geometry = segmenter.adapter.geometry(image.shape[:2])
                train.append(
                    TrainImage(sample.name, key, lowres_targets(sample.masks, geometry, sample.labels))
                )
            else:
                val.append(sample)
            if len(pending) >= ENCODE_BATCH:
                flush()
            self.on_event(FinetuneEvent("cache", done, len(samples)))
        flush()
        return train, val

    # training -------------------------------------------------------------------------------------
    def _step(self, batch: list[TrainImage]) -> float | None:
        """One optimizer step on a batch of images; returns the loss (None when no object survived)."""
        adapter, store, rng = self.segmenter.adapter, self.store, self.rng
        device = adapter.device
        row_image, targets, valids, scales = [], [], [], []
        points: list[list[np.ndarray]] = []
        labels: list[list[int]] = []
        boxes: list[np.ndarray | None] = []
        features = []
        for item in batch:
            count = len(item.targets.masks)
            if count == 0:
                continue
            chosen = rng.choice(count, size=min(count, self.config.max_objects), replace=False)
            features.append(store.get(item.key, device)[0])
            for j in np.sort(chosen):
                mask = item.targets.masks[j]
                row_image.append(len(features) - 1)
                targets.append(mask)
                valids.append(item.targets.valid)
                scales.append(item.targets.scale)
                if first_prompt_kind(self.config.prompts, rng) == "box":
                    boxes.append(sample_box(mask, item.targets.scale, rng))
                    points.append([])
                    labels.append([])
                else:
                    boxes.append(None)
                    points.append([sample_point(mask, item.targets.scale, rng)])
                    labels.append([1])
        if not row_image:
            return None
        rows = len(row_image)
        target_t = torch.from_numpy(np.stack(targets)).to(device)
        valid_t = torch.from_numpy(np.stack(valids)).to(device)
        passes = 1 + self.config.clicks
        total = torch.zeros((), device=device)
        previous: torch.Tensor | None = None
        for iteration in range(passes):
            groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
            for row in range(rows):
                groups[(len(points[row]), boxes[row] is not None)].append(row)
            chosen_logits = torch.empty((rows, *target_t.shape[1:]), device=device)
            for (num_points, has_box), indexes in groups.items():
                index_t = torch.tensor(indexes, device=device)
                output = decode_objects(
                    adapter,
                    _rows(features, [row_image[r] for r in indexes]),
                    torch.from_numpy(np.stack([np.stack(points[r]) for r in indexes]))
                    if num_points
                    else None,
                    torch.tensor([labels[r] for r in indexes]) if num_points else None,
                    torch.from_numpy(np.stack([boxes[r] for r in indexes])) if has_box else None,
                    None if previous is None else previous[index_t][:, None],
                    multimask=iteration == 0 and not has_box and num_points == 1,
                )
                terms = sam_loss(output.logits, output.scores, target_t[index_t], valid_t[index_t])
                total = total + terms.total.sum()
                with torch.no_grad():
                    pick = output.scores.argmax(dim=1)
                    chosen_logits[index_t] = output.logits[
                        torch.arange(len(indexes), device=device), pick
                    ].float()
            previous = chosen_logits.detach()
            if iteration + 1 < passes:
                predicted = (previous > 0).cpu().numpy()
                for row in range(rows):
                    point, label = correction_click(predicted[row], targets[row], valids[row], scales[row])
                    points[row].append(point)
                    labels[row].append(label)
        loss = total / (rows * passes)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.trainable.values()), self.config.grad_clip)
        self.optimizer.step()
        return float(loss.detach())

    def _set_train(self, model: Any, training: bool) -> None:
        model.prompt_encoder.train(training)
        model.mask_decoder.train(training)

    # the run --------------------------------------------------------------------------------------
    def run(self) -> FinetuneResult:
        """Train (or continue training) as configured; returns where everything went and the scores."""
        config = self.config
        train_set, train_idx, val_set, val_idx = self._datasets()
        prepare_out_dir(self.out)
        self.state_path = self.out / "state" / "last.pt"
        self.best_dir = self.out / "best"
        recover_model_folder(self.best_dir)
        saved = load_state(self.state_path)
        if saved is not None and (mismatch := config.resume_mismatch(saved.settings)):
            raise InputError(
                "--out",
                "a new folder, or the settings of the run saved there",
                str(self.out),
                detail="; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in mismatch.items()),
            )
        self.segmenter = self._load_model()
        self.tracker_weights = TrackerWeights.of_base(config.model, self.segmenter.model)
        self.store = EmbeddingStore(config.cache_path, model_key(self.segmenter.adapter))
        self.trainable = self._make_trainable(self.segmenter.model)
        self.optimizer = torch.optim.AdamW(
            list(self.trainable.values()), lr=config.lr, weight_decay=config.weight_decay
        )
        start = time.perf_counter()
        samples = [(train_set, i, True) for i in train_idx] + [(val_set, i, False) for i in val_idx]
        self.train, self.val = self._embed_all(self.segmenter, self.store, samples)
        self.cache_s = time.perf_counter() - start
        if not any(len(t.targets.masks) for t in self.train):
            raise InputError("data", "training images with at least one object mask", config.data)
        self.predictor = StoredPredictor(self.segmenter, self.store)

        finished = self._begin(saved)
        steps = math.ceil(len(self.train) / config.batch_size)
        self._steps_done, self._steps_total = 0, max(0, config.epochs - finished) * steps
        for epoch in range(finished + 1, config.epochs + 1):
            self._epoch(epoch, steps)

        metrics = self._metrics()
        files = write_outputs(self.out, metrics, plots=True)
        best = self.history["best"]
        return FinetuneResult(
            out=self.out,
            best_dir=self.best_dir,
            best_epoch=int(best["epoch"]),
            best_miou=float(best["mIoU"]),
            before_miou=float(self.history["before"]["mIoU"]),
            metrics=metrics,
            files={"best": self.best_dir, "state": self.state_path, **files},
        )

    def _begin(self, saved: TrainState | None) -> int:
        """A new run: score the model as loaded (epoch 0, also the first "best"). A resumed one: restore the
        weights, optimizer, generators and history. Returns the number of epochs already finished."""
        if saved is not None:
            self.history, self.rng = saved.history, restore_rng(saved.rng)
            self._restore(self.segmenter.model, saved)
            self.history["resumed_at"].append(saved.epoch)
            return saved.epoch
        self.rng = np.random.default_rng(self.config.seed)
        self._set_train(self.segmenter.model, False)
        self.on_event(FinetuneEvent("baseline", 0, 1))
        before = validate(self.predictor, self.val, self.config.prompts)
        self.history = {
            "before": before,
            "epochs": [],
            "steps": [],
            "best": {"epoch": 0, **before},
            "resumed_at": [],
        }
        self._save_best(0, before)
        self._save(0)
        return 0

    def _epoch(self, epoch: int, steps: int) -> None:
        """Train one epoch, validate, keep the best model, save the state and the metrics so far."""
        config, model = self.config, self.segmenter.model
        start = time.perf_counter()
        order = self.rng.permutation(len(self.train))
        self._set_train(model, True)
        losses = []
        for step in range(steps):
            batch = [self.train[i] for i in order[step * config.batch_size : (step + 1) * config.batch_size]]
            with torch.enable_grad():
                loss = self._step(batch)
            self._steps_done += 1
            if loss is not None:
                losses.append(loss)
                self.history["steps"].append({"epoch": epoch, "step": step + 1, "loss": loss})
            self.on_event(
                FinetuneEvent("step", self._steps_done, self._steps_total, epoch, config.epochs, loss)
            )
        train_s = time.perf_counter() - start
        self._set_train(model, False)
        scores = validate(self.predictor, self.val, config.prompts)
        improved = scores["mIoU"] > self.history["best"]["mIoU"]
        if improved:
            self.history["best"] = {"epoch": epoch, **scores}
            self._save_best(epoch, scores)
        mean_loss = float(np.mean(losses)) if losses else float("nan")
        self.history["epochs"].append(
            {
                "epoch": epoch,
                "train_loss": mean_loss,
                "val": scores,
                "train_s": train_s,
                "epoch_s": time.perf_counter() - start,
            }
        )
        self._save(epoch)
        write_outputs(self.out, self._metrics(), plots=False)
        self.on_event(
            FinetuneEvent(
                "epoch", epoch, config.epochs, epoch, config.epochs, mean_loss, scores["mIoU"], improved
            )
        )

    # persistence ----------------------------------------------------------------------------------
    def _save(self, epoch: int) -> None:
        save_state(
            TrainState(
                epoch=epoch,
                settings=self.config.settings(),
                trainable={k: v.detach() for k, v in self.trainable.items()},
                optimizer=self.optimizer.state_dict(),
                rng=rng_state(self.rng),
                torch_rng=torch.get_rng_state(),
                history=self.history,
            ),
            self.state_path,
        )

    def _restore(self, model: Any, saved: TrainState) -> None:
        missing = set(self.trainable) ^ set(saved.trainable)
        if missing:
            raise InputError(
                "--out",
                "a state saved by the same model and LoRA setting",
                str(self.out),
                detail=f"{len(missing)} parameters differ",
            )
        with torch.no_grad():
            for name, parameter in self.trainable.items():
                parameter.copy_(saved.trainable[name].to(parameter.device, parameter.dtype))
        self.optimizer.load_state_dict(saved.optimizer)
        torch.set_rng_state(saved.torch_rng)

    def _save_best(self, epoch: int, scores: dict[str, float]) -> None:
        segmenter = self.segmenter
        model = segmenter.model
        state = merged_state_dict(model) if self.config.lora is not None else None
        if self.tracker_weights is not None:  # saved as the video model: it loads as a tracker too
            state = self.tracker_weights.graft(state if state is not None else model.state_dict())
            model = self.tracker_weights.shell()
        info = {
            "epoch": epoch,
            "val": scores,
            "base_model": self.config.model,
            "prompts": self.config.prompts,
            "lora": self.config.lora,
            "tracker": self.tracker_weights is not None,
        }
        save_model_folder(
            model, segmenter.adapter.image_processor, self.best_dir, state_dict=state, info=info
        )

    def _metrics(self) -> dict[str, Any]:
        """The run's figures so far (the content of ``metrics.json``)."""
        config, history, train, val, store = self.config, self.history, self.train, self.val, self.store
        return {
            "title": f"robosam finetune: {config.model} on {config.data}",
            "settings": config.settings(),
            "data": {
                "train_images": len(train),
                "train_objects": int(sum(len(t.targets.masks) for t in train)),
                "val_images": len(val),
                "val_objects": int(sum(len(s.masks) for s in val)),
                "val_names": [s.name for s in val],
            },
            "cache": {
                "folder": str(store.folder),
                "images": len(train) + len(val),
                "encoded": self.encoded,
                "reused": len(train) + len(val) - self.encoded,
                "seconds": self.cache_s,
            },
            "trainable_parameters": int(sum(p.numel() for p in self.trainable.values())),
            "before": history["before"],
            "after": history["best"],
            "best_epoch": history["best"]["epoch"],
            "resumed_at": history["resumed_at"],
            "epochs": history["epochs"],
            "steps": history["steps"],
        }


def finetune(
    config: FinetuneConfig, on_event: Callable[[FinetuneEvent], None] | None = None
) -> FinetuneResult:
    """Run ``config`` (see ``Finetuner``)."""
    return Finetuner(config, on_event).run()
