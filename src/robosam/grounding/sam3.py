"""SAM 3 promptable concept segmentation (transformers ``Sam3Model``, and ``Sam3LiteTextModel`` with its
distilled text encoder, both read through ``Sam3Processor``): every instance of a phrase, with masks.

The image is encoded once; each phrase then runs the text encoder, the DETR-style decoder and the mask
head on the shared vision features. A detection's score is its query score times the image-level
presence score, as in transformers' post-processing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robosam.grounding.base import Detections, clip_boxes
from robosam.io import load_image


class Sam3Detector:
    """Concept segmentation with SAM 3: boxes and masks for each phrase; ``text_threshold`` is not used.

    mask_threshold: logit above which a pixel belongs to the mask (0: probability 0.5).
    """

    gives_masks = True

    def __init__(self, model: Any, processor: Any, name: str = "sam3", mask_threshold: float = 0.0):
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.mask_threshold = mask_threshold

    def detect(
        self, image: Any, phrases: list[str], box_threshold: float = 0.3, text_threshold: float = 0.25
    ) -> Detections:
        """Instances of ``phrases`` in ``image`` (H, W, 3 RGB; path, PIL or array), best first, with masks
        (N, H, W) at the image's size and low-resolution ``mask_logits``."""
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        start = time.perf_counter()
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"].to(device, dtype)
        boxes, scores, labels, masks, logits = [], [], [], [], []
        with torch.inference_mode():
            vision = self.model.get_vision_features(pixel_values=pixels)
            for phrase in phrases:
                text = self.processor(text=phrase, return_tensors="pt").to(device)
                out = self.model(
                    vision_embeds=vision, input_ids=text["input_ids"], attention_mask=text["attention_mask"]
                )
                score = out.pred_logits[0].float().sigmoid()
                if out.presence_logits is not None:
                    score = score * out.presence_logits[0].float().sigmoid()
                keep = score > box_threshold
                if not keep.any():
                    continue
                low = out.pred_masks[0][keep].float()
                full = F.interpolate(low[None], size=(height, width), mode="bilinear", align_corners=False)[0]
                boxes.append(out.pred_boxes[0][keep].float().cpu().numpy() * [width, height, width, height])
                scores.append(score[keep].cpu().numpy())
                labels += [phrase] * int(keep.sum())
                masks.append((full > self.mask_threshold).cpu().numpy())
                logits.append(low.cpu().numpy())
        if not labels:
            found = Detections.empty((height, width), with_masks=True)
        else:
            found = Detections(
                boxes=clip_boxes(np.concatenate(boxes), (height, width)),
                scores=np.concatenate(scores),
                labels=labels,
                masks=np.concatenate(masks),
                mask_logits=np.concatenate(logits),
            ).sorted()
        found.timings = {"detector_s": time.perf_counter() - start}
        return found
