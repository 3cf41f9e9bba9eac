"""``TextSegmenter``: phrases in, masks out. An open-vocabulary detector finds boxes, SAM turns all of them
into masks in one batched decoder call on the cached image embedding (SAM 3 concept segmentation makes its
own masks and needs no separate SAM)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.grounding.base import Detections, Detector, check_threshold, parse_phrases
from robosam.grounding.loading import load_detector
from robosam.io import load_image
from robosam.results import MaskResult

DEFAULT_DETECTOR = "grounding-dino-tiny"


class TextSegmenter:
    """Masks for text prompts (``"red cup"``, several as ``"cup. bowl. spoon"``).

    segmenter: a ``robosam.Segmenter``, or anything ``Segmenter`` accepts (preset, hub id, folder,
        ``LoadedModel``); may be None when the detector segments itself (``sam3``).
    detector: a detector preset, hub id, folder or ``Detector`` (see ``load_detector``).
    ranker: an optional ``ClipRanker``: masks are then re-ordered by CLIP similarity to their phrase.
    device: where models named by string are loaded.
    """

    def __init__(
        self,
        segmenter: Any = None,
        detector: str | Detector | Any = DEFAULT_DETECTOR,
        *,
        ranker: Any = None,
        device: str = "auto",
    ):
        self.detector = load_detector(detector, device=device)
        if segmenter is None and not self.detector.gives_masks:
            raise InputError(
                "segmenter", f"a Segmenter or model for detector {self.detector.name!r} (boxes only)", None
            )
        if segmenter is not None and not hasattr(segmenter, "embed"):
            from robosam.segmenter import Segmenter

            segmenter = Segmenter(segmenter, device=device)
        self.segmenter = segmenter
        self.ranker = ranker

    def detect(
        self, image: Any, text: str | list[str], box_threshold: float = 0.3, text_threshold: float = 0.25
    ) -> Detections:
        """The detector's boxes for ``text`` on ``image`` (validated; empty when nothing matches)."""
        phrases = parse_phrases(text)
        box_threshold = check_threshold(box_threshold, "box_threshold")
        text_threshold = check_threshold(text_threshold, "text_threshold")
        return self.detector.detect(load_image(image), phrases, box_threshold, text_threshold)

    def segment(
        self,
        image: Any,
        text: str | list[str],
        box_threshold: float = 0.3,
        text_threshold: float = 0.25,
        max_detections: int | None = None,
    ) -> MaskResult:
        """Masks of everything ``text`` names in ``image`` (path, PIL or array), best first.

        box_threshold: minimum detector confidence; text_threshold: minimum confidence of the matched phrase
        (Grounding DINO family; OWLv2 and SAM 3 score one phrase per box and ignore it).
        max_detections: keep at most this many (highest scores).
        Returns a ``MaskResult``: masks (N, H, W) bool, scores (N,) detector confidence, labels (N,) the
        matched phrase, object_ids 0..N-1, data ``detector_boxes`` (N, 4) and (with a SAM) ``mask_scores``
        (N,) SAM's predicted IoU, (with a ranker) ``clip_score``; empty (N = 0) when nothing matches.
        """
        phrases = parse_phrases(text)
        box_threshold = check_threshold(box_threshold, "box_threshold")
        text_threshold = check_threshold(text_threshold, "text_threshold")
        if max_detections is not None and (not isinstance(max_detections, int) or max_detections < 1):
            raise InputError("max_detections", "a positive integer or None", max_detections)
        rgb = load_image(image)
        found = self.detector.detect(rgb, phrases, box_threshold, text_threshold)
        found = found.sorted()[:max_detections]
        if not self.detector.gives_masks:
            x1, y1, x2, y2 = found.boxes.T
            found = found[(x2 > x1) & (y2 > y1)]
        result = self._masks(rgb, found)
        if self.ranker is not None and len(result):
            result = self.ranker.rank(rgb, result)
        return result

    def _masks(self, rgb: np.ndarray, found: Detections) -> MaskResult:
        height, width = rgb.shape[:2]
        data = {"detector_boxes": found.boxes}
        timings = {"detector_s": found.timings.get("detector_s", 0.0)}
        if self.detector.gives_masks:
            masks = found.masks if found.masks is not None else np.zeros((0, height, width), dtype=bool)
            logits = found.mask_logits if found.mask_logits is not None else np.zeros((len(found), 0, 0))
            return MaskResult(
                masks=masks,
                scores=found.scores,
                logits=logits.astype(np.float32),
                object_ids=np.arange(len(found)),
                labels=found.labels,
                data=data,
                timings=timings,
            )
        if not len(found):
            side = self.segmenter.adapter.lowres_size
            return MaskResult(
                masks=np.zeros((0, height, width), dtype=bool),
                scores=np.zeros(0, dtype=np.float32),
                logits=np.zeros((0, side, side), dtype=np.float32),
                object_ids=np.zeros(0, dtype=np.int64),
                labels=np.zeros(0, dtype=object),
                data={**data, "mask_scores": np.zeros(0, dtype=np.float32)},
                timings=timings,
            )
        start = time.perf_counter()
        embedding = self.segmenter.embed(rgb)
        timings["encoder_s"] = time.perf_counter() - start
        decoded = self.segmenter.decode(embedding, box=found.boxes, multimask=False)  # one decoder call
        return decoded.replace(
            scores=found.scores,
            labels=found.labels,
            data={**data, "mask_scores": decoded.scores},
            timings={**timings, **decoded.timings},
        )
