"""MobileSAM: a TinyViT-5M image encoder in front of SAM 1's prompt encoder and mask decoder.

The model is transformers' ``SamModel`` with its ``vision_encoder`` replaced by robosam's ``TinyViTEncoder``
(``robosam.models.tiny_vit``; MobileSAM is not in transformers): ``get_image_embeddings``, ``forward``, the
prompt encoder and the mask decoder are SAM's, unchanged. Config ``model_type`` is ``mobilesam``; the TinyViT
architecture sits in ``tiny_vit_config``. ``save_pretrained`` / ``from_pretrained`` work as for any
transformers model (``MobileSamModel.from_pretrained(folder)``; importing this module also registers the
pair with ``AutoConfig`` / ``AutoModel``). Preprocessing is SAM 1's: longest side to 1024, ImageNet mean/std,
padded bottom-right.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, AutoModel, PreTrainedModel, SamConfig, SamModel
from transformers.models.sam.modeling_sam import (
    SamMaskDecoder,
    SamPositionalEmbedding,
    SamPreTrainedModel,
    SamPromptEncoder,
)

from robosam.models.families.sam import SamAdapter
from robosam.models.tiny_vit import TinyViTEncoder, TinyViTSettings


@strict
class MobileSamConfig(SamConfig):
    """``SamConfig`` plus ``tiny_vit_config`` (the fields of ``TinyViTSettings``). ``vision_config`` only
    supplies the Fourier feature count of the shared positional embedding; its ViT fields are unused."""

    model_type = "mobilesam"
    tiny_vit_config: dict | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        self.tiny_vit_config = TinyViTSettings.from_dict(self.tiny_vit_config).to_dict()
        super().__post_init__(**kwargs)


class MobileSamModel(SamModel):
    """``SamModel`` with MobileSAM's TinyViT as ``vision_encoder`` (same outputs, same prompt path)."""

    config_class = MobileSamConfig
    config: MobileSamConfig
    _no_split_modules: list[str] = []  # noqa: RUF012 - transformers reads it as a class attribute
    _can_record_outputs: dict[str, Any] = {}  # noqa: RUF012 - no mask decoder attentions recorded

    def __init__(self, config: MobileSamConfig):
        # SamModel.__init__ with the vision encoder swapped (building SAM's ViT first would waste memory)
        SamPreTrainedModel.__init__(self, config)
        self.shared_image_embedding = SamPositionalEmbedding(config.vision_config)
        self.vision_encoder = TinyViTEncoder(TinyViTSettings.from_dict(config.tiny_vit_config))
        self.prompt_encoder = SamPromptEncoder(config)
        config.mask_decoder_config._attn_implementation = config._attn_implementation
        self.mask_decoder = SamMaskDecoder(config.mask_decoder_config)
        self.post_init()

    def get_input_embeddings(self) -> Any:
        return self.vision_encoder.patch_embed


AutoConfig.register(MobileSamConfig.model_type, MobileSamConfig, exist_ok=True)
AutoModel.register(MobileSamConfig, MobileSamModel, exist_ok=True)


class MobileSamAdapter(SamAdapter):
    """MobileSAM (``MobileSamModel``). Features: image embeddings (1, 256, 64, 64) at 1024 input; geometry,
    preprocessing and decoding are SAM 1's."""

    name = "mobilesam"
    model_types = ("mobilesam",)
    image_model_class = "MobileSamModel"

    @classmethod
    def model_class(cls, video: bool = False) -> type[PreTrainedModel]:
        if video:
            from robosam.errors import InputError

            raise InputError(
                "model", "a family with a video model (SAM 2 / 2.1, SAM 3 tracker, EdgeTAM)", cls.name
            )
        return MobileSamModel
