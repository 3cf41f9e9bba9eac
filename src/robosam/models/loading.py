"""``load_model``: a preset name, hub id, local folder or official checkpoint file to a ready model."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from robosam.errors import InputError
from robosam.models.families import ADAPTERS, FamilyAdapter
from robosam.models.registry import PRESETS, Preset, find_preset_by_hub_id

# config.json "model_type" -> robosam family
MODEL_TYPE_TO_FAMILY = {
    "sam": "sam",
    "sam_hq": "sam_hq",
    "sam2": "sam2",
    "sam2_video": "sam2",
    "sam3": "sam3_tracker",
    "sam3_tracker": "sam3_tracker",
    "sam3_video": "sam3_tracker",
    "sam3_tracker_video": "sam3_tracker",
    "edgetam": "edgetam",
    "edgetam_video": "edgetam",
}
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def _model_class(family: str) -> type[PreTrainedModel]:
    import transformers

    name = {
        "sam": "SamModel",
        "sam_hq": "SamHQModel",
        "sam2": "Sam2Model",
        "sam3_tracker": "Sam3TrackerModel",
        "edgetam": "EdgeTamModel",
    }[family]
    return getattr(transformers, name)


def default_image_processor(family: str, input_size: int, lowres_size: int | None = None) -> Any:
    """The family's standard preprocessing at ``input_size``, matching Meta's to the pixel.

    SAM 1 family: longest side resized with PIL (as Meta's ``ResizeLongestSide``), padded to a square;
    SAM 2 family: resized to the square. ImageNet normalisation (SAM 3: 0.5 / 0.5).
    """
    from transformers import Sam2ImageProcessor, SamImageProcessorPil

    lowres_size = lowres_size or input_size // 4
    if family in ("sam", "sam_hq"):
        return SamImageProcessorPil(
            size={"longest_edge": input_size},
            pad_size={"height": input_size, "width": input_size},
            mask_size={"longest_edge": lowres_size},
            mask_pad_size={"height": lowres_size, "width": lowres_size},
        )
    kwargs: dict[str, Any] = {}
    if family == "sam3_tracker":
        kwargs = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    return Sam2ImageProcessor(
        size={"height": input_size, "width": input_size},
        mask_size={"height": lowres_size, "width": lowres_size},
        **kwargs,
    )


def family_of(model: PreTrainedModel) -> str:
    """robosam family of a transformers model, from its config's ``model_type``."""
    model_type = getattr(model.config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_FAMILY:
        raise InputError(
            "model", f"a SAM-family model ({', '.join(sorted(MODEL_TYPE_TO_FAMILY))})", model_type
        )
    return MODEL_TYPE_TO_FAMILY[model_type]


def encoder_input_size(model: PreTrainedModel) -> int:
    """Side of the square image the encoder of ``model`` expects (every SAM family's prompt encoder knows it)."""
    prompt_config = getattr(model.config, "prompt_encoder_config", None)
    size = getattr(prompt_config, "image_size", None)
    if size is None:
        raise InputError(
            "model", "a SAM-family config with prompt_encoder_config.image_size", type(model.config).__name__
        )
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise InputError("device", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", device) from error


@dataclass
class LoadedModel:
    """A model ready for the tasks: the transformers module, its family adapter and where it came from."""

    model: PreTrainedModel
    adapter: FamilyAdapter
    source: str

    @property
    def family(self) -> str:
        return self.adapter.family


def load_model(
    name_or_path: str | os.PathLike | PreTrainedModel,
    device: str | torch.device = "auto",
    dtype: torch.dtype | None = None,
) -> LoadedModel:
    """Load a SAM-family model.

    name_or_path: a preset name (``robosam models`` lists them), a hub id (``facebook/sam-vit-base``), a
        local folder written by ``save_pretrained``, an official Meta checkpoint (``sam_vit_b_01ec64.pth``,
        ``sam2.1_hiera_tiny.pt``), or an already built transformers model.
    device: ``auto`` (cuda, then mps, then cpu) or a torch device string.
    dtype: defaults to float32 (bfloat16 is an option on GPU).
    Hub downloads are cached by huggingface_hub and honour ``HF_HUB_OFFLINE=1``.
    """
    torch_device = resolve_device(device)
    image_processor = None
    if isinstance(name_or_path, PreTrainedModel):
        model, source = name_or_path, type(name_or_path).__name__
        family = family_of(model)
    else:
        source = os.fspath(name_or_path)
        model, family, image_processor = _load_from_source(source)
    model = model.to(device=torch_device, dtype=dtype or torch.float32).eval()
    if image_processor is None:
        image_processor = default_image_processor(family, encoder_input_size(model))
    adapter = ADAPTERS[family](model, image_processor, family)
    return LoadedModel(model=model, adapter=adapter, source=source)


def _load_from_source(source: str) -> tuple[PreTrainedModel, str, Any]:
    path = Path(source).expanduser()
    if path.is_dir():
        family = _family_from_folder(path)
        return _from_pretrained(family, str(path), local=True)
    if path.is_file():
        if path.suffix not in CHECKPOINT_SUFFIXES:
            raise InputError(
                "model", f"a model folder or a checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})", source
            )
        from robosam.models.checkpoints import load_official_checkpoint

        model = load_official_checkpoint(path)
        return model, family_of(model), None
    if source in PRESETS:
        return _from_preset(PRESETS[source])
    looks_like_path = source.startswith((".", "/", "~")) or path.suffix in CHECKPOINT_SUFFIXES
    if looks_like_path or source.count("/") != 1:
        raise InputError(
            "model",
            f"a preset name ({', '.join(PRESETS)}), a hub id 'owner/name', or an existing path",
            source,
        )
    preset = find_preset_by_hub_id(source)
    if preset is not None:
        return _from_preset(preset)
    return _from_pretrained(_family_from_hub(source), source, local=False)


def _from_preset(preset: Preset) -> tuple[PreTrainedModel, str, Any]:
    """Transformers weights from the preset's hub repository, or else its official Meta checkpoint."""
    if not preset.checkpoint or _hub_has_file(preset.hub_id, "config.json"):
        return _from_pretrained(preset.family, preset.hub_id, local=False)
    from huggingface_hub import hf_hub_download

    from robosam.models.checkpoints import load_official_checkpoint

    try:
        checkpoint = hf_hub_download(preset.hub_id, preset.checkpoint)
    except Exception as error:  # noqa: BLE001 - any hub failure means the same to the user
        raise _hub_error(preset.hub_id, error) from error
    model = load_official_checkpoint(checkpoint)
    return model, family_of(model), None


def _hub_has_file(hub_id: str, filename: str) -> bool:
    """Whether ``filename`` is in the hub repository (or, offline, in the local cache)."""
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(hub_id, filename)
        return True
    except Exception:  # noqa: BLE001 - missing file, offline or unreachable: decided by the caller's fallback
        return False


def _family_from_folder(path: Path) -> str:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise InputError("model", "a folder with config.json (written by save_pretrained)", str(path))
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, OSError) as error:
        raise InputError("model", "a readable config.json", str(config_file), detail=str(error)) from error
    if model_type not in MODEL_TYPE_TO_FAMILY:
        raise InputError("model", "a SAM-family config (sam, sam_hq, sam2, sam3, edgetam)", model_type)
    return MODEL_TYPE_TO_FAMILY[model_type]


def _family_from_hub(hub_id: str) -> str:
    from huggingface_hub import hf_hub_download

    try:
        config_file = hf_hub_download(hub_id, "config.json")
    except Exception as error:  # noqa: BLE001 - any hub failure means the same to the user
        raise _hub_error(hub_id, error) from error
    return _family_from_folder(Path(config_file).parent)


def _from_pretrained(family: str, source: str, *, local: bool) -> tuple[PreTrainedModel, str, Any]:
    from transformers import AutoImageProcessor, SamImageProcessorPil

    try:
        model = _model_class(family).from_pretrained(source, local_files_only=local)
    except OSError as error:
        raise _hub_error(source, error) from error
    # the PIL variant of SAM 1's processor resizes exactly as Meta's code does
    processor_class = SamImageProcessorPil if family in ("sam", "sam_hq") else AutoImageProcessor
    try:
        image_processor = processor_class.from_pretrained(source, local_files_only=local)
    except (OSError, ValueError):
        image_processor = None  # fall back to the family default at the model's own input size
    return model, family, image_processor


def _hub_error(source: str, error: Exception) -> InputError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    hint = (
        "HF_HUB_OFFLINE is set and the model is not in the local cache: run once online, or pass a local folder"
        if offline
        else "could not download it: check the name and the network, or pass a local folder or checkpoint"
    )
    return InputError("model", "a model available on the hub or in the local cache", source, detail=hint)
