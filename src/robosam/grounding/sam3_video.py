"""Text-driven tracking with SAM 3's video model (transformers ``Sam3VideoModel``): its own concept tracking
(detection on every frame, association with its tracked masklets, hot-start and duplicate suppression) behind
``TextTracker``'s API: ``step(frame) -> MaskResult`` with ``track_ids`` and ``labels``, ``run(frames)``.

Frames are streamed one at a time (``Sam3VideoModel.forward(inference_session, frame=...)``), so outputs are
not delayed by the model's hot-start buffer; objects it removes during hot start are hidden from then on, as
transformers' ``propagate_in_video_iterator`` does. SAM 3 numbers objects from 0; robosam's track ids are those
plus 1 (0 is the background of palette PNGs). transformers' session keeps every streamed frame and each
object's outputs, so memory grows with the stream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robosam.errors import InputError
from robosam.grounding.base import check_threshold, parse_phrases
from robosam.io import load_image
from robosam.masks import mask_to_box
from robosam.results import MaskResult

MODEL_TYPE = "sam3_video"


def is_sam3_video(source: Any) -> bool:
    """Whether ``source`` (a model, or a local folder) is a SAM 3 video model (``model_type`` sam3_video)."""
    config = getattr(source, "config", None)
    if config is not None:
        return getattr(config, "model_type", None) == MODEL_TYPE
    if isinstance(source, (str, os.PathLike)):
        config_file = Path(source).expanduser() / "config.json"
        try:
            return json.loads(config_file.read_text()).get("model_type") == MODEL_TYPE
        except (OSError, ValueError):
            return False
    return False


def native_source(detector: Any) -> str | None:
    """Where to load SAM 3's video model from when ``detector`` names one: the ``sam3`` detector preset (its
    hub repository holds the video model) or a local folder of a ``Sam3VideoModel``; else None."""
    if not isinstance(detector, (str, os.PathLike)):
        return None
    name = os.fspath(detector)
    if Path(name).expanduser().is_dir():
        return name if is_sam3_video(name) else None
    from robosam.models.registry import presets_of_kind

    preset = presets_of_kind("detector").get(name)
    return preset.hub_id if preset is not None and preset.family == "sam3" else None


class Sam3VideoTextTracker:
    """Tracks everything ``text`` names with SAM 3's native video concept tracking, with stable ids.

    model: a ``transformers.Sam3VideoModel``, or a folder / hub id holding one and its ``Sam3VideoProcessor``.
    processor: the model's ``Sam3VideoProcessor`` (required with a model object).
    box_threshold: when given, the model's detection score threshold (``score_threshold_detection``) and
        the score a detection needs to start a track (``new_det_thresh``); None keeps the model's settings.
    device: ``auto``, ``cpu``, ``cuda``, ... (models named by string); a model object stays where it is.
    """

    def __init__(
        self,
        model: Any,
        text: str | list[str],
        *,
        processor: Any = None,
        box_threshold: float | None = None,
        device: str = "auto",
    ):
        self.phrases = parse_phrases(text)
        if box_threshold is not None:
            box_threshold = check_threshold(box_threshold, "box_threshold")
        self.model, self.processor = _load(model, processor, device)
        if box_threshold is not None:
            self.model.score_threshold_detection = box_threshold
            self.model.new_det_thresh = box_threshold
        parameter = next(self.model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.session = self.processor.init_video_session(inference_device=self.device, dtype=self.dtype)
        self.processor.add_text_prompt(self.session, self.phrases)
        self.frame_index = -1
        self.frame_size: tuple[int, int] | None = None

    @torch.inference_mode()
    def step(self, frame: Any) -> MaskResult:
        """Masks of the objects visible in ``frame`` (path, PIL or array): ``track_ids`` (SAM 3's object id
        + 1), ``labels`` (the phrase that found the object), ``scores`` (its detection score)."""
        rgb = load_image(frame, argument="frame")
        size = (int(rgb.shape[0]), int(rgb.shape[1]))
        if self.frame_size is not None and size != self.frame_size:
            raise InputError(
                "frame", f"the stream's frame size {self.frame_size[1]}x{self.frame_size[0]}", size
            )
        self.frame_size = size
        self.frame_index += 1
        inputs = self.processor(images=rgb, return_tensors="pt")
        pixels = inputs["pixel_values"][0].to(self.device, self.dtype)
        output = self.model(inference_session=self.session, frame=pixels)
        self.session.hotstart_removed_obj_ids.update(output.removed_obj_ids)
        post = self.processor.postprocess_outputs(self.session, output, original_sizes=[list(size)])
        return self._result(post, size)

    def _result(self, post: dict[str, Any], size: tuple[int, int]) -> MaskResult:
        obj_ids = post["object_ids"].cpu().numpy().astype(np.int64)
        masks = post["masks"].cpu().numpy().astype(bool).reshape(-1, *size)
        phrase_of = {int(i): text for text, ids in post["prompt_to_obj_ids"].items() for i in ids}
        return MaskResult(
            masks=masks,
            scores=post["scores"].float().cpu().numpy().astype(np.float32),
            logits=np.zeros((len(obj_ids), 0, 0), dtype=np.float32),
            object_ids=obj_ids + 1,
            labels=np.asarray([phrase_of[int(i)] for i in obj_ids], dtype=object),
            track_ids=obj_ids + 1,
            data={"boxes": mask_to_box(masks)},
        )

    def run(self, frames: Iterable[Any]) -> Iterator[tuple[int, MaskResult]]:
        """``(frame_index, result)`` for each frame of ``frames`` (arrays, PIL images or paths)."""
        for frame in frames:
            result = self.step(frame)
            yield self.frame_index, result


def _load(model: Any, processor: Any, device: str) -> tuple[Any, Any]:
    import transformers as tf

    if isinstance(model, tf.PreTrainedModel):
        if not is_sam3_video(model):
            raise InputError("model", "a SAM 3 video model (Sam3VideoModel)", type(model).__name__)
        if processor is None:
            raise InputError("processor", "the model's Sam3VideoProcessor", None)
        return model.eval(), processor
    from robosam.grounding.loading import hub_error
    from robosam.models.loading import resolve_device

    location = os.fspath(model)
    local = Path(location).expanduser().is_dir()
    if local and not is_sam3_video(location):
        raise InputError("model", "a folder holding a SAM 3 video model (model_type sam3_video)", location)
    try:
        loaded = tf.Sam3VideoModel.from_pretrained(location, local_files_only=local)
        processor = processor or tf.Sam3VideoProcessor.from_pretrained(location, local_files_only=local)
    except OSError as error:
        raise hub_error(location, error, "detector") from error
    return loaded.to(resolve_device(device)).eval(), processor
