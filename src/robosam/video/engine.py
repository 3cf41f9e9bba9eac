"""One tracking step: every object's mask on one frame, from its prompt or from its memory.

Objects prompted on the frame are decoded one by one (their prompts differ); the others are tracked together:
one batched memory attention per group of objects whose memories have the same length, one batched mask
decoder call, and one batched memory encoder call for the tracked masks (prompted masks are binarised and
encoded one by one, as in Meta's predictor). Sessions and live streams both step through here, so they compute the same masks.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from robosam.video import decode
from robosam.video.features import FrameFeatures, encode_frame
from robosam.video.jobs import CORRECTION_LOGIT_CLAMP, Job
from robosam.video.loading import VideoModelFacts
from robosam.video.memory import FrameRecord
from robosam.video.preprocess import FramePreprocessor


class TrackingEngine:
    """A transformers video model driven one frame at a time, objects batched.

    max_batch: most objects in one batched call (bounds the memory attention's working memory on GPUs).
    """

    def __init__(self, model: Any, max_batch: int = 16):
        self.model = model
        self.facts = VideoModelFacts.of(model)
        parameter = next(model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.preprocessor = FramePreprocessor(
            self.facts.image_size, self.facts.mean, self.facts.std, self.device, self.dtype
        )
        self.max_batch = max(1, int(max_batch))
        self._position_encoding: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------ frames
    @torch.inference_mode()
    def features(self, rgb: np.ndarray) -> FrameFeatures:
        """Encode one RGB uint8 frame (H, W, 3)."""
        return encode_frame(self.model, self.preprocessor.frame(rgb))

    # ------------------------------------------------------------------------------------------ step
    @torch.inference_mode()
    def step(
        self,
        frame: int,
        features: FrameFeatures,
        jobs: list[Job],
        frame_hw: tuple[int, int],
        horizon: int | None,
    ) -> dict[int, FrameRecord]:
        """Run every job on ``frame``; store and return each object's new record (obj_id -> record).

        horizon: the video's frame count when known (None for a stream).
        """
        decoded: list[tuple[Job, decode.DecodeOutput, int]] = []
        for job in jobs:
            if job.prompt is not None:
                decoded.append((job, self._decode_prompt(frame, features, job, frame_hw, horizon), 0))
        tracked = [job for job in jobs if job.prompt is None]
        for group in self._groups(frame, tracked, horizon):
            jobs_in_group = [job for job, _ in group]
            conditioned = decode.attend_to_memory(self.model, features, [inputs for _, inputs in group])
            output = decode.decode_tracked(
                self.model, features, conditioned, self.model._use_multimask(False, None)
            )
            decoded.extend((job, output, i) for i, job in enumerate(jobs_in_group))
        return self._store(frame, features, decoded)

    def _decode_prompt(
        self, frame: int, features: FrameFeatures, job: Job, frame_hw: tuple[int, int], horizon: int | None
    ) -> decode.DecodeOutput:
        assert job.prompt is not None
        if job.prompt.mask is not None:
            return decode.decode_mask(self.model, features, self.preprocessor.mask(job.prompt.mask))
        if job.conditioning:
            conditioned = decode.without_memory(self.model, features)
        else:
            inputs = decode.gather_memory(self.model, job.memory, frame, horizon, job.reverse, self.device)
            conditioned = decode.attend_to_memory(self.model, features, [inputs])
        previous = job.previous_logits
        if previous is not None:
            previous = previous.to(self.device, self.dtype).clamp(
                -CORRECTION_LOGIT_CLAMP, CORRECTION_LOGIT_CLAMP
            )
        points = self.preprocessor.points(job.prompt, frame_hw)
        assert points is not None
        return decode.decode_points(self.model, features, conditioned, points, previous, job.conditioning)

    def _groups(
        self, frame: int, jobs: list[Job], horizon: int | None
    ) -> list[list[tuple[Job, decode.MemoryInputs]]]:
        """Tracked jobs grouped by memory signature and direction, each group at most ``max_batch`` long."""
        by_signature: dict[tuple[Any, ...], list[tuple[Job, decode.MemoryInputs]]] = defaultdict(list)
        for job in jobs:
            inputs = decode.gather_memory(self.model, job.memory, frame, horizon, job.reverse, self.device)
            by_signature[(*inputs.signature, job.reverse)].append((job, inputs))
        groups = []
        for members in by_signature.values():
            for start in range(0, len(members), self.max_batch):
                groups.append(members[start : start + self.max_batch])
        return groups

    def _store(
        self, frame: int, features: FrameFeatures, decoded: list[tuple[Job, decode.DecodeOutput, int]]
    ) -> dict[int, FrameRecord]:
        """Encode the memories (tracked ones batched) and store one record per object."""
        records: dict[int, FrameRecord] = {}
        for from_prompts in (True, False):
            chosen = [(job, out, i) for job, out, i in decoded if (job.prompt is not None) == from_prompts]
            # prompted masks one at a time (as Meta encodes them, and as a session does on ``add``, so a live
            # stream prompting several objects on one frame computes bit for bit what a session does)
            size = self.max_batch if self.facts.batched_memory_encoder and not from_prompts else 1
            for start in range(0, len(chosen), size):
                records.update(self._encode(frame, features, chosen[start : start + size], from_prompts))
        return {job.memory.obj_id: records[job.memory.obj_id] for job, _, _ in decoded}

    def _encode(
        self,
        frame: int,
        features: FrameFeatures,
        chosen: list[tuple[Job, decode.DecodeOutput, int]],
        from_prompts: bool,
    ) -> dict[int, FrameRecord]:
        if not chosen:
            return {}
        high_res = torch.cat([out.high_res[i : i + 1] for _, out, i in chosen])
        object_scores = torch.cat([out.object_scores[i : i + 1].reshape(1, 1, 1) for _, out, i in chosen])
        memory, positions = decode.encode_memory(self.model, features, high_res, object_scores, from_prompts)
        axis = self.facts.memory_batch_dim
        scores = torch.cat([out.scores[i : i + 1].float() for _, out, i in chosen]).tolist()
        presence = object_scores.float().reshape(-1).tolist()
        records = {}
        for k, (job, out, i) in enumerate(chosen):
            record = FrameRecord(
                object_pointer=out.pointers[i : i + 1].clone(),
                maskmem_features=memory.narrow(axis, k, 1).clone(),
                maskmem_pos_enc=self._shared_position(positions.narrow(axis, k, 1)),
                logits=out.logits[i : i + 1].float().clone(),
                score=float(scores[k]),
                object_score=float(presence[k]),
                reverse=job.reverse,
                prompted=job.prompt is not None,
            )
            job.memory.store(frame, record, conditioning=job.prompt is not None and job.conditioning)
            records[job.memory.obj_id] = record
        return records

    def _shared_position(self, position: torch.Tensor) -> torch.Tensor:
        """The memory position encoding is the same on every frame: keep one copy."""
        cached = self._position_encoding
        if cached is not None and cached.shape == position.shape and torch.equal(cached, position):
            return cached
        self._position_encoding = position.clone()
        return self._position_encoding
