"""Grounding DINO and MM Grounding DINO (transformers ``GroundingDinoForObjectDetection``,
``MMGroundingDinoForObjectDetection``, both read through ``GroundingDinoProcessor``).

The phrases are joined as the models were trained (``"red cup. bowl."``); each query's token
probabilities are pooled per phrase, so a box is labelled with exactly one of the phrases asked for
(transformers' own post-processing decodes the tokens above ``text_threshold``, which can glue two
phrases together or return a fragment of one).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from robosam.errors import InputError
from robosam.grounding.base import Detections, clip_boxes, model_inputs, nms_per_label
from robosam.io import load_image

MODEL_TYPES = ("grounding-dino", "mm-grounding-dino")


class GroundingDinoDetector:
    """Open-vocabulary boxes from a Grounding DINO family model.

    model: ``GroundingDinoForObjectDetection`` or ``MMGroundingDinoForObjectDetection``;
    processor: its ``GroundingDinoProcessor`` (image processor + BERT tokenizer).
    nms_iou: boxes of one phrase overlapping a better one by more than this are dropped (1 keeps all).
    """

    gives_masks = False

    def __init__(self, model: Any, processor: Any, name: str = "grounding-dino", nms_iou: float = 0.7):
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.nms_iou = nms_iou

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def phrase_spans(self, input_ids: list[int], phrases: list[str]) -> list[list[int]]:
        """Token positions of each phrase in ``input_ids`` (the joined, tokenized prompt), found in order."""
        tokenizer = self.processor.tokenizer
        spans, start = [], 0
        for phrase in phrases:
            ids = tokenizer(phrase, add_special_tokens=False)["input_ids"]
            found = next(
                (
                    i
                    for i in range(start, len(input_ids) - len(ids) + 1)
                    if input_ids[i : i + len(ids)] == ids
                ),
                None,
            )
            if not ids or found is None:
                raise InputError("text", "phrases the detector's tokenizer can encode", phrase)
            spans.append(list(range(found, found + len(ids))))
            start = found + len(ids)
        return spans

    def detect(
        self, image: Any, phrases: list[str], box_threshold: float = 0.3, text_threshold: float = 0.25
    ) -> Detections:
        """Boxes for ``phrases`` on ``image`` (H, W, 3 RGB; path, PIL or array).

        A query's score is its highest token probability (as in transformers and the original code); its
        label is the phrase whose best token is most probable, kept when that probability exceeds
        ``text_threshold`` and the score exceeds ``box_threshold``.
        """
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        start = time.perf_counter()
        prompt = ". ".join(phrases) + "."
        inputs = model_inputs(self.processor(images=rgb, text=prompt, return_tensors="pt"), self.model)
        max_len = getattr(self.model.config, "max_text_len", 256)
        if inputs["input_ids"].shape[1] > max_len:
            raise InputError("text", f"at most {max_len} tokens for this detector", prompt)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        input_ids = inputs["input_ids"][0].tolist()
        spans = self.phrase_spans(input_ids, phrases)
        probs = outputs.logits[0, :, : len(input_ids)].float().sigmoid().cpu().numpy()  # (Q, T)
        per_phrase = np.stack([probs[:, span].max(axis=1) for span in spans], axis=1)  # (Q, P)
        scores = probs.max(axis=1)
        best = per_phrase.argmax(axis=1)
        keep = (scores > box_threshold) & (per_phrase[np.arange(len(best)), best] > text_threshold)
        cx, cy, w, h = outputs.pred_boxes[0].float().cpu().numpy()[keep].T
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * [
            width,
            height,
            width,
            height,
        ]
        found = Detections(
            boxes=clip_boxes(boxes, (height, width)),
            scores=scores[keep],
            labels=[phrases[i] for i in best[keep]],
        )
        found = nms_per_label(found, self.nms_iou) if self.nms_iou < 1 else found.sorted()
        found.timings = {"detector_s": time.perf_counter() - start}
        return found
