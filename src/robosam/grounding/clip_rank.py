"""CLIP re-ranking: score candidate masks by how well the masked object matches a phrase.

Each mask becomes a square crop around its box in which everything outside the mask is the CLIP mean
colour (so the neighbours do not vote), padded to a square (so CLIP's centre crop cuts nothing off).
All crops and all phrases go through CLIP in one batched call; the score is the cosine similarity.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from robosam.errors import InputError
from robosam.grounding.base import model_inputs, parse_phrases
from robosam.grounding.loading import hub_error
from robosam.io import load_image
from robosam.masks import mask_to_box
from robosam.models.loading import resolve_device, resolve_dtype
from robosam.results import MaskResult

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
CLIP_MEAN_RGB = (122, 116, 104)  # OpenAI CLIP's normalisation mean, as uint8


def masked_crops(
    image: np.ndarray, masks: np.ndarray, padding: float = 0.1, fill: tuple[int, int, int] = CLIP_MEAN_RGB
) -> list[np.ndarray]:
    """One square RGB uint8 crop per mask: its box grown by ``padding`` (a fraction of the longer side),
    pixels outside the mask set to ``fill``, centred on a ``fill`` square. image (H, W, 3); masks (N, H, W)."""
    height, width = image.shape[:2]
    crops = []
    for mask, (x1, y1, x2, y2) in zip(masks, mask_to_box(masks).astype(int)):
        side = max(x2 - x1 + 1, y2 - y1 + 1)
        margin = int(round(padding * side))
        x1, y1 = max(x1 - margin, 0), max(y1 - margin, 0)
        x2, y2 = min(x2 + margin, width - 1), min(y2 + margin, height - 1)
        crop = np.where(mask[y1 : y2 + 1, x1 : x2 + 1, None], image[y1 : y2 + 1, x1 : x2 + 1], fill)
        h, w = crop.shape[:2]
        side = max(h, w)
        square = np.empty((side, side, 3), dtype=np.uint8)
        square[:] = fill
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = crop
        crops.append(square)
    return crops


class ClipRanker:
    """Ranks masks by CLIP similarity of the masked crop to a phrase.

    model: a CLIP hub id or folder (default ``openai/clip-vit-base-patch32``) or a built ``CLIPModel``
    (then ``processor`` is required). template: how a phrase is put to CLIP (``"a photo of a {}"``).
    padding: context around each mask's box, as a fraction of its longer side.
    """

    def __init__(
        self,
        model: Any = DEFAULT_CLIP,
        processor: Any = None,
        *,
        device: str = "auto",
        dtype: str | None = None,
        template: str = "a photo of a {}",
        padding: float = 0.1,
    ):
        import transformers as tf

        if isinstance(model, (str, os.PathLike)):
            source = os.fspath(model)
            local = os.path.isdir(source)
            try:
                model = tf.CLIPModel.from_pretrained(source, local_files_only=local)
                processor = processor or tf.CLIPProcessor.from_pretrained(source, local_files_only=local)
            except OSError as error:
                raise hub_error(source, error, "model") from error
        elif processor is None:
            raise InputError("processor", "the CLIP model's processor (CLIPProcessor)", None)
        if "{}" not in template:
            raise InputError("template", "a phrase template with '{}'", template)
        self.model = model.to(device=resolve_device(device), dtype=resolve_dtype(dtype)).eval()
        self.processor = processor
        self.template = template
        self.padding = float(padding)

    def similarity(self, image: Any, masks: np.ndarray, phrases: list[str]) -> np.ndarray:
        """(N, P) cosine similarity of each mask's crop to each phrase, from one CLIP forward pass.
        image: path, PIL or (H, W, 3) RGB; masks (N, H, W) bool, none empty."""
        rgb = load_image(image)
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3 or masks.shape[1:] != rgb.shape[:2]:
            raise InputError("masks", f"(N, {rgb.shape[0]}, {rgb.shape[1]}) masks of the image's size", masks)
        if not masks.reshape(len(masks), -1).any(axis=1).all():
            raise InputError("masks", "masks with at least one pixel each", masks)
        if not len(masks):
            return np.zeros((0, len(phrases)), dtype=np.float32)
        inputs = self.processor(
            text=[self.template.format(p) for p in phrases],
            images=masked_crops(rgb, masks, self.padding),
            return_tensors="pt",
            padding=True,
        )
        with torch.inference_mode():
            out = self.model(**model_inputs(inputs, self.model))
        return (out.image_embeds @ out.text_embeds.T).float().cpu().numpy()

    def score(self, image: Any, masks: np.ndarray, text: str) -> np.ndarray:
        """(N,) similarity of each mask to one phrase."""
        phrase = " ".join(parse_phrases(text))
        return self.similarity(image, masks, [phrase])[:, 0]

    def rank(self, image: Any, result: MaskResult, text: str | None = None) -> MaskResult:
        """``result`` re-ordered by CLIP similarity, best first, with ``data["clip_score"]`` (N,).

        text: the phrase every mask is compared to; None compares each mask to its own label (as left by
        ``TextSegmenter``). Candidates may come from automatic mask generation or detector boxes.
        """
        start = time.perf_counter()
        masks = result._require_masks()
        if text is not None:
            phrases = [" ".join(parse_phrases(text))]
            columns = np.zeros(len(result), dtype=np.int64)
        elif result.labels is not None:
            phrases, columns = np.unique(result.labels.astype(str), return_inverse=True)
            phrases = list(phrases)
        else:
            raise InputError("text", "a phrase (the result has no labels to compare with)", None)
        if not len(result):
            return result.replace(data={**result.data, "clip_score": np.zeros(0, dtype=np.float32)})
        filled = masks.reshape(len(masks), -1).any(axis=1)  # an empty mask scores the lowest cosine, -1
        scores = np.full(len(result), -1.0, dtype=np.float32)
        if filled.any():
            similarity = self.similarity(image, masks[filled], phrases)
            scores[filled] = similarity[np.arange(len(similarity)), columns[filled]]
        order = np.argsort(-scores, kind="stable")
        ranked = result.replace(data={**result.data, "clip_score": scores})[order]
        ranked.timings["clip_s"] = time.perf_counter() - start
        return ranked
