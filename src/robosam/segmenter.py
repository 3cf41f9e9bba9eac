"""``Segmenter``: promptable image segmentation with cached image embeddings, for every SAM family.

The prompt path is stateless and re-entrant: ``embed(image) -> ImageEmbedding`` and
``decode(embedding, prompts) -> MaskResult`` keep nothing on the instance, so one ``Segmenter`` serves many
threads (an HTTP server, a ROS node). ``set_image`` / ``predict`` / ``predict_batch`` are conveniences over
them for one caller at a time.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from transformers import PreTrainedModel

from robosam.cache import EmbeddingCache, image_key
from robosam.errors import InputError
from robosam.io import ImageLike, load_image
from robosam.masks import upscale_logits
from robosam.models import DEFAULT_PRESET, ImageGeometry, LoadedModel, ModelSpec, load_model
from robosam.models.families import DecoderOutput
from robosam.prompts import ObjectPrompt, parse_batch_prompts, parse_prompts
from robosam.results import MaskResult

DEFAULT_CACHE_BYTES = 512 * 2**20


@dataclass(frozen=True, eq=False)
class ImageEmbedding:
    """One image as the model's encoder saw it; immutable and safe to share across threads.

    key: content hash of the RGB pixels (the cache key).
    features: the family's encoder output, batch dimension 1: SAM 1 a tensor (1, C, h, w); SAM-HQ
        (embeddings, [early features]); SAM 2 family the pyramid levels, high resolution first.
    geometry: original size (H, W), encoder input side, the resized image inside it, low-res mask side.
    nbytes: bytes held by ``features`` and ``decoder_state`` (what the cache counts).
    encode_s: seconds the encoder took for it.
    decoder_state: prompt-independent decoder work done once per image (the fast decoder's), or None.
    """

    key: str
    features: Any
    geometry: ImageGeometry
    nbytes: int
    encode_s: float = 0.0
    decoder_state: Any = field(default=None, repr=False)

    @property
    def original_hw(self) -> tuple[int, int]:
        """(H, W) of the original image."""
        return self.geometry.original_hw


class Segmenter:
    """Prompt a SAM-family model with points, boxes and masks on one image or a batch.

    >>> seg = Segmenter("sam2.1-hiera-tiny")
    >>> emb = seg.embed("truck.jpg")                              # cached by content, thread-safe
    >>> result = seg.decode(emb, points=[(500, 375)], labels=[1])   # MaskResult at the original resolution

    model: a preset, hub id, local folder, official checkpoint, transformers model, ``ModelSpec`` or
        ``LoadedModel``.
    cache_bytes: budget of the image-embedding LRU; an image seen before costs no encoder run.
    mask_threshold: logit above which a pixel is foreground.
    fast_decoder: use robosam's exact fast mask decoder where the family has one (SAM 1 / SlimSAM / MobileSAM,
        SAM 2 / 2.1, SAM 3 tracker, EdgeTAM; not SAM-HQ), with transformers' module for what it does not
        cover (mask input, gradients).
    ``last_timings`` (conveniences only) holds seconds of the last ``set_image`` / ``predict`` /
    ``predict_batch``: ``encoder_s`` (0.0 on a cache hit), ``decoder_s``, ``postprocess_s``.
    """

    def __init__(
        self,
        model: str | os.PathLike | PreTrainedModel | LoadedModel | ModelSpec = DEFAULT_PRESET,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        mask_threshold: float = 0.0,
        fast_decoder: bool = True,
    ):
        self.loaded = (
            model if isinstance(model, LoadedModel) else load_model(model, device=device, dtype=dtype)
        )
        self.adapter = self.loaded.adapter
        self.cache = EmbeddingCache(cache_bytes)
        self.mask_threshold = float(mask_threshold)
        self.fast = _fast_decoder_for(self.model) if fast_decoder else None
        self.last_timings: dict[str, float] = {"encoder_s": 0.0, "decoder_s": 0.0, "postprocess_s": 0.0}
        self._current: ImageEmbedding | None = None

    @property
    def model(self) -> PreTrainedModel:
        return self.loaded.model

    # stateless prompt path ----------------------------------------------------------------------
    def embed(self, image: ImageLike, image_format: Literal["RGB", "BGR"] = "RGB") -> ImageEmbedding:
        """The embedding of ``image`` (path, PIL, numpy RGB/BGR/gray/RGBA), from the cache when seen before."""
        return self.embed_batch([image], image_format=image_format)[0]

    def embed_batch(
        self,
        images: list[ImageLike],
        image_format: Literal["RGB", "BGR"] = "RGB",
        batch_size: int = 4,
    ) -> list[ImageEmbedding]:
        """Embeddings of several images; the encoder runs once per distinct image not yet cached, in
        batches of ``batch_size``, and never twice at once for the same image across threads."""
        arrays = [
            load_image(
                image, image_format=image_format, argument="image" if len(images) == 1 else f"images[{i}]"
            )
            for i, image in enumerate(images)
        ]
        return [entry for entry, _ in self._embed_arrays(arrays, batch_size)]

    def decode(
        self,
        embedding: ImageEmbedding,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask: bool = True,
        upscale: bool = True,
    ) -> MaskResult:
        """Masks for prompts on an embedded image.

        points: (P, 2) pixels (x, y) for one object, or (O, P, 2) for O objects; labels: (P,) / (O, P),
            1 positive, 0 negative (default all 1); box: (4,) or (O, 4) as (x1, y1, x2, y2);
        mask_input: (L, L), (1, L, L) or (1, 1, L, L) logits from a previous ``result.best().logits``
            (one object only); multimask: 3 candidate masks per object instead of 1.
        upscale: False returns only low-resolution ``logits`` and ``scores`` (``masks`` is None), for a
            caller that filters first and then calls ``upscale`` on the rows it keeps.
        Returns a ``MaskResult`` (masks (O*K, H, W) bool at the original size, scores, low-res logits,
        object_ids) whose ``timings`` hold ``decoder_s`` and ``postprocess_s``.
        """
        objects = parse_prompts(embedding.original_hw, points=points, labels=labels, box=box)
        mask_tensor = self._parse_mask_input(mask_input, num_objects=len(objects))
        if not objects and mask_tensor is None:
            raise InputError("points/box/mask_input", "at least one point, box or mask_input", None)
        return self.decode_objects(embedding, objects or [ObjectPrompt()], mask_tensor, multimask, upscale)

    def decode_objects(
        self,
        embedding: ImageEmbedding,
        objects: list[ObjectPrompt],
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
        upscale: bool = True,
    ) -> MaskResult:
        """``decode`` for prompts already validated (``robosam.prompts``): objects with the same prompt
        shape share one decoder call. mask_input: (1, 1, L, L) logits for a single object, or None."""
        start = time.perf_counter()
        with torch.no_grad():
            output = self.decode_logits(embedding, objects, mask_input, multimask)
        low_res = output.logits.float().cpu().numpy().reshape(-1, *output.logits.shape[-2:])
        scores = output.scores.float().cpu().numpy().reshape(-1)
        per_object = output.scores.shape[1]
        result = MaskResult(
            masks=None,
            scores=scores.astype(np.float32),
            logits=low_res,
            object_ids=np.repeat(np.arange(len(objects)), per_object),
            timings={"decoder_s": time.perf_counter() - start, "postprocess_s": 0.0},
        )
        return self.upscale(embedding, result) if upscale else result

    def decode_logits(
        self,
        embedding: ImageEmbedding,
        objects: list[ObjectPrompt],
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> DecoderOutput:
        """Low-resolution logits (O, K, L, L) and scores (O, K) as tensors, in the caller's autograd mode:
        under ``torch.enable_grad()`` a loss on them reaches the prompt encoder and mask decoder."""
        groups: dict[tuple[int, bool], list[int]] = defaultdict(list)
        for index, prompt in enumerate(objects):
            groups[(prompt.num_points, prompt.box is not None)].append(index)
        geometry = embedding.geometry
        logits: list[torch.Tensor | None] = [None] * len(objects)
        scores: list[torch.Tensor | None] = [None] * len(objects)
        for (num_points, has_box), indexes in groups.items():
            group = [objects[i] for i in indexes]
            points = labels = boxes = None
            if num_points:
                points = torch.from_numpy(np.stack([geometry.to_model(p.points) for p in group]))
                labels = torch.from_numpy(np.stack([p.labels for p in group]))
            if has_box:
                corners = np.stack([p.box.reshape(2, 2) for p in group])
                boxes = torch.from_numpy(geometry.to_model(corners).reshape(-1, 4))
            output = self._decode_group(embedding, points, labels, boxes, mask_input, multimask)
            for row, i in enumerate(indexes):
                logits[i] = output.logits[row]
                scores[i] = output.scores[row]
        return DecoderOutput(logits=torch.stack(logits), scores=torch.stack(scores))

    def _decode_group(self, embedding, points, labels, boxes, mask_input, multimask) -> DecoderOutput:
        use_fast = (
            self.fast is not None
            and embedding.decoder_state is not None
            and mask_input is None
            and not torch.is_grad_enabled()
        )
        if use_fast:
            device, dtype = self.adapter.device, self.adapter.dtype
            logits, scores = self.fast(
                embedding.decoder_state,
                None if points is None else points.to(device, dtype),
                None if labels is None else labels.to(device),
                None if boxes is None else boxes.to(device, dtype),
                multimask,
            )
            return DecoderOutput(logits=logits, scores=scores)
        return self.adapter.decode(embedding.features, points, labels, boxes, mask_input, multimask)

    def upscale(self, embedding: ImageEmbedding, result: MaskResult) -> MaskResult:
        """``result`` with ``masks`` (N, H, W) bool at the original size, from its low-resolution logits
        (Meta's resize steps), thresholded at ``mask_threshold``. Adds ``postprocess_s`` to its timings."""
        start = time.perf_counter()
        full = upscale_logits(result.logits, embedding.original_hw, **embedding.geometry.upscale_frame())
        timings = dict(result.timings)
        timings["postprocess_s"] = timings.get("postprocess_s", 0.0) + time.perf_counter() - start
        return result.replace(masks=full > self.mask_threshold, timings=timings)

    # conveniences for one caller ----------------------------------------------------------------
    def set_image(self, image: ImageLike, image_format: Literal["RGB", "BGR"] = "RGB") -> ImageEmbedding:
        """Encode ``image`` (or take it from the cache) and make it the one ``predict`` prompts."""
        array = load_image(image, image_format=image_format)
        entry, encoded = self._embed_arrays([array])[0]
        self._current = entry
        self.last_timings = {
            "encoder_s": entry.encode_s if encoded else 0.0,
            "decoder_s": 0.0,
            "postprocess_s": 0.0,
        }
        return entry

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the current image."""
        return self._require_image().original_hw

    def _require_image(self) -> ImageEmbedding:
        if self._current is None:
            raise InputError("image", "set_image(...) before predict(...)", None)
        return self._current

    def predict(
        self,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask: bool = True,
    ) -> MaskResult:
        """``decode`` on the image of the last ``set_image`` (see ``decode`` for the arguments)."""
        result = self.decode(self._require_image(), points, labels, box, mask_input, multimask)
        self.last_timings = {"encoder_s": self.last_timings.get("encoder_s", 0.0), **result.timings}
        return result

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
        embedded = self._embed_arrays(arrays)
        encoder_s = sum({id(e): e.encode_s for e, encoded in embedded if encoded}.values())
        results = [
            self.decode_objects(entry, objects, None, multimask)
            for (entry, _), objects in zip(embedded, batches)
        ]
        self.last_timings = {
            "encoder_s": encoder_s,
            "decoder_s": sum(r.timings["decoder_s"] for r in results),
            "postprocess_s": sum(r.timings["postprocess_s"] for r in results),
        }
        return results

    # internals ----------------------------------------------------------------------------------
    def _embed_arrays(
        self, images: list[np.ndarray], batch_size: int = 4
    ) -> list[tuple[ImageEmbedding, bool]]:
        """(embedding, encoded by this call) per RGB image; distinct uncached images are encoded in
        batches, and images another thread is encoding are waited for rather than encoded again."""
        keys = [image_key(image) for image in images]
        found, waiting, mine = self.cache.claim(keys)
        first_image = {key: image for key, image in zip(reversed(keys), reversed(images))}
        encoded: set[str] = set()
        try:
            for offset in range(0, len(mine), batch_size):
                chunk = mine[offset : offset + batch_size]
                for entry in self._encode([first_image[key] for key in chunk], chunk):
                    found[entry.key] = entry
                    encoded.add(entry.key)
                    self.cache.publish(entry)
        except BaseException as error:
            for key in mine:
                if key not in encoded:
                    self.cache.fail(key, error)
            raise
        for key, future in waiting.items():
            found[key] = future.result()
        return [(found[key], key in encoded) for key in keys]

    def _encode(self, images: list[np.ndarray], keys: list[str]) -> list[ImageEmbedding]:
        start = time.perf_counter()
        with torch.no_grad():
            pixel_values = self.adapter.preprocess(images)
            features = self.adapter.encode(pixel_values)
            states = [self.fast.prepare(f) if self.fast else None for f in features]
        seconds = (time.perf_counter() - start) / len(images)
        return [
            ImageEmbedding(
                key=key,
                features=feature,
                geometry=self.adapter.geometry(image.shape[:2]),
                nbytes=self.adapter.features_nbytes(feature) + _state_nbytes(state),
                encode_s=seconds,
                decoder_state=state,
            )
            for key, image, feature, state in zip(keys, images, features, states)
        ]

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


def _fast_decoder_for(model: PreTrainedModel) -> Any:
    """robosam's exact fast decoder for ``model`` where one exists, else None (transformers' module)."""
    try:
        from robosam.models.fast_decoder import FastSamDecoder
        from robosam.models.fast_decoder_sam2 import FastSam2Decoder
    except ImportError:
        return None
    for decoder in (FastSamDecoder, FastSam2Decoder):
        if decoder.supports(model):
            return decoder(model)
    return None


def _state_nbytes(state: Any) -> int:
    if state is None:
        return 0
    nbytes = getattr(state, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    return sum(v.numel() * v.element_size() for v in vars(state).values() if isinstance(v, torch.Tensor))
