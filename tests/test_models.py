"""The preset registry: names, families, and parameter counts re-derived from the architectures."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

from robosam.models import PRESETS, get_preset
from robosam.models.families import ADAPTERS
from robosam.models.loading import MODEL_TYPE_TO_FAMILY


def test_every_preset_has_a_known_family_and_hub_id():
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.family in ADAPTERS
        assert preset.family in MODEL_TYPE_TO_FAMILY.values()
        assert preset.hub_id.count("/") == 1
        assert preset.input_size in (1008, 1024)
    assert get_preset("sam2.1-hiera-tiny").checkpoint == "sam2.1_hiera_tiny.pt"


def _params_m(model_class: type, config: tf.PretrainedConfig) -> float:
    with torch.device("meta"):
        model = model_class(config)
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize(
    ("name", "model_class", "config"),
    [
        ("sam-vit-base", tf.SamModel, tf.SamConfig()),
        (
            "sam-vit-huge",
            tf.SamModel,
            tf.SamConfig(
                vision_config=dict(
                    hidden_size=1280,
                    num_hidden_layers=32,
                    num_attention_heads=16,
                    global_attn_indexes=[7, 15, 23, 31],
                    mlp_dim=5120,
                )
            ),
        ),
        ("sam2.1-hiera-tiny", tf.Sam2Model, tf.Sam2Config()),
        ("sam3-tracker", tf.Sam3TrackerModel, tf.Sam3TrackerConfig()),
    ],
)
def test_parameter_counts_match_the_architecture(name, model_class, config):
    assert _params_m(model_class, config) == pytest.approx(PRESETS[name].params_m, abs=0.05)
