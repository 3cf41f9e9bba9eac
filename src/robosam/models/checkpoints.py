"""Official Meta checkpoints (``sam_vit_b_01ec64.pth``, ``sam2.1_hiera_large.pt``, ...) as transformers models.

``load_official_checkpoint(path)`` reads the file without running pickled code (``torch.load(weights_only=True)``
or safetensors), recognises SAM 1 or SAM 2 / 2.1 from the keys, infers the architecture from tensor shapes,
renames every weight onto the transformers model and refuses anything it cannot map. ``save_converted`` writes
the result as a folder that ``transformers.AutoModel.from_pretrained`` and ``robosam.models.load_model`` load.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from robosam.errors import InputError
from robosam.models import convert_mobilesam, convert_sam, convert_sam2, convert_sam_hq
from robosam.models.convert_common import key_list
from robosam.models.families import FamilyAdapter, default_image_processor, family_of

WRAPPER_KEYS = ("model", "state_dict")  # SAM 2 files are {"model": state_dict}; training dumps use either


def load_official_checkpoint(
    path: str | os.PathLike[str],
    *,
    video: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> PreTrainedModel:
    """Load a Meta SAM 1 / SAM 2 / SAM 2.1, SAM-HQ or MobileSAM checkpoint as a model, eval mode, float32 on CPU.

    path: ``.pt`` / ``.pth`` (read with ``torch.load(weights_only=True)``) or ``.safetensors``.
    video: SAM 2 only: return ``Sam2VideoModel`` (memory attention, memory encoder and object pointers
        mapped too) instead of the image-only ``Sam2Model``, which leaves those video modules out.
    overrides: nested config fields for what the weights cannot show, e.g.
        ``{"vision_config": {"backbone_config": {"global_attention_blocks": [2]}}}``; rarely needed (see
        ``convert_sam`` / ``convert_sam2``).
    Returns ``SamModel`` (SAM 1), ``SamHQModel`` (SAM-HQ), ``MobileSamModel`` (MobileSAM, robosam's TinyViT
    in a ``SamModel``), ``Sam2Model`` or ``Sam2VideoModel`` (SAM 2 / 2.1).
    Raises ``InputError`` for a missing, truncated or corrupt file, a file that needs pickled code, an
    unknown layout, and any key left unmapped or missing.
    """
    state = read_state_dict(path)
    image_only = {
        "SAM-HQ": convert_sam_hq.is_sam_hq(state),
        "SAM 1": convert_sam.is_sam1(state),
        "MobileSAM": convert_mobilesam.is_mobilesam(state),
    }
    if video and any(image_only.values()):
        name = next(name for name, found in image_only.items() if found)
        raise InputError("video", f"False for a {name} checkpoint ({name} has no video model)", video)
    if convert_sam_hq.is_sam_hq(state):
        config = convert_sam_hq.infer_config(state, overrides)
        weights, unmapped = convert_sam_hq.convert_state(state)
        from transformers import SamHQModel as model_class
    elif convert_mobilesam.is_mobilesam(state):
        config = convert_mobilesam.infer_config(state, overrides)
        weights, unmapped = convert_mobilesam.convert_state(state)
        from robosam.models.families.mobilesam import MobileSamModel as model_class
    elif convert_sam.is_sam1(state):
        config = convert_sam.infer_config(state, overrides)
        weights, unmapped = convert_sam.convert_state(state)
        from transformers import SamModel as model_class
    elif convert_sam2.is_sam2(state):
        config = convert_sam2.infer_config(state, overrides, video=video)
        weights, unmapped = convert_sam2.convert_state(state, video=video)
        if video:
            from transformers import Sam2VideoModel as model_class
        else:
            from transformers import Sam2Model as model_class
    else:
        raise InputError(
            "checkpoint",
            "a SAM 1 / SAM-HQ (image_encoder.patch_embed.proj, mask_decoder), MobileSAM "
            "(image_encoder.patch_embed.seq) or SAM 2 (image_encoder.trunk, sam_mask_decoder) state dict",
            f"keys {key_list(state)}",
        )
    if unmapped:
        raise InputError(
            "checkpoint", "only keys robosam knows how to map", f"unmapped keys {key_list(unmapped)}"
        )
    return assemble(model_class, config, weights)


def describe(model: PreTrainedModel) -> str:
    """A short name of the architecture: ``SAM ViT-B``, ``SAM 2 Hiera-T``, or widths and depths."""
    model_type = model.config.model_type
    if model_type == "sam":
        return convert_sam.describe(model.config)
    if model_type == "sam_hq":
        return convert_sam_hq.describe(model.config)
    if model_type == "mobilesam":
        return convert_mobilesam.describe(model.config)
    return convert_sam2.describe(model.config)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, unwrapped from a top-level ``{"model": ...}``; never runs pickled code."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError("checkpoint", "an existing checkpoint file", str(path))
    if path.suffix == ".safetensors":
        content: Any = _read_safetensors(path)
    else:
        content = _read_torch(path)
    for key in WRAPPER_KEYS:
        if isinstance(content, Mapping) and isinstance(content.get(key), Mapping):
            content = content[key]
            break
    if not isinstance(content, Mapping) or not content:
        raise InputError("checkpoint", "a state dict (a mapping of names to tensors)", type(content).__name__)
    not_tensors = [str(key) for key, value in content.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise InputError(
            "checkpoint", "only tensors in the state dict", f"other values at {key_list(not_tensors)}"
        )
    return {str(key): value for key, value in content.items()}


def _read_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found:
            raise InputError(
                "checkpoint",
                "plain tensors (robosam loads with torch.load(weights_only=True))",
                str(path),
                detail=f"the file needs pickled code ({found.group(1)}); re-save only its state_dict, "
                "or convert it where you trust it",
            ) from None
        raise _corrupt(path, error) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, zipfile.BadZipFile) as error:
        raise _corrupt(path, error) from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise _corrupt(path, error) from None


def _corrupt(path: Path, error: BaseException) -> InputError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InputError(
        "checkpoint",
        "a complete, readable checkpoint file",
        str(path),
        detail=f"truncated or corrupt: {reason[:160]}",
    )


def assemble(
    model_class: type[PreTrainedModel], config: PretrainedConfig, weights: Mapping[str, torch.Tensor]
) -> PreTrainedModel:
    """Build ``model_class(config)`` without initialising it and load ``weights`` strictly: every model tensor
    filled, nothing left over, shapes equal. Returns the model in eval mode, float32, on CPU."""
    with torch.device("meta"):
        model = model_class(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        parts = [
            f"missing {key_list(missing)}" if missing else "",
            f"unexpected {key_list(extra)}" if extra else "",
        ]
        raise InputError(
            "checkpoint",
            f"the tensors of a {type(model).__name__} with the inferred configuration",
            detail="; ".join(part for part in parts if part),
        )
    wrong = [
        f"{key} {tuple(weights[key].shape)} vs {tuple(expected[key].shape)}"
        for key in expected
        if tuple(weights[key].shape) != tuple(expected[key].shape)
    ]
    if wrong:
        raise InputError(
            "checkpoint", "tensor shapes matching the inferred configuration", detail=key_list(wrong)
        )
    # several target keys may share one source tensor (two copies of one table): give each its own storage
    ready: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in weights.items():
        tensor = value.detach().to(
            device="cpu", dtype=torch.float32 if value.is_floating_point() else value.dtype
        )
        if id(value) in seen:
            tensor = tensor.clone()
        seen.add(id(value))
        ready[key] = tensor.contiguous()
    model.load_state_dict(ready, strict=True, assign=True)
    model.tie_weights()
    return materialize_buffers(model).eval()


def save_converted(model: PreTrainedModel, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a transformers folder: ``model.safetensors``, ``config.json`` and the matching
    ``preprocessor_config.json`` at the model's input size.

    Written into a temporary sibling folder and renamed into place, so ``out_dir`` is either complete or
    absent (an existing ``out_dir`` must be empty). Returns the folder.
    """
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("out_dir", "a new or empty folder", str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        default_image_processor(family_of(model), FamilyAdapter.model_input_size(model)).save_pretrained(
            staging
        )
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def materialize_buffers(model: Any) -> Any:
    """Give buffers left on the ``meta`` device real values (returns ``model``).

    A model assembled on the meta device and filled with ``load_state_dict(assign=True)`` (as the official
    checkpoint loader does) keeps its non-persistent buffers there: the rotary frequencies and position ids of
    the memory attention are in no state dict. They are computed in the constructor, so a copy built without
    weight initialisation provides them.
    """
    missing = [name for name, buffer in model.named_buffers() if buffer.is_meta]
    if not missing:
        return model
    from transformers.initialization import no_init_weights

    with no_init_weights():
        fresh = type(model)(model.config)
    for name in missing:
        owner_name, _, buffer_name = name.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        persistent = buffer_name not in getattr(owner, "_non_persistent_buffers_set", set())
        owner.register_buffer(buffer_name, fresh.get_buffer(name), persistent=persistent)
    return model
