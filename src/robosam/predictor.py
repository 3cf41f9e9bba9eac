"""``Segmenter``: promptable image segmentation with cached image embeddings, for every SAM family."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import Any, Literal

import numpy as np
import torch
from transformers import PreTrainedModel

from robosam.cache import CachedImage, EmbeddingCache, image_key
from robosam.errors import InputError
from robosam.io import ImageLike, load_image
from robosam.masks import upscale_logits
from robosam.models import DEFAULT_PRESET, LoadedModel, load_model
from robosam.prompts import ObjectPrompt, parse_batch_prompts, parse_prompts
from robosam.results import MaskResult

DEFAULT_CACHE_BYTES = 512 * 2**20


class Segmenter:
    """Prompt a SAM-family model with points, boxes and masks on one image or a batch.

    >>> seg = Segmenter("sam2.1-hiera-tiny")
    >>> seg.set_image("truck.jpg")
    >>> result = seg.predict(points=[(500, 375)], labels=[1])   # MaskResult at the original resolution

    model: a preset, hub id, local folder, official checkpoint, transformers model or ``LoadedModel``.
    cache_bytes: budget of the image-embedding LRU; an image seen before costs no encoder run.
    mask_threshold: logit above which a pixel is foreground.
    ``last_timings`` holds seconds for the last ``encoder_s`` (0.0 on a cache hit), ``decoder_s`` and
    ``postprocess_s``.
    """

    def __init__(
        self,
        model: str | os.PathLike | PreTrainedModel | LoadedModel = DEFAULT_PRESET,
        device: str | torch.device = "auto",
        dtype: torch.dtype | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        mask_threshold: float = 0.0,
    ):
        self.loaded = (
            model if isinstance(model, LoadedModel) else load_model(model, device=device, dtype=dtype)
        )
        self.adapter = self.loaded.adapter
        self.cache = EmbeddingCache(cache_bytes)
        self.mask_threshold = float(mask_threshold)
        self.last_timings: dict[str, float] = {"encoder_s": 0.0, "decoder_s": 0.0, "postprocess_s": 0.0}
        self._current: CachedImage | None = None

    @property
    def model(self) -> PreTrainedModel:
        return self.loaded.model

    # images -------------------------------------------------------------------------------------
    def set_image(self, image: ImageLike, image_format: Literal["RGB", "BGR"] = "RGB") -> None:
        """Encode ``image`` (path, PIL, numpy RGB/BGR/gray/RGBA) or take its embedding from the cache."""
        self._current = self._embed([load_image(image, image_format=image_format)])[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the current image."""
        return self._require_image().original_hw

    def _require_image(self) -> CachedImage:
        if self._current is None:
            raise InputError("image", "set_image(...) before predict(...)", None)
        return self._current

    def _embed(self, images: list[np.ndarray], batch_size: int = 4) -> list[CachedImage]:
        """Cached embeddings for RGB images, running the encoder once per distinct uncached image."""
        keys = [image_key(image) for image in images]
        found: dict[str, CachedImage] = {}
        for key in keys:
            entry = self.cache.get(key)
            if entry is not None:
                found[key] = entry
        todo = {key: image for key, image in zip(keys, images) if key not in found}
        start = time.perf_counter()
        pending = list(todo.items())
        for offset in range(0, len(pending), batch_size):
            chunk = pending[offset : offset + batch_size]
            pixel_values = self.adapter.preprocess([image for _, image in chunk])
            for (key, image), features in zip(chunk, self.adapter.encode(pixel_values)):
                entry = CachedImage(
                    key=key,
                    features=features,
                    original_hw=(int(image.shape[0]), int(image.shape[1])),
                    nbytes=self.adapter.features_nbytes(features),
                )
                found[key] = entry
                self.cache.put(entry)
        encoder_s = time.perf_counter() - start if pending else 0.0
        self.last_timings = {"encoder_s": encoder_s, "decoder_s": 0.0, "postprocess_s": 0.0}
        return [found[key] for key in keys]

    # prompts ------------------------------------------------------------------------------------
    def predict(
        self,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask: bool = True,
    ) -> MaskResult:
        """Masks for the current image.

        points: (P, 2) pixels (x, y) for one object, or (O, P, 2) for O objects; labels: (P,) / (O, P),
            1 positive, 0 negative (default all 1); box: (4,) or (O, 4) as (x1, y1, x2, y2);
        mask_input: (L, L), (1, L, L) or (1, 1, L, L) logits from a previous ``result.best().logits``
            (one object only); multimask: 3 candidate masks per object instead of 1.
        Returns a ``MaskResult``: masks (O*K, H, W) bool at the original size, scores, low-res logits.
        """
        current = self._require_image()
        objects = parse_prompts(current.original_hw, points=points, labels=labels, box=box)
        mask_tensor = self._parse_mask_input(mask_input, num_objects=len(objects))
        if not objects and mask_tensor is None:
            raise InputError("points/box/mask_input", "at least one point, box or mask_input", None)
        return self._predict_objects(current, objects or [ObjectPrompt()], mask_tensor, multimask)

    def predict_batch(
        self,
        images: list[ImageLike],
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        multimask: bool = True,
        image_format: Literal["RGB", "BGR"] = "RGB",
    ) -> list[MaskResult]:
        """Masks for several images at once, prompts in the transformers processors' nested-list format.

        input_points[image][object][point] = [x, y]; input_labels the same nesting (1, 0, or -1 padding);
        input_boxes[image][object] = [x1, y1, x2, y2]. Returns one ``MaskResult`` per image, equal to
        calling ``set_image`` + ``predict`` per image; the encoder runs once per distinct image.
        """
        if not isinstance(images, (list, tuple)) or not images:
            raise InputError("images", "a non-empty list of images", images)
        arrays = [
            load_image(image, image_format=image_format, argument=f"images[{i}]")
            for i, image in enumerate(images)
        ]
        batches = parse_batch_prompts(
            [a.shape[:2] for a in arrays],
            input_points=input_points,
            input_labels=input_labels,
            input_boxes=input_boxes,
        )
        entries = self._embed(arrays)
        encoder_s = self.last_timings["encoder_s"]
        results, decoder_s, postprocess_s = [], 0.0, 0.0
        for entry, objects in zip(entries, batches):
            results.append(self._predict_objects(entry, objects, None, multimask))
            decoder_s += self.last_timings["decoder_s"]
            postprocess_s += self.last_timings["postprocess_s"]
        self.last_timings = {"encoder_s": encoder_s, "decoder_s": decoder_s, "postprocess_s": postprocess_s}
        return results

    def _parse_mask_input(self, mask_input: Any, num_objects: int) -> torch.Tensor | None:
        if mask_input is None:
            return None
        if num_objects > 1:
            raise InputError(
                "mask_input", "a single-object prompt (one point group or box)", f"{num_objects} objects"
            )
        size = self.adapter.lowres_size
        array = (
            mask_input.detach().cpu().numpy()
            if isinstance(mask_input, torch.Tensor)
            else np.asarray(mask_input)
        )
        if not np.issubdtype(array.dtype, np.floating) or array.size != size * size:
            raise InputError(
                "mask_input", f"float logits of shape ({size}, {size}) (e.g. result.best().logits)", array
            )
        if not np.isfinite(array).all():
            raise InputError("mask_input", "finite logits", array)
        return torch.from_numpy(array.astype(np.float32).reshape(1, 1, size, size))

    def _predict_objects(
        self,
        entry: CachedImage,
        objects: list[ObjectPrompt],
        mask_input: torch.Tensor | None,
        multimask: bool,
    ) -> MaskResult:
        """Decode every object of one image (objects with the same prompt shape share a decoder call)."""
        start = time.perf_counter()
        groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
        for index, prompt in enumerate(objects):
            groups[(prompt.num_points, prompt.box is not None)].append(index)
        logits: list[np.ndarray] = [np.empty(0)] * len(objects)
        scores: list[np.ndarray] = [np.empty(0)] * len(objects)
        for (num_points, has_box), indexes in groups.items():
            group = [objects[i] for i in indexes]
            points = labels = boxes = None
            if num_points:
                coords = np.stack([self.adapter.model_coords(p.points, entry.original_hw) for p in group])
                points = torch.from_numpy(coords)
                labels = torch.from_numpy(np.stack([p.labels for p in group]))
            if has_box:
                corners = np.stack([p.box.reshape(2, 2) for p in group])
                boxes = torch.from_numpy(self.adapter.model_coords(corners, entry.original_hw).reshape(-1, 4))
            output = self.adapter.decode(entry.features, points, labels, boxes, mask_input, multimask)
            for row, i in enumerate(indexes):
                logits[i] = output.logits[row].float().cpu().numpy()
                scores[i] = output.scores[row].float().cpu().numpy()
        decoded = time.perf_counter()
        low_res = np.concatenate(logits)
        masks = upscale_logits(low_res, entry.original_hw, **self.adapter.upscale_frame(entry.original_hw))
        result = MaskResult(
            masks=masks > self.mask_threshold,
            scores=np.concatenate(scores).astype(np.float32),
            logits=low_res,
            object_ids=np.repeat(np.arange(len(objects)), [len(s) for s in scores]),
        )
        self.last_timings["decoder_s"] = decoded - start
        self.last_timings["postprocess_s"] = time.perf_counter() - decoded
        return result
