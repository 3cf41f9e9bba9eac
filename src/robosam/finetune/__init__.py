"""Fine-tuning the prompt path: the image encoder frozen and run once per image, the prompt encoder and mask
decoder (or LoRA adapters on the decoder) trained with SAM's recipe on your own labelled images.

Example::

    from robosam.finetune import FinetuneConfig, finetune
    result = finetune(FinetuneConfig(data="parts/", model="sam2.1-hiera-tiny", out="ft/", epochs=10))
    result.before_miou, result.best_miou        # validation mIoU before and at the best epoch
    Segmenter(result.best_dir)                  # the best model, a transformers folder
"""

from robosam.finetune.config import FinetuneConfig
from robosam.finetune.store import EmbeddingStore, model_key
from robosam.finetune.trainer import FinetuneEvent, Finetuner, FinetuneResult, finetune, split_validation

__all__ = [
    "EmbeddingStore",
    "FinetuneConfig",
    "FinetuneEvent",
    "FinetuneResult",
    "Finetuner",
    "finetune",
    "model_key",
    "split_validation",
]
