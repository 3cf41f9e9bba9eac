"""``load_model``: a preset name, hub id, local folder or official checkpoint file to a ready model.

``ModelSpec`` says the same in a picklable form, so a worker process can load its own copy.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from robosam.errors import InputError
from robosam.models.checkpoints import load_official_checkpoint
from robosam.models.families import MODEL_TYPE_TO_FAMILY, FamilyAdapter, family_of, get_adapter
from robosam.models.registry import PRESETS, Preset, find_preset_by_hub_id, presets_of_kind

CHECKPOINT_SUFFIXES = (".pt", ".pth")
MODEL_KINDS = ("segmenter", "tracker")  # what load_model builds; detectors load in robosam.grounding
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """None -> float32; a torch dtype or one of ``float32``, ``bfloat16``, ``float16``."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise InputError("dtype", f"one of {', '.join(DTYPES)}", dtype)
    return DTYPES[dtype]


@dataclass
class LoadedModel:
    """A model ready for the tasks: the transformers module, its family adapter and where it came from.

    kind: ``segmenter`` (image model) or ``tracker`` (video model of the same family).
    missing_weights: names of the model's tensors its checkpoint lacked (left at random initialisation; a
        tracker loaded from an image-only folder lacks the memory modules). Loading warns when not empty.
    """

    model: PreTrainedModel
    adapter: FamilyAdapter
    source: str
    kind: str = "segmenter"
    missing_weights: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        return self.adapter.name


@dataclass(frozen=True)
class ModelSpec:
    """What to load, where and in which dtype, as plain values: it pickles, so workers load their own copy.

    source: preset name, hub id, local folder or official checkpoint path. device: ``auto``, ``cpu``,
    ``cuda``, ``cuda:N`` or ``mps``. dtype: ``float32`` (default), ``bfloat16`` or ``float16``.
    kind: ``segmenter`` or ``tracker``.
    """

    source: str
    device: str = "auto"
    dtype: str | None = None
    kind: str = "segmenter"

    def load(self) -> LoadedModel:
        return load_model(self.source, device=self.device, dtype=self.dtype, kind=self.kind)


def load_model(
    name_or_path: str | os.PathLike | PreTrainedModel | ModelSpec,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    kind: str = "segmenter",
) -> LoadedModel:
    """Load a SAM-family model as an image segmenter or a video tracker.

    name_or_path: a preset name (``robosam models`` lists them), a hub id (``facebook/sam-vit-base``), a
        local folder written by ``save_pretrained``, a folder written by ``robosam export onnx`` (run by ONNX
        Runtime), an official Meta checkpoint (``sam_vit_b_01ec64.pth``,
        ``sam2.1_hiera_tiny.pt``), an already built transformers model, or a ``ModelSpec``.
    device: ``auto`` (cuda, then mps, then cpu) or a torch device string.
    dtype: float32 by default; ``bfloat16`` / ``float16`` are options on GPU.
    kind: ``segmenter`` (the family's image model) or ``tracker`` (its video model: SAM 2 / 2.1, SAM 3
        tracker, EdgeTAM). A transformers model passed in is used as it is.
    Hub downloads are cached by huggingface_hub and honour ``HF_HUB_OFFLINE=1``.
    """
    if isinstance(name_or_path, ModelSpec):
        return name_or_path.load()
    if kind not in MODEL_KINDS:
        raise InputError("kind", f"one of {', '.join(MODEL_KINDS)}", kind)
    if not isinstance(name_or_path, PreTrainedModel) and _is_onnx_folder(name_or_path):
        return _load_onnx_folder(os.fspath(name_or_path), device, dtype, kind)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    image_processor, missing = None, ()
    if isinstance(name_or_path, PreTrainedModel):
        model, source = name_or_path, type(name_or_path).__name__
        family = family_of(model)
    else:
        source = os.fspath(name_or_path)
        model, family, image_processor, missing = _load_from_source(source, video=kind == "tracker")
    model = model.to(device=torch_device, dtype=torch_dtype).eval()
    adapter = get_adapter(family)(model, image_processor)
    return LoadedModel(model=model, adapter=adapter, source=source, kind=kind, missing_weights=missing)


def _is_onnx_folder(source: str | os.PathLike) -> bool:
    from robosam.onnx_runtime import is_export_folder

    return is_export_folder(source)


def _load_onnx_folder(source: str, device: str | torch.device, dtype: Any, kind: str) -> LoadedModel:
    """A folder written by ``robosam export onnx``, run by ONNX Runtime (``LoadedModel.model`` is an
    ``OnnxModel``)."""
    from robosam.models.families.onnx import load_onnx_folder

    if kind != "segmenter":
        raise InputError(
            "model",
            "a PyTorch model or preset for kind='tracker' (an exported folder tracks through "
            "robosam.VideoTracker(DIR))",
            source,
        )
    adapter = load_onnx_folder(source, device=device, dtype=dtype)
    return LoadedModel(model=adapter.model, adapter=adapter, source=source, kind=kind)


Loaded = tuple[PreTrainedModel, str, Any, tuple[str, ...]]  # model, family, image processor, missing weights


def _load_from_source(source: str, video: bool) -> Loaded:
    path = Path(source).expanduser()
    kind = "tracker" if video else "segmenter"
    if path.is_dir():
        family = _family_from_folder(path)
        return _from_pretrained(family, str(path), local=True, video=video)
    if path.is_file():
        if path.suffix not in CHECKPOINT_SUFFIXES:
            raise InputError(
                "model", f"a model folder or a checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})", source
            )
        model = load_official_checkpoint(path, video=video)
        return model, family_of(model), None, ()
    presets = presets_of_kind(kind)
    if source in presets:
        return _from_preset(presets[source], video)
    if source in PRESETS:
        raise InputError("model", f"a {kind} preset ({', '.join(presets)})", source)
    looks_like_path = source.startswith((".", "/", "~")) or path.suffix in CHECKPOINT_SUFFIXES
    if looks_like_path or source.count("/") != 1:
        raise InputError(
            "model",
            f"a preset name ({', '.join(presets)}), a hub id 'owner/name', or an existing path",
            source,
        )
    preset = find_preset_by_hub_id(source, kind)
    if preset is not None:
        return _from_preset(preset, video)
    return _from_pretrained(_family_from_hub(source), source, local=False, video=video)


def _from_preset(preset: Preset, video: bool) -> Loaded:
    """Transformers weights from the preset's hub repository, or else its official Meta checkpoint."""
    if not preset.checkpoint or _hub_has_file(preset.hub_id, "config.json"):
        return _from_pretrained(preset.family, preset.hub_id, local=False, video=video)
    from huggingface_hub import hf_hub_download

    try:
        checkpoint = hf_hub_download(preset.hub_id, preset.checkpoint)
    except Exception as error:  # noqa: BLE001 - any hub failure means the same to the user
        raise _hub_error(preset.hub_id, error) from error
    model = load_official_checkpoint(checkpoint, video=video)
    return model, family_of(model), None, ()


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
        raise InputError(
            "model", "a SAM-family config (sam, sam_hq, mobilesam, sam2, sam3, edgetam)", model_type
        )
    return MODEL_TYPE_TO_FAMILY[model_type]


def _family_from_hub(hub_id: str) -> str:
    from huggingface_hub import hf_hub_download

    try:
        config_file = hf_hub_download(hub_id, "config.json")
    except Exception as error:  # noqa: BLE001 - any hub failure means the same to the user
        raise _hub_error(hub_id, error) from error
    return _family_from_folder(Path(config_file).parent)


def _from_pretrained(family: str, source: str, *, local: bool, video: bool = False) -> Loaded:
    from transformers import AutoImageProcessor, SamImageProcessorPil

    model_class = get_adapter(family).model_class(video=video)
    try:
        model, info = model_class.from_pretrained(source, local_files_only=local, output_loading_info=True)
    except OSError as error:
        raise _hub_error(source, error) from error
    missing = tuple(sorted(info.get("missing_keys", ())))
    if missing:
        message = missing_weights_message(source, model_class.__name__, missing)
        warnings.warn(MissingWeightsWarning(message), stacklevel=4)  # load_model's caller
    # the PIL variant of SAM 1's processor resizes exactly as Meta's code does
    processor_class = SamImageProcessorPil if get_adapter(family).padded else AutoImageProcessor
    try:
        image_processor = processor_class.from_pretrained(source, local_files_only=local)
    except (OSError, ValueError):
        image_processor = None  # fall back to the family default at the model's own input size
    return model, family, image_processor, missing


class MissingWeightsWarning(UserWarning):
    """A loaded model lacks tensors its checkpoint should hold: they keep their random initialisation."""


def missing_weights_message(source: str, class_name: str, missing: tuple[str, ...]) -> str:
    """One line naming how many tensors of ``class_name`` ``source`` lacks, and the first few."""
    modules = list(dict.fromkeys(name.split(".", 1)[0] for name in missing))
    return (
        f"{source} lacks {len(missing)} weights of {class_name} ({', '.join(modules[:6])}): they are random. "
        "For a tracker, load a video checkpoint (a SAM 2 preset, an official .pt, a folder saved from the "
        "video model or by robosam finetune from one)"
    )


def _hub_error(source: str, error: Exception) -> InputError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    hint = (
        "HF_HUB_OFFLINE is set and the model is not in the local cache: run once online, or pass a local folder"
        if offline
        else "could not download it: check the name and the network, or pass a local folder or checkpoint"
    )
    return InputError("model", "a model available on the hub or in the local cache", source, detail=hint)
