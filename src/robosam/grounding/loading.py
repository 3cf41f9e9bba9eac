"""``load_detector``: a detector preset, hub id, local folder or built transformers model to a ``Detector``.

The family comes from the config's ``model_type``: ``grounding-dino`` and ``mm-grounding-dino``
(``grounding_dino`` module), ``owlv2``, ``sam3`` and ``sam3_lite_text`` (``sam3`` module).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from robosam.errors import InputError
from robosam.grounding.base import Detector
from robosam.models.loading import _hub_error, resolve_device, resolve_dtype
from robosam.models.registry import PRESETS, presets_of_kind

MODEL_TYPE_TO_FAMILY = {
    "grounding-dino": "grounding_dino",
    "mm-grounding-dino": "grounding_dino",
    "owlv2": "owlv2",
    "sam3": "sam3",
    "sam3_lite_text": "sam3",
    "sam3_video": "sam3",  # facebook/sam3 holds the video model; Sam3Model reads its detector part
}
PRESET_FAMILY_TO_MODULE = {
    "grounding_dino": "grounding_dino",
    "mm_grounding_dino": "grounding_dino",
    "owlv2": "owlv2",
    "sam3": "sam3",
}


def load_detector(
    source: str | os.PathLike | Detector | Any,
    device: str = "auto",
    dtype: str | None = None,
    processor: Any = None,
) -> Detector:
    """A ready ``Detector``.

    source: a detector preset (``robosam models --kind detector``: grounding-dino-tiny, grounding-dino-base,
        mm-grounding-dino-tiny, owlv2-base, sam3), a hub id, a local ``save_pretrained`` folder holding the
        model and its processor, an object with ``detect`` (returned as it is), or a transformers detector
        model (then ``processor`` is required).
    device: ``auto``, ``cpu``, ``cuda``, ... dtype: float32 by default.
    Hub downloads are cached and honour ``HF_HUB_OFFLINE=1``.
    """
    if hasattr(source, "detect") and hasattr(source, "gives_masks"):
        return source
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    from transformers import PreTrainedModel

    if isinstance(source, PreTrainedModel):
        if processor is None:
            raise InputError("processor", "the model's processor (AutoProcessor.from_pretrained)", None)
        family = _family(getattr(source.config, "model_type", None), type(source).__name__)
        model, name = source, type(source).__name__
    else:
        name = os.fspath(source)
        family, location, local = _locate(name)
        model, loaded_processor = _from_pretrained(family, location, local)
        processor = processor or loaded_processor
    model = model.to(device=torch_device, dtype=torch_dtype).eval()
    return _build(family, model, processor, name)


def _build(family: str, model: Any, processor: Any, name: str) -> Detector:
    if family == "grounding_dino":
        from robosam.grounding.grounding_dino import GroundingDinoDetector

        return GroundingDinoDetector(model, processor, name=name)
    if family == "owlv2":
        from robosam.grounding.owlv2 import Owlv2Detector

        return Owlv2Detector(model, processor, name=name)
    from robosam.grounding.sam3 import Sam3Detector

    return Sam3Detector(model, processor, name=name)


def _family(model_type: str | None, what: str) -> str:
    if model_type not in MODEL_TYPE_TO_FAMILY:
        raise InputError(
            "detector", "a Grounding DINO, MM Grounding DINO, OWLv2 or SAM 3 model", model_type or what
        )
    return MODEL_TYPE_TO_FAMILY[model_type]


def _locate(source: str) -> tuple[str, str, bool]:
    """(family, folder or hub id, whether local) for a preset, folder or hub id."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _family_from_config(path / "config.json", source), str(path), True
    presets = presets_of_kind("detector")
    if source in presets:
        preset = presets[source]
        return PRESET_FAMILY_TO_MODULE[preset.family], preset.hub_id, False
    if source in PRESETS:
        raise InputError("detector", f"a detector preset ({', '.join(presets)})", source)
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise InputError(
            "detector", f"a detector preset ({', '.join(presets)}), a hub id 'owner/name' or a folder", source
        )
    from huggingface_hub import hf_hub_download

    try:
        config_file = hf_hub_download(source, "config.json")
    except Exception as error:  # noqa: BLE001 - any hub failure means the same to the user
        raise hub_error(source, error, "detector") from error
    return _family_from_config(Path(config_file), source), source, False


def _family_from_config(config_file: Path, source: str) -> str:
    if not config_file.is_file():
        raise InputError("detector", "a folder with config.json (written by save_pretrained)", source)
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError) as error:
        raise InputError("detector", "a readable config.json", str(config_file), detail=str(error)) from None
    return _family(model_type, source)


def _from_pretrained(family: str, location: str, local: bool) -> tuple[Any, Any]:
    import transformers as tf

    try:
        model_class = tf.AutoModelForZeroShotObjectDetection
        if family == "sam3":
            config = tf.AutoConfig.from_pretrained(location, local_files_only=local)
            model_class = tf.Sam3LiteTextModel if config.model_type == "sam3_lite_text" else tf.Sam3Model
        model = model_class.from_pretrained(location, local_files_only=local)
        processor = tf.AutoProcessor.from_pretrained(location, local_files_only=local)
    except OSError as error:
        raise hub_error(location, error, "detector") from error
    return model, processor


def hub_error(source: str, error: Exception, argument: str) -> InputError:
    """The loading module's hub failure message, naming ``argument`` (``detector``, ``clip``)."""
    base = _hub_error(source, error)
    return InputError(argument, base.expected, source, detail=str(base).rsplit(" (", 1)[-1].rstrip(")"))
