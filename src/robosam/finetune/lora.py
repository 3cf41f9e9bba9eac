"""Low-rank adapters (LoRA, through ``peft``) on the mask decoder's linear layers, and merging them back.

With LoRA only the adapter matrices train; every original weight stays as it was. For saving, each adapted
layer's update ``B @ A * alpha / r`` is added to its weight, so the saved folder is a plain transformers
model that every robosam entry point loads without ``peft``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from robosam.errors import InputError

ADAPTER_NAME = "default"


def require_peft() -> None:
    """Raise ``InputError`` naming the extra when ``peft`` is not installed."""
    try:
        import peft  # noqa: F401
    except ImportError:
        raise InputError(
            "--lora", "the finetune extra for LoRA: pip install 'robosam[finetune]'", "peft not installed"
        ) from None


def decoder_linear_names(model: PreTrainedModel) -> list[str]:
    """Full names of every ``nn.Linear`` in the mask decoder (attention projections, MLPs, heads)."""
    return [
        f"mask_decoder.{name}" for name, m in model.mask_decoder.named_modules() if isinstance(m, nn.Linear)
    ]


def add_lora(model: PreTrainedModel, rank: int, alpha: float | None = None) -> list[str]:
    """Wrap the mask decoder's linear layers of ``model`` in LoRA adapters of ``rank``, in place.

    alpha: LoRA scaling numerator (default ``2 * rank``). Returns the adapted module names. Afterwards only
    the adapter parameters (``lora_A`` / ``lora_B``) require gradients.
    """
    require_peft()
    from peft import LoraConfig, inject_adapter_in_model

    if not isinstance(rank, int) or rank < 1:
        raise InputError("--lora", "a LoRA rank >= 1", rank)
    targets = decoder_linear_names(model)
    config = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=0.0, target_modules=targets)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(".lora_" in name)
    return targets


def lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Module name -> LoRA-wrapped layer of ``model`` (empty without adapters)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return {}
    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict under its original names with every LoRA update merged into its weight.

    Without adapters this is the plain state dict (copied).
    """
    state = {
        name.replace(".base_layer.", "."): tensor.detach().clone()
        for name, tensor in model.state_dict().items()
        if ".lora_" not in name
    }
    with torch.no_grad():
        for name, layer in lora_layers(model).items():
            key = f"{name}.weight"
            state[key] = state[key] + layer.get_delta_weight(ADAPTER_NAME).to(state[key].dtype)
    return state
