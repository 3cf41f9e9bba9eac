"""The tracking engine on an exported folder: the SAM 2 / 2.1 video step in ONNX Runtime, the memory bank here.

``OnnxTrackingEngine`` has ``TrackingEngine``'s interface (``facts``, ``features``, ``step``), so sessions and
live streams (``robosam.video.session`` / ``live``) run on it unchanged, with the same memory records, prompt
rules and retention; its records hold numpy arrays. Every network runs in ONNX Runtime on numpy arrays
(graphs in ``robosam.export.video_graphs``); which memories and pointers an object reads is chosen by
``robosam.video.selection`` (the rule ``robosam.json`` documents, tested against transformers' own
``Sam2VideoModel._gather_memory_frame_outputs`` / ``_get_object_pointers``). Nothing here imports torch or
transformers: an exported folder tracks in a deployment with neither. Prompts: clicks, boxes and masks, as on
the torch engine.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from robosam.errors import InputError
from robosam.onnx_runtime import OnnxModel
from robosam.video.jobs import CORRECTION_LOGIT_CLAMP, Job
from robosam.video.loading import VideoModelFacts
from robosam.video.memory import FrameRecord, ObjectMemory
from robosam.video.prompts import VideoPrompt
from robosam.video.selection import memory_frames, object_pointers


@dataclass
class OnnxFrameFeatures:
    """``encoder.onnx`` outputs for one frame: image_embeddings (1, C, h, w) (no-memory embedding included)
    and the two high-resolution maps (1, C_l, H_l, W_l)."""

    image_embeddings: np.ndarray
    high_res: list[np.ndarray]


@dataclass
class Bank:
    """One object's memory for ``memory_attention.onnx``: features (T, h*w, D), offsets (T,) int64, pointers
    (P, C), pointer_offsets (P,) float32 (normalised temporal distances)."""

    features: np.ndarray
    offsets: np.ndarray
    pointers: np.ndarray
    pointer_offsets: np.ndarray

    @property
    def signature(self) -> tuple[int, int]:
        return (len(self.offsets), len(self.pointer_offsets))


@dataclass
class Decoded:
    """Outputs of a video decoder graph for B objects (see ``robosam.export.video_graphs``)."""

    logits: np.ndarray
    high_res: np.ndarray
    scores: np.ndarray
    pointers: np.ndarray
    object_scores: np.ndarray


class OnnxTrackingEngine:
    """Drop-in for ``TrackingEngine`` on a folder written by ``robosam export onnx`` from a SAM 2 video model.

    device: ``auto``, ``cpu``, ``cuda`` (ONNX Runtime execution providers, see ``choose_providers``).
    max_batch: most objects in one batched call. threads: intra-op threads per session (0: default).
    """

    def __init__(self, folder: Any, device: str = "auto", max_batch: int = 16, threads: int = 0):
        self.runtime = OnnxModel(folder, device=str(device), dtype="float32", threads=threads)
        manifest = self.runtime.manifest
        video = manifest.get("video")
        if video is None:
            raise InputError(
                "model",
                "an exported folder with the SAM 2 video step (robosam export onnx --model <SAM 2 video model>)",
                str(folder),
            )
        self.video = video
        pre = video["preprocessing"]
        self.facts = VideoModelFacts(
            family=manifest["family"],
            image_size=int(video["image_size"]),
            mean=tuple(pre["mean"]),
            std=tuple(pre["std"]),
            memory_batch_dim=1,
            num_maskmem=int(video["num_maskmem"]),
            max_object_pointers=int(video["max_object_pointers"]),
        )
        self.model = self.runtime
        self.device, self.dtype = "cpu", "float32"  # where records live (numpy arrays)
        self.max_batch = max(1, int(max_batch))
        self._mean = np.asarray(pre["mean"], np.float32)
        self._std = np.asarray(pre["std"], np.float32)
        self._max_cond_frames = int(video["max_cond_frame_num"])

    # ------------------------------------------------------------------------------------------ frames
    def features(self, rgb: np.ndarray) -> OnnxFrameFeatures:
        """Encode one RGB uint8 frame (H, W, 3): PIL bicubic to S x S, [0, 1], mean / std (as the torch engine)."""
        size = self.facts.image_size
        resized = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC))
        pixels = (resized.astype(np.float32) / np.float32(255.0) - self._mean) / self._std
        outputs = self.runtime.encode(np.ascontiguousarray(pixels.transpose(2, 0, 1)[None]))
        names = self.runtime.feature_names
        return OnnxFrameFeatures(outputs[names[-1]], [outputs[name] for name in names[:-1]])

    # ------------------------------------------------------------------------------------------ step
    def step(
        self,
        frame: int,
        features: OnnxFrameFeatures,
        jobs: list[Job],
        frame_hw: tuple[int, int],
        horizon: int | None,
    ) -> dict[int, FrameRecord]:
        """Run every job on ``frame``; store and return each object's new record (see ``TrackingEngine.step``)."""
        decoded: list[tuple[Job, Decoded, int]] = []
        for job in jobs:
            if job.prompt is not None:
                decoded.append((job, self._decode_prompt(frame, features, job, frame_hw, horizon), 0))
        tracked = [job for job in jobs if job.prompt is None]
        for group in self._groups(frame, tracked, horizon):
            conditioned = self._attend(features, [bank for _, bank in group])
            count = len(group)
            coords, labels = np.zeros((count, 2, 2), np.float32), np.full((count, 2), -1, np.int64)
            output = self._decode(features, conditioned, coords, labels, None, self._multimask(False, 0))
            decoded.extend((job, output, i) for i, (job, _) in enumerate(group))
        return self._store(frame, features, decoded)

    def _decode_prompt(
        self,
        frame: int,
        features: OnnxFrameFeatures,
        job: Job,
        frame_hw: tuple[int, int],
        horizon: int | None,
    ) -> Decoded:
        prompt = job.prompt
        assert prompt is not None
        if prompt.mask is not None:
            return self._mask_prompt(features, prompt.mask)
        if job.conditioning:
            conditioned = features.image_embeddings
        else:
            conditioned = self._attend(features, [self._bank(job.memory, frame, horizon, job.reverse)])
        previous = None
        if job.previous_logits is not None:
            previous = np.clip(
                np.asarray(job.previous_logits, np.float32), -CORRECTION_LOGIT_CLAMP, CORRECTION_LOGIT_CLAMP
            )
        coords, labels = self._points(prompt, frame_hw)
        multimask = self._multimask(job.conditioning, labels.shape[1])
        pad = (np.zeros((1, 1, 2), np.float32), np.full((1, 1), -1, np.int64))
        coords, labels = np.concatenate([coords, pad[0]], 1), np.concatenate([labels, pad[1]], 1)
        return self._decode(features, conditioned, coords, labels, previous, multimask)

    def _mask_prompt(self, features: OnnxFrameFeatures, mask: np.ndarray) -> Decoded:
        """A mask prompt (H, W) bool as the object's mask: resized to S x S with PIL's antialiased bilinear
        filter (the filter torch's ``antialias=True`` reproduces) and thresholded at 0.5, as the torch engine."""
        size = self.facts.image_size
        values = mask.astype(np.float32)
        if values.shape != (size, size):
            resized = Image.fromarray(values).resize((size, size), Image.Resampling.BILINEAR)
            values = (np.asarray(resized) >= 0.5).astype(np.float32)
        feeds = {
            "image_embeddings": features.image_embeddings,
            "high_res_feats_0": features.high_res[0],
            "high_res_feats_1": features.high_res[1],
            "mask": values[None, None],
        }
        session = self.runtime.session("mask_prompt")
        outputs = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
        return Decoded(*outputs)

    def _points(self, prompt: VideoPrompt, frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Box corners (labels 2, 3) then clicks, in the S x S input frame: (1, P, 2) float32, (1, P) int64."""
        coords, labels = [], []
        if prompt.box is not None:
            coords.append(np.asarray(prompt.box, np.float32).reshape(2, 2))
            labels.append(np.array([2, 3]))
        if prompt.points is not None:
            coords.append(np.asarray(prompt.points, np.float32))
            labels.append(np.asarray(prompt.labels))
        height, width = frame_hw
        xy = np.concatenate(coords).astype(np.float32) / np.array([width, height], np.float32)
        xy = xy * np.float32(self.facts.image_size)
        return xy[None], np.concatenate(labels).astype(np.int64)[None]

    def _multimask(self, conditioning: bool, points: int) -> bool:
        """``Sam2VideoModel._use_multimask`` from the exported configuration."""
        rule = self.video["multimask"]
        return bool(
            rule["in_sam"]
            and (conditioning or rule["for_tracking"])
            and rule["min_points"] <= points <= rule["max_points"]
        )

    # ------------------------------------------------------------------------------------------ memory
    def _bank(self, memory: ObjectMemory, frame: int, horizon: int | None, reverse: bool) -> Bank:
        """The memories and pointers the model reads for ``memory``'s object on ``frame``."""
        facts = self.facts
        chosen = memory_frames(memory, frame, facts.num_maskmem, self._max_cond_frames, reverse)
        used = [(offset, record) for offset, record in chosen if record is not None]
        offsets, pointers, max_pointers = object_pointers(
            memory, frame, horizon, facts.max_object_pointers, reverse
        )
        scale = float(max(max_pointers - 1, 1))
        return Bank(
            features=np.stack([np.asarray(r.maskmem_features)[:, 0] for _, r in used]),
            offsets=np.array([offset for offset, _ in used], np.int64),
            pointers=np.stack([np.asarray(p).reshape(-1) for p in pointers]),
            pointer_offsets=np.asarray(offsets, np.float32) / np.float32(scale),
        )

    def _groups(self, frame: int, jobs: list[Job], horizon: int | None) -> list[list[tuple[Job, Bank]]]:
        by_signature: dict[tuple[Any, ...], list[tuple[Job, Bank]]] = defaultdict(list)
        for job in jobs:
            bank = self._bank(job.memory, frame, horizon, job.reverse)
            by_signature[(*bank.signature, job.reverse)].append((job, bank))
        return [
            members[start : start + self.max_batch]
            for members in by_signature.values()
            for start in range(0, len(members), self.max_batch)
        ]

    def _attend(self, features: OnnxFrameFeatures, banks: list[Bank]) -> np.ndarray:
        (conditioned,) = self.runtime.session("memory_attention").run(
            None,
            {
                "image_embeddings": features.image_embeddings,
                "memory_features": np.stack([b.features for b in banks]),
                "memory_offsets": np.stack([b.offsets for b in banks]),
                "object_pointers": np.stack([b.pointers for b in banks]),
                "pointer_offsets": np.stack([b.pointer_offsets for b in banks]),
            },
        )
        return conditioned

    # ------------------------------------------------------------------------------------------ decode
    def _decode(
        self,
        features: OnnxFrameFeatures,
        conditioned: np.ndarray,
        coords: np.ndarray,
        labels: np.ndarray,
        previous: np.ndarray | None,
        multimask: bool,
    ) -> Decoded:
        count, lowres = conditioned.shape[0], int(self.video["lowres_size"])
        if previous is None:
            mask, has_mask = np.zeros((count, 1, lowres, lowres), np.float32), np.zeros(count, np.float32)
        else:
            mask, has_mask = previous.reshape(count, 1, lowres, lowres), np.ones(count, np.float32)
        graph = "video_decoder_multimask" if multimask else "video_decoder_single"
        outputs = self.runtime.session(graph).run(
            None,
            {
                "conditioned": np.ascontiguousarray(conditioned, np.float32),
                "high_res_feats_0": features.high_res[0],
                "high_res_feats_1": features.high_res[1],
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": mask,
                "has_mask_input": has_mask,
            },
        )
        return Decoded(*outputs)

    def _store(
        self, frame: int, features: OnnxFrameFeatures, decoded: list[tuple[Job, Decoded, int]]
    ) -> dict[int, FrameRecord]:
        """Encode the memories (tracked ones batched, prompted ones one by one) and store one record each."""
        records: dict[int, FrameRecord] = {}
        for from_prompts in (True, False):
            chosen = [(job, out, i) for job, out, i in decoded if (job.prompt is not None) == from_prompts]
            size = 1 if from_prompts else self.max_batch
            for start in range(0, len(chosen), size):
                records.update(self._encode(frame, features, chosen[start : start + size], from_prompts))
        return {job.memory.obj_id: records[job.memory.obj_id] for job, _, _ in decoded}

    def _encode(
        self,
        frame: int,
        features: OnnxFrameFeatures,
        chosen: list[tuple[Job, Decoded, int]],
        from_prompts: bool,
    ) -> dict[int, FrameRecord]:
        if not chosen:
            return {}
        high_res = np.concatenate([out.high_res[i : i + 1] for _, out, i in chosen])
        object_scores = np.concatenate([out.object_scores[i : i + 1] for _, out, i in chosen])
        (memory,) = self.runtime.session("memory_encoder").run(
            None,
            {
                "image_embeddings": features.image_embeddings,
                "mask_logits": high_res,
                "object_scores": object_scores,
                "binarize": np.full(len(chosen), 1.0 if from_prompts else 0.0, np.float32),
            },
        )  # (B, h*w, D)
        records = {}
        for k, (job, out, i) in enumerate(chosen):
            record = FrameRecord(
                object_pointer=out.pointers[i : i + 1, None].copy(),
                maskmem_features=memory[k][:, None].copy(),
                maskmem_pos_enc=None,  # a constant of the memory attention graph
                logits=out.logits[i : i + 1].copy(),
                score=float(out.scores[i]),
                object_score=float(out.object_scores[i].reshape(-1)[0]),
                reverse=job.reverse,
                prompted=job.prompt is not None,
            )
            job.memory.store(frame, record, conditioning=job.prompt is not None and job.conditioning)
            records[job.memory.obj_id] = record
        return records
