"""FastSAM (a YOLOv8 instance-segmentation network) through the ``ultralytics`` package, as robosam results.

Optional: ultralytics is AGPL-3.0 and large, so robosam never depends on it and imports it only when a
``FastSam`` is made. Without it, ``FastSam(...)`` raises ``MissingExtraError``'s one line. FastSAM segments
"everything" in one pass, then a prompt selects among those masks: ultralytics' selection for points and boxes
(the mask with the best IoU for each box, the masks under the points), robosam's ``ClipRanker`` for text (CLIP
similarity of each masked crop to each phrase, any transformers CLIP: a hub id or a local folder, so it runs
offline; ultralytics' own text prompt would download OpenAI's CLIP package weights). Weights are ultralytics
checkpoints (``FastSAM-s.pt``, ``FastSAM-x.pt``), which ultralytics reads with pickle: load only files you trust.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.io import load_image
from robosam.prompts import parse_prompts
from robosam.results import MaskResult

INSTALL_HINT = (
    "the ultralytics package for FastSAM (pip install ultralytics; AGPL-3.0, never a robosam dependency)"
)


def require_ultralytics() -> Any:
    """The ``ultralytics`` module, or an ``InputError`` whose one line names the install command."""
    try:
        import ultralytics
    except ImportError:
        raise InputError("model", INSTALL_HINT, None) from None
    return ultralytics


class FastSam:
    """FastSAM behind robosam's result types.

    model: an ultralytics FastSAM checkpoint path (``FastSAM-s.pt``; ultralytics downloads its own release
        names) or an ``ultralytics.FastSAM`` instance. device: ``cpu``, ``cuda``, ``cuda:0`` ...
    imgsz: inference side in pixels (FastSAM's default 1024). conf / iou: detection confidence and NMS IoU
        thresholds (FastSAM's defaults 0.4 / 0.9). clip: the CLIP model for text prompts: a hub id or folder
        (None: ``robosam.grounding.clip_rank.DEFAULT_CLIP``, openai/clip-vit-base-patch32) or a built
        ``ClipRanker``; loaded on the first text prompt, on ``device``.
    """

    def __init__(
        self,
        model: Any = "FastSAM-s.pt",
        *,
        device: str = "cpu",
        imgsz: int = 1024,
        conf: float = 0.4,
        iou: float = 0.9,
        clip: Any = None,
    ) -> None:
        ultralytics = require_ultralytics()
        self.model = model if isinstance(model, ultralytics.FastSAM) else ultralytics.FastSAM(str(model))
        self.options = {"device": device, "imgsz": imgsz, "conf": conf, "iou": iou}
        self.clip = clip

    def clip_ranker(self) -> Any:
        """The ``ClipRanker`` for text prompts (built from ``clip`` on first use)."""
        from robosam.grounding.clip_rank import DEFAULT_CLIP, ClipRanker

        if not isinstance(self.clip, ClipRanker):
            self.clip = ClipRanker(self.clip or DEFAULT_CLIP, device=self.options["device"])
        return self.clip

    def everything(self, image: Any, *, image_format: str = "RGB") -> MaskResult:
        """Every mask FastSAM finds: masks (N, H, W) bool at the image's size, scores (N,) confidence."""
        return self._run(load_image(image, image_format=image_format))

    def segment(
        self,
        image: Any,
        *,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        text: str | list[str] | None = None,
        image_format: str = "RGB",
    ) -> MaskResult:
        """Masks selected by a prompt, in pixels of ``image``: points (P, 2) with labels (P,) 1/0 for one
        object; box (4,) or (O, 4), the best-IoU mask of each box (ultralytics' selection: kept in FastSAM's
        order, a mask two boxes choose appears once); text (``"cup. bowl"`` or a list), one mask per phrase:
        the "everything" mask whose crop CLIP finds most similar, with ``labels`` (the phrases) and
        ``data["clip_score"]`` (cosine similarity). One kind at a time."""
        rgb = load_image(image, image_format=image_format)
        given = [
            name for name, value in (("points", points), ("box", box), ("text", text)) if value is not None
        ]
        if len(given) != 1:
            raise InputError("prompt", "exactly one of points, box or text", ", ".join(given) or "none")
        if text is not None:
            from robosam.grounding.base import parse_phrases

            return self._select_by_text(rgb, parse_phrases(text))
        objects = parse_prompts(rgb.shape[:2], points=points, labels=labels, box=box)
        if points is not None:
            if len(objects) != 1:
                raise InputError("points", "one group of (x, y) points (FastSAM selects one mask)", points)
            return self._run(rgb, points=objects[0].points.tolist(), labels=objects[0].labels.tolist())
        return self._run(rgb, bboxes=[obj.box.tolist() for obj in objects])

    def _select_by_text(self, rgb: np.ndarray, phrases: list[str]) -> MaskResult:
        """One "everything" mask per phrase, the one of highest CLIP similarity (an empty result when FastSAM
        finds no mask)."""
        ranker = self.clip_ranker()
        everything = self._run(rgb)
        start = time.perf_counter()
        candidates = everything[np.flatnonzero(everything.areas > 0)]
        if not len(candidates):
            return candidates.replace(
                labels=np.zeros(0, dtype=object),
                data={**candidates.data, "clip_score": np.zeros(0, np.float32)},
            )
        similarity = ranker.similarity(rgb, candidates.masks, phrases)  # (N, P)
        best = similarity.argmax(axis=0)
        chosen = candidates[best]
        chosen = chosen.replace(
            object_ids=np.arange(len(phrases), dtype=np.int64),
            labels=np.array(phrases, dtype=object),
            data={**chosen.data, "clip_score": similarity[best, np.arange(len(phrases))]},
        )
        chosen.timings["clip_s"] = time.perf_counter() - start
        return chosen

    def _run(self, rgb: np.ndarray, **prompts: Any) -> MaskResult:
        start = time.perf_counter()
        # ultralytics reads numpy images as BGR (OpenCV's order)
        results = self.model.predict(
            np.ascontiguousarray(rgb[..., ::-1]), retina_masks=True, verbose=False, **self.options, **prompts
        )
        return to_mask_result(results[0], rgb.shape[:2], time.perf_counter() - start)


def to_mask_result(result: Any, image_hw: tuple[int, int], seconds: float = 0.0) -> MaskResult:
    """An ultralytics ``Results`` (segmentation) as a ``MaskResult``: masks at ``image_hw``, scores = box
    confidence, box class in ``data["class_id"]``; ``logits`` is empty (N, 0, 0): FastSAM has no SAM-style
    low-resolution logits."""
    height, width = image_hw
    if result.masks is None or len(result.masks) == 0:
        masks = np.zeros((0, height, width), dtype=bool)
        scores = np.zeros(0, dtype=np.float32)
        classes = np.zeros(0, dtype=np.int64)
    else:
        masks = result.masks.data.cpu().numpy() > 0.5
        if masks.shape[1:] != (height, width):
            raise RuntimeError(f"ultralytics returned masks of {masks.shape[1:]} for an image of {image_hw}")
        scores = result.boxes.conf.cpu().numpy().astype(np.float32)
        classes = result.boxes.cls.cpu().numpy().astype(np.int64)
    return MaskResult(
        masks=masks,
        scores=scores,
        logits=np.zeros((len(scores), 0, 0), dtype=np.float32),
        data={"class_id": classes},
        timings={"total_s": seconds},
    )
