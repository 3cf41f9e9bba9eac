"""The base model's video weights, kept so that a fine-tuned SAM 2 / SAM 3 tracker / EdgeTAM still tracks.

The trainer fine-tunes the family's image model (``Sam2Model``: image encoder, prompt encoder, mask decoder).
The family's video model (``Sam2VideoModel``) holds every one of those tensors under the same name, plus its
own: memory attention, memory encoder, object pointer projections, temporal encodings. ``TrackerWeights``
keeps those video-only tensors of the base model (loaded once, as ``load_model(base, kind="tracker")``);
``graft`` puts the trained image tensors beside them. ``OUT/best/`` is then a video model folder: robosam
loads it as a segmenter (the image model's tensors, as it loads the hub's SAM 2 folders) and as a tracker
with the base model's real memory weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel

from robosam.models import load_model
from robosam.models.loading import MissingWeightsWarning


class TrackerWeightsWarning(UserWarning):
    """The fine-tuned model will load as a segmenter only (its base has no usable video weights)."""


@dataclass
class TrackerWeights:
    """The video-only tensors of a base model and what is needed to save a video model around them.

    model_class: the transformers video class (``Sam2VideoModel``, ...). config: the base video model's config.
    video_only: name -> tensor (CPU) of every video-model tensor the image model lacks.
    image_shapes: name -> shape of every image-model tensor (the names ``graft`` must be given).
    """

    model_class: type[PreTrainedModel]
    config: Any
    video_only: dict[str, torch.Tensor]
    image_shapes: dict[str, torch.Size]

    @classmethod
    def of_base(cls, source: str, image_model: PreTrainedModel) -> TrackerWeights | None:
        """The video weights of ``source`` (the base ``image_model`` was loaded from), or None where there
        are none: a family without a video model (SAM 1), or a base holding only the image model (then a
        ``TrackerWeightsWarning`` says that the result will not track)."""
        from robosam.models.families import family_of, get_adapter

        if get_adapter(family_of(image_model)).video_model_class is None:
            return None
        with warnings.catch_warnings():  # the loader's own warning is replaced by the one below
            warnings.simplefilter("ignore", MissingWeightsWarning)
            loaded = load_model(source, device="cpu", kind="tracker")
        image_shapes = {name: tensor.shape for name, tensor in image_model.state_dict().items()}
        video = loaded.model.state_dict()
        differ = [n for n, shape in image_shapes.items() if n not in video or video[n].shape != shape]
        problem = (
            f"{len(loaded.missing_weights)} video weights missing ({loaded.missing_weights[0]}, ...)"
            if loaded.missing_weights
            else f"its video model differs from its image model at {differ[0]}"
            if differ
            else None
        )
        if problem is not None:
            warnings.warn(
                TrackerWeightsWarning(
                    f"base model {source}: {problem}; the fine-tuned model will load as a segmenter only "
                    "(fine-tune from a video checkpoint to track with it)"
                ),
                stacklevel=2,
            )
            return None
        return cls(
            model_class=type(loaded.model),
            config=loaded.model.config,
            video_only={n: t.detach().cpu() for n, t in video.items() if n not in image_shapes},
            image_shapes=image_shapes,
        )

    def graft(self, image_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The video model's state dict: ``image_state`` (the trained image model's, LoRA merged, under the
        image model's names) beside the base's video-only tensors. Every tensor on the CPU."""
        names = set(image_state)
        if names != set(self.image_shapes):
            odd = sorted(names ^ set(self.image_shapes))
            raise ValueError(f"image state does not match the base image model ({len(odd)} names, {odd[0]})")
        state = dict(self.video_only)
        state.update({name: tensor.detach().cpu() for name, tensor in image_state.items()})
        return state

    def shell(self) -> PreTrainedModel:
        """The video model with no storage (meta tensors): enough to ``save_pretrained(state_dict=graft())``."""
        with torch.device("meta"):
            return self.model_class(self.config)
