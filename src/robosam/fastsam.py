"""FastSAM (a YOLOv8 instance-segmentation network) through the ``ultralytics`` package, as robosam results.

Optional: ultralytics is AGPL-3.0 and large, so robosam never depends on it and imports it only when a
``FastSam`` is made. Without it, ``FastSam(...)`` raises ``MissingExtraError``'s one line. FastSAM segments
"everything" in one pass, then a prompt selects among those masks (ultralytics' selection: the mask with the
best IoU for each box, the masks under the points, or CLIP similarity for text, which needs ultralytics'
CLIP download). Weights are ultralytics checkpoints (``FastSAM-s.pt``, ``FastSAM-x.pt``), which ultralytics
reads with pickle: load only files you trust.
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
        thresholds (FastSAM's defaults 0.4 / 0.9).
    """

    def __init__(
        self,
        model: Any = "FastSAM-s.pt",
        *,
        device: str = "cpu",
        imgsz: int = 1024,
        conf: float = 0.4,
        iou: float = 0.9,
    ) -> None:
        ultralytics = require_ultralytics()
        self.model = model if isinstance(model, ultralytics.FastSAM) else ultralytics.FastSAM(str(model))
        self.options = {"device": device, "imgsz": imgsz, "conf": conf, "iou": iou}

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
        object; box (4,) or (O, 4), one mask per box; text, one mask per phrase (CLIP). One kind at a time."""
        rgb = load_image(image, image_format=image_format)
        given = [
            name for name, value in (("points", points), ("box", box), ("text", text)) if value is not None
        ]
        if len(given) != 1:
            raise InputError("prompt", "exactly one of points, box or text", ", ".join(given) or "none")
        prompts: dict[str, Any] = {}
        if text is not None:
            if not text or not all(isinstance(t, str) and t.strip() for t in np.atleast_1d(text)):
                raise InputError("text", "a non-empty phrase or list of phrases", text)
            prompts["texts"] = text
        else:
            objects = parse_prompts(rgb.shape[:2], points=points, labels=labels, box=box)
            if points is not None:
                if len(objects) != 1:
                    raise InputError(
                        "points", "one group of (x, y) points (FastSAM selects one mask)", points
                    )
                prompts["points"] = objects[0].points.tolist()
                prompts["labels"] = objects[0].labels.tolist()
            else:
                prompts["bboxes"] = [obj.box.tolist() for obj in objects]
        return self._run(rgb, **prompts)

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
