"""Validation mIoU: the evaluation toolkit's own protocols, run on embeddings from the disk store.

A box-trained model is scored with the ``box`` protocol (the tight box, one mask), a point-trained one with
``center`` (one click at the most interior pixel, the model's highest-scoring of three masks), a mixed one
with the mean of both: the numbers ``robosam eval --protocol box|center`` gives for the saved model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from robosam.cache import image_key
from robosam.data import ImageSample
from robosam.evaluation.protocols import SinglePromptProtocol
from robosam.evaluation.runner import evaluate_images
from robosam.finetune.store import EmbeddingStore
from robosam.io import load_image
from robosam.results import MaskResult
from robosam.segmenter import ImageEmbedding, Segmenter

VALIDATION_PROTOCOLS = {"box": ("box",), "point": ("center",), "mixed": ("box", "center")}


class StoredPredictor:
    """The ``ImagePredictor`` the evaluation runners drive, over a ``Segmenter`` whose image features come
    from an ``EmbeddingStore`` (encoded and stored on a miss), so validation never re-runs the encoder."""

    def __init__(self, segmenter: Segmenter, store: EmbeddingStore):
        self.segmenter = segmenter
        self.store = store
        self.encoded = 0
        self.last_timings: dict[str, float] = {"encoder_s": 0.0, "decoder_s": 0.0, "postprocess_s": 0.0}
        self._embedding: ImageEmbedding | None = None

    def embedding(self, image: Any) -> ImageEmbedding:
        """The ``ImageEmbedding`` of ``image`` with features from the store (encoding it once if missing)."""
        array = load_image(image)
        key = image_key(array)
        if key not in self.store:
            features = self.segmenter.embed(array).features
            self.store.put(key, features, array.shape[:2])
            self.encoded += 1
        features, original_hw = self.store.get(key, self.segmenter.adapter.device)
        geometry = self.segmenter.adapter.geometry(original_hw)
        return ImageEmbedding(key=key, features=features, geometry=geometry, nbytes=0)

    def set_image(self, image: Any) -> ImageEmbedding:
        self._embedding = self.embedding(image)
        self.last_timings = {"encoder_s": 0.0, "decoder_s": 0.0, "postprocess_s": 0.0}
        return self._embedding

    def predict(
        self,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask: bool = True,
    ) -> MaskResult:
        if self._embedding is None:
            raise RuntimeError("set_image before predict")
        result = self.segmenter.decode(self._embedding, points, labels, box, mask_input, multimask)
        self.last_timings = {"encoder_s": 0.0, **result.timings}
        return result


def validate(predictor: Any, samples: Sequence[ImageSample], prompts: str, seed: int = 0) -> dict[str, float]:
    """Validation scores of ``predictor`` (a ``StoredPredictor`` or any ``ImagePredictor``, e.g. a plain
    ``Segmenter``) on ``samples``: ``{"mIoU": mean over protocols, "mIoU_box": ..., "mIoU_center": ...}``
    (only the protocols of ``prompts``), each the mean IoU over objects. Runs without gradients."""
    scores: dict[str, float] = {}
    with torch.no_grad():
        for name in VALIDATION_PROTOCOLS[prompts]:
            protocol = SinglePromptProtocol(kind=name)  # type: ignore[arg-type]
            result = evaluate_images(predictor, samples, protocol, seed=seed)
            scores[f"mIoU_{name}"] = float(result.summary().get("mIoU", float("nan")))
    scores["mIoU"] = float(np.mean([scores[f"mIoU_{n}"] for n in VALIDATION_PROTOCOLS[prompts]]))
    return scores
